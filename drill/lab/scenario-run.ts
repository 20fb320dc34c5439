/**
 * Runs one scenario once on a built lab: waits until the lab answers from health again (the
 * previous run's rollback undid its fault), loads the scenario's plan and hands it to the drill
 * runner with the real clock and transport, like `gslb-dns drill --plan` does.
 */
import { systemClock } from '../../shared/clock.js';
import { silentObserver } from '../observer.js';
import type { DrillResult } from '../result.js';
import { runDrill } from '../runner.js';
import { createTransport } from '../transport.js';
import { POOLS } from './files.js';
import { runStats } from './scenario-stats.js';
import type { RunStats } from './scenario-stats.js';
import { scenarioPlan } from './scenarios.js';
import type { Scenario } from './scenarios.js';
import type { DrillLab } from './topology.js';

export interface ScenarioRun {
  readonly result: DrillResult;
  readonly stats: RunStats;
}

export async function runScenario(lab: DrillLab, control: string, s: Scenario, run: number, readyTimeoutMs: number): Promise<ScenarioRun> {
  await lab.waitReady(readyTimeoutMs);
  const plan = await scenarioPlan(lab, s, control, run);
  const result = await runDrill(plan, { clock: systemClock, transport: createTransport(systemClock), observer: silentObserver });
  return { result, stats: runStats(result, s, `${POOLS.all}.${lab.plan.zone}`, lab.sites.map((x) => x.name)) };
}

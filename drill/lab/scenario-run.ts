/**
 * Runs one scenario once on a built lab: waits until the lab answers from health again (the
 * previous run's rollback undid its fault), loads the scenario's plan and hands it to the drill
 * runner with the real clock and transport, like `gslb-dns drill --plan` does.
 *
 * Against a peer (drill/lab/peers.ts) it first also waits until every peer instance answers every
 * VIP, and names the sites of the peer's answers from the lab's own VIPs: a peer has no state
 * API, and the numbers (drill/intervals.ts) compare answers by site.
 */
import { systemClock } from '../../shared/clock.js';
import { silentObserver } from '../observer.js';
import type { DrillResult } from '../result.js';
import { runDrill } from '../runner.js';
import { createTransport } from '../transport.js';
import { CHECK, POOLS } from './files.js';
import { waitPeersServing } from './peers.js';
import type { RunningPeer } from './peers.js';
import { changeSteps, runStats } from './scenario-stats.js';
import type { RunStats } from './scenario-stats.js';
import { scenarioPlan, TARGET_SITE } from './scenarios.js';
import type { Scenario } from './scenarios.js';
import type { DrillLab } from './topology.js';

export interface ScenarioRun {
  readonly result: DrillResult;
  readonly stats: RunStats;
}

/** The record with every known address's site filled in (a peer's answers carry "?"). */
export function withLabSites(r: DrillResult, siteOf: ReadonlyMap<string, string>): DrillResult {
  return { ...r, samples: r.samples.map((s) => ({ ...s, sites: s.addresses.map((a, k) => siteOf.get(a) ?? s.sites[k] ?? '?') })) };
}

export async function runScenario(lab: DrillLab, control: string, s: Scenario, run: number, readyTimeoutMs: number, peer?: RunningPeer): Promise<ScenarioRun> {
  await lab.waitReady(readyTimeoutMs);
  if (peer !== undefined) await waitPeersServing(lab, [peer], readyTimeoutMs);
  const plan = await scenarioPlan(lab, s, control, run, peer?.spec);
  const raw = await runDrill(plan, { clock: systemClock, transport: createTransport(systemClock), observer: silentObserver });
  const result = peer === undefined ? raw : withLabSites(raw, new Map(lab.sites.map((x) => [x.vip, x.name])));
  // a peer checks the VIPs itself: the agent's rise is not what it waits for
  const ctx = { riseMetAt: peer === undefined ? riseMetAt(lab, result) : null, windowMs: (CHECK.rise + CHECK.fall) * CHECK.intervalMs };
  return { result, stats: runStats(result, s, `${POOLS.all}.${lab.plan.zone}`, lab.sites.map((x) => x.name), ctx) };
}

/**
 * When the faulted site's agent (the one running now: site-lost restarts it) logged its VIP up
 * after the run's last fault-or-recovery step began: the moment rise was met. Agent log lines
 * are pino's, `time` in unix ms, the clock the drill's samples use too.
 */
function riseMetAt(lab: DrillLab, r: DrillResult): number | null {
  const changing = changeSteps(r);
  if (changing.length < 2) return null;
  const from = changing[changing.length - 1]!.startedAt;
  const line = lab.sites.find((x) => x.name === TARGET_SITE)?.agent?.lines
    .find((l) => typeof l['time'] === 'number' && l['time'] >= from && typeof l['msg'] === 'string' && /^vip \S+ up$/.test(l['msg']));
  return line === undefined ? null : line['time'] as number;
}

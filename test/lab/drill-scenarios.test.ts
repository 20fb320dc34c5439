/**
 * The drill lab's failover scenarios, short form (issue 13): the lab is built once and four
 * scenarios run once each as real drill plans through the drill runner, with their faults
 * injected by `run` steps through the lab's control endpoint. Asserted are outcomes and
 * behaviour (which site left the answers and came back, no healthy site excluded, the --json
 * shape), never how long anything took: CI shares both cores with the other lab tests.
 * `npm run drill:lab -- --all` runs every scenario, with the timings. Needs root.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLabControl } from '../../drill/lab/control.js';
import type { LabControl } from '../../drill/lab/control.js';
import { POOLS } from '../../drill/lab/files.js';
import { runScenario } from '../../drill/lab/scenario-run.js';
import type { ScenarioRun } from '../../drill/lab/scenario-run.js';
import { changeSteps, summarize } from '../../drill/lab/scenario-stats.js';
import { RESOLVER_VANTAGE, scenario, SCENARIOS, TARGET_SITE } from '../../drill/lab/scenarios.js';
import { createDrillLab } from '../../drill/lab/topology.js';
import type { DrillLab } from '../../drill/lab/topology.js';
import type { Sample } from '../../drill/result.js';

const READY_MS = 60_000;

describe('drill lab scenarios (short form)', () => {
  let lab: DrillLab;
  let control: LabControl;
  const runs = new Map<string, ScenarioRun>();

  beforeAll(async () => {
    lab = await createDrillLab({ hostAccess: true });
    control = await startLabControl(lab);
  }, 120_000);

  afterAll(async () => {
    await control?.close();
    await lab?.close();
  }, 60_000);

  const www = (): string => `${POOLS.all}.${lab.plan.zone}`;
  /** what the instances (not the resolver) answered `www` with, to a direct vantage, in a time window */
  const direct = (r: ScenarioRun, from: number, to: number): Sample[] =>
    r.result.samples.filter((s) => s.vantage !== RESOLVER_VANTAGE && s.name === www() && s.rcode === 'NOERROR' && s.t >= from && s.t < to);
  const go = async (name: string): Promise<ScenarioRun> => {
    const r = await runScenario(lab, control.url, scenario(name), 1, READY_MS);
    runs.set(name, r);
    return r;
  };

  /** After the fault some answer lacked the site; after the recovery step the last answers have it again. */
  const leftAndReturned = (r: ScenarioRun): void => {
    const [fault, recovery] = changeSteps(r.result);
    const during = direct(r, fault!.startedAt, recovery!.startedAt);
    expect(during.some((s) => !s.sites.includes(TARGET_SITE))).toBe(true);
    const after = direct(r, recovery!.startedAt, r.result.rollback[0]?.startedAt ?? r.result.endedAt);
    for (const i of lab.instances) expect(after.filter((s) => s.instance === i.name).at(-1)?.sites).toContain(TARGET_SITE);
  };

  it('one real server dies: the site stays in every answer', async () => {
    const r = await go('real-server-dies');
    expect(r.result.outcome, r.result.reason).toBe('SUCCEEDED');
    expect(r.stats.healthyExcluded).toBe(false);
    const answers = direct(r, r.result.startedAt, r.result.endedAt);
    expect(answers.length).toBeGreaterThan(0);
    expect(answers.filter((s) => !s.sites.includes(TARGET_SITE))).toEqual([]);
  }, 120_000);

  it('site lost (its agent killed with SIGKILL): the site leaves every instance\'s answers and returns', async () => {
    const r = await go('site-lost');
    expect(r.result.outcome, r.result.reason).toBe('SUCCEEDED');
    leftAndReturned(r);
    expect(r.stats.healthyExcluded).toBe(false);
    expect(r.stats.allInstancesMs).not.toBeNull();
    expect(r.stats.recoveredMs).not.toBeNull();
    // the restarted agent logged its VIP up, so recovery is also counted from the rise
    expect(r.stats.recoveredAfterRiseMs).not.toBeNull();
  }, 120_000);

  it('drain and undrain: the site leaves and returns; no healthy site is excluded', async () => {
    const r = await go('drain');
    expect(r.result.outcome, r.result.reason).toBe('SUCCEEDED');
    leftAndReturned(r);
    expect(r.stats.healthyExcluded).toBe(false);
    expect(r.stats.allInstancesMs).not.toBeNull();
  }, 120_000);

  it('one DNS instance dies: the other keeps answering every site, the resolver keeps answering, it comes back', async () => {
    const r = await go('instance-dies');
    const [kill, start] = changeSteps(r.result);
    // the restarted ns1 holds (SERVFAIL) what it would answer until its agents have reported,
    // instead of answering from the first site it hears: every answer it gives has every site
    expect(r.result.outcome, r.result.reason).toBe('SUCCEEDED');
    expect(r.stats.healthyExcluded).toBe(false);
    expect(direct(r, r.result.startedAt, r.result.endedAt).filter((s) => s.sites.length < 3)).toEqual([]);
    const samples = r.result.samples.filter((s) => s.t >= kill!.startedAt + 1_000 && s.t < start!.startedAt);
    expect(samples.some((s) => s.instance === 'ns1' && s.rcode === 'TIMEOUT')).toBe(true);
    expect(samples.some((s) => s.instance === 'ns2' && s.rcode === 'NOERROR')).toBe(true);
    expect(samples.some((s) => s.vantage === RESOLVER_VANTAGE && s.rcode === 'NOERROR')).toBe(true);
  }, 120_000);

  it('the --json entry has the contract\'s keys', () => {
    expect([...runs.keys()].sort()).toEqual(SCENARIOS.filter((s) => s.ci).map((s) => s.name).sort());
    for (const [name, r] of runs) {
      const entry = JSON.parse(JSON.stringify(summarize(name, [r.stats]))) as Record<string, unknown>;
      expect(entry).toMatchObject({ name, runs: 1, failedRequests: expect.any(Number), healthyExcluded: expect.any(Boolean), maxDisagreementMs: expect.any(Number) });
      expect(entry['healthyExcluded']).toBe(false);
      expect(Object.keys(entry['medianMs'] as object).sort()).toEqual(['allInstances', 'clientsRecovered', 'firstInstance', 'recovered', 'recoveredAfterRise', 'resolverClients']);
    }
  });
});

/**
 * The drill lab's scenarios without a lab (no root): every scenario's YAML is a valid drill plan
 * (loadPlan), and the per-run and per-scenario numbers are computed as documented from a
 * synthetic record (healthy site excluded, recovery of a one-instance fault, medians).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planLab } from '../../drill/lab/plan.js';
import type { SegmentNet } from '../../drill/lab/plan.js';
import { healthyExcluded, maxPerWindow, median, runStats, summarize } from '../../drill/lab/scenario-stats.js';
import { RESOLVER_VANTAGE, scenario, SCENARIOS, scenarioYaml } from '../../drill/lab/scenarios.js';
import type { DrillLab } from '../../drill/lab/topology.js';
import { parsePlan } from '../../drill/plan.js';
import type { DrillResult, Sample, StepRecord } from '../../drill/result.js';

const net = (i: number): SegmentNet => ({ base: `10.9.${i}`, host: (n) => `10.9.${i}.${n}`, cidr: (n) => `10.9.${i}.${n}/24` });

describe('drill lab scenarios as plans', () => {
  let dir = '';
  let lab: DrillLab;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lab-scenarios-test-'));
    const adminTokenFile = path.join(dir, 'admin.token');
    await writeFile(adminTokenFile, 'secret\n');
    const plan = planLab([0, 1, 2, 3, 4, 5].map(net));
    // only what scenarioYaml reads of a built lab
    lab = {
      plan, dir, adminTokenFile,
      instances: plan.instances.map((i) => ({ name: i.name, address: i.address, dnsPort: 53, api: i.api })),
      sites: plan.sites.map((s) => ({ name: s.name })),
      regions: plan.regions.map((r) => ({ name: r.name, resolver: r.resolver })),
    } as unknown as DrillLab;
  });

  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('every scenario is a valid drill plan with a fault run or action step, a guard and a rollback', () => {
    for (const s of SCENARIOS) {
      const plan = parsePlan(scenarioYaml(lab, s, 'http://127.0.0.1:1'), `${s.name}.yaml`, { env: {}, readText: () => 'secret\n' });
      expect(plan.name).toBe(s.name);
      expect(plan.steps.some((x) => x.kind === 'run' || x.kind === 'action')).toBe(true);
      expect(plan.rollback.length).toBeGreaterThan(0);
      expect(plan.guards.map((g) => g.atLeast)).toEqual([2]);
      expect(plan.vantages.find((v) => v.name === RESOLVER_VANTAGE)?.server?.text).toBe(`${lab.plan.regions[0]!.resolver}:53`);
    }
    expect(SCENARIOS.filter((s) => s.ci).map((s) => s.name).sort()).toEqual(['drain', 'instance-dies', 'real-server-dies', 'site-lost']);
    expect(() => scenario('nope')).toThrow(/no scenario "nope"/);
  });
});

describe('scenario numbers', () => {
  const WWW = 'www.z';
  const SITES = ['site-a', 'site-b', 'site-c'];
  const sample = (t: number, instance: string, sites: string[], over: Partial<Sample> = {}): Sample => ({
    t, instance, vantage: 'east', name: WWW, type: 'A', rcode: 'NOERROR', addresses: sites.map((_, i) => `10.0.0.${i}`), sites, ttl: 5, ...over,
  });
  const step = (index: number, kind: StepRecord['kind'], startedAt: number): StepRecord => ({ index, kind, ok: true, startedAt, elapsedMs: 0, detail: '' });
  const result = (samples: Sample[], steps: StepRecord[]): DrillResult => ({
    outcome: 'SUCCEEDED', name: 'x', startedAt: 0, endedAt: 10_000, steps, rollback: [], guards: [], samples, marks: [], reason: '',
  });

  it('a healthy site is excluded only when an instance\'s www answer lacks a site the scenario did not fault', () => {
    expect(healthyExcluded([sample(1, 'ns1', ['site-b', 'site-c'])], WWW, SITES, ['site-a'])).toBe(false);
    expect(healthyExcluded([sample(1, 'ns1', ['site-b', 'site-c'])], WWW, SITES, [])).toBe(true);
    // the resolver, a timeout and another name do not count
    expect(healthyExcluded([sample(1, '10.0.0.31:53', ['site-b'], { vantage: RESOLVER_VANTAGE })], WWW, SITES, [])).toBe(false);
    expect(healthyExcluded([sample(1, 'ns1', [], { rcode: 'TIMEOUT' })], WWW, SITES, [])).toBe(false);
    expect(healthyExcluded([sample(1, 'ns1', ['site-b'], { name: 'geo.z' })], WWW, SITES, [])).toBe(false);
  });

  it('an instance killed and restarted: first change at the fault, recovery when it is back; its silence is no disagreement', () => {
    const all = ['site-a', 'site-b', 'site-c'];
    const samples = [
      sample(500, 'ns1', all), sample(500, 'ns2', all),
      sample(1300, 'ns1', [], { rcode: 'TIMEOUT', addresses: [] }), sample(1300, 'ns2', all),
      sample(5400, 'ns1', all), sample(5400, 'ns2', all),
    ];
    const st = runStats(result(samples, [step(0, 'run', 1000), step(1, 'wait', 2000), step(2, 'run', 5000)]), scenario('instance-dies'), WWW, SITES, { windowMs: 1500 });
    expect(st).toMatchObject({ firstInstanceMs: 300, allInstancesMs: null, recoveredMs: 400, healthyExcluded: false, maxDisagreementMs: 0, failedRequests: 0 });
  });

  it('medians skip runs that measured nothing; the summary has the --json keys', () => {
    expect(median([3, null, 1, 2])).toBe(2);
    expect(median([1, 2])).toBe(2);
    expect(median([null])).toBeNull();
    const st = runStats(result([sample(500, 'ns1', SITES)], [step(0, 'run', 1000)]), scenario('flap'), WWW, SITES, { windowMs: 1500 });
    const s = summarize('flap', [st, st, st]);
    expect(s).toMatchObject({ name: 'flap', runs: 3, medianMs: { firstInstance: null, allInstances: null, clientsRecovered: null, recovered: null }, failedRequests: 0, healthyExcluded: false, maxDisagreementMs: 0 });
  });

  it('recovery counts from the agent\'s rise too; the resolver\'s clients get their own window', () => {
    const all = ['site-a', 'site-b', 'site-c'];
    const http = (ok: boolean) => ({ http: { ok, status: ok ? 200 : null, ms: 1 } });
    const res = (t: number, ok: boolean): Sample => sample(t, '10.0.0.31:53', ['site-a'], { vantage: RESOLVER_VANTAGE, name: 'geo.z', ...http(ok) });
    const samples = [
      sample(500, 'ns1', all), res(500, true),
      sample(1500, 'ns1', ['site-b', 'site-c']), res(1500, false), res(4000, false), res(7000, true),
      sample(9200, 'ns1', all),
    ];
    // fault at 1000, recovery step at 8000, the agent logged its VIP up at 8700
    const st = runStats(result(samples, [step(0, 'run', 1000), step(1, 'wait', 2000), step(2, 'run', 8000)]), scenario('site-servers-die'), WWW, SITES, { windowMs: 1500, riseMetAt: 8700 });
    expect(st).toMatchObject({ firstInstanceMs: 500, recoveredMs: 1200, recoveredAfterRiseMs: 500, resolverClientsMs: 6000 });
    expect(runStats(result(samples, [step(0, 'run', 1000), step(2, 'run', 8000)]), scenario('site-servers-die'), WWW, SITES, { windowMs: 1500 }).recoveredAfterRiseMs).toBeNull();
  });

  it('counts a lane\'s answer changes per rise/fall window (sliding), the worst lane and window', () => {
    expect(maxPerWindow(new Map([['a', [0, 1000, 3000]], ['b', [0]]]), 1500)).toBe(2);
    expect(maxPerWindow(new Map([['a', [0, 1500, 3000]]]), 1500)).toBe(1);
    expect(maxPerWindow(new Map(), 1500)).toBe(0);
  });
});

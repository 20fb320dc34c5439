/**
 * Hand-built drill records for the tests of drill/progress, drill/intervals and drill/report-html:
 * a realistic drain of site tokyo seen by two instances from two vantages.
 */
import type { DrillResult, Mark, Sample, StepRecord } from '../../drill/result.js';

export const T0 = 1_767_000_000_000;
export const TOKYO = '192.0.2.1';
export const OSAKA = '198.51.100.1';
export const NAME = 'www.gslb.example.test';
const ADDRESS: Readonly<Record<string, string>> = { tokyo: TOKYO, osaka: OSAKA };

/** One sample; `site` null means the instance did not answer (TIMEOUT). */
export function sample(t: number, instance: string, vantage: string, site: string | null, http?: boolean): Sample {
  const base = {
    t: T0 + t, instance, vantage, name: NAME, type: 'A' as const,
    rcode: site === null ? 'TIMEOUT' : 'NOERROR',
    addresses: site === null ? [] : [ADDRESS[site] ?? '?'],
    sites: site === null ? [] : [site],
    ttl: site === null ? null : 20,
  };
  if (http === undefined) return base;
  return { ...base, http: http ? { ok: true, status: 200, ms: 12 } : { ok: false, status: null, ms: 1000, error: 'connect ECONNREFUSED' } };
}

export function step(index: number, kind: StepRecord['kind'], at: number, elapsedMs: number, detail: string, ok = true): StepRecord {
  return { index, kind, ok, startedAt: T0 + at, elapsedMs, detail };
}

/** Where ns1 and ns2 send clients: tokyo, then osaka from +2.3 s (ns1) and +2.6 s (ns2), tokyo again from +8.3 / +8.5 s. */
function siteAt(instance: string, t: number): string {
  const [away, back] = instance === 'ns1' ? [2300, 8300] : [2600, 8500];
  return t >= away && t < back ? 'osaka' : 'tokyo';
}

/** Clients fail while sent to tokyo after the drain at +2 s and before the rollback at +8 s. */
function clientOk(site: string, t: number): boolean {
  return !(site === 'tokyo' && t >= 2000 && t < 8000);
}

/**
 * The browser test's drill: 2 instances, 2 vantages, sites tokyo/osaka, a drain at +2 s, answers
 * move to osaka on ns1 at +2.3 s and ns2 at +2.6 s, client failures in between, rollback at +8 s,
 * SUCCEEDED at +10 s. Samples every 100 ms per instance × vantage.
 */
export function drainDrill(name = 'drain tokyo'): DrillResult {
  const samples: Sample[] = [];
  for (let t = 0; t <= 10_000; t += 100) {
    for (const instance of ['ns1', 'ns2']) {
      for (const [i, vantage] of ['east', 'west'].entries()) {
        const at = t + 10 * i + (instance === 'ns2' ? 5 : 0);
        const site = siteAt(instance, at);
        samples.push(sample(at, instance, vantage, site, clientOk(site, at)));
      }
    }
  }
  const steps = [
    step(0, 'expect', 0, 150, 'answers tokyo on ns1, ns2 held after 150 ms'),
    step(1, 'action', 2000, 40, 'drain site tokyo on ns1, ns2'),
    step(2, 'expect', 2040, 600, 'answers osaka on ns1, ns2 held after 600 ms'),
    step(3, 'wait', 2640, 5000, 'wait 5 s'),
  ];
  const rollback = [step(0, 'action', 8000, 35, 'undrain site tokyo on ns1, ns2')];
  const marks: Mark[] = [
    ...steps.map((s) => ({ t: s.startedAt, kind: 'step' as const, label: `step ${s.index} ${s.kind}: ${s.detail}` })),
    { t: T0 + 8000, kind: 'rollback', label: 'rollback' },
    { t: T0 + 10_000, kind: 'end', label: 'SUCCEEDED' },
  ];
  return {
    outcome: 'SUCCEEDED', name, startedAt: T0, endedAt: T0 + 10_000, steps, rollback,
    guards: [{ name: 'client failure rate < 50%', tripped: false, at: null, detail: 'worst 38% over 5 s' }],
    samples, marks, reason: 'every expectation held; rollback done',
    plan: { instances: ['ns1', 'ns2'], vantages: ['east', 'west'] },
  };
}

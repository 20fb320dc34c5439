/**
 * The runner's timing logic on a manual clock with a fake world (instances whose answers change
 * a set time after an action): how long an expectation took, a deadline missed, a guard cutting a
 * wait short, Ctrl-C and a second Ctrl-C. The real network is tested in drill-e2e.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { parsePlan } from '../../drill/plan.js';
import type { DrillAction, Plan } from '../../drill/plan.js';
import { silentObserver } from '../../drill/observer.js';
import type { DrillResult } from '../../drill/result.js';
import { runDrill } from '../../drill/runner.js';
import type { DrillTransport, ProbeAnswer } from '../../drill/transport.js';
import { ManualClock } from '../helpers/manual-clock.js';

const SITES = new Map([['192.0.2.1', 'tokyo'], ['192.0.2.2', 'osaka'], ['192.0.2.5', 'tokyo']]);

/** Every instance answers with the members of the sites not drained, `lagMs` after an action. */
function createWorld(clock: ManualClock, lagMs: number, opts: { stateFails?: boolean; servfail?: (port: number) => boolean } = {}) {
  const drained = new Set<string>();
  const actions: string[] = [];
  const transport: DrillTransport = {
    async query(to, name): Promise<ProbeAnswer> {
      if (opts.servfail?.(to.port) === true) return { rcode: 'SERVFAIL', addresses: [], ttl: null };
      const members = name.startsWith('solo') ? ['192.0.2.5'] : ['192.0.2.1', '192.0.2.2'];
      const addresses = members.filter((a) => !drained.has(SITES.get(a)!));
      return { rcode: 'NOERROR', addresses, ttl: 20 };
    },
    async fetchThrough() { return { ok: true, status: 200, ms: 1 }; },
    async siteMap() {
      if (opts.stateFails === true) throw new Error('ns1: GET /api/v1/state: ECONNREFUSED');
      return new Map(SITES);
    },
    async act(instance, action: DrillAction, body) {
      actions.push(`${instance.name} ${action} ${body.site}`);
      clock.setTimeout(() => { if (action === 'drain') drained.add(body.site); else drained.delete(body.site); }, lagMs);
      return { ok: true, detail: 'changed' };
    },
    run(_command, _cwd, timeoutMs, signal) {
      return new Promise((resolve) => {
        const t = clock.setTimeout(() => resolve({ ok: false, detail: `timed out after ${timeoutMs} ms` }), timeoutMs);
        signal.addEventListener('abort', () => { clock.clearTimeout(t); resolve({ ok: false, detail: 'stopped' }); }, { once: true });
      });
    },
  };
  return { transport, actions, drained };
}

function plan(steps: string, extra = ''): Plan {
  return parsePlan(`name: unit
instances:
  - { name: ns1, dns: 127.0.0.1:5300, api: http://127.0.0.1:8053 }
  - { name: ns2, dns: 127.0.0.1:5301, api: http://127.0.0.1:8054 }
vantages:
  - { name: v, subnet: 198.51.100.0/24, names: [www.x.test, solo.x.test] }
probeEvery: 100ms
${extra}steps:
${steps}rollback:
  - { action: undrain, site: tokyo }
`, 'unit.yaml', { env: {}, readText: () => undefined });
}

/** Runs the drill, moving the manual clock from timer to timer until it ends. */
async function drive(clock: ManualClock, run: Promise<DrillResult>, onTick?: (elapsed: number) => void): Promise<DrillResult> {
  let result: DrillResult | undefined;
  void run.then((r) => { result = r; });
  const start = clock.now();
  for (let i = 0; i < 100_000 && result === undefined; i++) {
    await clock.next();
    onTick?.(clock.now() - start);
  }
  if (result === undefined) throw new Error('the drill did not end');
  return result;
}

describe('drill runner (manual clock)', () => {
  it('records how long an expectation took to hold, after the action took effect', async () => {
    const clock = new ManualClock();
    const w = createWorld(clock, 700);
    const p = plan('  - { action: drain, site: tokyo }\n  - { expect: { name: www.x.test, from: v, sites: [osaka] }, within: 5s }\n');
    const r = await drive(clock, runDrill(p, { clock, transport: w.transport, observer: silentObserver }));
    expect(r.outcome).toBe('SUCCEEDED');
    expect(r.steps[1]!.ok).toBe(true);
    // the answers changed 700 ms after the drain; probes run every 100 ms
    expect(r.steps[1]!.elapsedMs).toBeGreaterThanOrEqual(700);
    expect(r.steps[1]!.elapsedMs).toBeLessThanOrEqual(800);
    expect(w.actions).toEqual(['ns1 drain tokyo', 'ns2 drain tokyo', 'ns1 undrain tokyo', 'ns2 undrain tokyo']);
    expect(r.rollbackOk).toBe(true);
  });

  it('a missed expectation records its deadline, skips the rest and rolls back (FAILED)', async () => {
    const clock = new ManualClock();
    const w = createWorld(clock, 0);
    const p = plan('  - { action: drain, site: tokyo }\n  - { expect: { name: www.x.test, from: v, sites: [tokyo] }, within: 2s }\n  - { wait: 10s }\n');
    const r = await drive(clock, runDrill(p, { clock, transport: w.transport, observer: silentObserver }));
    expect(r.outcome).toBe('FAILED');
    expect(r.steps[1]).toMatchObject({ ok: false, elapsedMs: 2000 });
    expect(r.steps[1]!.detail).toContain('192.0.2.2 (osaka)');
    expect(r.steps[2]).toMatchObject({ skipped: true, ok: false });
    expect(r.rollback).toMatchObject([{ ok: true, kind: 'action' }]);
    expect(w.drained.size).toBe(0);
  });

  it('a guard that trips cuts the running wait short (INTERRUPTED) and records when', async () => {
    const clock = new ManualClock();
    const w = createWorld(clock, 300);
    const p = plan('  - { action: drain, site: tokyo }\n  - { wait: 60s }\n', 'guards:\n  - { name: solo, serving: solo.x.test, atLeast: 1 }\n');
    const started = clock.now();
    const r = await drive(clock, runDrill(p, { clock, transport: w.transport, observer: silentObserver }));
    expect(r.outcome).toBe('INTERRUPTED');
    expect(r.guards).toMatchObject([{ name: 'solo', tripped: true }]);
    expect(r.guards[0]!.detail).toContain('with 0 addresses');
    expect(r.steps[1]).toMatchObject({ kind: 'wait', ok: false });
    expect(r.steps[1]!.elapsedMs).toBeLessThan(1000);
    expect(clock.now() - started).toBeLessThan(1000);
    expect(r.rollback).toMatchObject([{ ok: true }]);
  });

  it('a SERVFAIL does not trip a guard while another instance serves the vantage; from every instance it does', async () => {
    for (const both of [false, true]) {
      const clock = new ManualClock();
      const start = clock.now();
      // ns1 (port 5300) restarts: SERVFAIL for 1.5 s, as while its agents have not reported yet
      const w = createWorld(clock, 0, { servfail: (port) => clock.now() - start >= 500 && clock.now() - start < 2000 && (both || port === 5300) });
      const p = plan('  - { wait: 5s }\n', 'guards:\n  - { name: served, serving: www.x.test, atLeast: 2 }\n');
      const r = await drive(clock, runDrill(p, { clock, transport: w.transport, observer: silentObserver }));
      expect(r.samples.some((x) => x.instance === 'ns1' && x.rcode === 'SERVFAIL')).toBe(true);
      if (both) {
        expect(r.outcome).toBe('INTERRUPTED');
        expect(r.guards[0]!.detail).toContain('(SERVFAIL)');
      } else {
        expect(r.outcome, r.reason).toBe('SUCCEEDED');
        expect(r.guards).toMatchObject([{ name: 'served', tripped: false }]);
      }
    }
  });

  it('Ctrl-C stops the drill and rolls back; a second one stops the rollback', async () => {
    for (const twice of [false, true]) {
      const clock = new ManualClock();
      const w = createWorld(clock, 0);
      const interrupt = new AbortController();
      const abortRollback = new AbortController();
      const p = plan('  - { action: drain, site: tokyo }\n  - { run: "sleep 100", timeout: 60s }\n');
      const r = await drive(clock, runDrill(p, { clock, transport: w.transport, observer: silentObserver, interrupt: interrupt.signal, abortRollback: abortRollback.signal }), (elapsed) => {
        if (elapsed >= 500 && !interrupt.signal.aborted) {
          interrupt.abort();
          if (twice) abortRollback.abort();
        }
      });
      expect(r.outcome).toBe('INTERRUPTED');
      expect(r.steps[1]).toMatchObject({ kind: 'run', ok: false, detail: expect.stringContaining('stopped') });
      expect(r.marks.some((m) => m.kind === 'interrupt')).toBe(true);
      if (twice) {
        expect(r.rollback).toMatchObject([{ skipped: true }]);
        expect(r.rollbackOk).toBe(false);
        expect(r.reason).toContain('ROLLBACK INCOMPLETE');
      } else {
        expect(r.rollback).toMatchObject([{ ok: true }]);
      }
    }
  });

  it('an unreachable state API is an ERROR before the start: nothing is changed, no rollback', async () => {
    const clock = new ManualClock();
    const w = createWorld(clock, 0, { stateFails: true });
    const r = await drive(clock, runDrill(plan('  - { action: drain, site: tokyo }\n'), { clock, transport: w.transport, observer: silentObserver }));
    expect(r.outcome).toBe('ERROR');
    expect(r.reason).toContain('ECONNREFUSED');
    expect(r.steps).toEqual([]);
    expect(r.rollback).toEqual([]);
    expect(r.rollbackOk).toBeUndefined();
    expect(w.actions).toEqual([]);
  });
});

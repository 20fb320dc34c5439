/**
 * The check scheduler with fake checkers on a manual clock: one run at a time per check, the
 * timeout backstop, spread first runs, a throwing sink, and a clean (and bounded) stop.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { sleep } from '../../shared/clock.js';
import { createCheckScheduler } from '../../slb-agent/health/scheduler.js';
import type { CheckScheduler, ScheduledCheck, CheckSchedulerOptions } from '../../slb-agent/health/scheduler.js';
import type { CheckResult, Checker } from '../../slb-agent/health/checkers/types.js';
import { flush, ManualClock } from '../helpers/manual-clock.js';

const running: { s: CheckScheduler; clock: ManualClock }[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map(async ({ s, clock }) => {
    const stopped = s.stop();
    await clock.tick(5000); // past the stop bound, in case a checker ignores its abort
    await stopped;
  }));
});

function check(key: string, checker: Checker, o: Partial<ScheduledCheck> = {}): ScheduledCheck {
  return { key, target: { address: '127.0.0.1', port: 1 }, checker, intervalMs: 50, timeoutMs: 40, ...o };
}

/** A scheduler on its own manual clock, stopped after the test. */
function scheduler(checks: ScheduledCheck[], sink: (k: string, r: CheckResult) => void, opts: CheckSchedulerOptions = {}): { s: CheckScheduler; clock: ManualClock } {
  const clock = new ManualClock();
  const s = createCheckScheduler(checks, sink, { clock, ...opts });
  running.push({ s, clock });
  return { s, clock };
}

describe('scheduler', () => {
  it('never overlaps runs of one check, even when a run takes longer than the interval', async () => {
    let active = 0;
    let maxActive = 0;
    const runs: { start: number; end: number }[] = [];
    let clockRef: ManualClock | undefined;
    const slow: Checker = async (_t, signal) => {
      const c = clockRef!;
      const run = { start: c.now(), end: Number.NaN };
      runs.push(run);
      active++; maxActive = Math.max(maxActive, active);
      await sleep(c, 30, signal);
      active--;
      run.end = c.now();
      return { ok: true, latencyMs: 30 };
    };
    const results: string[] = [];
    const { s, clock } = scheduler([check('a', slow, { intervalMs: 10, timeoutMs: 100 })], (k) => results.push(k), { firstRunAt: () => 0 });
    clockRef = clock;
    s.start();
    await clock.tick(400);
    expect(maxActive).toBe(1);
    // every run starts after the one before it ended (30 ms each, interval 10 ms)
    for (let i = 1; i < runs.length; i++) expect(runs[i]!.start).toBeGreaterThanOrEqual(runs[i - 1]!.end);
    expect(runs.length).toBeGreaterThanOrEqual(5);
    expect(runs.length).toBeLessThanOrEqual(14);
    expect(results.length).toBeGreaterThanOrEqual(runs.length - 1);
  });

  it('reports a checker that ignores its timeout as a timeout, and aborts its signal', async () => {
    let seen: AbortSignal | undefined;
    const hang: Checker = (_t, signal) => { seen = signal; return new Promise<CheckResult>(() => {}); };
    const results: CheckResult[] = [];
    const { s, clock } = scheduler([check('h', hang, { intervalMs: 1000, timeoutMs: 30 })], (_k, r) => results.push(r), { firstRunAt: () => 0 });
    s.start();
    await clock.tick(79);
    expect(results).toHaveLength(0); // the backstop waits 50 ms past the checker's own timeout
    await clock.tick(171);
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ ok: false, error: 'timeout after 30 ms', latencyMs: 80 });
    expect(seen!.aborted).toBe(true);
  });

  it('turns a throwing or rejecting checker into a failure, and survives a throwing sink', async () => {
    const throws: Checker = () => { throw new Error('boom'); };
    const rejects: Checker = async () => { throw new Error('nope'); };
    const results: [string, CheckResult][] = [];
    const { s, clock } = scheduler([check('t', throws), check('r', rejects)], (k, r) => { results.push([k, r]); throw new Error('sink bug'); }, { firstRunAt: () => 0 });
    s.start();
    await clock.tick(180);
    expect(results.filter(([k]) => k === 't').length).toBeGreaterThanOrEqual(2);
    expect(results.find(([k]) => k === 't')![1]).toMatchObject({ ok: false, error: 'boom' });
    expect(results.find(([k]) => k === 'r')![1]).toMatchObject({ ok: false, error: 'nope' });
  });

  it('spreads first runs over the interval', async () => {
    const firstAt = new Map<string, number>();
    let clockRef: ManualClock | undefined;
    let t0 = 0;
    const ok: Checker = async (t) => { if (!firstAt.has(String(t.port))) firstAt.set(String(t.port), clockRef!.now() - t0); return { ok: true, latencyMs: 0 }; };
    const fractions = [0, 0.5, 0.99];
    const checks = fractions.map((_, i) => check(`c${i}`, ok, { target: { address: '127.0.0.1', port: i }, intervalMs: 300, timeoutMs: 100 }));
    let n = 0;
    const { s, clock } = scheduler(checks, () => {}, { random: () => fractions[n++ % 3]!, jitter: 0 });
    clockRef = clock;
    t0 = clock.now();
    s.start();
    await clock.tick(350);
    // each at its fraction of the interval, rounded up to the scheduler's 25 ms tick
    expect(firstAt.get('0')!).toBeLessThan(25);
    expect(firstAt.get('1')!).toBeGreaterThanOrEqual(150);
    expect(firstAt.get('1')!).toBeLessThan(175);
    expect(firstAt.get('2')!).toBeGreaterThanOrEqual(297);
    expect(firstAt.get('2')!).toBeLessThan(322);
  });

  it('stop aborts checks in flight, waits for them and delivers nothing more', async () => {
    let aborted = 0;
    const waits: Checker = (_t, signal) => new Promise<CheckResult>((resolve) => {
      signal.addEventListener('abort', () => { aborted++; resolve({ ok: false, latencyMs: 0, error: 'aborted' }); }, { once: true });
    });
    const results: CheckResult[] = [];
    const { s, clock } = scheduler([check('w', waits, { timeoutMs: 5000, intervalMs: 10_000 })], (_k, r) => results.push(r), { firstRunAt: () => 0 });
    s.start();
    await clock.tick(30);
    expect(s.inFlight).toBe(1);
    await s.stop();
    expect(aborted).toBe(1);
    expect(s.inFlight).toBe(0);
    expect(results).toHaveLength(0);
  });

  it('stop gives up on a checker that ignores its abort after two seconds', async () => {
    const hang: Checker = () => new Promise<CheckResult>(() => {});
    const results: CheckResult[] = [];
    const { s, clock } = scheduler([check('h', hang, { timeoutMs: 10_000, intervalMs: 20_000 })], (_k, r) => results.push(r), { firstRunAt: () => 0 });
    s.start();
    await clock.tick(30);
    expect(s.inFlight).toBe(1);
    let stopped = false;
    const stopping = s.stop().then(() => { stopped = true; });
    await clock.tick(1999);
    expect(stopped).toBe(false);
    await clock.tick(1);
    await flush();
    expect(stopped).toBe(true);
    await stopping;
    expect(results).toHaveLength(0);
  });
});

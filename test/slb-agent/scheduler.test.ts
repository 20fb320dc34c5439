/**
 * The check scheduler with fake checkers: one run at a time per check, the timeout backstop,
 * spread first runs, a throwing sink, and a clean stop.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createScheduler } from '../../slb-agent/health/scheduler.js';
import type { Scheduler, ScheduledCheck } from '../../slb-agent/health/scheduler.js';
import type { CheckResult, Checker } from '../../slb-agent/health/checkers/types.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const running: Scheduler[] = [];
afterEach(async () => { await Promise.all(running.splice(0).map((s) => s.stop())); });

function check(key: string, checker: Checker, o: Partial<ScheduledCheck> = {}): ScheduledCheck {
  return { key, target: { address: '127.0.0.1', port: 1 }, checker, intervalMs: 50, timeoutMs: 40, ...o };
}

describe('scheduler', () => {
  it('never overlaps runs of one check, even when a run takes longer than the interval', async () => {
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    const slow: Checker = async () => {
      active++; maxActive = Math.max(maxActive, active); runs++;
      await sleep(30);
      active--;
      return { ok: true, latencyMs: 30 };
    };
    const results: string[] = [];
    const s = createScheduler([check('a', slow, { intervalMs: 10, timeoutMs: 100 })], (k) => results.push(k), { firstRunAt: () => 0 });
    running.push(s);
    s.start();
    await sleep(400);
    expect(maxActive).toBe(1);
    expect(runs).toBeGreaterThanOrEqual(5);
    expect(runs).toBeLessThanOrEqual(14);
    expect(results.length).toBeGreaterThanOrEqual(runs - 1);
  });

  it('reports a checker that ignores its timeout as a timeout, and aborts its signal', async () => {
    let seen: AbortSignal | undefined;
    const hang: Checker = (_t, signal) => { seen = signal; return new Promise<CheckResult>(() => {}); };
    const results: CheckResult[] = [];
    const s = createScheduler([check('h', hang, { intervalMs: 1000, timeoutMs: 30 })], (_k, r) => results.push(r), { firstRunAt: () => 0 });
    running.push(s);
    s.start();
    await sleep(250);
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ ok: false, error: 'timeout after 30 ms' });
    expect(seen!.aborted).toBe(true);
  });

  it('turns a throwing or rejecting checker into a failure, and survives a throwing sink', async () => {
    const throws: Checker = () => { throw new Error('boom'); };
    const rejects: Checker = async () => { throw new Error('nope'); };
    const results: [string, CheckResult][] = [];
    const s = createScheduler([check('t', throws), check('r', rejects)], (k, r) => { results.push([k, r]); throw new Error('sink bug'); }, { firstRunAt: () => 0 });
    running.push(s);
    s.start();
    await sleep(180);
    expect(results.filter(([k]) => k === 't').length).toBeGreaterThanOrEqual(2);
    expect(results.find(([k]) => k === 't')![1]).toMatchObject({ ok: false, error: 'boom' });
    expect(results.find(([k]) => k === 'r')![1]).toMatchObject({ ok: false, error: 'nope' });
  });

  it('spreads first runs over the interval', async () => {
    const firstAt = new Map<string, number>();
    const t0 = performance.now();
    const ok: Checker = async (t) => { if (!firstAt.has(String(t.port))) firstAt.set(String(t.port), performance.now() - t0); return { ok: true, latencyMs: 0 }; };
    const fractions = [0, 0.5, 0.99];
    const checks = fractions.map((_, i) => check(`c${i}`, ok, { target: { address: '127.0.0.1', port: i }, intervalMs: 300, timeoutMs: 100 }));
    let n = 0;
    const s = createScheduler(checks, () => {}, { random: () => fractions[n++ % 3]!, jitter: 0 });
    running.push(s);
    s.start();
    await sleep(350);
    expect(firstAt.get('0')!).toBeLessThan(100);
    expect(firstAt.get('1')!).toBeGreaterThanOrEqual(140);
    expect(firstAt.get('2')!).toBeGreaterThanOrEqual(280);
  });

  it('stop aborts checks in flight, waits for them and delivers nothing more', async () => {
    let aborted = 0;
    const waits: Checker = (_t, signal) => new Promise<CheckResult>((resolve) => {
      signal.addEventListener('abort', () => { aborted++; resolve({ ok: false, latencyMs: 0, error: 'aborted' }); }, { once: true });
    });
    const results: CheckResult[] = [];
    const s = createScheduler([check('w', waits, { timeoutMs: 5000, intervalMs: 10_000 })], (_k, r) => results.push(r), { firstRunAt: () => 0 });
    s.start();
    await sleep(30);
    expect(s.inFlight).toBe(1);
    await s.stop();
    expect(aborted).toBe(1);
    expect(s.inFlight).toBe(0);
    expect(results).toHaveLength(0);
  });
});

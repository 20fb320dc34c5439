/**
 * The real-server state machine, row by row of the table in slb-agent/health/state.ts, plus the
 * start state, the record it keeps and the injected clock.
 */
import { describe, expect, it } from 'vitest';
import { applyResult, HealthState, initialHealth, nextStatus } from '../../slb-agent/health/state.js';
import type { HealthStatus } from '../../slb-agent/health/state.js';

const PASS = { ok: true, latencyMs: 1.5 } as const;
const FAIL = { ok: false, latencyMs: 300, error: 'timeout after 300 ms' } as const;

describe('transition table (rise 2, fall 3)', () => {
  const t = { rise: 2, fall: 3 };
  const rows: { state: HealthStatus; ok: boolean; successes: number; failures: number; next: HealthStatus; why: string }[] = [
    { state: 'down', ok: true, successes: 0, failures: 0, next: 'down', why: 'down, pass, successes + 1 < rise' },
    { state: 'down', ok: true, successes: 1, failures: 0, next: 'up', why: 'down, pass, successes + 1 >= rise' },
    { state: 'down', ok: true, successes: 5, failures: 0, next: 'up', why: 'down, pass, beyond rise (start up after a long run)' },
    { state: 'down', ok: false, successes: 1, failures: 0, next: 'down', why: 'down, fail' },
    { state: 'down', ok: false, successes: 0, failures: 9, next: 'down', why: 'down, fail, long failing' },
    { state: 'up', ok: true, successes: 0, failures: 2, next: 'up', why: 'up, pass' },
    { state: 'up', ok: false, successes: 4, failures: 0, next: 'up', why: 'up, fail, failures + 1 < fall' },
    { state: 'up', ok: false, successes: 0, failures: 1, next: 'up', why: 'up, fail, failures + 1 < fall (2 of 3)' },
    { state: 'up', ok: false, successes: 0, failures: 2, next: 'down', why: 'up, fail, failures + 1 >= fall' },
  ];
  for (const r of rows) {
    it(r.why, () => {
      expect(nextStatus(r.state, r.ok, r.successes, r.failures, t)).toBe(r.next);
      const rec = { ...initialHealth({ ...t, start: r.state }, 0), successes: r.successes, failures: r.failures };
      const { record, transition } = applyResult(rec, r.ok ? PASS : FAIL, t, 10);
      expect(record.state).toBe(r.next);
      expect(record.successes).toBe(r.ok ? r.successes + 1 : 0);
      expect(record.failures).toBe(r.ok ? 0 : r.failures + 1);
      expect(transition).toEqual(r.next === r.state ? undefined : { from: r.state, to: r.next, at: 10 });
      expect(record.lastChangeAt).toBe(r.next === r.state ? 0 : 10);
    });
  }

  it('rise 1 / fall 1 flip on every change of result', () => {
    const one = { rise: 1, fall: 1 };
    expect(nextStatus('down', true, 0, 0, one)).toBe('up');
    expect(nextStatus('up', false, 0, 0, one)).toBe('down');
  });
});

describe('HealthState', () => {
  it('starts down by default (down until proven) and rises after `rise` passes', () => {
    let now = 1000;
    const s = new HealthState({ rise: 2, fall: 2 }, () => now);
    expect(s.state).toBe('down');
    expect(s.record).toMatchObject({ successes: 0, failures: 0, checks: 0, lastChangeAt: 1000 });
    now = 1500;
    expect(s.apply(PASS)).toBeUndefined();
    expect(s.state).toBe('down');
    now = 2000;
    expect(s.apply(PASS)).toEqual({ from: 'down', to: 'up', at: 2000 });
    expect(s.record).toMatchObject({ state: 'up', successes: 2, failures: 0, checks: 2, lastChangeAt: 2000, lastCheckAt: 2000, lastLatencyMs: 1.5 });
  });

  it('honours a configured start state up, and falls after `fall` failures', () => {
    let now = 0;
    const s = new HealthState({ rise: 2, fall: 2, start: 'up' }, () => now);
    expect(s.state).toBe('up');
    now = 10;
    expect(s.apply(FAIL)).toBeUndefined();
    expect(s.record.lastError).toBe('timeout after 300 ms');
    now = 20;
    expect(s.apply(FAIL)).toEqual({ from: 'up', to: 'down', at: 20 });
    expect(s.record).toMatchObject({ state: 'down', failures: 2, successes: 0, lastLatencyMs: 300, lastChangeAt: 20 });
    expect(s.record.lastResult).toEqual(FAIL);
  });

  it('a flapping server (pass, fail, pass, fail) never changes state with rise 2 / fall 2', () => {
    const s = new HealthState({ rise: 2, fall: 2 }, () => 0);
    for (let i = 0; i < 10; i++) expect(s.apply(i % 2 ? FAIL : PASS)).toBeUndefined();
    expect(s.state).toBe('down');
    const u = new HealthState({ rise: 2, fall: 2, start: 'up' }, () => 0);
    for (let i = 0; i < 10; i++) expect(u.apply(i % 2 ? PASS : FAIL)).toBeUndefined();
    expect(u.state).toBe('up');
  });

  it('keeps the last error after a pass and the latest agent advice', () => {
    const s = new HealthState({ rise: 1, fall: 1 }, () => 0);
    s.apply({ ok: true, latencyMs: 1, agent: { weightPct: 50 } });
    s.apply({ ok: false, latencyMs: 2, error: 'refused' });
    s.apply({ ok: true, latencyMs: 3 });
    expect(s.record).toMatchObject({ state: 'up', lastError: 'refused', lastLatencyMs: 3, agent: { weightPct: 50 }, checks: 3 });
    s.apply({ ok: true, latencyMs: 1, agent: { state: 'drain' } });
    expect(s.record.agent).toEqual({ state: 'drain' });
  });
});

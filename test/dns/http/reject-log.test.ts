import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createRejectLog } from '../../../dns/http/reject-log.js';
import { ManualClock } from '../../helpers/manual-clock.js';

function setup(intervalMs = 10_000) {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s) as Record<string, unknown>); } });
  const clock = new ManualClock();
  const limiter = createRejectLog(log, { timers: clock, intervalMs });
  const reject = (key: string, source = '192.0.2.9', msg = 'report rejected') => limiter.reject({ msg, key, source, fields: { reason: `because ${key}` } });
  return { lines, clock, limiter, reject };
}

describe('rejected-request log limiter', () => {
  it('logs the first of each reason at once, then one summary per interval with counts and top sources', () => {
    const { lines, clock, reject } = setup();
    for (let i = 0; i < 1_000; i++) reject('bad-signature', i % 10 === 0 ? '198.51.100.1' : '203.0.113.7');
    reject('clock-skew');
    reject('clock-skew');
    reject('401', '192.0.2.50', 'admin request refused');
    expect(lines.map((l) => l['msg'])).toEqual(['report rejected', 'report rejected', 'admin request refused']);
    expect(lines[0]).toMatchObject({ level: 40, reason: 'because bad-signature', ip: '198.51.100.1' });

    clock.advance(9_999);
    expect(lines).toHaveLength(3);
    clock.advance(1);
    expect(lines).toHaveLength(4);
    expect(lines[3]).toMatchObject({
      level: 40, intervalMs: 10_000, suppressed: 1_000,
      byReason: { 'report rejected: bad-signature': 999, 'report rejected: clock-skew': 1 },
      topSources: [{ source: '203.0.113.7', count: 900 }, { source: '198.51.100.1', count: 99 }, { source: '192.0.2.9', count: 1 }],
    });

    // a quiet interval logs nothing; a reason is new again in the next interval
    clock.advance(10_000);
    expect(lines).toHaveLength(4);
    reject('bad-signature');
    expect(lines).toHaveLength(5);
    expect(lines[4]!['msg']).toBe('report rejected');
  });

  it('keeps at most a bounded set of sources and writes the rest on close', () => {
    const { lines, clock, limiter, reject } = setup();
    for (let i = 0; i < 3_000; i++) reject('bad-signature', `10.0.${i >> 8}.${i & 255}`);
    limiter.close();
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ suppressed: 2_999 });
    expect((lines[1]!['topSources'] as { source: string; count: number }[])[0]).toEqual({ source: 'other', count: 1_999 });
    clock.advance(100_000);
    expect(lines).toHaveLength(2);
  });
});

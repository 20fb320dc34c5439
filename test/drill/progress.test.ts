import { describe, expect, it } from 'vitest';
import { createProgress, MAX_LANES, REDRAW_MS } from '../../drill/progress.js';
import type { DrillObserver } from '../../drill/progress.js';
import { drainDrill, OSAKA, sample, T0, TOKYO } from './fixture.js';

/** A fake terminal or pipe: what was written, and a clock the test moves. */
function setup(isTTY: boolean, columns = 120): { p: DrillObserver; writes: string[]; text: () => string; clock: { t: number } } {
  const writes: string[] = [];
  const clock = { t: T0 };
  const p = createProgress({ write: (s) => { writes.push(s); }, isTTY, columns }, { now: () => clock.t });
  return { p, writes, text: () => writes.join(''), clock };
}

/** The visible screen after the writes: cursor-up + clear-below erase the previous block. */
function screen(writes: readonly string[]): string[] {
  const lines: string[] = [];
  for (const w of writes) {
    let rest = w;
    const m = /^\x1b\[(\d+)A\r\x1b\[J/.exec(rest) ?? /^\r\x1b\[J/.exec(rest);
    if (m !== null) {
      lines.splice(lines.length - Number(m[1] ?? 0));
      rest = rest.slice(m[0].length);
    }
    lines.push(...rest.split('\n').slice(0, -1));
  }
  return lines;
}

describe('progress, not a TTY', () => {
  it('writes a line only when the step, a lane\'s answer or its clients change', () => {
    const { p, text, clock } = setup(false);
    p.step('0 expect: answers tokyo');
    for (let i = 0; i < 5; i++) p.sample(sample(100 * i, 'ns1', 'east', 'tokyo', true));
    clock.t = T0 + 2000;
    p.step('1 action: drain site tokyo');
    p.sample(sample(2000, 'ns1', 'east', 'tokyo', false));
    p.sample(sample(2100, 'ns1', 'east', 'tokyo', false));
    clock.t = T0 + 2300;
    p.sample(sample(2300, 'ns1', 'east', 'osaka', true));
    p.sample(sample(2400, 'ns1', 'east', 'osaka', true));
    p.mark({ t: T0 + 2500, kind: 'guard', label: 'client failure rate > 50%' });
    p.mark({ t: T0 + 2500, kind: 'step', label: 'ignored: step() said it' });
    expect(text()).toBe([
      '+0.00 s  step 0 expect: answers tokyo',
      `+0.00 s  ns1 @ east: tokyo ${TOKYO}`,
      '+2.00 s  step 1 action: drain site tokyo',
      '+2.00 s  ns1 @ east clients failing: connect ECONNREFUSED',
      `+2.30 s  ns1 @ east: osaka ${OSAKA} (was tokyo ${TOKYO})`,
      '+2.30 s  ns1 @ east clients ok again after 2 failures',
      '+2.30 s  guard tripped: client failure rate > 50%',
      '',
    ].join('\n'));
    expect(text()).not.toContain('\x1b');
  });

  it('names the lane with name and type once there are several names', () => {
    const { p, text } = setup(false);
    p.sample(sample(0, 'ns1', 'east', 'tokyo'));
    p.sample({ ...sample(10, 'ns1', 'east', 'tokyo'), name: 'api.gslb.example.test' });
    expect(text()).toContain(`ns1 @ east api.gslb.example.test A: tokyo ${TOKYO}`);
  });

  it('ends with the outcome, reason, steps with elapsed times, guards and the measured intervals', () => {
    const { p, text } = setup(false);
    p.done(drainDrill());
    const out = text();
    expect(out).toMatch(/^SUCCEEDED {2}drain tokyo {2}\(10\.0 s\)\nreason: every expectation held; rollback done\n/);
    expect(out).toContain('\n  ok       1 action   +2.00 s     40 ms  drain site tokyo on ns1, ns2\n');
    expect(out).toContain('rollback:\n  ok       0 action   +8.00 s     35 ms  undrain site tokyo on ns1, ns2\n');
    expect(out).toContain('guards:\n  ok  client failure rate < 50%  worst 38% over 5 s');
    expect(out).toContain('step 1 action (drain site tokyo on ns1, ns2): first instance moved after 300 ms, all after 605 ms; 18 client failures, clients ok again after 615 ms');
    expect(out).toContain('longest disagreement: 305 ms for east www.gslb.example.test A from +2.30 s');
    expect(out).toContain('client failure windows: 4, longest 6 failures (ns2 @ east from +2.00 s)');
  });
});

describe('progress on a TTY', () => {
  it('redraws one block in place: step, each lane\'s last answer with its age, client success', () => {
    const { p, writes, clock } = setup(true);
    p.step('1 action: drain site tokyo');
    p.sample(sample(0, 'ns1', 'east', 'tokyo', true));
    p.sample(sample(5, 'ns2', 'east', 'tokyo', false));
    clock.t = T0 + 300;
    p.sample(sample(300, 'ns1', 'east', 'osaka', true));
    expect(screen(writes)).toEqual([
      '+0.00 s  step 1 action: drain site tokyo',
      'step: 1 action: drain site tokyo',
      `  ns1 @ east  osaka ${OSAKA}  NOERROR  0 ms ago  http ok`,
      `  ns2 @ east  tokyo ${TOKYO}  NOERROR  295 ms ago  http FAIL`,
      'clients ok: last 5 s 2/3 (67%), overall 2/3 (67%)',
    ]);
  });

  it('redraws on samples at most every REDRAW_MS of the injected clock, and at once on a step', () => {
    const { p, writes, clock } = setup(true);
    p.sample(sample(0, 'ns1', 'east', 'tokyo'));
    const first = writes.length;
    for (let i = 1; i < 10; i++) { clock.t = T0 + 10 * i; p.sample(sample(10 * i, 'ns1', 'east', 'tokyo')); }
    expect(writes.length).toBe(first);
    clock.t = T0 + REDRAW_MS;
    p.sample(sample(REDRAW_MS, 'ns1', 'east', 'tokyo'));
    expect(writes.length).toBe(first + 1);
    p.step('2 expect');
    expect(writes.length).toBe(first + 2);
    expect(writes.at(-1)).toMatch(/^\x1b\[3A\r\x1b\[J/);
  });

  it('keeps the block short and the lines within the terminal width', () => {
    const { p, writes } = setup(true, 40);
    for (let i = 0; i < MAX_LANES + 3; i++) p.sample(sample(0, `ns${i}`, 'a-rather-long-vantage-name', 'tokyo'));
    p.step('x');
    const lines = screen(writes);
    expect(lines).toHaveLength(1 + 1 + MAX_LANES + 1 + 1);
    expect(lines).toContain('  … 3 more');
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(39);
  });

  it('counts only the last few seconds in the recent rate', () => {
    const { p, writes, clock } = setup(true);
    p.sample(sample(0, 'ns1', 'east', 'tokyo', false));
    clock.t = T0 + 6000;
    p.sample(sample(6000, 'ns1', 'east', 'tokyo', true));
    expect(screen(writes).at(-1)).toBe('clients ok: last 5 s 1/1 (100%), overall 1/2 (50%)');
  });

  it('replaces the block with the summary when done', () => {
    const { p, writes } = setup(true);
    p.sample(sample(0, 'ns1', 'east', 'tokyo'));
    p.done(drainDrill());
    const lines = screen(writes);
    expect(lines[0]).toBe('SUCCEEDED  drain tokyo  (10.0 s)');
    expect(lines.join('\n')).not.toContain('step: ');
  });
});

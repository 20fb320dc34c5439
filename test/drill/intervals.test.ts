import { describe, expect, it } from 'vitest';
import { answerKey, findDisagreements, findFailureWindows, measureChanges, measureIntervals } from '../../drill/intervals.js';
import type { DrillResult, Sample } from '../../drill/result.js';
import { drainDrill, sample, step, T0 } from './fixture.js';

function drill(samples: Sample[], steps = [step(0, 'action', 1000, 10, 'drain site tokyo')], rollback = [] as DrillResult['rollback']): DrillResult {
  return {
    outcome: 'SUCCEEDED', name: 'd', startedAt: T0, endedAt: T0 + 5000, steps, rollback,
    guards: [], samples, marks: [], reason: '',
  };
}

describe('answerKey', () => {
  it('is the sorted site set, or the rcode when the answer failed', () => {
    expect(answerKey({ ...sample(0, 'ns1', 'v', 'tokyo'), sites: ['tokyo', 'osaka', 'tokyo'] })).toBe('osaka+tokyo');
    expect(answerKey(sample(0, 'ns1', 'v', null))).toBe('TIMEOUT');
    expect(answerKey({ ...sample(0, 'ns1', 'v', 'tokyo'), sites: [] })).toBe('empty');
  });
});

describe('measureChanges', () => {
  it('times the first and the last instance to answer differently after a fault', () => {
    const r = drill([
      sample(900, 'ns1', 'v', 'tokyo'), sample(950, 'ns2', 'v', 'tokyo'),
      sample(1100, 'ns1', 'v', 'tokyo'), sample(1200, 'ns1', 'v', 'osaka'),
      sample(1300, 'ns2', 'v', 'tokyo'), sample(1700, 'ns2', 'v', 'osaka'),
    ]);
    expect(measureChanges(r)).toEqual([{
      label: 'step 0 action', detail: 'drain site tokyo', at: T0 + 1000,
      firstChangeMs: 200, allChangedMs: 700, clientFailures: 0, clientsRecoveredMs: null,
    }]);
  });

  it('says null for all-changed when an instance never moved, and ignores instances not seen before', () => {
    const r = drill([
      sample(900, 'ns1', 'v', 'tokyo'), sample(950, 'ns2', 'v', 'tokyo'),
      sample(1200, 'ns1', 'v', 'osaka'), sample(1300, 'ns2', 'v', 'tokyo'), sample(1400, 'ns3', 'v', 'osaka'),
    ]);
    const [c] = measureChanges(r);
    expect(c?.firstChangeMs).toBe(200);
    expect(c?.allChangedMs).toBeNull();
  });

  it('counts an answer recorded in the millisecond the fault began as the state before it', () => {
    const r = drill([sample(1000, 'ns1', 'v', 'tokyo'), sample(1000, 'ns2', 'v', 'tokyo'), sample(1200, 'ns1', 'v', 'osaka'), sample(1300, 'ns2', 'v', 'osaka')]);
    expect(measureChanges(r).map((c) => [c.firstChangeMs, c.allChangedMs])).toEqual([[200, 300]]);
  });

  it('ends each window at the next fault, so a rollback is not counted as the fault\'s effect', () => {
    const r = drill(
      [sample(900, 'ns1', 'v', 'tokyo'), sample(1500, 'ns1', 'v', 'tokyo'), sample(2200, 'ns1', 'v', 'osaka')],
      [step(0, 'action', 1000, 10, 'drain'), step(1, 'wait', 1100, 500, 'wait'), step(2, 'run', 2000, 10, 'fault.sh')],
    );
    expect(measureChanges(r).map((c) => [c.label, c.firstChangeMs])).toEqual([['step 0 action', null], ['step 2 run', 200]]);
  });

  it('counts client failures after a fault and when every lane succeeded again', () => {
    const r = drill([
      sample(900, 'ns1', 'v', 'tokyo', true), sample(900, 'ns2', 'v', 'tokyo', true),
      sample(1100, 'ns1', 'v', 'tokyo', false), sample(1150, 'ns2', 'v', 'tokyo', false),
      sample(1200, 'ns1', 'v', 'osaka', true), sample(1250, 'ns2', 'v', 'tokyo', false),
      sample(1600, 'ns2', 'v', 'osaka', true),
    ]);
    const [c] = measureChanges(r);
    expect(c?.clientFailures).toBe(3);
    expect(c?.clientsRecoveredMs).toBe(600);
  });

  it('has no recovery while a lane is still failing at the end', () => {
    const r = drill([sample(900, 'ns1', 'v', 'tokyo', true), sample(1100, 'ns1', 'v', 'tokyo', false)]);
    expect(measureChanges(r)[0]?.clientsRecoveredMs).toBeNull();
  });

  it('measures rollback actions too, and skips skipped steps', () => {
    const r = drill([], [{ ...step(0, 'action', 1000, 0, 'x', false), skipped: true }], [step(0, 'action', 3000, 5, 'undrain')]);
    expect(measureChanges(r).map((c) => c.label)).toEqual(['rollback 0 action']);
  });
});

describe('findDisagreements', () => {
  it('finds the windows when the instances answer one vantage differently', () => {
    const samples = [
      sample(0, 'ns1', 'v', 'tokyo'), sample(10, 'ns2', 'v', 'tokyo'),
      sample(300, 'ns1', 'v', 'osaka'), sample(700, 'ns2', 'v', 'osaka'),
      sample(800, 'ns1', 'w', 'osaka'), sample(900, 'ns2', 'w', 'tokyo'),
    ];
    expect(findDisagreements(samples, T0 + 1000)).toEqual([
      { vantage: 'v', name: 'www.gslb.example.test', type: 'A', start: T0 + 300, end: T0 + 700, ms: 400 },
      { vantage: 'w', name: 'www.gslb.example.test', type: 'A', start: T0 + 900, end: T0 + 1000, ms: 100 },
    ]);
  });
});

describe('findFailureWindows', () => {
  it('groups consecutive failed fetches per instance and vantage, with when they recovered', () => {
    const samples = [
      sample(0, 'ns1', 'v', 'tokyo', true), sample(100, 'ns1', 'v', 'tokyo', false), sample(200, 'ns1', 'v', 'tokyo', false),
      sample(300, 'ns1', 'v', 'osaka', true), sample(400, 'ns1', 'v', 'tokyo', false), sample(150, 'ns2', 'v', 'tokyo'),
    ];
    expect(findFailureWindows(samples)).toEqual([
      { instance: 'ns1', vantage: 'v', start: T0 + 100, end: T0 + 200, count: 2, recoveredAt: T0 + 300 },
      { instance: 'ns1', vantage: 'v', start: T0 + 400, end: T0 + 400, count: 1, recoveredAt: null },
    ]);
  });
});

describe('measureIntervals on the drain drill', () => {
  it('measures the drain and the rollback', () => {
    const m = measureIntervals(drainDrill());
    expect(m.changes.map((c) => [c.label, c.firstChangeMs, c.allChangedMs, c.clientFailures, c.clientsRecoveredMs])).toEqual([
      ['step 1 action', 300, 605, 18, 615],
      ['rollback 0 action', 300, 505, 0, null],
    ]);
    expect(m.longestDisagreement).toMatchObject({ vantage: 'east', start: T0 + 2300, end: T0 + 2605, ms: 305 });
    expect(m.disagreements).toHaveLength(4);
    expect(m.failures.map((f) => [f.instance, f.vantage, f.count])).toEqual([['ns1', 'east', 3], ['ns2', 'east', 6], ['ns1', 'west', 3], ['ns2', 'west', 6]]);
  });
});

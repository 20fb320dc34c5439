/**
 * The staleness ticker on a manual clock: a site whose reports stop goes stale within one tick of
 * its staleAfter (10 s in the fixture), without any report or query to trigger it; stop() ends it.
 */
import { describe, expect, it } from 'vitest';
import { STALE_TICK_MS, startStaleTicker } from '../../../dns/gslb/stale-ticker.js';
import { GslbState } from '../../../dns/gslb/state.js';
import { createGslbConfig, makeReport, T0 } from '../../helpers/gslb-state-fixture.js';
import { ManualClock } from '../../helpers/manual-clock.js';

function stale(state: GslbState, site: string): boolean {
  const s = (state.snapshot() as { sites: { name: string; stale: boolean }[] }).sites.find((x) => x.name === site);
  if (!s) throw new Error(`no site ${site}`);
  return s.stale;
}

describe('stale ticker', () => {
  it('marks a silent site stale within one tick after staleAfter, on the clock it is given', () => {
    const clock = new ManualClock(0, T0);
    const state = new GslbState(createGslbConfig(), clock.wallNow);
    expect(state.applyReport(makeReport('tokyo', 1)).ok).toBe(true);
    expect(state.applyReport(makeReport('osaka', 1)).ok).toBe(true);
    const ticker = startStaleTicker(state, clock);
    expect(clock.pending).toBe(1);
    // osaka keeps reporting, tokyo falls silent
    for (let t = 0; t < 10_000; t += 1000) {
      clock.advance(1000);
      expect(state.applyReport(makeReport('osaka', 2 + t / 1000)).ok).toBe(true);
    }
    expect(stale(state, 'tokyo')).toBe(false);
    clock.advance(STALE_TICK_MS);
    expect(stale(state, 'tokyo')).toBe(true);
    expect(stale(state, 'osaka')).toBe(false);
    ticker.stop();
    expect(clock.pending).toBe(0);
  });

  it('does nothing without ticks: staleness waits for the ticker, not for the clock alone', () => {
    const clock = new ManualClock(0, T0);
    const state = new GslbState(createGslbConfig(), clock.wallNow);
    state.applyReport(makeReport('tokyo', 1));
    const ticker = startStaleTicker(state, clock, 1000);
    ticker.stop();
    clock.advance(60_000);
    expect(stale(state, 'tokyo')).toBe(false);
  });
});

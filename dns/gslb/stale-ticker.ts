/**
 * The staleness clock of gslb-dns: GslbState decides when a site is stale (it reads its own
 * `now`); this ticker only asks it often enough, on an injectable clock, so that a site without
 * reports stops serving at most one period after its staleAfter.
 */
import { systemClock } from '../../shared/clock.js';
import type { Clock } from '../../shared/clock.js';

/** How often the state is asked for stale sites. */
export const STALE_TICK_MS = 250;

/** Calls `state.tick()` every `periodMs` on `clock` until stopped. */
export function startStaleTicker(state: { tick(): unknown }, clock: Clock = systemClock, periodMs = STALE_TICK_MS): { stop(): void } {
  const timer = clock.setInterval(() => { state.tick(); }, periodMs);
  return { stop: () => clock.clearInterval(timer) };
}

/**
 * Time as an input. Every component that waits, ticks or expires takes a `Clock` (the system's
 * by default); tests pass a manual clock (test/helpers/manual-clock.ts) and move time themselves,
 * so that no test depends on how fast the machine is.
 *
 * Every member is a plain function (no `this`), so `clock.now` may be passed on by itself.
 */

/** A timer handle; only the clock that made it can clear it. */
export type TimerHandle = unknown;

/** One-shot and periodic timers. */
export interface Timers {
  /** runs `fn` once, `ms` from now */
  readonly setTimeout: (fn: () => void, ms: number) => TimerHandle;
  /** cancels a timer of setTimeout (no-op for undefined, a fired or a cleared one) */
  readonly clearTimeout: (handle: TimerHandle | undefined) => void;
  /** runs `fn` every `ms` from now on */
  readonly setInterval: (fn: () => void, ms: number) => TimerHandle;
  /** cancels a timer of setInterval (no-op for undefined or a cleared one) */
  readonly clearInterval: (handle: TimerHandle | undefined) => void;
}

/** Timers plus the two clocks a component may read. */
export interface Clock extends Timers {
  /** monotonic milliseconds (never steps back; the origin is arbitrary): durations and deadlines */
  readonly now: () => number;
  /** unix milliseconds (the wall clock, may step): timestamps others read */
  readonly wallNow: () => number;
}

/** Monotonic milliseconds on libuv's uv_hrtime clock (also the pinger addon's receive stamps). */
export function monotonicNow(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** The process's real clock and timers. */
export const systemClock: Clock = {
  now: monotonicNow,
  wallNow: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout | undefined),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout | undefined),
};

/** Lets the process exit while this timer is pending, if it is a Node timer (no-op otherwise). */
export function unrefTimer(handle: TimerHandle): TimerHandle {
  (handle as { unref?: () => void } | null)?.unref?.();
  return handle;
}

/** Resolves after `ms` on `clock` (at once, and clearing its timer, when `signal` aborts). */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) { resolve(); return; }
    const onAbort = (): void => { clock.clearTimeout(t); resolve(); };
    const t = clock.setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

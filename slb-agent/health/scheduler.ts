/**
 * Runs every real server's checker on its own timer: every `intervalMs`, measured from the start
 * of one run to the start of the next, never two runs of the same check at once, each bounded by
 * `timeoutMs` (checkers enforce it, per the Checker contract; one that overruns it by 50 ms is
 * reported as a timeout and its signal aborted). The first run of each check is spread uniformly over one interval and every
 * later interval is jittered by +-`jitter`, so 1,000 checks do not fire in step.
 */
import { sleep, systemClock } from '../../shared/clock.js';
import type { Clock, TimerHandle } from '../../shared/clock.js';
import type { CheckResult, CheckTarget, Checker } from './checkers/types.js';

/** One check the scheduler runs. */
export interface ScheduledCheck {
  /** identifies the check in `onResult` (e.g. `web/127.0.0.11:8080`) */
  readonly key: string;
  readonly target: CheckTarget;
  readonly checker: Checker;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** relative jitter of this check's intervals (overrides the scheduler's), 0..0.5 */
  readonly jitter?: number;
}

/** CheckScheduler knobs (tests inject randomness and the clock). */
export interface CheckSchedulerOptions {
  /** timers and the monotonic clock; the system's by default */
  readonly clock?: Clock;
  /** relative jitter of each interval, 0..0.5; 0.05 by default */
  readonly jitter?: number;
  /** uniform [0, 1); Math.random by default */
  readonly random?: () => number;
  /** delay of the first run as a fraction of the interval; random by default */
  readonly firstRunAt?: (check: ScheduledCheck) => number;
}

/** A running set of checks. */
export interface CheckScheduler {
  /** starts every check's timer (idempotent) */
  start(): void;
  /** stops timers, aborts checks in flight and resolves when they settled (bounded) */
  stop(): Promise<void>;
  /** checks currently in flight */
  readonly inFlight: number;
}

/** Receives every result, in order per check. */
export type ResultSink = (key: string, result: CheckResult) => void;

// a checker that ignores its abort signal still frees its slot this long after the timeout
const HARD_TIMEOUT_GRACE_MS = 50;
// runs start on 25 ms boundaries: a thousand checks a second then wake the process ~40 times
// instead of ~1,000 (each wake-up is a kernel round trip; bench:agent measured the difference)
const TICK_MS = 25;
const STOP_WAIT_MS = 2000;

interface Slot {
  readonly check: ScheduledCheck;
  timer: TimerHandle | undefined;
  running: Promise<void> | undefined;
  // one controller per slot, replaced only when aborted: at 1,000 checks/s a controller and a
  // timer per run are measurable; checkers enforce their own timeout (the Checker contract)
  abort: AbortController;
}

/** Creates a scheduler for `checks`; results go to `onResult` (a throwing sink never stops checks). */
export function createCheckScheduler(checks: readonly ScheduledCheck[], onResult: ResultSink, opts: CheckSchedulerOptions = {}): CheckScheduler {
  const jitter = Math.min(0.5, Math.max(0, opts.jitter ?? 0.05));
  const random = opts.random ?? Math.random;
  const clock = opts.clock ?? systemClock;
  const slots: Slot[] = checks.map((check) => ({ check, timer: undefined, running: undefined, abort: new AbortController() }));
  let started = false;
  let stopped = false;
  let inFlight = 0;

  const deliver = (key: string, result: CheckResult): void => {
    try {
      onResult(key, result);
    } catch {
      // the sink's bug must not stop health checking; the agent logs its own errors
    }
  };

  const runOnce = (slot: Slot): Promise<void> => new Promise<void>((resolve) => {
    const { check } = slot;
    const t0 = clock.now();
    let settled = false;
    const settle = (result: CheckResult): void => {
      if (settled) return;
      settled = true;
      clock.clearTimeout(hard);
      if (!stopped) deliver(check.key, result);
      resolve();
    };
    // the backstop for a checker that overruns its timeout: report a timeout, abort it, and give
    // the slot a fresh signal so the next run is not born aborted
    const hard = clock.setTimeout(() => {
      settle({ ok: false, latencyMs: clock.now() - t0, error: `timeout after ${check.timeoutMs} ms` });
      slot.abort.abort(new Error('timeout'));
      slot.abort = new AbortController();
    }, check.timeoutMs + HARD_TIMEOUT_GRACE_MS);
    let p: Promise<CheckResult>;
    try {
      p = check.checker(check.target, slot.abort.signal);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(settle, (err: unknown) => settle({ ok: false, latencyMs: clock.now() - t0, error: err instanceof Error ? err.message : String(err) }));
  });

  const schedule = (slot: Slot, delayMs: number): void => {
    if (stopped) return;
    const now = clock.now();
    const due = Math.ceil((now + delayMs) / TICK_MS) * TICK_MS;
    slot.timer = clock.setTimeout(() => {
      slot.timer = undefined;
      const start = clock.now();
      inFlight++;
      slot.running = runOnce(slot).finally(() => {
        inFlight--;
        slot.running = undefined;
        const j = Math.min(0.5, Math.max(0, slot.check.jitter ?? jitter));
        const period = slot.check.intervalMs * (1 + j * (random() * 2 - 1));
        schedule(slot, Math.max(0, period - (clock.now() - start)));
      });
    }, due - now);
  };

  return {
    start() {
      if (started || stopped) return;
      started = true;
      for (const slot of slots) {
        const at = opts.firstRunAt?.(slot.check) ?? random();
        schedule(slot, Math.max(0, Math.min(1, at)) * slot.check.intervalMs);
      }
    },
    async stop() {
      stopped = true;
      const pending: Promise<void>[] = [];
      for (const slot of slots) {
        clock.clearTimeout(slot.timer);
        slot.timer = undefined;
        slot.abort.abort(new Error('stopped'));
        if (slot.running) pending.push(slot.running);
      }
      const settledAll = new AbortController();
      await Promise.race([Promise.allSettled(pending).then(() => settledAll.abort()), sleep(clock, STOP_WAIT_MS, settledAll.signal)]);
      settledAll.abort();
    },
    get inFlight() {
      return inFlight;
    },
  };
}

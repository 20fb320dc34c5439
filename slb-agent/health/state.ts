/**
 * The one health state machine of slb-agent: check results (pass/fail from a checker) become a
 * real server's up/down state by rise/fall. Checkers never decide state; the VIP derivation only
 * reads it (ARCHITECTURE principle 2: checkers report, state decides, selectors read).
 *
 * Transition table (`ok` = the checker passed; streaks count consecutive results):
 *
 *   | state | result | streak after the result  | next | streaks after             |
 *   |-------|--------|--------------------------|------|---------------------------|
 *   | down  | pass   | successes + 1 <  rise    | down | successes + 1, failures 0 |
 *   | down  | pass   | successes + 1 >= rise    | up   | successes + 1, failures 0 |
 *   | down  | fail   | (any)                    | down | successes 0, failures + 1 |
 *   | up    | pass   | (any)                    | up   | successes + 1, failures 0 |
 *   | up    | fail   | failures + 1 <  fall     | up   | successes 0, failures + 1 |
 *   | up    | fail   | failures + 1 >= fall     | down | successes 0, failures + 1 |
 *
 * The start state comes from the config and defaults to `down` (down until proven: no
 * optimistic start, so a restarted agent never reports a VIP up before its checks agree).
 * Streaks keep counting past the threshold (they say how long the server has been steady).
 */
import type { CheckResult } from './checkers/types.js';

/** A real server's health as the state machine sees it. */
export type HealthStatus = 'up' | 'down';

/** The advice of an `agent` check (HAProxy agent-check words), kept until the next advice. */
export interface AgentAdvice {
  readonly weightPct?: number;
  readonly state?: 'up' | 'down' | 'drain' | 'maint';
}

/** Thresholds of one real server's check. */
export interface HealthThresholds {
  /** consecutive passes that bring a down server up (>= 1) */
  readonly rise: number;
  /** consecutive failures that bring an up server down (>= 1) */
  readonly fall: number;
  /** state before the first check; `down` by default */
  readonly start?: HealthStatus;
}

/** Everything known about one real server's health; immutable, replaced on every result. */
export interface HealthRecord {
  readonly state: HealthStatus;
  readonly successes: number;
  readonly failures: number;
  /** results seen since start */
  readonly checks: number;
  readonly lastResult?: CheckResult;
  /** the error of the last failed check (kept after later passes, for the status page) */
  readonly lastError?: string;
  readonly lastLatencyMs?: number;
  /** unix ms of the last result */
  readonly lastCheckAt?: number;
  /** unix ms of the last state change (start time before the first change) */
  readonly lastChangeAt: number;
  /** the latest agent-check advice, if the check is an `agent` check */
  readonly agent?: AgentAdvice;
}

/** A state change produced by one result. */
export interface HealthTransition {
  readonly from: HealthStatus;
  readonly to: HealthStatus;
  readonly at: number;
}

/** The record a real server starts with: `start` (default down), no streaks, changed at `now`. */
export function initialHealth(t: HealthThresholds, now: number): HealthRecord {
  return { state: t.start ?? 'down', successes: 0, failures: 0, checks: 0, lastChangeAt: now };
}

/** The next state for one result, per the table above; pure. */
export function nextStatus(state: HealthStatus, ok: boolean, successes: number, failures: number, t: HealthThresholds): HealthStatus {
  if (ok) return state === 'down' && successes + 1 >= Math.max(1, t.rise) ? 'up' : state;
  return state === 'up' && failures + 1 >= Math.max(1, t.fall) ? 'down' : state;
}

/** Applies one check result at `now`; pure: returns the new record and the transition, if any. */
export function applyResult(rec: HealthRecord, result: CheckResult, t: HealthThresholds, now: number): {
  record: HealthRecord; transition?: HealthTransition;
} {
  const state = nextStatus(rec.state, result.ok, rec.successes, rec.failures, t);
  const changed = state !== rec.state;
  const lastError = result.ok ? rec.lastError : (result.error ?? 'failed');
  const agent = result.agent ?? rec.agent;
  const record: HealthRecord = {
    state,
    successes: result.ok ? rec.successes + 1 : 0,
    failures: result.ok ? 0 : rec.failures + 1,
    checks: rec.checks + 1,
    lastResult: result,
    ...(lastError === undefined ? {} : { lastError }),
    lastLatencyMs: result.latencyMs,
    lastCheckAt: now,
    lastChangeAt: changed ? now : rec.lastChangeAt,
    ...(agent === undefined ? {} : { agent }),
  };
  return changed ? { record, transition: { from: rec.state, to: state, at: now } } : { record };
}

/** One real server's state machine with an injectable clock (unix ms). */
export class HealthState {
  #rec: HealthRecord;

  constructor(readonly thresholds: HealthThresholds, private readonly now: () => number = Date.now) {
    this.#rec = initialHealth(thresholds, now());
  }

  /** The current record (immutable). */
  get record(): HealthRecord {
    return this.#rec;
  }

  get state(): HealthStatus {
    return this.#rec.state;
  }

  /** Feeds one check result; returns the transition when the state changed. */
  apply(result: CheckResult): HealthTransition | undefined {
    const { record, transition } = applyResult(this.#rec, result, this.thresholds, this.now());
    this.#rec = record;
    return transition;
  }
}

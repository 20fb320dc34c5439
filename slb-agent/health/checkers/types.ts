/**
 * The checker contract: a checker probes one real server once and says pass or fail (with the
 * latency and, on failure, why). It never decides state: rise/fall lives in health/state.ts.
 */

/** The real server a check probes. */
export interface CheckTarget {
  readonly address: string;
  readonly port: number;
}

/** One check's outcome. */
export interface CheckResult {
  readonly ok: boolean;
  readonly latencyMs: number;
  /** why it failed (timeout, refused, status 503, body mismatch, exit code 2, ...) */
  readonly error?: string;
  /** `agent` checks only: what the real server's agent asked for */
  readonly agent?: { readonly weightPct?: number; readonly state?: 'up' | 'down' | 'drain' | 'maint' };
}

/** Probes a target once; resolves (never rejects) within the check's timeout, honouring `signal`. */
export type Checker = (target: CheckTarget, signal: AbortSignal) => Promise<CheckResult>;

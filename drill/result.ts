/**
 * What a drill run records: the document `--json OUT` writes (its keys are a contract: extend,
 * don't rename), which the terminal progress and the `--html` report are drawn from.
 */

/** SUCCEEDED: exit 0; FAILED: an expectation missed its deadline, exit 1; ERROR: could not run, exit 2; INTERRUPTED: a guard tripped or Ctrl-C, exit 3. */
export type DrillOutcome = 'SUCCEEDED' | 'FAILED' | 'INTERRUPTED' | 'ERROR';

export const OUTCOME_EXIT: Readonly<Record<DrillOutcome, number>> = { SUCCEEDED: 0, FAILED: 1, ERROR: 2, INTERRUPTED: 3 };

export type StepKind = 'action' | 'expect' | 'wait' | 'run';

/** One step (or rollback step) as it ran. Times are unix ms; elapsedMs from the step's start. */
export interface StepRecord {
  /** position in `steps` (or `rollback`), from 0 */
  readonly index: number;
  readonly kind: StepKind;
  readonly ok: boolean;
  /** unix ms */
  readonly startedAt: number;
  /** for an expect: until it held, or its deadline when missed */
  readonly elapsedMs: number;
  /** what was done or seen, in words (e.g. "drain site tokyo on ns1, ns2", "held after 812 ms on ns1, ns2") */
  readonly detail: string;
  /** skipped after a missed expectation, a guard trip or Ctrl-C (ok is false) */
  readonly skipped?: boolean;
}

export interface GuardRecord {
  readonly name: string;
  readonly tripped: boolean;
  /** unix ms of the trip; null when it never tripped */
  readonly at: number | null;
  readonly detail: string;
}

/** One observation of one instance (or the vantage's own server) answering one vantage. */
export interface Sample {
  /** unix ms when the answer (or its failure) came back */
  readonly t: number;
  /** the instance's name, or the vantage's `server` when it asks a resolver */
  readonly instance: string;
  readonly vantage: string;
  readonly name: string;
  readonly type: 'A' | 'AAAA';
  /** NOERROR, NXDOMAIN, SERVFAIL, ... or TIMEOUT / ERROR when no reply came */
  readonly rcode: string;
  readonly addresses: readonly string[];
  /** the sites of those addresses, from the instances' state API ("?" for an address no site has) */
  readonly sites: readonly string[];
  readonly ttl: number | null;
  /** when the vantage has `http`: a client's fetch through the first address */
  readonly http?: { readonly ok: boolean; readonly status: number | null; readonly ms: number; readonly error?: string };
}

/** A mark on the timeline: a step began or ended, a guard tripped, rollback began. */
export interface Mark {
  readonly t: number;
  readonly kind: 'step' | 'rollback' | 'guard' | 'interrupt' | 'end';
  readonly label: string;
}

export interface DrillResult {
  readonly outcome: DrillOutcome;
  readonly name: string;
  /** unix ms */
  readonly startedAt: number;
  readonly endedAt: number;
  readonly steps: readonly StepRecord[];
  readonly rollback: readonly StepRecord[];
  readonly guards: readonly GuardRecord[];
  readonly samples: readonly Sample[];
  readonly marks: readonly Mark[];
  /** why the outcome is what it is, in one line */
  readonly reason: string;
  /** the plan's instances and vantages in its order, so the report's lanes follow it (else: order of first sample) */
  readonly plan?: { readonly instances: readonly string[]; readonly vantages: readonly string[] };
  /** every rollback step ran and succeeded (true when there was none); absent when rollback did not run (ERROR before the start) */
  readonly rollbackOk?: boolean;
}

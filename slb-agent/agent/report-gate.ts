/**
 * When an agent starts to report and to apply its data plane. A restarted agent finds its kernel
 * forwarding still programmed and its real servers down until proven: applying before their first
 * checks settle would program every real server down (resetting live flows and refusing new ones
 * until they rise again), and reporting would flap its VIPs down in DNS for `rise` checks.
 *
 *   event                                         effect
 *   arm (agent start)                             the hold-off runs; opens at once if all settled
 *   every real server settled, or hold-off over   opens: onOpen (forwarder, VIP checks); the
 *                                                 reporter starts if the data plane has applied
 *   the data plane's first apply                  ready() resolves; the reporter starts if open
 *   opens with no forwarded VIP                   counts as the first apply
 */
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../shared/clock.js';

export interface ReportGateOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  /** the longest the gate waits for real servers to settle once armed */
  readonly holdOffMs: number;
  /** real servers settled and in all, now */
  readonly settled: () => { readonly settled: number; readonly total: number };
  /** false before the agent starts and once it stops */
  readonly mayOpen: () => boolean;
  /** false once the agent stops */
  readonly mayReport: () => boolean;
  /** some VIP is forwarded (else there is no apply to wait for) */
  readonly forwards: () => boolean;
  /** the gate opened: start applying and the VIP checks */
  readonly onOpen: () => void;
  readonly startReporter: () => void;
}

export interface ReportGate {
  /** reports (and applies) have started */
  readonly open: boolean;
  /** the data plane's first apply settled */
  readonly applied: boolean;
  ready(): Promise<void>;
  /** the agent started at `since` (clock.now(), for the log): the hold-off runs */
  arm(since: number): void;
  /** opens unless already open or the agent may not (why: for the log) */
  tryOpen(why: string): void;
  /** the data plane applied (every apply calls it; the first counts) */
  onApplied(): void;
  /** stops the hold-off */
  disarm(): void;
}

export function createReportGate(opts: ReportGateOptions): ReportGate {
  const { clock } = opts;
  let open = false;
  let applied = false;
  let armedAt = 0;
  let holdTimer: TimerHandle | undefined;
  let resolveReady: () => void = () => undefined;
  const readyPromise = new Promise<void>((r) => { resolveReady = r; });
  const markApplied = (): void => {
    applied = true;
    resolveReady();
  };

  const gate: ReportGate = {
    get open() {
      return open;
    },
    get applied() {
      return applied;
    },
    ready: () => readyPromise,
    arm(since) {
      armedAt = since;
      holdTimer = clock.setTimeout(() => gate.tryOpen('hold-off expired'), opts.holdOffMs);
      const { settled, total } = opts.settled();
      if (settled === total) gate.tryOpen('checks settled');
    },
    tryOpen(why) {
      if (open || !opts.mayOpen()) return;
      open = true;
      clock.clearTimeout(holdTimer);
      const { settled, total } = opts.settled();
      opts.logger.info({ why, afterMs: Math.round(clock.now() - armedAt), settled, realServers: total }, 'reporting started');
      opts.onOpen();
      if (!opts.forwards() && !applied) markApplied();
      if (applied) opts.startReporter();
    },
    onApplied() {
      if (applied) return;
      markApplied();
      if (open && opts.mayReport()) opts.startReporter();
    },
    disarm() {
      clock.clearTimeout(holdTimer);
    },
  };
  return gate;
}

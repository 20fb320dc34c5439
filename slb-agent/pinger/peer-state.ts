/**
 * What the pinger knows about one peer: counters, round-trip times and whether it answers.
 *
 *   | answering | event                              | next      | says            |
 *   |-----------|------------------------------------|-----------|-----------------|
 *   | null      | answer                             | true      | -               |
 *   | null/true | failures reach failAfter           | false     | 'down' (warn)   |
 *   | false     | answer                             | true      | 'recovered'     |
 *   | any       | failure below failAfter            | unchanged | -               |
 *
 * `null` means not known yet (no answer, fewer than failAfter failures). Times are the pinger's
 * monotonic milliseconds; the status adds wall-clock time.
 */

/** Weight of a new sample in the smoothed round-trip time (RFC 6298's alpha). */
const SRTT_ALPHA = 0.125;

/** A probe in flight. */
export interface PendingProbe {
  readonly seq: number;
  readonly sentAt: number;
  readonly deadline: number;
}

/** A peer's state as the API shows it. */
export interface PeerStatus {
  readonly address: string;
  /** found by `auto` in the neighbour table (not listed) */
  readonly auto: boolean;
  /** last MAC seen: from its ARP answer, else the neighbour table */
  readonly mac: string | null;
  /** null until the first answer or failAfter failures */
  readonly answering: boolean | null;
  readonly consecutiveFailures: number;
  /** unix ms of the last answer */
  readonly lastAnswerAt: number | null;
  readonly lastRttMs: number | null;
  readonly srttMs: number | null;
  readonly sent: number;
  readonly answered: number;
  /** probes the kernel refused to send (link down, no route); they also count as failures */
  readonly sendErrors: number;
  readonly lastError: string | null;
}

/** What a state change means for the log. */
export type PeerEvent = 'down' | 'recovered' | undefined;

/** One peer's mutable state. */
export class PeerState {
  auto = false;
  mac: string | null = null;
  answering: boolean | null = null;
  consecutiveFailures = 0;
  lastAnswerMono: number | null = null;
  lastRttMs: number | null = null;
  srttMs: number | null = null;
  sent = 0;
  answered = 0;
  sendErrors = 0;
  lastError: string | null = null;
  pending: PendingProbe | undefined;

  constructor(readonly address: string, private readonly failAfter: number) {}

  /** A probe left (or failed to leave: `error`); an older probe still pending has failed first. */
  onSent(p: PendingProbe, error?: string): PeerEvent {
    const ev = this.pending !== undefined ? this.fail('no answer') : undefined;
    this.sent++;
    if (error !== undefined) {
      this.sendErrors++;
      this.pending = undefined;
      return this.fail(error) ?? ev;
    }
    this.pending = p;
    return ev;
  }

  /** An answer to the pending probe at monotonic `at`; false when none was pending (late or unsolicited). */
  onAnswer(at: number, mac: string | undefined, seq?: number): { matched: boolean; event: PeerEvent } {
    const p = this.pending;
    if (p === undefined || (seq !== undefined && seq !== p.seq)) return { matched: false, event: undefined };
    this.pending = undefined;
    const rtt = Math.max(0, at - p.sentAt);
    this.answered++;
    this.lastRttMs = rtt;
    this.srttMs = this.srttMs === null ? rtt : this.srttMs + SRTT_ALPHA * (rtt - this.srttMs);
    this.lastAnswerMono = at;
    this.consecutiveFailures = 0;
    this.lastError = null;
    if (mac !== undefined) this.mac = mac;
    const wasDown = this.answering === false;
    this.answering = true;
    return { matched: true, event: wasDown ? 'recovered' : undefined };
  }

  /** The pending probe's deadline passed at `now` (no-op if it was answered). */
  onExpired(p: PendingProbe): PeerEvent {
    if (this.pending !== p) return undefined;
    this.pending = undefined;
    return this.fail('no answer');
  }

  private fail(reason: string): PeerEvent {
    this.consecutiveFailures++;
    this.lastError = reason;
    if (this.consecutiveFailures >= this.failAfter && this.answering !== false) {
      this.answering = false;
      return 'down';
    }
    return undefined;
  }

  /** The API view; `wall` converts monotonic ms to unix ms. */
  status(wall: (mono: number) => number): PeerStatus {
    return {
      address: this.address, auto: this.auto, mac: this.mac, answering: this.answering,
      consecutiveFailures: this.consecutiveFailures,
      lastAnswerAt: this.lastAnswerMono === null ? null : Math.round(wall(this.lastAnswerMono)),
      lastRttMs: this.lastRttMs, srttMs: this.srttMs, sent: this.sent, answered: this.answered,
      sendErrors: this.sendErrors, lastError: this.lastError,
    };
  }
}

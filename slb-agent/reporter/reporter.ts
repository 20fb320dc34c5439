/**
 * Sends the site's VIP state, signed, to every gslb-dns instance (`POST /api/v1/reports`).
 *
 * Each DNS instance has its own independent loop, so one that is down or slow never delays the
 * others (nor the checks, which never wait for the reporter):
 *
 *   | instance is      | event              | action                                                |
 *   |------------------|--------------------|-------------------------------------------------------|
 *   | idle             | change (`notify`)  | send now                                              |
 *   | idle             | heartbeat due      | send now; the next heartbeat is `intervalMs` later    |
 *   | sending          | change             | mark dirty; send again as soon as this one succeeds   |
 *   | backing off      | change / heartbeat | nothing: the retry sends whatever is latest then      |
 *   | sending -> ok    |                    | failures = 0; dirty ? send now : heartbeat later      |
 *   | sending -> fail  |                    | failures + 1; retry after min(max, initial x 2^(n-1))  |
 *
 * Every body is built at send time from `members()`, so an instance that comes back gets the
 * latest state, never a queue of stale reports. `seq` comes from the clock (unix microseconds,
 * strictly increasing within the process even if the clock steps back) so it keeps increasing
 * across agent restarts, as gslb-dns requires per (site, agent).
 *
 * `final()` ends the reporter with one last report to every instance at once (a graceful stop),
 * bounded by its own short timeout. Members' optional `checked` and `reason` are newer than some
 * gslb-dns instances: one that refuses a body carrying them (400 schema) gets them left out from
 * then on.
 */
import fetch from 'node-fetch';
import type { Logger } from 'pino';
import { systemClock } from '../../shared/clock.js';
import type { Clock, TimerHandle } from '../../shared/clock.js';
import { SIGNATURE_HEADER, SITE_HEADER, TIMESTAMP_HEADER } from '../../shared/protocol/report.js';
import type { Report, ReportMember } from '../../shared/protocol/report.js';
import { signReport } from '../../shared/protocol/signature.js';

export const REPORTS_PATH = '/api/v1/reports';

/** What the reporter needs. */
export interface ReporterOptions {
  readonly site: string;
  readonly agent: string;
  readonly secret: string | Buffer;
  /** base URLs of the gslb-dns APIs (`http://host:port`), or full report URLs */
  readonly dns: readonly string[];
  /** heartbeat period */
  readonly intervalMs: number;
  /** the members to report now (called for every body) */
  readonly members: () => ReportMember[];
  /** per-request timeout; min(2000, max(200, intervalMs)) by default */
  readonly timeoutMs?: number;
  /** retry backoff; 100 ms doubling up to the heartbeat interval (at most 5 s) by default */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /** unix ms; the clock's wallNow by default (also used for X-GSLB-Timestamp, sentAt and seq) */
  readonly now?: () => number;
  /** heartbeat, backoff and request-timeout timers, latency; the system's by default */
  readonly clock?: Clock;
  readonly logger?: Pick<Logger, 'info' | 'warn'>;
}

/** Delivery to one DNS instance, for the status API and metrics. */
export interface DeliveryStatus {
  readonly url: string;
  readonly sent: number;
  readonly failed: number;
  readonly consecutiveFailures: number;
  readonly inFlight: boolean;
  readonly lastStatus?: number;
  readonly lastSeq?: number;
  readonly lastLatencyMs?: number;
  /** unix ms */
  readonly lastSuccessAt?: number;
  readonly lastError?: string;
  readonly lastErrorAt?: number;
  /** unix ms of the next scheduled attempt (heartbeat or retry) */
  readonly nextAttemptAt?: number;
}

/** A running reporter. */
export interface Reporter {
  /** starts sending: a first report to every instance now, then heartbeats (idempotent) */
  start(): void;
  /** the state changed: every idle instance gets a report now */
  notify(): void;
  /** stops timers and aborts requests in flight; resolves when they settled */
  stop(): Promise<void>;
  /**
   * stops like `stop()`, then sends `members` once to every instance in parallel, each bounded by
   * `timeoutMs`; resolves with how many instances accepted it
   */
  final(members: ReportMember[], timeoutMs: number): Promise<number>;
  /** per-instance delivery, in the order of `dns` */
  status(): DeliveryStatus[];
}

/** Strictly increasing sequence numbers from a unix-ms clock: max(last + 1, now x 1000). */
export function createSeqSource(now: () => number = Date.now): () => number {
  let last = 0;
  return () => {
    last = Math.max(last + 1, Math.floor(now() * 1000));
    return last;
  };
}

/** The report URL for a configured DNS entry. */
export function reportUrl(base: string): string {
  const trimmed = base.replace(/\/+$/, '');
  return trimmed.endsWith(REPORTS_PATH) ? trimmed : `${trimmed}${REPORTS_PATH}`;
}

interface Instance {
  readonly url: string;
  sent: number;
  failed: number;
  consecutiveFailures: number;
  lastStatus: number | undefined;
  lastSeq: number | undefined;
  lastLatencyMs: number | undefined;
  lastSuccessAt: number | undefined;
  lastError: string | undefined;
  lastErrorAt: number | undefined;
  nextAttemptAt: number | undefined;
  inFlight: Promise<void> | undefined;
  abort: AbortController | undefined;
  dirty: boolean;
  timer: TimerHandle | undefined;
  backingOff: boolean;
  /** refused `checked`/`reason` once (an older gslb-dns): they are left out of its bodies */
  legacy: boolean;
}

/** A member without the fields older gslb-dns instances refuse. */
function legacyMember(m: ReportMember): ReportMember {
  const { checked: _c, reason: _r, ...rest } = m;
  return rest;
}

const hasExtensions = (members: readonly ReportMember[]): boolean => members.some((m) => m.checked !== undefined || m.reason !== undefined);

/** Creates a reporter; nothing is sent before `start()`. */
export function createReporter(opts: ReporterOptions): Reporter {
  const clock = opts.clock ?? systemClock;
  const now = opts.now ?? clock.wallNow;
  // sub-millisecond when the clock is the system's, so two reports (or a restart) in one ms still order
  const nextSeq = createSeqSource(opts.now ?? (opts.clock ? opts.clock.wallNow : () => performance.timeOrigin + performance.now()));
  const timeoutMs = opts.timeoutMs ?? Math.min(2000, Math.max(200, opts.intervalMs));
  const initialMs = opts.backoff?.initialMs ?? 100;
  // by default never longer than a heartbeat: an instance that comes back (a restart) must hear
  // from us within one interval, well inside its staleAfter, not after a 5 s backoff step
  const maxMs = Math.max(initialMs, opts.backoff?.maxMs ?? Math.min(5000, opts.intervalMs));
  const instances: Instance[] = opts.dns.map((d) => ({
    url: reportUrl(d), sent: 0, failed: 0, consecutiveFailures: 0, lastStatus: undefined, lastSeq: undefined,
    lastLatencyMs: undefined, lastSuccessAt: undefined, lastError: undefined, lastErrorAt: undefined, nextAttemptAt: undefined, inFlight: undefined, abort: undefined,
    dirty: false, timer: undefined, backingOff: false, legacy: false,
  }));
  let started = false;
  let stopped = false;

  const body = (inst: Instance, members: ReportMember[]): { text: string; seq: number; extended: boolean } => {
    const seq = nextSeq();
    const extended = !inst.legacy && hasExtensions(members);
    const report: Report = { site: opts.site, agent: opts.agent, seq, sentAt: new Date(now()).toISOString(),
      members: inst.legacy ? members.map(legacyMember) : members };
    return { text: JSON.stringify(report), seq, extended };
  };

  const later = (inst: Instance, ms: number, backingOff: boolean): void => {
    clock.clearTimeout(inst.timer);
    if (stopped) return;
    inst.backingOff = backingOff;
    inst.nextAttemptAt = now() + ms;
    inst.timer = clock.setTimeout(() => {
      inst.timer = undefined;
      inst.backingOff = false;
      send(inst);
    }, ms);
  };

  // lets the DNS check the signature before parsing; a name a header cannot carry is left to its body scan
  const siteHeader: Record<string, string> = /^[\x21-\x7e]{1,128}$/.test(opts.site) ? { [SITE_HEADER]: opts.site } : {};
  const attempt = async (inst: Instance, members: ReportMember[] = opts.members(), ms = timeoutMs): Promise<boolean> => {
    const { text, seq, extended } = body(inst, members);
    const ts = String(Math.floor(now()));
    const abort = new AbortController();
    inst.abort = abort;
    const t = clock.setTimeout(() => abort.abort(), ms);
    const t0 = clock.now();
    try {
      const res = await fetch(inst.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...siteHeader, [TIMESTAMP_HEADER]: ts, [SIGNATURE_HEADER]: signReport(opts.secret, ts, text) },
        body: text,
        signal: abort.signal,
      });
      const answer = await res.text();
      inst.lastStatus = res.status;
      inst.lastLatencyMs = clock.now() - t0;
      if (res.ok) {
        inst.lastSeq = seq;
        return true;
      }
      if (res.status === 400 && extended && /schema/.test(answer)) {
        inst.legacy = true;
        opts.logger?.warn({ dns: inst.url, answer: answer.slice(0, 200) }, 'report refused with member checked/reason: an older gslb-dns; sending them no more');
      }
      throw new Error(`HTTP ${res.status}: ${answer.slice(0, 200)}`);
    } catch (err) {
      const aborted = abort.signal.aborted;
      inst.lastError = aborted && !stopped ? `timeout after ${ms} ms` : (err as Error).message;
      inst.lastErrorAt = now();
      return false;
    } finally {
      clock.clearTimeout(t);
      inst.abort = undefined;
    }
  };

  const send = (inst: Instance): void => {
    if (stopped) return;
    if (inst.inFlight) { inst.dirty = true; return; }
    clock.clearTimeout(inst.timer);
    inst.timer = undefined;
    inst.dirty = false;
    inst.nextAttemptAt = undefined;
    inst.inFlight = attempt(inst).then((ok) => {
      inst.inFlight = undefined;
      if (stopped) return;
      if (ok) {
        inst.sent++;
        if (inst.consecutiveFailures > 0) opts.logger?.info({ dns: inst.url, after: inst.consecutiveFailures }, 'report delivery recovered');
        inst.consecutiveFailures = 0;
        inst.lastSuccessAt = now();
        if (inst.dirty) send(inst);
        else later(inst, opts.intervalMs, false);
      } else {
        inst.failed++;
        inst.consecutiveFailures++;
        // one line when an instance starts failing, not one per retry
        if (inst.consecutiveFailures === 1) opts.logger?.warn({ dns: inst.url, err: inst.lastError }, 'report delivery failed; retrying with backoff');
        later(inst, Math.min(maxMs, initialMs * 2 ** Math.min(30, inst.consecutiveFailures - 1)), true);
      }
    });
  };

  return {
    start() {
      if (started || stopped) return;
      started = true;
      for (const inst of instances) send(inst);
    },
    notify() {
      if (!started || stopped) return;
      for (const inst of instances) {
        if (inst.backingOff) continue;
        send(inst);
      }
    },
    async stop() {
      stopped = true;
      const pending: Promise<void>[] = [];
      for (const inst of instances) {
        clock.clearTimeout(inst.timer);
        inst.timer = undefined;
        inst.abort?.abort();
        if (inst.inFlight) pending.push(inst.inFlight);
      }
      await Promise.allSettled(pending);
    },
    async final(members, ms) {
      await this.stop();
      const t0 = clock.now();
      const sent = await Promise.all(instances.map(async (inst) => {
        // stopped: an abort is our own timeout here
        let ok = await attempt(inst, members, ms);
        // an older instance refused the new fields: once more without them, if time is left
        const left = ms - (clock.now() - t0);
        if (!ok && inst.legacy && left > 50 && inst.lastStatus === 400) ok = await attempt(inst, members, left);
        if (ok) inst.sent++; else inst.failed++;
        return ok;
      }));
      const accepted = sent.filter(Boolean).length;
      opts.logger?.info({ accepted, dns: instances.length, ms: Math.round(clock.now() - t0) }, 'final report sent');
      return accepted;
    },
    status() {
      return instances.map((i) => ({
        url: i.url, sent: i.sent, failed: i.failed, consecutiveFailures: i.consecutiveFailures, inFlight: i.inFlight !== undefined,
        ...(i.lastStatus === undefined ? {} : { lastStatus: i.lastStatus }),
        ...(i.lastSeq === undefined ? {} : { lastSeq: i.lastSeq }),
        ...(i.lastLatencyMs === undefined ? {} : { lastLatencyMs: Math.round(i.lastLatencyMs * 100) / 100 }),
        ...(i.lastSuccessAt === undefined ? {} : { lastSuccessAt: i.lastSuccessAt }),
        ...(i.lastError === undefined ? {} : { lastError: i.lastError }),
        ...(i.lastErrorAt === undefined ? {} : { lastErrorAt: i.lastErrorAt }),
        ...(i.nextAttemptAt === undefined ? {} : { nextAttemptAt: i.nextAttemptAt }),
      }));
    },
  };
}

/**
 * The frame every checker runs in: one deadline, the caller's AbortSignal, latency measured, and
 * exceptions turned into failures, so that each checker only writes its probe.
 */
import type { Clock } from '../../../shared/clock.js';
import type { CheckResult } from './types.js';

/** What a probe returns; latency and the timeout are added by runProbe. */
export type ProbeOutcome = Omit<CheckResult, 'latencyMs'>;

/**
 * Runs `probe` with a signal that aborts after `timeoutMs` on `clock` or when `signal` aborts, and resolves
 * (never rejects) with the probe's outcome or a timeout/abort failure, whichever comes first.
 * The probe must release its sockets, timers and processes when its signal aborts.
 */
export function runProbe(clock: Clock, timeoutMs: number, signal: AbortSignal, probe: (signal: AbortSignal) => Promise<ProbeOutcome>): Promise<CheckResult> {
  const start = clock.now();
  const latency = (): number => Math.round((clock.now() - start) * 1000) / 1000;
  if (signal.aborted) return Promise.resolve({ ok: false, latencyMs: 0, error: 'aborted' });
  const inner = new AbortController();
  return new Promise<CheckResult>((resolve) => {
    let done = false;
    const finish = (r: ProbeOutcome, probeDone: boolean): void => {
      if (done) return;
      done = true;
      clock.clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      // a probe still running is told to stop and clean up; its late answer is ignored. A probe
      // that finished has cleaned up already: aborting it anyway costs a DOMException per check.
      if (!probeDone && !inner.signal.aborted) inner.abort();
      resolve({ ...r, latencyMs: latency() });
    };
    const onAbort = (): void => finish({ ok: false, error: 'aborted' }, false);
    const timer = clock.setTimeout(() => finish({ ok: false, error: `timeout after ${timeoutMs}ms` }, false), timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    let p: Promise<ProbeOutcome>;
    try {
      p = probe(inner.signal);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then((r) => finish(r, true), (err: unknown) => finish({ ok: false, error: describeError(err) }, false));
  });
}

/** A short, operator-facing reason for a thrown error or an 'error' event. */
export function describeError(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  switch (e?.code) {
    case 'ECONNREFUSED': return 'connection refused';
    case 'ECONNRESET': return 'connection reset';
    case 'EHOSTUNREACH': return 'host unreachable';
    case 'ENETUNREACH': return 'network unreachable';
    case 'EPIPE': return 'connection closed';
    default: break;
  }
  if (err instanceof Error) return e?.code !== undefined && !err.message.includes(e.code) ? `${e.code}: ${err.message}` : err.message;
  return String(err);
}

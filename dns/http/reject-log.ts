/**
 * Rate-limited logging of refused API requests. A flood of forgeries must not become a flood of
 * log lines: per interval, the first refusal of each kind and reason is logged at once, in full;
 * the rest are counted and summed up in one line when the interval ends (counts by reason and
 * the top sources). Every refusal is still counted in the metrics by the caller.
 *
 *   | event                                   | logged                                      |
 *   |-----------------------------------------|---------------------------------------------|
 *   | refusal, (msg, reason) new this interval | its own line, at once                       |
 *   | refusal, (msg, reason) seen this interval| nothing now; counted for the summary        |
 *   | interval ends, something was counted     | one summary line; the counts start again    |
 *   | interval ends, nothing counted           | nothing                                     |
 */
import type { Logger } from 'pino';
import type { Timers } from '../../shared/clock.js';
import { systemClock, unrefTimer } from '../../shared/clock.js';

/** The summary interval by default. */
export const REJECT_LOG_INTERVAL_MS = 10_000;
/** Sources named in a summary line. */
const TOP_SOURCES = 5;
/** Distinct sources tracked per interval; more are counted as `other`. */
const MAX_SOURCES = 1_000;

/** One refusal: the log message (the kind), a short reason key, the source address, and the fields of its line. */
export interface Rejection {
  readonly msg: string;
  readonly key: string;
  readonly source: string;
  readonly fields: Record<string, unknown>;
}

export interface RejectLog {
  reject(r: Rejection): void;
  /** logs the summary of what was held back so far (if anything) and starts a new interval */
  flush(): void;
  close(): void;
}

/** A limiter logging to `log` with `timers` (the system's by default). */
export function createRejectLog(log: Logger, opts: { timers?: Timers; intervalMs?: number } = {}): RejectLog {
  const timers = opts.timers ?? systemClock;
  const intervalMs = opts.intervalMs ?? REJECT_LOG_INTERVAL_MS;
  const seen = new Set<string>();
  let byReason = new Map<string, number>();
  let bySource = new Map<string, number>();
  let suppressed = 0;

  const flush = (): void => {
    seen.clear();
    if (suppressed === 0) return;
    const topSources = [...bySource].sort((a, b) => b[1] - a[1]).slice(0, TOP_SOURCES).map(([source, count]) => ({ source, count }));
    log.warn({ intervalMs, suppressed, byReason: Object.fromEntries(byReason), topSources }, `requests rejected: ${suppressed} more not logged one by one`);
    byReason = new Map();
    bySource = new Map();
    suppressed = 0;
  };
  const timer = unrefTimer(timers.setInterval(flush, intervalMs));

  return {
    reject(r) {
      const id = `${r.msg}\0${r.key}`;
      if (!seen.has(id)) {
        seen.add(id);
        log.warn({ ...r.fields, ip: r.source }, r.msg);
        return;
      }
      suppressed++;
      const k = `${r.msg}: ${r.key}`;
      byReason.set(k, (byReason.get(k) ?? 0) + 1);
      const src = bySource.has(r.source) || bySource.size < MAX_SOURCES ? r.source : 'other';
      bySource.set(src, (bySource.get(src) ?? 0) + 1);
    },
    flush,
    close() {
      timers.clearInterval(timer);
      flush();
    },
  };
}

import type { Clock, TimerHandle } from '../../shared/clock.js';
import { systemClock, unrefTimer } from '../../shared/clock.js';

/**
 * Who may hold a TCP slot, and for how long (RFC 7766 §6.2, RFC 9210 §4.4 on resource limits).
 *
 * A connection is in one of two states, each kept in a list ordered by the time it entered it
 * (insertion-ordered Maps, so every transition and every expiry is O(1)):
 *
 * | state   | entered when                                  | leaves when                  | expires                 |
 * |---------|-----------------------------------------------|------------------------------|-------------------------|
 * | idle    | accepted, or a message completed with no rest | a byte of a new message      | idleMs after entering   |
 * | reading | a byte of a message arrived (message started) | the message completes        | messageMs after entering |
 *
 * Bytes that trickle in while reading change nothing: the deadline is fixed at the first byte, so
 * a slowloris is dropped messageMs after it started whatever it sends. One periodic sweep on the
 * clock closes what expired (it only looks at the heads of the two lists).
 *
 * When the table is full, a new connection evicts the longest-idle connection; a message in
 * progress counts as idle since its first byte (a query arriving now is spared; slowloris
 * connections that fill the table are not). A source (IPv4 address, IPv6 /64) at its limit gets its new connection refused
 * before anything is evicted, so one source can never push others out beyond its own share.
 */
export interface TcpLimits {
  /** total connections held; a new one beyond this evicts the longest-idle */
  readonly maxConnections: number;
  /** connections per source (IPv4 address or IPv6 /64); a new one beyond this is refused */
  readonly maxPerSource: number;
  /** close a connection with no message in progress after this long */
  readonly idleMs: number;
  /** close a connection whose message has not fully arrived this long after its first byte */
  readonly messageMs: number;
}

/** Why a connection was closed by the table. */
export type TcpCloseReason = 'idle' | 'message-timeout' | 'evicted';

/** One admitted connection's handle in the table. */
export interface TcpSlot {
  /** bytes of a message are pending (the first call starts the message deadline) */
  reading(): void;
  /** every message received so far is complete (the idle time starts again) */
  idle(): void;
  /** the connection is gone; frees the slot (idempotent) */
  release(): void;
}

/** Counters a listener may export. */
export interface TcpLimitStats {
  readonly open: number;
  /** connections with a message in progress */
  readonly reading: number;
  readonly refusedPerSource: number;
  readonly evicted: number;
  readonly idleClosed: number;
  readonly messageTimeouts: number;
}

interface Entry {
  readonly source: string;
  readonly close: (reason: TcpCloseReason) => void;
  state: 'idle' | 'reading' | 'gone';
  /** when it entered its state (monotonic ms) */
  since: number;
}

/** The admission and expiry table of one TCP listener. */
export class TcpConnectionTable {
  private readonly idleList = new Map<Entry, true>();
  private readonly readingList = new Map<Entry, true>();
  private readonly perSource = new Map<string, number>();
  private sweepTimer: TimerHandle | undefined;
  private stats = { refusedPerSource: 0, evicted: 0, idleClosed: 0, messageTimeouts: 0 };

  /** how often expiry is checked: a deadline is enforced at most this much late */
  readonly sweepEveryMs: number;

  constructor(readonly limits: TcpLimits, private readonly clock: Clock = systemClock) {
    this.sweepEveryMs = Math.min(500, Math.max(10, Math.floor(Math.min(limits.idleMs, limits.messageMs) / 10)));
    this.sweepTimer = unrefTimer(clock.setInterval(() => this.sweep(), this.sweepEveryMs));
  }

  /** connections held */
  get size(): number { return this.idleList.size + this.readingList.size; }

  /** counters since the start */
  snapshot(): TcpLimitStats { return { open: this.size, reading: this.readingList.size, ...this.stats }; }

  /**
   * Admits a connection from `source` (a key of sourceKey), evicting the longest-idle one when
   * full; undefined means refused (the source is at its limit): close it at once.
   * `close` is called at most once, when the table drops the connection.
   */
  admit(source: string, close: (reason: TcpCloseReason) => void): TcpSlot | undefined {
    const held = this.perSource.get(source) ?? 0;
    if (held >= this.limits.maxPerSource) {
      this.stats.refusedPerSource++;
      return undefined;
    }
    while (this.size >= this.limits.maxConnections) {
      const victim = this.victim();
      if (!victim) break;
      this.stats.evicted++;
      this.drop(victim, 'evicted');
    }
    this.perSource.set(source, held + 1);
    const e: Entry = { source, close, state: 'idle', since: this.clock.now() };
    this.idleList.set(e, true);
    return {
      reading: () => {
        if (e.state !== 'idle') return;
        this.idleList.delete(e);
        e.state = 'reading';
        e.since = this.clock.now();
        this.readingList.set(e, true);
      },
      idle: () => {
        if (e.state === 'gone') return;
        (e.state === 'idle' ? this.idleList : this.readingList).delete(e);
        e.state = 'idle';
        e.since = this.clock.now();
        this.idleList.set(e, true);
      },
      release: () => this.remove(e),
    };
  }

  /** Closes what has expired; runs on the clock by itself, public for tests. */
  sweep(): void {
    const now = this.clock.now();
    for (let e = first(this.readingList); e && now - e.since >= this.limits.messageMs; e = first(this.readingList)) {
      this.stats.messageTimeouts++;
      this.drop(e, 'message-timeout');
    }
    for (let e = first(this.idleList); e && now - e.since >= this.limits.idleMs; e = first(this.idleList)) {
      this.stats.idleClosed++;
      this.drop(e, 'idle');
    }
  }

  /** Stops the sweep (the listener is closing). */
  stop(): void {
    this.clock.clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  /**
   * The longest-idle connection; a message in progress counts as idle since its first byte, so a
   * query that is arriving now is spared, while slowloris connections cannot pin the table.
   */
  private victim(): Entry | undefined {
    const i = first(this.idleList);
    const r = first(this.readingList);
    if (!i || !r) return i ?? r;
    return r.since < i.since ? r : i;
  }

  private drop(e: Entry, reason: TcpCloseReason): void {
    this.remove(e);
    e.close(reason);
  }

  private remove(e: Entry): void {
    if (e.state === 'gone') return;
    (e.state === 'idle' ? this.idleList : this.readingList).delete(e);
    e.state = 'gone';
    const n = (this.perSource.get(e.source) ?? 1) - 1;
    if (n <= 0) this.perSource.delete(e.source);
    else this.perSource.set(e.source, n);
  }
}

function first(list: Map<Entry, true>): Entry | undefined {
  for (const e of list.keys()) return e;
  return undefined;
}

/** The key a connection counts against: the IPv4 address, or the /64 of an IPv6 address. */
export function sourceKey(family: 4 | 6, bytes: Uint8Array): string {
  if (family === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  return Buffer.from(bytes.subarray(0, 8)).toString('hex') + '/64';
}

/**
 * The default total: 4096, but at most half the process's open-file soft limit (the rest is for
 * UDP, zone files, the HTTP API and the reload watcher), and at least 64.
 */
export function defaultMaxConnections(fdLimit: number | undefined): number {
  // unknown or unlimited: assume a common 2048 soft limit
  const soft = fdLimit ?? 2048;
  return Math.max(64, Math.min(4096, Math.floor(soft / 2)));
}

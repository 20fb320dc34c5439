/**
 * A clock that moves only when the test says so. Timers fire in due order (equal due times in the
 * order they were set), each at its own due time, so a timer set by a callback fires in the same
 * advance if it is due within it.
 *
 * `advance` is synchronous (for code whose callbacks do not await); `tick` lets the promise jobs a
 * callback started run (one macrotask turn) before the next timer fires, so async loops such as the
 * check scheduler and the reporter schedule their next timer in time.
 */
import type { Clock, TimerHandle } from '../../shared/clock.js';

interface Pending {
  readonly id: number;
  at: number;
  readonly fn: () => void;
  /** period of a setInterval timer */
  readonly every: number | undefined;
}

/** Resolves after one macrotask turn: every promise job queued before runs first. */
export const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A manual Clock: monotonic time starts at `start`, the wall clock at `wallStart`. */
export class ManualClock implements Clock {
  private t: number;
  private readonly wallOffset: number;
  private queue: Pending[] = [];
  private nextId = 1;

  constructor(start = 1000, wallStart = 1_700_000_000_000) {
    this.t = start;
    this.wallOffset = wallStart - start;
  }

  readonly now = (): number => this.t;
  readonly wallNow = (): number => this.t + this.wallOffset;

  readonly setTimeout = (fn: () => void, ms: number): TimerHandle => this.add(fn, ms, undefined);
  readonly setInterval = (fn: () => void, ms: number): TimerHandle => this.add(fn, ms, Math.max(1, ms));
  readonly clearTimeout = (h: TimerHandle | undefined): void => { this.queue = this.queue.filter((x) => x.id !== h); };
  readonly clearInterval = (h: TimerHandle | undefined): void => { this.queue = this.queue.filter((x) => x.id !== h); };

  /** timers waiting to fire */
  get pending(): number { return this.queue.length; }

  /** ms until the next timer is due (0 if one is due now), or undefined when none is pending */
  get nextIn(): number | undefined {
    const next = this.earliest();
    return next === undefined ? undefined : Math.max(0, next.at - this.t);
  }

  /** Moves time forward by `ms`, running every timer due on the way (synchronously). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (let guard = 0; guard < 1_000_000; guard++) {
      if (!this.fireNext(end)) break;
    }
    this.t = end;
  }

  /** Like advance, but lets promise jobs run after every timer and at the end. */
  async tick(ms: number): Promise<void> {
    const end = this.t + ms;
    await flush();
    for (let guard = 0; guard < 1_000_000; guard++) {
      if (!this.fireNext(end)) break;
      await flush();
    }
    this.t = end;
    await flush();
  }

  /** Moves to the next due timer (if any) and runs it and what is due with it; returns the ms moved. */
  async next(): Promise<number> {
    const n = this.nextIn;
    if (n === undefined) return 0;
    await this.tick(n);
    return n;
  }

  private add(fn: () => void, ms: number, every: number | undefined): number {
    const id = this.nextId++;
    this.queue.push({ id, at: this.t + Math.max(0, ms), fn, every });
    return id;
  }

  private earliest(): Pending | undefined {
    let best: Pending | undefined;
    for (const p of this.queue) if (best === undefined || p.at < best.at || (p.at === best.at && p.id < best.id)) best = p;
    return best;
  }

  private fireNext(end: number): boolean {
    const next = this.earliest();
    if (next === undefined || next.at > end) return false;
    this.t = Math.max(this.t, next.at);
    if (next.every === undefined) this.queue = this.queue.filter((x) => x !== next);
    else next.at += next.every;
    next.fn();
    return true;
  }
}

/**
 * When a change in the zones directory should cause a reload. fs.watch reports a file replaced by
 * rename ('rename': the new content is complete) and a file written in place ('change': it may be
 * half-written). Per file:
 *
 * | event                                  | action                                                   |
 * |----------------------------------------|----------------------------------------------------------|
 * | 'rename', file gone or non-empty       | reload now (atomic replace, or removal)                  |
 * | 'rename', file empty                   | treated as 'change' (a new file being written in place)  |
 * | 'change'                               | note size/mtime; (re)arm the settle timer                |
 * | settle timer, size/mtime as noted      | reload                                                   |
 * | settle timer, size/mtime moved on      | note them; re-arm                                        |
 * | another event before the timer fires   | re-arm (a pause shorter than the settle time is no end)  |
 *
 * Only `*.zone` and `*.gslb.yaml` count; an event without a file name settles like a 'change'.
 */
import type { Clock, TimerHandle } from '../shared/clock.js';

/** What the trigger needs to know of a file: undefined when it does not exist. */
export type FileStamp = { readonly size: number; readonly mtimeMs: number } | undefined;

export interface ReloadTriggerOptions {
  readonly clock: Clock;
  /** how long a file written in place must stay the same before it is loaded */
  readonly settleMs: number;
  readonly stat: (name: string) => Promise<FileStamp>;
  /** asks for a reload; `why` goes into the log */
  readonly reload: (why: string) => void;
}

export interface ReloadTrigger {
  /** feeds one fs.watch event (file name relative to the watched directory) */
  onEvent(event: string, name: string | null): void;
  /** files waiting to settle */
  readonly settling: number;
  stop(): void;
}

/** True for the files a reload reads. */
export function isReloadFile(name: string): boolean {
  return name.endsWith('.zone') || name.endsWith('.gslb.yaml');
}

const DIR_KEY = '';

/** Creates the per-file debounce of the table above. */
export function createReloadTrigger(opts: ReloadTriggerOptions): ReloadTrigger {
  const { clock, settleMs, stat, reload } = opts;
  const pending = new Map<string, { timer: TimerHandle; seen: FileStamp; gen: number }>();
  let stopped = false;
  let gen = 0;

  const same = (a: FileStamp, b: FileStamp): boolean =>
    a === undefined ? b === undefined : b !== undefined && a.size === b.size && a.mtimeMs === b.mtimeMs;

  const settle = (key: string): void => {
    const prev = pending.get(key);
    if (prev) clock.clearTimeout(prev.timer);
    const entry = { timer: undefined as TimerHandle, seen: undefined as FileStamp, gen: ++gen };
    entry.timer = clock.setTimeout(() => void check(key, entry.gen), settleMs);
    pending.set(key, entry);
    if (key !== DIR_KEY) void stat(key).then((s) => { if (pending.get(key)?.gen === entry.gen) entry.seen = s; });
  };

  const check = async (key: string, g: number): Promise<void> => {
    const entry = pending.get(key);
    if (stopped || entry?.gen !== g) return;
    if (key === DIR_KEY) { pending.delete(key); reload('file changed'); return; }
    const now = await stat(key);
    if (stopped || pending.get(key)?.gen !== g) return;
    if (same(now, entry.seen)) {
      pending.delete(key);
      reload(`${key} settled`);
      return;
    }
    // still being written: wait a full settle time from this look
    entry.seen = now;
    entry.timer = clock.setTimeout(() => void check(key, g), settleMs);
  };

  return {
    onEvent(event, name) {
      if (stopped) return;
      if (name === null) { settle(DIR_KEY); return; }
      if (!isReloadFile(name)) return;
      if (event !== 'rename') { settle(name); return; }
      void stat(name).then((s) => {
        if (stopped) return;
        if (s !== undefined && s.size === 0) { settle(name); return; }
        const prev = pending.get(name);
        if (prev) { clock.clearTimeout(prev.timer); pending.delete(name); }
        reload(s === undefined ? `${name} removed` : `${name} replaced`);
      });
    },
    get settling() { return pending.size; },
    stop() {
      stopped = true;
      for (const p of pending.values()) clock.clearTimeout(p.timer);
      pending.clear();
    },
  };
}

/**
 * Member health on disk: `<stateDir>/health.json`, so a restarted instance does not hand out
 * what it knew to be dead, and refuses reports it had already accepted (the last seq per agent).
 * Written atomically (atomic-file.ts) by a debounced saver: at most one write per second, and
 * never later than one second after a change.
 *
 * A corrupt or unreadable file is not fatal: health is a cache of what the agents will say again
 * within their next heartbeat, and refusing to start would turn a bad file into an outage. The
 * loader returns the fault (file, JSON path, what was expected) for the caller to log as a warning;
 * the instance then starts as without the file, and the next save replaces it.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Type } from '@sinclair/typebox';
import type { Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { writeFileAtomic } from './atomic-file.js';

export const HEALTH_FILE = 'health.json';

const Count = Type.Integer({ minimum: 0 });

export const StoredMemberSchema = Type.Object({
  address: Type.String({ minLength: 2, maxLength: 64 }),
  status: Type.Union([Type.Literal('up'), Type.Literal('down'), Type.Literal('drain')]),
  upStreak: Count,
  downStreak: Count,
  weightPct: Type.Integer({ minimum: 0, maximum: 100 }),
  connections: Count,
  capacity: Count,
  healthy: Count,
  total: Count,
  /** ms on the state's clock (wall clock in production) */
  lastObservedAt: Count,
}, { additionalProperties: false });

export const StoredSiteHealthSchema = Type.Object({
  /** wall-clock ms of the last valid report */
  lastValidAt: Count,
  /** the last accepted seq per agent */
  lastSeq: Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Count),
  members: Type.Array(StoredMemberSchema),
}, { additionalProperties: false });

/** The file's shape; `version` lets a later format be told apart. */
export const HealthFileSchema = Type.Object({
  version: Type.Literal(1),
  savedAt: Count,
  sites: Type.Record(Type.String({ minLength: 1, maxLength: 128 }), StoredSiteHealthSchema),
}, { additionalProperties: false });

export type StoredHealth = Static<typeof HealthFileSchema>;
export type StoredSiteHealth = Static<typeof StoredSiteHealthSchema>;

const checkFile = TypeCompiler.Compile(HealthFileSchema);

/** What loadHealth found: the saved health, nothing (no file), or why the file was not usable. */
export type HealthLoad =
  | { readonly kind: 'loaded'; readonly file: string; readonly health: StoredHealth }
  | { readonly kind: 'absent'; readonly file: string }
  | { readonly kind: 'corrupt'; readonly file: string; readonly error: string };

/** Reads `<stateDir>/health.json`; never throws for a bad file (see the module comment). */
export async function loadHealth(stateDir: string): Promise<HealthLoad> {
  const file = path.join(stateDir, HEALTH_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent', file };
    return { kind: 'corrupt', file, error: `${file}: cannot read: ${(err as Error).message}` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { kind: 'corrupt', file, error: `${file}: not valid JSON: ${(err as Error).message}` };
  }
  if (!checkFile.Check(value)) {
    const e = checkFile.Errors(value).First();
    return {
      kind: 'corrupt', file,
      error: `${file}: ${e ? `${e.path || '/'}: ${e.message}` : 'unexpected content'} (expected {"version":1,"savedAt":ms,"sites":{NAME:{lastValidAt,lastSeq,members}}})`,
    };
  }
  return { kind: 'loaded', file, health: value };
}

/** Replaces `<stateDir>/health.json` atomically. */
export async function saveHealth(stateDir: string, health: StoredHealth): Promise<void> {
  await writeFileAtomic(stateDir, HEALTH_FILE, `${JSON.stringify(health)}\n`);
}

/** Timers for the saver; real ones by default, a test's fake ones otherwise. */
export interface SaverTimers {
  now: () => number;
  setTimeout: (fn: () => void, ms: number) => unknown;
  clearTimeout: (handle: unknown) => void;
}

const REAL_TIMERS: SaverTimers = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** The debounced saver: `changed()` after each change; `flush()` saves now if anything is unsaved. */
export interface HealthSaver {
  changed(): void;
  flush(): Promise<void>;
  stop(): void;
}

/**
 * Calls `save` at most once per `intervalMs` and at most `intervalMs` after a `changed()`: the
 * first change after a quiet second is saved at once, later ones with the next slot. A failed save
 * goes to `onError` and is retried at the next slot. Saves never overlap.
 */
export function createHealthSaver(save: () => Promise<void>, onError: (err: unknown) => void,
  timers: SaverTimers = REAL_TIMERS, intervalMs = 1000): HealthSaver {
  let dirty = false;
  let running: Promise<void> | undefined;
  let timer: unknown;
  let lastStart = -Infinity;
  let stopped = false;

  const run = (): Promise<void> => {
    timer = undefined;
    if (!dirty || stopped) return Promise.resolve();
    dirty = false;
    lastStart = timers.now();
    running = save().catch((err: unknown) => { dirty = true; onError(err); }).finally(() => {
      running = undefined;
      if (dirty) schedule();
    });
    return running;
  };

  function schedule(): void {
    if (timer !== undefined || running !== undefined || stopped) return;
    const wait = Math.max(0, lastStart + intervalMs - timers.now());
    timer = timers.setTimeout(() => void run(), wait);
  }

  return {
    changed(): void {
      dirty = true;
      schedule();
    },
    async flush(): Promise<void> {
      if (running) await running;
      if (timer !== undefined) { timers.clearTimeout(timer); timer = undefined; }
      await run();
    },
    stop(): void {
      stopped = true;
      if (timer !== undefined) timers.clearTimeout(timer);
      timer = undefined;
    },
  };
}

/**
 * Operator overrides on disk: `<stateDir>/overrides.json`, written atomically (atomic-file.ts:
 * temp file, fsync, rename, fsync of the directory), so a restart keeps what operators drained or forced down; and
 * the OverrideStore interface with its per-instance implementation (this file, or memory only).
 * The shared implementation is overrides-etcd.ts, which keeps the same file as its cache.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Type } from '@sinclair/typebox';
import type { Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { writeFileAtomic } from './atomic-file.js';
import type { AdminAction, AdminOutcome, AdminRequest, GslbState, OverrideTarget } from './state.js';

export const OVERRIDES_FILE = 'overrides.json';
/** The longest reason an admin action may carry (characters). */
export const MAX_REASON_LENGTH = 500;

export const StoredOverrideSchema = Type.Object({
  action: Type.Union([Type.Literal('drain'), Type.Literal('force-down')]),
  site: Type.String({ minLength: 1, maxLength: 128 }),
  address: Type.Optional(Type.String({ minLength: 2, maxLength: 64 })),
  at: Type.String({ minLength: 1, maxLength: 64 }),
  actor: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  reason: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_REASON_LENGTH })),
}, { additionalProperties: false });

/** The file's shape; `version` lets a later format be told apart. */
export const OverridesFileSchema = Type.Object({
  version: Type.Literal(1),
  overrides: Type.Array(StoredOverrideSchema),
}, { additionalProperties: false });

export type StoredOverride = Static<typeof StoredOverrideSchema>;

const checkFile = TypeCompiler.Compile(OverridesFileSchema);

/** The overrides saved in `stateDir` ([] when there is no file); throws naming the file and the fault when it is corrupt. */
export async function loadOverrides(stateDir: string): Promise<StoredOverride[]> {
  const file = path.join(stateDir, OVERRIDES_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`${file}: cannot read: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON: ${(err as Error).message}`);
  }
  if (!checkFile.Check(value)) {
    const e = checkFile.Errors(value).First();
    throw new Error(`${file}: ${e ? `${e.path || '/'}: ${e.message}` : 'unexpected content'} (expected {"version":1,"overrides":[{action,site,address?,at,actor?,reason?}]})`);
  }
  return value.overrides;
}

/** Replaces `<stateDir>/overrides.json` atomically with `list`, creating the directory if needed. */
export async function saveOverrides(stateDir: string, list: readonly StoredOverride[]): Promise<void> {
  await writeFileAtomic(stateDir, OVERRIDES_FILE, `${JSON.stringify({ version: 1, overrides: list.map(normalize) }, null, 2)}\n`);
}

function normalize(o: StoredOverride): StoredOverride {
  return {
    action: o.action, site: o.site, ...(o.address !== undefined ? { address: o.address } : {}), at: o.at,
    ...(o.actor !== undefined ? { actor: o.actor } : {}), ...(o.reason !== undefined ? { reason: o.reason } : {}),
  };
}

/**
 * Hex sha256 of the canonical JSON of the overrides without their `at` times, actors and reasons: instances that
 * received the same operator actions agree on it whenever the actions happened.
 */
export function overridesDigest(list: readonly { action: string; site: string; address?: string }[]): string {
  const items = list
    .map((o) => canonicalJson({ action: o.action, site: o.site, ...(o.address !== undefined ? { address: o.address } : {}) }))
    .sort();
  return createHash('sha256').update(`[${items.join(',')}]`).digest('hex');
}

/** JSON with object keys sorted and no whitespace. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Where an instance's overrides come from and whether it can write them now. */
export interface OverrideStoreStatus {
  readonly kind: 'etcd' | 'file' | 'memory';
  /** false: writes are refused; the instance keeps the last known set */
  readonly reachable: boolean;
  readonly lastError: string | null;
  /** when `reachable` last changed (ISO time) */
  readonly since: string;
  /** where the set in force came from: the store itself, or (etcd down at start) the cache in --state-dir */
  readonly source: 'store' | 'cache';
  /** the etcd revision of the set in force, when shared */
  readonly revision?: number;
}

/** An admin write's outcome: the state's plan, or the store could not take it (nothing applied). */
export type StoreWriteResult = AdminOutcome | { readonly ok: false; readonly status: 500 | 503; readonly reason: string };

/**
 * Where operator overrides live. `start` puts the current set into the state before DNS
 * answers; `apply` is one write (decided by GslbState.planAdmin) that every instance using the
 * same store applies; the state is only ever changed by the store.
 */
export interface OverrideStore {
  readonly kind: OverrideStoreStatus['kind'];
  start(): Promise<void>;
  /** the initial set is in force */
  ready(): boolean;
  apply(action: AdminAction, target: OverrideTarget, req: AdminRequest): Promise<StoreWriteResult>;
  status(): OverrideStoreStatus;
  close(): Promise<void>;
}

/**
 * The per-instance store: overrides in memory, saved atomically to `<stateDir>/overrides.json`
 * after each change when `stateDir` is set (each instance on its own; `ctl` tells every one).
 */
export function createFileOverrideStore(opts: {
  state: GslbState;
  stateDir: string | undefined;
  onRestored?: (info: { restored: number; dropped: string[] }) => void;
  /** the caller restored the saved set already: start() loads nothing */
  started?: boolean;
}): OverrideStore {
  const { state, stateDir } = opts;
  const since = new Date().toISOString();
  let started = stateDir === undefined || opts.started === true;
  let lastError: string | null = null;
  // saves run one after another, each writing the list current when it runs, so the file ends
  // with the latest overrides; a failed save is retried by the next admin action
  let saving: Promise<void> = Promise.resolve();
  let unsaved = false;
  function persist(dir: string): Promise<void> {
    const p = saving.then(() => saveOverrides(dir, state.listOverrides()));
    saving = p.then(() => { unsaved = false; lastError = null; }, (err: Error) => { unsaved = true; lastError = err.message; });
    return p;
  }
  return {
    kind: stateDir === undefined ? 'memory' : 'file',
    async start() {
      if (stateDir !== undefined && !started) {
        const saved = await loadOverrides(stateDir);
        const dropped = state.restoreOverrides(saved);
        opts.onRestored?.({ restored: saved.length, dropped });
      }
      started = true;
    },
    ready: () => started,
    async apply(action, target, req) {
      const r = state.admin(action, target, req);
      if (!r.ok || stateDir === undefined || !(r.changed || unsaved)) return r;
      try {
        await persist(stateDir);
      } catch (err) {
        return { ok: false, status: 500, reason: `override applied in memory but not saved to ${stateDir}: ${(err as Error).message}` };
      }
      return r;
    },
    status: () => ({ kind: stateDir === undefined ? 'memory' : 'file', reachable: true, lastError, since, source: 'store' }),
    close: async () => { await saving; },
  };
}

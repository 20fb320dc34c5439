/**
 * Operator overrides on disk: `<stateDir>/overrides.json`, written atomically (atomic-file.ts: temp
 * file, fsync, rename, fsync of the directory), so a restart keeps what operators drained or forced down.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Type } from '@sinclair/typebox';
import type { Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { writeFileAtomic } from './atomic-file.js';

export const OVERRIDES_FILE = 'overrides.json';

export const StoredOverrideSchema = Type.Object({
  action: Type.Union([Type.Literal('drain'), Type.Literal('force-down')]),
  site: Type.String({ minLength: 1, maxLength: 128 }),
  address: Type.Optional(Type.String({ minLength: 2, maxLength: 64 })),
  at: Type.String({ minLength: 1, maxLength: 64 }),
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
    throw new Error(`${file}: ${e ? `${e.path || '/'}: ${e.message}` : 'unexpected content'} (expected {"version":1,"overrides":[{action,site,address?,at}]})`);
  }
  return value.overrides;
}

/** Replaces `<stateDir>/overrides.json` atomically with `list`, creating the directory if needed. */
export async function saveOverrides(stateDir: string, list: readonly StoredOverride[]): Promise<void> {
  await writeFileAtomic(stateDir, OVERRIDES_FILE, `${JSON.stringify({ version: 1, overrides: list.map(normalize) }, null, 2)}\n`);
}

function normalize(o: StoredOverride): StoredOverride {
  return { action: o.action, site: o.site, ...(o.address !== undefined ? { address: o.address } : {}), at: o.at };
}

/**
 * Hex sha256 of the canonical JSON of the overrides without their `at` times: instances that
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

import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { canonicalName } from '../wire/name.js';
import { checkZone } from './check.js';
import { parseZoneText } from './parse.js';
import { ZoneError } from './record.js';
import { buildZone, ZoneSet } from './zone.js';
import type { BuiltZone, Zone } from './zone.js';

/** Zone files are `<zone name>.zone`; the file name is the zone's origin. */
export const ZONE_SUFFIX = '.zone';

/** Loads and checks one zone file. Throws ZoneError (file:line: reason). */
export async function loadZoneFile(file: string, originHint?: string): Promise<BuiltZone> {
  const base = path.basename(file, ZONE_SUFFIX);
  let origin: string;
  try {
    origin = canonicalName(originHint ?? (base.endsWith('.') ? base : `${base}.`));
  } catch (err) {
    throw new ZoneError(file, 0, `file name does not name a zone: ${(err as Error).message}`);
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ZoneError(file, 0, `cannot read: ${(err as Error).message}`);
  }
  const records = checkZone(parseZoneText(text, { file, origin }), origin, file);
  return buildZone(origin, file, records);
}

/**
 * Zones loaded before, by file, with the file's identity (inode, size, mtime) when it was read:
 * a reload reuses the Zone of a file whose identity has not changed instead of parsing it again.
 */
export class ZoneFileCache {
  private readonly byFile = new Map<string, { readonly key: string; readonly zone: Zone }>();

  /** The zone loaded from `file` when its identity was `key`, if still the same. */
  get(file: string, key: string): Zone | undefined {
    const hit = this.byFile.get(file);
    return hit?.key === key ? hit.zone : undefined;
  }

  /** The zone last loaded from `file`. */
  zoneOf(file: string): Zone | undefined {
    return this.byFile.get(file)?.zone;
  }

  /** file -> zone, as now */
  snapshot(): Map<string, Zone> {
    return new Map([...this.byFile].map(([f, v]) => [f, v.zone]));
  }

  set(file: string, key: string, zone: Zone): void {
    this.byFile.set(file, { key, zone });
  }

  /** Forgets every file not in `files` (removed zones release their trees). */
  keepOnly(files: ReadonlySet<string>): void {
    for (const f of this.byFile.keys()) if (!files.has(f)) this.byFile.delete(f);
  }
}

/** A file's identity for the cache: changes when it is replaced (inode) or written (size, mtime). */
export async function fileKey(file: string): Promise<string | undefined> {
  try {
    const s = await stat(file, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch {
    return undefined;
  }
}

/** What loadZoneDir may reuse, and how it parses a file that changed. */
export interface ZoneDirLoadOptions {
  readonly cache?: ZoneFileCache;
  /** loads one file (default loadZoneFile); e.g. in a worker thread */
  readonly loadFile?: (file: string) => Promise<Zone>;
}

/**
 * Loads every `*.zone` file in `dir`. All files are tried so that one run reports every
 * broken zone; any error makes the whole load fail (the caller keeps what it had).
 * With a cache, a file whose identity is unchanged is not read again; the cache learns only from
 * a load that succeeds as a whole.
 */
export async function loadZoneDir(dir: string, opts: ZoneDirLoadOptions = {}): Promise<ZoneSet> {
  const { cache, loadFile = (f: string) => loadZoneFile(f) } = opts;
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith(ZONE_SUFFIX)).sort();
  } catch (err) {
    throw new ZoneLoadError([new ZoneError(dir, 0, `cannot read the zones directory: ${(err as Error).message}`)]);
  }
  if (names.length === 0) throw new ZoneLoadError([new ZoneError(dir, 0, `no *${ZONE_SUFFIX} files`)]);
  const zones: Zone[] = [];
  const errors: ZoneError[] = [];
  const learned: { file: string; key: string; zone: Zone }[] = [];
  for (const n of names) {
    const file = path.join(dir, n);
    try {
      // the identity is taken before reading: a write during the read changes it for next time
      const key = cache ? await fileKey(file) : undefined;
      const cached = key === undefined ? undefined : cache?.get(file, key);
      if (cached) { zones.push(cached); continue; }
      const zone = await loadFile(file);
      zones.push(zone);
      if (key !== undefined) learned.push({ file, key, zone });
    } catch (err) {
      errors.push(err instanceof ZoneError ? err : new ZoneError(path.join(dir, n), 0, String(err)));
    }
  }
  const seen = new Map<string, string>();
  for (const z of zones) {
    const prev = seen.get(z.origin);
    if (prev) errors.push(new ZoneError(z.file, 0, `zone ${z.origin} is also loaded from ${prev}`));
    seen.set(z.origin, z.file);
  }
  if (errors.length) throw new ZoneLoadError(errors);
  if (cache) {
    for (const l of learned) cache.set(l.file, l.key, l.zone);
    cache.keepOnly(new Set(names.map((n) => path.join(dir, n))));
  }
  return new ZoneSet(zones);
}

/** One or more zone files failed to load; `message` has one `file:line: reason` per line. */
export class ZoneLoadError extends Error {
  constructor(readonly errors: readonly ZoneError[]) {
    super(errors.map((e) => e.message).join('\n'));
    this.name = 'ZoneLoadError';
  }
}

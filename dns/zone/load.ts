import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { canonicalName } from '../wire/name.js';
import { checkZone } from './check.js';
import { parseZoneText } from './parse.js';
import { ZoneError } from './record.js';
import { buildZone, ZoneSet } from './zone.js';
import type { Zone } from './zone.js';

/** Zone files are `<zone name>.zone`; the file name is the zone's origin. */
export const ZONE_SUFFIX = '.zone';

/** Loads and checks one zone file. Throws ZoneError (file:line: reason). */
export async function loadZoneFile(file: string, originHint?: string): Promise<Zone> {
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
 * Loads every `*.zone` file in `dir`. All files are tried so that one run reports every
 * broken zone; any error makes the whole load fail (the caller keeps what it had).
 */
export async function loadZoneDir(dir: string): Promise<ZoneSet> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith(ZONE_SUFFIX)).sort();
  } catch (err) {
    throw new ZoneLoadError([new ZoneError(dir, 0, `cannot read the zones directory: ${(err as Error).message}`)]);
  }
  if (names.length === 0) throw new ZoneLoadError([new ZoneError(dir, 0, `no *${ZONE_SUFFIX} files`)]);
  const zones: Zone[] = [];
  const errors: ZoneError[] = [];
  for (const n of names) {
    try {
      zones.push(await loadZoneFile(path.join(dir, n)));
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
  return new ZoneSet(zones);
}

/** One or more zone files failed to load; `message` has one `file:line: reason` per line. */
export class ZoneLoadError extends Error {
  constructor(readonly errors: readonly ZoneError[]) {
    super(errors.map((e) => e.message).join('\n'));
    this.name = 'ZoneLoadError';
  }
}

import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { RRType } from '../wire/types.js';
import { canonicalName, parentName } from '../wire/name.js';
import type { ZoneSet } from '../zone/zone.js';
import { GslbConfigError, GslbLoadError, mergeGslbConfigs, parseGslbYaml } from './config.js';
import type { GslbFileConfig } from './config.js';
import type { GslbConfig } from './model.js';

export { GslbConfigError, GslbLoadError } from './config.js';

/** Pool definitions are `<zone name>.gslb.yaml`, beside the zone's `<zone name>.zone`. */
export const GSLB_SUFFIX = '.gslb.yaml';

/**
 * Loads every `*.gslb.yaml` in `dir` against the loaded zones; an empty config when there are
 * none. Every file is tried, and every problem of every file is reported in one GslbLoadError.
 */
export async function loadGslbDir(dir: string, zones: ZoneSet, env: NodeJS.ProcessEnv = process.env): Promise<GslbConfig> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith(GSLB_SUFFIX)).sort();
  } catch (err) {
    throw new GslbLoadError([new GslbConfigError(dir, '', `cannot read the zones directory: ${(err as Error).message}`)]);
  }
  const errors: GslbConfigError[] = [];
  const files: GslbFileConfig[] = [];
  for (const n of names) {
    const file = path.join(dir, n);
    const base = n.slice(0, -GSLB_SUFFIX.length);
    let origin: string;
    try {
      origin = canonicalName(base.endsWith('.') ? base : `${base}.`);
    } catch (err) {
      errors.push(new GslbConfigError(file, '', `file name does not name a zone: ${(err as Error).message}`));
      continue;
    }
    if (zones.find(origin)?.origin !== origin) {
      errors.push(new GslbConfigError(file, '', `zone ${origin} is not loaded (pools need the zone file ${base}.zone)`));
      continue;
    }
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      errors.push(new GslbConfigError(file, '', `cannot read: ${(err as Error).message}`));
      continue;
    }
    try {
      const f = parseGslbYaml(text, file, origin, env);
      files.push(f);
      errors.push(...checkAgainstZones(f, zones));
    } catch (err) {
      if (err instanceof GslbLoadError) errors.push(...err.errors);
      else errors.push(new GslbConfigError(file, '', String(err)));
    }
  }
  let config: GslbConfig | undefined;
  try {
    config = mergeGslbConfigs(files);
  } catch (err) {
    if (err instanceof GslbLoadError) errors.push(...err.errors);
    else throw err;
  }
  if (errors.length || !config) throw new GslbLoadError(errors);
  return config;
}

/** A GSLB name answers A/AAAA itself: the zone data must not answer or redirect it first. */
function checkAgainstZones(f: GslbFileConfig, zones: ZoneSet): GslbConfigError[] {
  const errors: GslbConfigError[] = [];
  for (const pool of f.pools.values()) {
    pool.names.forEach((name, i) => {
      const at = `pools.${pool.name}.names[${i}]`;
      const fail = (reason: string): void => {
        errors.push(new GslbConfigError(f.file, at, reason, f.lineOf(at)));
      };
      const zone = zones.find(name);
      if (!zone) return;
      if (zone.origin !== pool.zone) {
        // a child zone served here takes the name before its parent is consulted
        fail(`${name} is in zone ${zone.origin} (${zone.file}), not ${pool.zone}`);
        return;
      }
      for (let p: string | undefined = name; p !== undefined && p !== zone.origin; p = parentName(p)) {
        const node = zone.nodes.get(p);
        if (!node) continue;
        if (node.rrset(RRType.NS)) {
          fail(`${name} is at or below the delegation ${p} in ${zone.file}; the child zone answers for it`);
          return;
        }
        if (p !== name && node.rrset(RRType.DNAME)) {
          fail(`${name} is below the DNAME at ${p} in ${zone.file}; the DNAME redirects it`);
          return;
        }
      }
      const node = zone.nodes.get(name);
      if (!node) return;
      if (node.rrset(RRType.CNAME)) {
        fail(`${name} has a CNAME record in ${zone.file}; a GSLB name takes its addresses from the pool`);
      } else if (node.rrset(RRType.A) || node.rrset(RRType.AAAA)) {
        fail(`${name} has A/AAAA records in ${zone.file}; a GSLB name takes its addresses from the pool`);
      }
    });
  }
  return errors;
}

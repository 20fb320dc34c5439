import type { GslbConfig } from './gslb/model.js';
import { loadGslbDir } from './gslb/load.js';
import { loadZoneDir } from './zone/load.js';
import type { ZoneDirLoadOptions } from './zone/load.js';
import { withNames, ZoneSet } from './zone/zone.js';

/** Everything served from a zones directory: zone data and the GSLB pools beside it. */
export interface Serving {
  readonly zones: ZoneSet;
  readonly gslb: GslbConfig;
}

/**
 * Loads `*.zone` and `*.gslb.yaml` from `dir`; GSLB names become (empty) nodes of their zone so
 * that other types at them, and the names above them, answer NODATA rather than NXDOMAIN.
 * Throws ZoneLoadError / GslbLoadError with one `file:line: reason` per problem. With `opts.cache`,
 * zone files that did not change since the last successful load keep their trees.
 */
export async function loadServing(dir: string, env: NodeJS.ProcessEnv = process.env, opts: ZoneDirLoadOptions = {}): Promise<Serving> {
  const zones = await loadZoneDir(dir, opts);
  const gslb = await loadGslbDir(dir, zones, env);
  if (gslb.pools.size === 0) return { zones, gslb };
  const names = [...gslb.byName.keys()];
  return { zones: new ZoneSet(zones.zones.map((z) => withNames(z, names))), gslb };
}

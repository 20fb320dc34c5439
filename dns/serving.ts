import path from 'node:path';
import { KEYS_SUBDIR, KeyLoadError, loadKeysDir } from './dnssec/keys.js';
import { Signing, apexKeySets } from './dnssec/signer.js';
import type { GslbConfig } from './gslb/model.js';
import { loadGslbDir } from './gslb/load.js';
import { RRType, typeName } from './wire/types.js';
import { loadZoneDir } from './zone/load.js';
import type { ZoneDirLoadOptions } from './zone/load.js';
import { ZoneError } from './zone/record.js';
import { withApexSets, withNames, ZoneSet } from './zone/zone.js';
import type { Zone } from './zone/zone.js';

/** Everything served from a zones directory: zone data, the GSLB pools and the DNSSEC keys beside it. */
export interface Serving {
  readonly zones: ZoneSet;
  readonly gslb: GslbConfig;
  /** the keys of `keys/` and the signature cache; `signing.active` is false when no zone has a key */
  readonly signing: Signing;
}

/** How loadServing reads files and the time. */
export interface ServingLoadOptions extends ZoneDirLoadOptions {
  /** unix ms (signature times, key timing metadata); default Date.now */
  readonly wallNow?: () => number;
}

/**
 * Loads `*.zone`, `*.gslb.yaml` and `keys/K*.key` from `dir`; GSLB names become (empty) nodes of
 * their zone so that other types at them, and the names above them, answer NODATA rather than
 * NXDOMAIN; a zone with a signing key gets its DNSKEY, CDS and CDNSKEY at the apex.
 * Throws ZoneLoadError / GslbLoadError / KeyLoadError with one `file:line: reason` per problem. With
 * `opts.cache`, zone files that did not change since the last successful load keep their trees.
 */
export async function loadServing(dir: string, env: NodeJS.ProcessEnv = process.env, opts: ServingLoadOptions = {}): Promise<Serving> {
  const loaded = await loadZoneDir(dir, opts);
  const signing = new Signing(await loadKeysDir(dir), opts.wallNow ?? Date.now);
  for (const origin of signing.origins()) {
    if (!loaded.zones.some((z) => z.origin === origin)) {
      throw new KeyLoadError([new ZoneError(path.join(dir, KEYS_SUBDIR), 0, `keys for ${origin}, a zone not served from ${dir}`)]);
    }
  }
  const zones = signing.active ? new ZoneSet(loaded.zones.map((z) => withKeys(z, signing))) : loaded;
  const gslb = await loadGslbDir(dir, zones, env);
  if (gslb.pools.size === 0) return { zones, gslb, signing };
  const names = [...gslb.byName.keys()];
  return { zones: new ZoneSet(zones.zones.map((z) => withNames(z, names))), gslb, signing };
}

/** The zone with its DNSKEY, CDS and CDNSKEY when it has keys; keys of a zone not served are an error. */
function withKeys(zone: Zone, signing: Signing): Zone {
  const keys = signing.keysOf(zone.origin);
  if (keys === undefined) return zone;
  const apex = zone.nodes.get(zone.origin);
  for (const t of [RRType.DNSKEY, RRType.CDS, RRType.CDNSKEY]) {
    if (apex?.rrset(t)) throw new ZoneError(zone.file, 0, `the zone has ${typeName(t)} records, and keys/ has keys for it: online signing publishes its own`);
  }
  return withApexSets(zone, apexKeySets(keys, zone.soa.ttl));
}

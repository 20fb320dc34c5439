/**
 * Online signing state: the keys of each signed zone and a bounded cache of signatures by RRset
 * (owner, type, TTL, RDATA set, labels; the keys are fixed for one Signing), so that steady state
 * costs a map lookup, not a signature. Rebuilt on every zones-directory load.
 */
import { LRUCache } from 'lru-cache';
import { nameToWire } from '../wire/name.js';
import { RRType } from '../wire/types.js';
import type { WireRRset } from '../wire/response.js';
import { FLAGS_KSK, dsRdata, isActive, isPublished } from './keys.js';
import type { DnssecKey } from './keys.js';
import { rrsigLabels, signRRset } from './sign.js';
import type { SignInput } from './sign.js';

/** Validity and cache sizes of online signatures. */
export interface SigningOptions {
  /** how far before now a signature's inception is set (validators with a slow clock); default 1 h */
  readonly backdateSeconds: number;
  /** a new signature's expiration, from now; default 14 days */
  readonly validitySeconds: number;
  /** up to this much is added at random to each expiration, so that signatures do not all expire at once; default 1 day */
  readonly jitterSeconds: number;
  /** a signature is made anew once less than this is left of it; default 7 days */
  readonly refreshSeconds: number;
  /** bytes of signatures over zone data and pool answers; default 64 MiB */
  readonly cacheBytes: number;
  /** bytes of signatures over per-question NSEC records (their own budget: random names do not evict zone data); default 8 MiB */
  readonly deniedCacheBytes: number;
}

export const DEFAULT_SIGNING_OPTIONS: SigningOptions = {
  backdateSeconds: 3600, validitySeconds: 14 * 86400, jitterSeconds: 86400, refreshSeconds: 7 * 86400,
  cacheBytes: 64 * 1024 * 1024, deniedCacheBytes: 8 * 1024 * 1024,
};

/** The keys of one zone in their roles at load time. */
export interface ZoneKeys {
  readonly origin: string;
  /** the signer name field: the zone, lowercase wire */
  readonly signerWire: Uint8Array;
  /** sign DNSKEY, CDS and CDNSKEY */
  readonly ksks: readonly DnssecKey[];
  /** sign everything else (the KSKs, when the zone has CSKs only) */
  readonly zsks: readonly DnssecKey[];
  /** in the DNSKEY RRset: signing and pre-published keys */
  readonly published: readonly DnssecKey[];
}

/** The roles of a zone's keys at `now` (unix seconds); undefined when none signs. */
export function zoneKeys(origin: string, keys: readonly DnssecKey[], now: number): ZoneKeys | undefined {
  const published = keys.filter((k) => isPublished(k, now));
  const active = published.filter((k) => isActive(k, now));
  const ksks = active.filter((k) => k.flags === FLAGS_KSK);
  const zsks = active.filter((k) => k.flags !== FLAGS_KSK);
  if (active.length === 0) return undefined;
  return {
    origin, signerWire: nameToWire(origin), published,
    ksks: ksks.length ? ksks : zsks, zsks: zsks.length ? zsks : ksks,
  };
}

/** The RRsets DNSSEC adds at a signed zone's apex: DNSKEY, and CDS / CDNSKEY of its SEP keys (RFC 7344). */
export function apexKeySets(zk: ZoneKeys, ttl: number): WireRRset[] {
  const ownerWire = zk.signerWire;
  const sep = zk.published.filter((k) => k.flags === FLAGS_KSK);
  return [
    { ownerWire, type: RRType.DNSKEY, ttl, rdatas: zk.published.map((k) => k.dnskey) },
    { ownerWire, type: RRType.CDS, ttl, rdatas: sep.map((k) => dsRdata(zk.origin, k.dnskey)) },
    { ownerWire, type: RRType.CDNSKEY, ttl, rdatas: sep.map((k) => k.dnskey) },
  ];
}

interface CachedSignatures {
  readonly rdatas: readonly Uint8Array[];
  /** unix seconds from which they are made anew */
  readonly refresh: number;
}

/** Hits and misses of the signature cache, and its size. */
export interface SignatureCacheStats {
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
}

/** The signing state of a zones directory: keys by zone, and the signature cache. */
export class Signing {
  private readonly zones = new Map<string, ZoneKeys>();
  /** unix ms of the next Publish/Activate/Inactive/Delete of any key after the load, if any */
  readonly nextKeyEvent: number | undefined;
  private readonly cache: LRUCache<string, CachedSignatures>;
  private readonly denied: LRUCache<string, CachedSignatures>;
  private hits = 0;
  private misses = 0;

  /** `now`: unix milliseconds (the wall clock: signatures carry absolute times). */
  constructor(keys: ReadonlyMap<string, readonly DnssecKey[]>, readonly now: () => number,
    private readonly opts: SigningOptions = DEFAULT_SIGNING_OPTIONS, private readonly random: () => number = Math.random) {
    const t = Math.floor(now() / 1000);
    let next = Infinity;
    for (const [origin, list] of keys) {
      const zk = zoneKeys(origin, list, t);
      if (zk) this.zones.set(origin, zk);
      for (const k of list) for (const e of [k.publish, k.activate, k.inactive, k.delete]) if (e !== undefined && e > t && e < next) next = e;
    }
    this.nextKeyEvent = next === Infinity ? undefined : next * 1000;
    const sizeCalculation = (v: CachedSignatures, k: string): number => k.length + v.rdatas.reduce((n, r) => n + r.length + 48, 64);
    this.cache = new LRUCache({ maxSize: opts.cacheBytes, sizeCalculation });
    this.denied = new LRUCache({ maxSize: opts.deniedCacheBytes, sizeCalculation });
  }

  /** Whether any zone is signed. */
  get active(): boolean {
    return this.zones.size > 0;
  }

  /** The zones that have signing keys. */
  origins(): string[] {
    return [...this.zones.keys()];
  }

  /** The keys of a signed zone. */
  keysOf(origin: string): ZoneKeys | undefined {
    return this.zones.get(origin);
  }

  stats(): SignatureCacheStats {
    return { hits: this.hits, misses: this.misses, entries: this.cache.size + this.denied.size, bytes: this.cache.calculatedSize + this.denied.calculatedSize };
  }

  /**
   * The RRSIG RRset over `set`, from the cache while fresh. `until` is lowered to when the
   * signatures are due for refresh (a reply built with them may be kept until then). `denial`
   * puts per-question NSEC signatures in their own budget.
   */
  rrsig(zk: ZoneKeys, set: SignInput, until: { value: number }, labels = rrsigLabels(set.ownerWire), denial = false): WireRRset {
    const apexKey = set.type === RRType.DNSKEY || set.type === RRType.CDS || set.type === RRType.CDNSKEY;
    const cache = denial ? this.denied : this.cache;
    const key = cacheKey(zk.origin, set, labels);
    const now = Math.floor(this.now() / 1000);
    let hit = cache.get(key);
    if (hit !== undefined && hit.refresh > now) {
      this.hits++;
    } else {
      this.misses++;
      const o = this.opts;
      const expiration = now + o.validitySeconds + Math.floor(this.random() * o.jitterSeconds);
      const validity = { inception: now - o.backdateSeconds, expiration };
      const rdatas = (apexKey ? zk.ksks : zk.zsks).map((k) => signRRset(set, k, zk.signerWire, validity, labels));
      hit = { rdatas, refresh: expiration - o.refreshSeconds };
      cache.set(key, hit);
    }
    if (hit.refresh * 1000 < until.value) until.value = hit.refresh * 1000;
    return { ownerWire: set.ownerWire, type: RRType.RRSIG, ttl: set.ttl, rdatas: hit.rdatas };
  }
}

/** The cache key of an RRset: zone, type, TTL, labels, lowercased owner, then each RDATA (length-prefixed). */
function cacheKey(origin: string, set: SignInput, labels: number): string {
  let s = `${origin}|${set.type}|${set.ttl}|${labels}|`;
  const o = set.ownerWire;
  for (let i = 0; i < o.length; i++) { const c = o[i]!; s += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c | 0x20 : c); }
  for (const rd of set.rdatas) {
    s += String.fromCharCode(rd.length >> 8, rd.length & 0xff);
    for (let i = 0; i < rd.length; i++) s += String.fromCharCode(rd[i]!);
  }
  return s;
}

/**
 * Response-rate limiting (RRL) for UDP, in the model of BIND, Knot and NSD: a spoofed-source
 * flood of identical queries must not turn this server into an amplifier, while a real client,
 * whose source is not spoofed, can always get its answer over TCP.
 *
 * Responses are counted per (client prefix, response class): the client's /24 (IPv4) or /56
 * (IPv6) and the kind of reply with its name (see `responseClass`). Each such key has a token
 * bucket that fills at `rate` per second up to `rate` (one second's worth, the burst). A response
 * with a token is sent; one without is dropped, except every `slip`-th, which is replaced by an
 * empty truncated reply (TC=1) so that a real client retries over TCP.
 *
 * The keys live in a fixed table of `tableSize` slots (typed arrays, no per-query allocation): a
 * key hashes to a group of WAYS slots and, when it is not there, takes a free slot or the one
 * used longest ago in the group, with a full bucket. A flood from spoofed sources therefore costs
 * no memory; it can only evict keys that have been quiet longest. Time is the clock's monotonic
 * milliseconds, read by tick() (once per batch of datagrams).
 *
 *   state of a key       response          result
 *   tokens >= 1          any               Send, tokens - 1
 *   tokens < 1           slip-th over      Slip (TC=1, no records)
 *   tokens < 1           otherwise         Drop
 */
import type { Clock } from '../../shared/clock.js';
import { fmix32 } from '../../shared/hash.js';
import { prefixContains } from '../gslb/prefix.js';
import type { Prefix } from '../gslb/model.js';

/** What to do with a response. */
export const RrlAction = { Send: 0, Slip: 1, Drop: 2 } as const;
export type RrlAction = (typeof RrlAction)[keyof typeof RrlAction];

/**
 * The kinds of response that are counted apart, as in BIND and Knot: a positive answer per
 * question name and type, NODATA per question name and type (both per wildcard and type when
 * synthesized from a wildcard), NXDOMAIN and referrals per zone (so a random-subdomain flood is
 * one class, with or without a wildcard), and every error (REFUSED, FORMERR, SERVFAIL,
 * NOTIMP, BADVERS, NOTAUTH) as one class whatever the name.
 */
export const ResponseKind = { Positive: 1, NoData: 2, NxDomain: 3, Referral: 4, Error: 5 } as const;
export type ResponseKind = (typeof ResponseKind)[keyof typeof ResponseKind];

/** A response class as one int: the kind in the low 3 bits, the name hash above. */
export function responseClass(kind: ResponseKind, nameHash: number): number {
  return ((nameHash << 3) | kind) | 0;
}

/** The kind of a response class. */
export function responseKind(cls: number): ResponseKind {
  return (cls & 7) as ResponseKind;
}

/** The class of every error reply. */
export const ERROR_CLASS = responseClass(ResponseKind.Error, 0);

/** FNV-1a of a (canonical, lowercase) name: the name part of an NXDOMAIN or referral class. */
export function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Settings of the limiter. */
export interface RrlOptions {
  /** responses per second per key, and the burst; 0 turns RRL off */
  readonly rate: number;
  /** every slip-th response over the rate is sent truncated (0: none, 1: all) */
  readonly slip: number;
  /** IPv4 clients are grouped by this prefix length (0-32) */
  readonly ipv4Prefix: number;
  /** IPv6 clients are grouped by this prefix length (0-64) */
  readonly ipv6Prefix: number;
  /** sources never limited */
  readonly exempt: readonly Prefix[];
  /** slots in the table (rounded up to a power of two, at least WAYS) */
  readonly tableSize: number;
}

/** NSD's defaults: 200 responses per second per /24 or /56 and class, every second one slipped. */
export const DEFAULT_RRL_OPTIONS: RrlOptions = {
  rate: 200, slip: 2, ipv4Prefix: 24, ipv6Prefix: 56, exempt: [], tableSize: 1 << 16,
};

/** Largest --rrl-table-size: 2^22 slots of 41 bytes, about 170 MB. */
export const MAX_RRL_TABLE_SIZE = 1 << 22;

const WAYS = 4;

/** Counts of the limiter's decisions (for metrics and tests). */
export interface RrlStats {
  dropped: number;
  slipped: number;
}

/**
 * A bounded table of token buckets keyed by (client prefix, response class). Not thread-safe;
 * one per process (the UDP listeners of a server share it).
 */
export class ResponseRateLimiter {
  readonly stats: RrlStats = { dropped: 0, slipped: 0 };
  private readonly mask: number;
  /** the key: family (0 = free slot), prefix words, class */
  private readonly fam: Uint8Array;
  private readonly k0: Int32Array;
  private readonly k1: Int32Array;
  private readonly cls: Int32Array;
  private readonly tokens: Float64Array;
  /** when the bucket was last filled (ms) */
  private readonly stamp: Float64Array;
  /** responses over the rate since the last slip */
  private readonly over: Uint32Array;
  /** when the slot was last used, in checks (exact LRU order, unlike times that tie) */
  private readonly lastUse: Float64Array;
  private uses = 0;
  private readonly v4mask: number;
  private readonly v6mask0: number;
  private readonly v6mask1: number;
  private readonly perMs: number;
  private readonly exempt: readonly Prefix[];
  /** the clock's time at the last tick() */
  private now: number;

  constructor(readonly options: RrlOptions, private readonly clock: Pick<Clock, 'now'>) {
    let size = WAYS;
    while (size < options.tableSize && size < MAX_RRL_TABLE_SIZE) size *= 2;
    this.mask = size - 1;
    this.fam = new Uint8Array(size);
    this.k0 = new Int32Array(size);
    this.k1 = new Int32Array(size);
    this.cls = new Int32Array(size);
    this.tokens = new Float64Array(size);
    this.stamp = new Float64Array(size);
    this.over = new Uint32Array(size);
    this.lastUse = new Float64Array(size);
    this.v4mask = bitMask(options.ipv4Prefix);
    this.v6mask0 = bitMask(options.ipv6Prefix);
    this.v6mask1 = bitMask(options.ipv6Prefix - 32);
    this.perMs = options.rate / 1000;
    this.exempt = options.exempt;
    this.now = clock.now();
  }

  /**
   * Reads the clock; checks until the next tick count at that time. The UDP transport calls it
   * once per batch of datagrams, so the clock (tens of ns a read) is not read per reply.
   */
  readonly tick = (): void => {
    this.now = this.clock.now();
  };

  /** Slots in the table (its bound). */
  get size(): number {
    return this.mask + 1;
  }

  /** Slots in use. */
  used(): number {
    let n = 0;
    for (let i = 0; i <= this.mask; i++) if (this.fam[i] !== 0) n++;
    return n;
  }

  /**
   * Decides on one UDP response of class `cls` to a client at `address` (4 or 16 bytes) at the
   * time of the last tick(), and counts it. Allocation-free.
   */
  check(family: 4 | 6, address: Uint8Array, cls: number): RrlAction {
    for (let i = 0; i < this.exempt.length; i++) {
      if (prefixContains(this.exempt[i]!, family, address, family === 4 ? 32 : 128)) return RrlAction.Send;
    }
    let k0: number;
    let k1: number;
    if (family === 4) {
      k0 = word(address, 0) & this.v4mask;
      k1 = 0;
    } else {
      k0 = word(address, 0) & this.v6mask0;
      k1 = word(address, 4) & this.v6mask1;
    }
    const now = this.now;
    const slot = this.find(family, k0, k1, cls, now);
    this.lastUse[slot] = ++this.uses;
    let t = this.tokens[slot]! + (now - this.stamp[slot]!) * this.perMs;
    if (t > this.options.rate) t = this.options.rate;
    this.stamp[slot] = now;
    if (t >= 1) {
      this.tokens[slot] = t - 1;
      return RrlAction.Send;
    }
    this.tokens[slot] = t;
    const slip = this.options.slip;
    if (slip > 0 && ++this.over[slot]! >= slip) {
      this.over[slot] = 0;
      this.stats.slipped++;
      return RrlAction.Slip;
    }
    this.stats.dropped++;
    return RrlAction.Drop;
  }

  /** The slot of the key; a new key takes a free slot of its group or the stalest one. */
  private find(family: 4 | 6, k0: number, k1: number, cls: number, now: number): number {
    const h = fmix32((fmix32(k0 ^ family) + Math.imul(k1, 0x9e3779b1) + Math.imul(cls, 0x85ebca6b)) | 0);
    const base = h & this.mask & ~(WAYS - 1);
    let victim = base;
    for (let i = base; i < base + WAYS; i++) {
      const f = this.fam[i];
      if (f === 0) { victim = i; break; }
      if (f === family && this.k0[i] === k0 && this.k1[i] === k1 && this.cls[i] === cls) return i;
      if (this.lastUse[i]! < this.lastUse[victim]!) victim = i;
    }
    this.fam[victim] = family;
    this.k0[victim] = k0;
    this.k1[victim] = k1;
    this.cls[victim] = cls;
    this.tokens[victim] = this.options.rate;
    this.stamp[victim] = now;
    this.over[victim] = 0;
    return victim;
  }
}

/** The top `bits` bits of an int32 set (bits <= 0: none, >= 32: all). */
function bitMask(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return -1;
  return ~((1 << (32 - bits)) - 1);
}

function word(b: Uint8Array, i: number): number {
  return (b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!;
}

/** Creates the limiter, or undefined when `rate` is 0 (RRL off). */
export function createResponseRateLimiter(options: RrlOptions, clock: Pick<Clock, 'now'>): ResponseRateLimiter | undefined {
  return options.rate > 0 ? new ResponseRateLimiter(options, clock) : undefined;
}

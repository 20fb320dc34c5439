import { LRUCache } from 'lru-cache';
import { failureReply, poolReply, poolStartupReply, questionReply, replyFor, statusReply } from '../answer.js';
import type { GslbConfig, PoolConfig } from '../gslb/model.js';
import { Mode, PoolSelector } from '../gslb/selector.js';
import type { HealthView } from '../gslb/state.js';
import { readUncompressedName } from '../wire/name.js';
import { ParsedQuery, QueryStatus, parseQuery } from '../wire/query.js';
import { encodeReply, optSize, writeOpt } from '../wire/response.js';
import type { OptOut, Reply, WireRRset } from '../wire/response.js';
import { RRType } from '../wire/types.js';
import { MessageWriter } from '../wire/writer.js';
import { lookup } from '../zone/lookup.js';
import type { LookupResult, OutRRset } from '../zone/lookup.js';
import type { Zone, ZoneSet } from '../zone/zone.js';

/** Tunables of the query engine. */
export interface EngineOptions {
  /** largest UDP reply we send, whatever the client offers (RFC 9715 / DNS flag day 2020: 1232) */
  readonly udpCap: number;
  /** precompiled replies of names that exist (the positive budget); 0 turns the fast path off (tests compare both paths) */
  readonly cacheEntries: number;
  /** precompiled negative and random-name replies (the negative budget, see CacheBudget); 0: none; default 10,000 */
  readonly cacheNegativeEntries?: number;
  /** the negative budget in bytes: reply bytes plus NEGATIVE_ENTRY_OVERHEAD per entry; default 4 MiB */
  readonly cacheNegativeBytes?: number;
  /** 'single': one budget for every reply, all admitted at once (the behaviour before the split; benchmarks compare) */
  readonly cacheBudgets?: 'split' | 'single';
}

export const DEFAULT_ENGINE_OPTIONS = {
  udpCap: 1232, cacheEntries: 100_000, cacheNegativeEntries: 10_000, cacheNegativeBytes: 4 * 1024 * 1024,
} as const satisfies EngineOptions;

/** What a negative-budget entry is charged beyond its reply bytes: the heap cost of the entry, its array and the LRU slot. */
export const NEGATIVE_ENTRY_OVERHEAD = 256;

/** Where a query came from, when known (the GSLB policies may use it without ECS). */
export interface QueryPeer {
  readonly family: 4 | 6;
  readonly address: Uint8Array;
}

/** The GSLB side of the engine: configuration and the current health view. */
export interface GslbSource {
  readonly config: GslbConfig;
  readonly view: () => HealthView;
}

/**
 * A precompiled reply: full, untruncated, without OPT; ID, flags, case and OPT are patched in. Its
 * question name is stored lowercased (it tells hash collisions apart); the bytes are an array of
 * their own, so an evicted entry frees all of its memory (no shared 8 KB Buffer pool slab).
 */
interface Compiled {
  readonly kind: 'static';
  readonly qtype: number;
  readonly bytes: Uint8Array;
}

/** A GSLB name: the selection runs per query, the encoded answer per selection is kept. */
interface PoolEntry {
  readonly kind: 'pool';
  readonly qname: Uint8Array;
  readonly qtype: number;
  readonly pool: PoolConfig;
  readonly zone: Zone;
  readonly ownerWire: Uint8Array;
  readonly chain: readonly OutRRset[];
  epoch: number;
  readonly variants: Map<number, Buffer>;
}

type Entry = Compiled | PoolEntry;

/**
 * Which cache budget a reply is kept in. Positive: names that exist in the zone (their answers,
 * referrals at the cut, GSLB names, NODATA for the common types); their number is bounded by the
 * zone data. Negative: everything a client can multiply by inventing names or types (NXDOMAIN,
 * wildcard-synthesized answers, referrals below a cut, REFUSED, other NODATA); it has its own
 * small budget and admits a key only when it is asked for a second time, so a flood of random
 * names neither evicts a positive entry nor keeps objects alive.
 */
export type CacheBudget = 'positive' | 'negative';

/** Hits (answered from a cache entry) and misses (looked up) of one budget. */
export interface CacheCounters {
  hits: number;
  misses: number;
}

/** Counters for metrics and tests. */
export interface EngineStats {
  queries: number;
  /** answered from precompiled bytes */
  fast: number;
  readonly cache: { readonly positive: CacheCounters; readonly negative: CacheCounters };
  dropped: number;
  errors: number;
  /** replies by rcode (index = rcode, 16 = BADVERS) */
  readonly rcodes: Float64Array;
  /** answers given per pool, per member index */
  readonly answers: Map<string, Float64Array>;
}

const TCP_LIMIT = 65535;
const MAX_VARIANTS = 4096;
/** slots of the negative budget's doorkeeper: the last hash seen per slot (256 KiB) */
const DOOR_BITS = 16;

/** Types whose NODATA at a name that exists is kept with the positive answers (clients ask them of real names). */
const COMMON_TYPES = new Set<number>([RRType.A, RRType.NS, RRType.CNAME, RRType.SOA, RRType.PTR, RRType.MX, RRType.TXT,
  RRType.AAAA, RRType.SRV, RRType.NAPTR, RRType.DS, RRType.DNSKEY, RRType.SVCB, RRType.HTTPS, RRType.CAA, RRType.ANY]);

/** The budget of a looked-up reply (see CacheBudget); `qname` canonical, as looked up. */
export function cacheBudget(result: LookupResult<unknown>, qname: string, qtype: number): CacheBudget {
  if (result.kind === 'refused' || result.kind === 'nxdomain' || !result.zone.nodes.has(qname)) return 'negative';
  return result.kind === 'nodata' && !COMMON_TYPES.has(qtype) ? 'negative' : 'positive';
}

/**
 * Answers DNS queries from the zones and GSLB pools: validate, look up, encode. Holds no socket;
 * the UDP and TCP servers call `handle`. Never throws: a bug in lookup becomes SERVFAIL and `onError`.
 */
export class Engine {
  private zones: ZoneSet;
  private gslb: GslbSource | undefined;
  private selector: PoolSelector | undefined;
  private readonly q = new ParsedQuery();
  private readonly w = new MessageWriter(TCP_LIMIT + 2);
  private readonly cache: LRUCache<number, Entry> | undefined;
  private readonly negative: LRUCache<number, Compiled> | undefined;
  /** the negative budget admits a hash seen before in its slot (a bounded, allocation-free doorkeeper) */
  private readonly door = new Uint32Array(1 << DOOR_BITS);
  private readonly single: boolean;
  private readonly opt: OptOut;
  private readonly opts: { udpSize: number; ecsScope: number };
  readonly stats: EngineStats = {
    queries: 0, fast: 0, cache: { positive: { hits: 0, misses: 0 }, negative: { hits: 0, misses: 0 } },
    dropped: 0, errors: 0, rcodes: new Float64Array(17), answers: new Map(),
  };

  constructor(zones: ZoneSet, private readonly options: EngineOptions = DEFAULT_ENGINE_OPTIONS,
    private readonly onError: (err: unknown, q: ParsedQuery) => void = () => {}) {
    this.zones = zones;
    this.opt = { udpSize: options.udpCap, ecsScope: 0 };
    this.opts = { udpSize: options.udpCap, ecsScope: 0 };
    this.single = options.cacheBudgets === 'single';
    this.cache = options.cacheEntries > 0 ? new LRUCache({ max: options.cacheEntries }) : undefined;
    const negEntries = options.cacheNegativeEntries ?? DEFAULT_ENGINE_OPTIONS.cacheNegativeEntries;
    const negBytes = options.cacheNegativeBytes ?? DEFAULT_ENGINE_OPTIONS.cacheNegativeBytes;
    this.negative = this.cache && !this.single && negEntries > 0 && negBytes > 0
      ? new LRUCache({
        max: negEntries, maxSize: negBytes,
        sizeCalculation: (e) => e.bytes.length + NEGATIVE_ENTRY_OVERHEAD,
      })
      : undefined;
  }

  /** Swaps the zone data and GSLB configuration (reload); cached replies of the old data are dropped. */
  setZones(zones: ZoneSet, gslb?: GslbSource): void {
    this.zones = zones;
    if (gslb !== undefined || this.gslb !== undefined) this.setGslb(gslb);
    this.cache?.clear();
    this.negative?.clear();
    this.door.fill(0);
  }

  /** Entries per budget now, and the bytes charged to the negative one. */
  cacheSize(): { positive: number; negative: number; negativeBytes: number } {
    return { positive: this.cache?.size ?? 0, negative: this.negative?.size ?? 0, negativeBytes: this.negative?.calculatedSize ?? 0 };
  }

  private setGslb(gslb: GslbSource | undefined): void {
    this.gslb = gslb;
    this.selector = gslb && gslb.config.pools.size > 0 ? new PoolSelector(gslb.config) : undefined;
    this.stats.answers.clear();
    if (gslb) for (const p of gslb.config.pools.values()) this.stats.answers.set(p.name, new Float64Array(p.members.length));
  }

  get zoneSet(): ZoneSet {
    return this.zones;
  }

  /**
   * Answers the query buf[off, off+len) into out[outOff, outOff+outMax). Returns the reply
   * length, or 0 when nothing is to be sent. `peer` is the source, for GSLB policies.
   */
  handle(buf: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number, outMax: number, tcp: boolean,
    peer?: QueryPeer): number {
    const n = this.answer(buf, off, len, out, outOff, outMax, tcp, peer);
    if (n > 0) {
      const rc = out[outOff + 3]! & 0x0f;
      this.stats.rcodes[rc === 0 && this.badvers ? 16 : rc]!++;
    }
    return n;
  }

  private badvers = false;

  private answer(buf: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number, outMax: number, tcp: boolean,
    peer: QueryPeer | undefined): number {
    const q = this.q;
    this.stats.queries++;
    this.badvers = false;
    const st = parseQuery(buf, off, len, q);
    if (st === QueryStatus.Drop) { this.stats.dropped++; return 0; }
    let limit = tcp ? TCP_LIMIT : q.edns ? Math.min(q.udpSize, this.options.udpCap) : 512;
    if (limit > outMax) limit = outMax;
    if (st !== QueryStatus.Ok) {
      this.badvers = st === QueryStatus.BadVers;
      return this.emit(buf, statusReply(st, q), limit, out, outOff, q.edns, 0);
    }
    const early = questionReply(q.qclass, q.qtype);
    if (early !== undefined) return this.emit(buf, early, limit, out, outOff, q.edns, 0);

    let hit: Entry | undefined = this.cache?.get(q.hash);
    let counters = this.stats.cache.positive;
    if (hit !== undefined && !isEntryFor(hit, buf, q)) hit = undefined;
    if (hit === undefined && this.negative) {
      hit = this.negative.get(q.hash);
      if (hit !== undefined && !isEntryFor(hit, buf, q)) hit = undefined;
      else counters = this.stats.cache.negative;
    }
    if (hit !== undefined) {
      counters.hits++;
      if (hit.kind === 'pool') return this.answerPool(hit, buf, out, outOff, limit, peer);
      if (hit.bytes.length + optSize(q) <= limit) {
        this.stats.fast++;
        return this.patch(hit.bytes, buf, out, outOff, 0);
      }
    }
    let reply: Reply;
    let budget: CacheBudget;
    try {
      const qname = readUncompressedName(buf, q.qnameOff).name;
      const result = lookup(this.zones, qname, q.qtype, this.gslb?.config.byName);
      budget = this.single ? 'positive' : cacheBudget(result, qname, q.qtype);
      if (hit === undefined) this.stats.cache[budget].misses++;
      if (result.kind === 'pool') {
        const entry: PoolEntry = {
          kind: 'pool', qname: this.lowerQname(buf), qtype: q.qtype, pool: result.pool as PoolConfig, zone: result.zone,
          ownerWire: result.ownerWire, chain: result.answer, epoch: -1, variants: new Map(),
        };
        // a GSLB name reached from a name that does not exist (a wildcard CNAME) is answered, never kept
        if (budget === 'positive') this.cache?.set(q.hash, entry);
        return this.answerPool(entry, buf, out, outOff, limit, peer);
      }
      reply = replyFor(result);
    } catch (err) {
      return this.fail(err, buf, limit, out, outOff);
    }
    // a compiled reply that was too big for this client stays; anything else is (re)compiled
    if (hit === undefined) {
      if (budget === 'positive') {
        if (this.cache) this.cache.set(q.hash, this.compile(buf, reply));
      } else if (this.negative && this.admit(q.hash)) {
        this.negative.set(q.hash, this.compile(buf, reply));
      }
    }
    return this.emit(buf, reply, limit, out, outOff, q.edns, 0);
  }

  /** The negative budget's doorkeeper: true when this hash was the last one seen in its slot. */
  private admit(hash: number): boolean {
    const slot = hash >>> (32 - DOOR_BITS);
    if (this.door[slot] === hash) return true;
    this.door[slot] = hash;
    return false;
  }

  private fail(err: unknown, buf: Uint8Array, limit: number, out: Uint8Array, outOff: number): number {
    this.stats.errors++;
    this.onError(err, this.q);
    return this.emit(buf, failureReply(), limit, out, outOff, this.q.edns, 0);
  }

  /** A/AAAA at a GSLB name: select, then copy the encoded answer for that selection. */
  private answerPool(e: PoolEntry, buf: Uint8Array, out: Uint8Array, outOff: number, limit: number, peer: QueryPeer | undefined): number {
    const q = this.q;
    const sel = this.selector;
    const gslb = this.gslb;
    if (!sel || !gslb) return this.fail(new Error('GSLB name without a selector'), buf, limit, out, outOff);
    try {
      const view = gslb.view();
      if (e.epoch !== view.epoch) {
        e.variants.clear();
        e.epoch = view.epoch;
      }
      if (q.ecs) sel.client(true, q.ecsFamily === 1 ? 4 : 6, q.ecsAddress, q.ecsSourcePrefix);
      else if (peer) sel.client(true, peer.family, peer.address, peer.family === 4 ? 32 : 128);
      else sel.client(false, 4, q.ecsAddress, 0);
      sel.select(e.pool, view, q.qtype === RRType.A ? 4 : 6);
      // never cached: it lasts only until the pool's first health word or its startup window's end
      if (sel.mode === Mode.Startup) return this.emit(buf, poolStartupReply(), limit, out, outOff, q.edns, 0);
      const pool = sel.pool!;
      const counts = this.stats.answers.get(pool.name);
      if (counts) for (let i = 0; i < sel.count; i++) counts[sel.selected[i]!]!++;
      const scope = q.ecs ? sel.ctx.scope : 0;
      let bytes = e.variants.get(sel.key);
      if (bytes === undefined) {
        bytes = this.compilePool(e, buf, pool);
        if (e.variants.size >= MAX_VARIANTS) e.variants.clear();
        e.variants.set(sel.key, bytes);
      }
      if (bytes.length + optSize(q) <= limit) {
        this.stats.fast++;
        return this.patch(bytes, buf, out, outOff, scope);
      }
      return this.emit(buf, this.poolReplyNow(e, pool), limit, out, outOff, q.edns, scope);
    } catch (err) {
      return this.fail(err, buf, limit, out, outOff);
    }
  }

  private poolReplyNow(e: PoolEntry, pool: PoolConfig): Reply {
    const sel = this.selector!;
    if (sel.count === 0) return poolReply(e.zone, e.chain, undefined);
    const rdatas: Uint8Array[] = [];
    for (let i = 0; i < sel.count; i++) rdatas.push(pool.members[sel.selected[i]!]!.addressBytes);
    const set: WireRRset = { ownerWire: e.ownerWire, type: this.q.qtype, ttl: sel.ttl, rdatas };
    return poolReply(e.zone, e.chain, set);
  }

  private compilePool(e: PoolEntry, buf: Uint8Array, pool: PoolConfig): Buffer {
    const n = encodeReply(this.w, buf, this.q, this.poolReplyNow(e, pool), TCP_LIMIT, undefined);
    return Buffer.from(this.w.buf.subarray(0, n));
  }

  private emit(buf: Uint8Array, reply: Reply, limit: number, out: Uint8Array, outOff: number, withOpt: boolean, scope: number): number {
    let opt: OptOut | undefined;
    if (withOpt) {
      opt = this.opt;
      if (scope !== 0) { this.opts.ecsScope = scope; opt = this.opts; }
    }
    const n = encodeReply(this.w, buf, this.q, reply, limit, opt);
    out.set(this.w.buf.subarray(0, n), outOff);
    return n;
  }

  private lowerQname(buf: Uint8Array): Uint8Array {
    const q = this.q;
    const qname = new Uint8Array(q.qnameLen);
    for (let i = 0; i < q.qnameLen; i++) {
      const c = buf[q.qnameOff + i]!;
      qname[i] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
    }
    return qname;
  }

  /** The untruncated reply without OPT for the fast path, its question name lowercased. */
  private compile(buf: Uint8Array, reply: Reply): Compiled {
    const q = this.q;
    const n = encodeReply(this.w, buf, q, reply, TCP_LIMIT, undefined);
    const bytes = new Uint8Array(n);
    bytes.set(this.w.buf.subarray(0, n));
    for (let i = 12, end = 12 + q.qnameLen; i < end; i++) {
      const c = bytes[i]!;
      if (c >= 0x41 && c <= 0x5a) bytes[i] = c | 0x20;
    }
    return { kind: 'static', qtype: q.qtype, bytes };
  }

  /** The fast path: copy, then patch ID, RD/CD, the question's case and the OPT. */
  private patch(bytes: Uint8Array, buf: Uint8Array, out: Uint8Array, o: number, scope: number): number {
    const q = this.q;
    out.set(bytes, o);
    out[o] = q.id >> 8;
    out[o + 1] = q.id & 0xff;
    out[o + 2] = (bytes[2]! & 0xfe) | ((q.flags >> 8) & 0x01);
    out[o + 3] = (bytes[3]! & 0xef) | (q.flags & 0x10);
    // the question as the client wrote it (0x20 mixed case, and its class)
    for (let i = 0, n = q.qnameLen + 4; i < n; i++) out[o + 12 + i] = buf[q.qnameOff + i]!;
    let n = bytes.length;
    if (q.edns) {
      const ar = ((bytes[10]! << 8) | bytes[11]!) + 1;
      out[o + 10] = ar >> 8;
      out[o + 11] = ar & 0xff;
      let opt = this.opt;
      if (scope !== 0) { this.opts.ecsScope = scope; opt = this.opts; }
      n = writeOpt(out, o + n, q, opt, bytes[3]! & 0x0f) - o;
    }
    return n;
  }
}

/** Whether a cache entry (found by hash) is the one of this question: same type and name. */
function isEntryFor(e: Entry, buf: Uint8Array, q: ParsedQuery): boolean {
  if (e.qtype !== q.qtype) return false;
  return e.kind === 'pool' ? sameName(buf, q.qnameOff, e.qname, 0, e.qname.length) : sameName(buf, q.qnameOff, e.bytes, 12, q.qnameLen);
}

/** Compares the question name in the packet with `n` bytes of a lowercased wire name at lower[at], ignoring ASCII case. */
function sameName(buf: Uint8Array, off: number, lower: Uint8Array, at: number, n: number): boolean {
  if (off + n > buf.length || at + n > lower.length || buf[off + n - 1] !== 0 || lower[at + n - 1] !== 0) return false;
  for (let i = 0; i < n; i++) {
    let c = buf[off + i]!;
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== lower[at + i]) return false;
  }
  return true;
}

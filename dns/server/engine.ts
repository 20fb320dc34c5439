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
import { NegativeReplies, lowerName, sameName } from './negative-replies.js';
import { lookup } from '../zone/lookup.js';
import type { LookupResult, OutRRset } from '../zone/lookup.js';
import { QueryCounters } from './query-counters.js';
import { ERROR_CLASS, ResponseKind, nameHash, responseClass } from './rrl.js';
import type { Zone, ZoneSet } from '../zone/zone.js';
import { signReply } from '../dnssec/reply.js';
import type { SignatureCacheStats, Signing, ZoneKeys } from '../dnssec/signer.js';

/** Tunables of the query engine. */
export interface EngineOptions {
  /** largest UDP reply we send, whatever the client offers (RFC 9715 / DNS flag day 2020: 1232) */
  readonly udpCap: number;
  /** precompiled replies of names that exist (the positive budget); 0 turns the fast path off (tests compare both paths) */
  readonly cacheEntries: number;
  /** precompiled negative and random-name replies (the negative budget, see CacheBudget), rounded up to a power of two; 0: none; default 10,000 */
  readonly cacheNegativeEntries?: number;
  /** the negative budget's reply bytes, allocated at start; default 4 MiB */
  readonly cacheNegativeBytes?: number;
  /** 'single': one budget for every reply, all admitted at once (the behaviour before the split; benchmarks compare) */
  readonly cacheBudgets?: 'split' | 'single';
  /** time every query for gslb_dns_request_duration_seconds (one clock read per query in a UDP batch, two otherwise); default true */
  readonly requestDuration?: boolean;
}

export const DEFAULT_ENGINE_OPTIONS = {
  udpCap: 1232, cacheEntries: 100_000, cacheNegativeEntries: 10_000, cacheNegativeBytes: 4 * 1024 * 1024,
} as const satisfies EngineOptions;

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
  /** the RRL response class of the reply */
  readonly cls: number;
  /** unix ms from which a signed reply's signatures are due for refresh (Infinity: unsigned) */
  readonly until: number;
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
  /** the keys of its zone when its replies are signed (DO=1 to a signed zone) */
  readonly keys?: ZoneKeys;
  /** unix ms from which the signed variants are made anew */
  until: number;
}

type Entry = Compiled | PoolEntry;

/**
 * Which cache budget a reply is kept in. Positive: names that exist in the zone (their answers,
 * referrals at the cut, GSLB names, NODATA for the common types); their number is bounded by the
 * zone data. Negative: everything a client can multiply by inventing names or types (NXDOMAIN,
 * wildcard-synthesized answers, referrals below a cut, REFUSED, other NODATA); it has its own
 * small budget of fixed memory (negative-replies.ts) and admits a key only when it is asked for a
 * second time, so a flood of random names neither evicts a positive entry nor allocates.
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
  /** requests by proto, family and type; responses by proto and rcode; the duration histogram */
  readonly counters: QueryCounters;
  /** answers given per pool, per member index */
  readonly answers: Map<string, Float64Array>;
}

const TCP_LIMIT = 65535;
const MAX_VARIANTS = 4096;

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
  private readonly negative: NegativeReplies | undefined;
  /** replies to DO=1 queries while some zone is signed: a cache of their own, so the DO=0 path stays as it was */
  private readonly signedCache: LRUCache<number, Entry> | undefined;
  /** signed replies of the negative budget (NXDOMAIN, wildcard answers, ...): bounded apart, so invented names evict none of the above */
  private readonly signedNegative: LRUCache<number, Compiled> | undefined;
  private signing: Signing | undefined;
  private readonly single: boolean;
  private readonly opt: OptOut;
  private readonly opts: { udpSize: number; ecsScope: number };
  readonly stats: EngineStats = {
    queries: 0, fast: 0, cache: { positive: { hits: 0, misses: 0 }, negative: { hits: 0, misses: 0 } },
    dropped: 0, errors: 0, counters: new QueryCounters(), answers: new Map(),
  };
  private readonly timed: boolean;
  /** the RRL response class (see rrl.ts) of the last reply `handle` produced */
  responseClass = ERROR_CLASS;

  constructor(zones: ZoneSet, private readonly options: EngineOptions = DEFAULT_ENGINE_OPTIONS,
    private readonly onError: (err: unknown, q: ParsedQuery) => void = () => {}) {
    this.zones = zones;
    this.opt = { udpSize: options.udpCap, ecsScope: 0 };
    this.opts = { udpSize: options.udpCap, ecsScope: 0 };
    this.single = options.cacheBudgets === 'single';
    this.timed = options.requestDuration ?? true;
    this.cache = options.cacheEntries > 0 ? new LRUCache({ max: options.cacheEntries }) : undefined;
    this.signedCache = options.cacheEntries > 0 ? new LRUCache({ max: options.cacheEntries }) : undefined;
    const signedNegative = options.cacheNegativeEntries ?? DEFAULT_ENGINE_OPTIONS.cacheNegativeEntries;
    this.signedNegative = this.signedCache && signedNegative > 0 ? new LRUCache({ max: signedNegative }) : undefined;
    const negEntries = options.cacheNegativeEntries ?? DEFAULT_ENGINE_OPTIONS.cacheNegativeEntries;
    const negBytes = options.cacheNegativeBytes ?? DEFAULT_ENGINE_OPTIONS.cacheNegativeBytes;
    this.negative = this.cache && !this.single && negEntries > 0 && negBytes > 0 ? new NegativeReplies(negEntries, negBytes) : undefined;
  }

  /**
   * Swaps the zone data, GSLB configuration and signing keys (reload); cached replies of the old
   * data are dropped. Without `signing` (or with no zone signed) every reply is unsigned.
   */
  setZones(zones: ZoneSet, gslb?: GslbSource, signing?: Signing): void {
    this.zones = zones;
    if (gslb !== undefined || this.gslb !== undefined) this.setGslb(gslb);
    this.signing = signing?.active ? signing : undefined;
    this.cache?.clear();
    this.negative?.clear();
    this.signedCache?.clear();
    this.signedNegative?.clear();
  }

  /** The signature cache's counters and size (undefined: nothing is signed). */
  signatureCache(): SignatureCacheStats | undefined {
    return this.signing?.stats();
  }

  /** Entries per budget now, and the bytes charged to the negative one. */
  cacheSize(): { positive: number; negative: number; negativeBytes: number } {
    const neg = this.negative?.size() ?? { entries: 0, bytes: 0 };
    return { positive: this.cache?.size ?? 0, negative: neg.entries, negativeBytes: neg.bytes };
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
    const c = this.stats.counters;
    let n: number;
    if (this.timed) {
      // one clock read per request inside a UDP batch: a request's time runs from the previous
      // one's reply (or the batch's start) to its own, so the few instructions of the batch loop
      // between two requests count to the second; a clock read costs about as much as a
      // fast-path answer's share of the work, and bench:dns measures the difference
      const chained = !tcp && this.mark >= 0;
      const t0 = chained ? this.mark : performance.now();
      n = this.answer(buf, off, len, out, outOff, outMax, tcp, peer);
      const t1 = performance.now();
      c.duration(tcp, t1 - t0);
      this.mark = chained ? t1 : -1;
    } else {
      n = this.answer(buf, off, len, out, outOff, outMax, tcp, peer);
    }
    c.request(tcp, peer?.family, this.q.hasQuestion, this.q.qtype);
    if (n > 0) {
      const rc = out[outOff + 3]! & 0x0f;
      c.response(tcp, rc === 0 && this.badvers ? 16 : rc);
    }
    return n;
  }

  private badvers = false;
  /** performance.now() where the next UDP request's time starts; -1 outside a batch */
  private mark = -1;

  /** A batch of UDP datagrams begins (the UDP transport's beforeBatch): the requests that follow chain their clock reads. */
  batchStart(): void {
    if (this.timed) this.mark = performance.now();
  }

  private answer(buf: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number, outMax: number, tcp: boolean,
    peer: QueryPeer | undefined): number {
    const q = this.q;
    this.stats.queries++;
    this.badvers = false;
    this.responseClass = ERROR_CLASS;
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
    if (q.dnssecOk && this.signing !== undefined) return this.answerSigned(this.signing, buf, out, outOff, limit, peer);

    let cached = false;
    const hit = this.cache?.get(q.hash);
    if (hit !== undefined && isEntryFor(hit, buf, q)) {
      cached = true;
      this.stats.cache.positive.hits++;
      if (hit.kind === 'pool') return this.answerPool(hit, buf, out, outOff, limit, peer);
      this.responseClass = hit.cls;
      if (hit.bytes.length + optSize(q) <= limit) {
        this.stats.fast++;
        return this.patch(hit.bytes, 0, hit.bytes.length, buf, out, outOff, 0);
      }
    } else if (this.negative) {
      const neg = this.negative;
      const slot = neg.find(q.hash, q.qtype, buf, q.qnameOff, q.qnameLen);
      if (slot >= 0) {
        cached = true;
        this.stats.cache.negative.hits++;
        this.responseClass = neg.classOf(slot);
        if (neg.lengthOf(slot) + optSize(q) <= limit) {
          this.stats.fast++;
          return this.patch(neg.arena, neg.offsetOf(slot), neg.lengthOf(slot), buf, out, outOff, 0);
        }
      }
    }
    let reply: Reply;
    let budget: CacheBudget;
    try {
      const qname = readUncompressedName(buf, q.qnameOff).name;
      const result = lookup(this.zones, qname, q.qtype, this.gslb?.config.byName);
      budget = this.single ? 'positive' : cacheBudget(result, qname, q.qtype);
      if (!cached) this.stats.cache[budget].misses++;
      if (result.kind === 'pool') {
        const entry = this.poolEntry(buf, result, undefined);
        // a GSLB name reached from a name that does not exist (a wildcard CNAME) is answered, never kept
        if (budget === 'positive') this.cache?.set(q.hash, entry);
        return this.answerPool(entry, buf, out, outOff, limit, peer);
      }
      reply = replyFor(result);
      this.responseClass = classOf(result, q.hash, q.qtype);
    } catch (err) {
      return this.fail(err, buf, limit, out, outOff);
    }
    // a compiled reply that was too big for this client stays; anything else is (re)compiled
    if (!cached) {
      if (budget === 'positive') {
        if (this.cache) this.cache.set(q.hash, this.compile(buf, reply));
      } else if (this.negative?.admit(q.hash)) {
        this.negative.set(q.hash, q.qtype, this.w.buf, encodeReply(this.w, buf, q, reply, TCP_LIMIT, undefined), q.qnameLen,
          this.responseClass);
      }
    }
    return this.emit(buf, reply, limit, out, outOff, q.edns, 0);
  }

  private fail(err: unknown, buf: Uint8Array, limit: number, out: Uint8Array, outOff: number): number {
    this.stats.errors++;
    this.responseClass = ERROR_CLASS;
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
      this.responseClass = responseClass(sel.count > 0 ? ResponseKind.Positive : ResponseKind.NoData, q.hash);
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
        return this.patch(bytes, 0, bytes.length, buf, out, outOff, scope);
      }
      return this.emit(buf, this.poolReplyNow(e, pool), limit, out, outOff, q.edns, scope);
    } catch (err) {
      return this.fail(err, buf, limit, out, outOff);
    }
  }

  /** The cache entry of a GSLB name for this query; `keys` when its replies are signed. */
  private poolEntry(buf: Uint8Array, result: Extract<LookupResult, { kind: 'pool' }>, keys: ZoneKeys | undefined): PoolEntry {
    return {
      kind: 'pool', qname: this.lowerQname(buf), qtype: this.q.qtype, pool: result.pool as PoolConfig, zone: result.zone,
      ownerWire: result.ownerWire, chain: result.answer, epoch: -1, variants: new Map(), until: Infinity, ...(keys ? { keys } : {}),
    };
  }

  private poolReplyNow(e: PoolEntry, pool: PoolConfig): Reply {
    const sel = this.selector!;
    let reply: Reply;
    if (sel.count === 0) {
      reply = poolReply(e.zone, e.chain, undefined);
    } else {
      const rdatas: Uint8Array[] = [];
      for (let i = 0; i < sel.count; i++) rdatas.push(pool.members[sel.selected[i]!]!.addressBytes);
      const set: WireRRset = { ownerWire: e.ownerWire, type: this.q.qtype, ttl: sel.ttl, rdatas };
      reply = poolReply(e.zone, e.chain, set);
    }
    if (e.keys === undefined) return reply;
    const until = { value: e.until };
    const signed = signReply(reply, sel.count === 0 ? 'nodata' : 'answer', {
      signing: this.signing!, zone: e.zone, keys: e.keys, qname: readUncompressedName(e.qname, 0).name, qtype: e.qtype,
      pools: this.gslb?.config.byName, until,
    });
    e.until = until.value;
    return signed;
  }

  /**
   * A DO=1 query while some zone is signed: the same lookup, the reply signed when its zone is,
   * kept in the signed cache until its signatures are due for refresh.
   */
  private answerSigned(signing: Signing, buf: Uint8Array, out: Uint8Array, outOff: number, limit: number, peer: QueryPeer | undefined): number {
    const q = this.q;
    const now = signing.now();
    const cache = this.signedCache;
    const hit = cache?.get(q.hash) ?? this.signedNegative?.get(q.hash);
    if (hit !== undefined && isEntryFor(hit, buf, q)) {
      if (hit.kind === 'pool') {
        if (now >= hit.until) { hit.variants.clear(); hit.until = Infinity; }
        return this.answerPool(hit, buf, out, outOff, limit, peer);
      }
      if (hit.until > now && hit.bytes.length + optSize(q) <= limit) {
        this.responseClass = hit.cls;
        this.stats.fast++;
        return this.patch(hit.bytes, 0, hit.bytes.length, buf, out, outOff, 0);
      }
    }
    let reply: Reply;
    try {
      const qname = readUncompressedName(buf, q.qnameOff).name;
      const result = lookup(this.zones, qname, q.qtype, this.gslb?.config.byName);
      const keep = cacheBudget(result, qname, q.qtype) === 'positive';
      const keys = result.kind === 'refused' ? undefined : signing.keysOf(result.zone.origin);
      if (result.kind === 'pool') {
        const entry = this.poolEntry(buf, result, keys);
        if (keep) cache?.set(q.hash, entry);
        return this.answerPool(entry, buf, out, outOff, limit, peer);
      }
      reply = replyFor(result);
      this.responseClass = classOf(result, q.hash, q.qtype);
      const until = { value: Infinity };
      if (keys && result.kind !== 'refused') {
        reply = signReply(reply, result.kind, { signing, zone: result.zone, keys, qname, qtype: q.qtype, pools: this.gslb?.config.byName, until });
      }
      if (keep) cache?.set(q.hash, { ...this.compile(buf, reply), until: until.value });
      else this.signedNegative?.set(q.hash, { ...this.compile(buf, reply), until: until.value });
    } catch (err) {
      return this.fail(err, buf, limit, out, outOff);
    }
    return this.emit(buf, reply, limit, out, outOff, true, 0);
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
    const qname = new Uint8Array(q.qnameLen); // a copy: Buffer#slice would be a view of the packet
    qname.set(buf.subarray(q.qnameOff, q.qnameOff + q.qnameLen));
    lowerName(qname, 0, q.qnameLen);
    return qname;
  }


  /** The untruncated reply without OPT for the fast path, its question name lowercased. */
  private compile(buf: Uint8Array, reply: Reply): Compiled {
    const q = this.q;
    const n = encodeReply(this.w, buf, q, reply, TCP_LIMIT, undefined);
    const bytes = new Uint8Array(n);
    bytes.set(this.w.buf.subarray(0, n));
    lowerName(bytes, 12, q.qnameLen);
    return { kind: 'static', qtype: q.qtype, bytes, cls: this.responseClass, until: Infinity };
  }

  /**
   * Rewrites the reply `handle` just wrote at out[o..] into an empty truncated one (RRL slip):
   * its header with TC=1 and no records, the question, and the OPT if the query had one.
   * Returns the new length.
   */
  truncate(out: Uint8Array, o: number): number {
    const q = this.q;
    out[o + 2] = out[o + 2]! | 0x02;
    out[o + 6] = 0; out[o + 7] = 0; out[o + 8] = 0; out[o + 9] = 0; out[o + 10] = 0;
    out[o + 11] = q.edns ? 1 : 0;
    // the question is echoed byte for byte, so it is as long as the query's
    const n = 12 + (q.hasQuestion && out[o + 5] === 1 ? q.qnameLen + 4 : 0);
    if (!q.edns) return n;
    return writeOpt(out, o + n, q, this.opt, this.badvers ? 16 : out[o + 3]! & 0x0f) - o;
  }

  /** The fast path: copy src[at, at+len), then patch ID, RD/CD, the question's case and the OPT. */
  private patch(src: Uint8Array, at: number, len: number, buf: Uint8Array, out: Uint8Array, o: number, scope: number): number {
    const q = this.q;
    if (at === 0 && len === src.length) out.set(src, o);
    else for (let i = 0; i < len; i++) out[o + i] = src[at + i]!; // no subarray view per query
    out[o] = q.id >> 8;
    out[o + 1] = q.id & 0xff;
    out[o + 2] = (src[at + 2]! & 0xfe) | ((q.flags >> 8) & 0x01);
    out[o + 3] = (src[at + 3]! & 0xef) | (q.flags & 0x10);
    // the question as the client wrote it (0x20 mixed case, and its class)
    for (let i = 0, n = q.qnameLen + 4; i < n; i++) out[o + 12 + i] = buf[q.qnameOff + i]!;
    let n = len;
    if (q.edns) {
      const ar = ((src[at + 10]! << 8) | src[at + 11]!) + 1;
      out[o + 10] = ar >> 8;
      out[o + 11] = ar & 0xff;
      let opt = this.opt;
      if (scope !== 0) { this.opts.ecsScope = scope; opt = this.opts; }
      n = writeOpt(out, o + n, q, opt, src[at + 3]! & 0x0f) - o;
    }
    return n;
  }
}

/**
 * The RRL class of a lookup result: answers and NODATA by question (by wildcard and type when
 * synthesized from one), NXDOMAIN and referrals by zone.
 */
function classOf(result: LookupResult<unknown>, questionHash: number, qtype: number): number {
  switch (result.kind) {
    case 'answer':
    case 'nodata': {
      const kind = result.kind === 'answer' ? ResponseKind.Positive : ResponseKind.NoData;
      return responseClass(kind, result.wildcard === undefined ? questionHash : Math.imul(nameHash(result.wildcard) ^ qtype, 0x01000193));
    }
    case 'nxdomain': return responseClass(ResponseKind.NxDomain, nameHash(result.zone.origin));
    case 'delegation': return responseClass(ResponseKind.Referral, nameHash(result.zone.origin));
    default: return ERROR_CLASS;
  }
}

/** Whether a cache entry (found by hash) is the one of this question: same type and name. */
function isEntryFor(e: Entry, buf: Uint8Array, q: ParsedQuery): boolean {
  if (e.qtype !== q.qtype) return false;
  return e.kind === 'pool' ? sameName(buf, q.qnameOff, e.qname, 0, e.qname.length) : sameName(buf, q.qnameOff, e.bytes, 12, q.qnameLen);
}

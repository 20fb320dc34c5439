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
import { ERROR_CLASS, ResponseKind, nameHash, responseClass } from './rrl.js';
import type { Zone, ZoneSet } from '../zone/zone.js';

/** Tunables of the query engine. */
export interface EngineOptions {
  /** largest UDP reply we send, whatever the client offers (RFC 9715 / DNS flag day 2020: 1232) */
  readonly udpCap: number;
  /** precompiled replies kept; 0 turns the fast path off (tests compare both paths) */
  readonly cacheEntries: number;
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = { udpCap: 1232, cacheEntries: 100_000 };

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

/** A precompiled reply: full, untruncated, without OPT; ID, flags, case and OPT are patched in. */
interface Compiled {
  readonly kind: 'static';
  /** lowercased question name in wire form, to tell hash collisions apart */
  readonly qname: Uint8Array;
  readonly qtype: number;
  readonly bytes: Buffer;
  /** the RRL response class of the reply */
  readonly cls: number;
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

/** Counters for metrics and tests. */
export interface EngineStats {
  queries: number;
  fast: number;
  dropped: number;
  errors: number;
  /** replies by rcode (index = rcode, 16 = BADVERS) */
  readonly rcodes: Float64Array;
  /** answers given per pool, per member index */
  readonly answers: Map<string, Float64Array>;
}

const TCP_LIMIT = 65535;
const MAX_VARIANTS = 4096;

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
  private readonly opt: OptOut;
  private readonly opts: { udpSize: number; ecsScope: number };
  readonly stats: EngineStats = { queries: 0, fast: 0, dropped: 0, errors: 0, rcodes: new Float64Array(17), answers: new Map() };
  /** the RRL response class (see rrl.ts) of the last reply `handle` produced */
  responseClass = ERROR_CLASS;

  constructor(zones: ZoneSet, private readonly options: EngineOptions = DEFAULT_ENGINE_OPTIONS,
    private readonly onError: (err: unknown, q: ParsedQuery) => void = () => {}) {
    this.zones = zones;
    this.opt = { udpSize: options.udpCap, ecsScope: 0 };
    this.opts = { udpSize: options.udpCap, ecsScope: 0 };
    this.cache = options.cacheEntries > 0 ? new LRUCache({ max: options.cacheEntries }) : undefined;
  }

  /** Swaps the zone data and GSLB configuration (reload); cached replies of the old data are dropped. */
  setZones(zones: ZoneSet, gslb?: GslbSource): void {
    this.zones = zones;
    if (gslb !== undefined || this.gslb !== undefined) this.setGslb(gslb);
    this.cache?.clear();
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

    const hit = this.cache?.get(q.hash);
    const known = hit !== undefined && hit.qtype === q.qtype && sameName(buf, q.qnameOff, hit.qname);
    if (known) {
      if (hit.kind === 'pool') return this.answerPool(hit, buf, out, outOff, limit, peer);
      this.responseClass = hit.cls;
      if (hit.bytes.length + optSize(q) <= limit) {
        this.stats.fast++;
        return this.patch(hit.bytes, buf, out, outOff, 0);
      }
    }
    let reply: Reply;
    try {
      const qname = readUncompressedName(buf, q.qnameOff).name;
      const result = lookup(this.zones, qname, q.qtype, this.gslb?.config.byName);
      if (result.kind === 'pool') {
        const entry: PoolEntry = {
          kind: 'pool', qname: this.lowerQname(buf), qtype: q.qtype, pool: result.pool as PoolConfig, zone: result.zone,
          ownerWire: result.ownerWire, chain: result.answer, epoch: -1, variants: new Map(),
        };
        this.cache?.set(q.hash, entry);
        return this.answerPool(entry, buf, out, outOff, limit, peer);
      }
      reply = replyFor(result);
      this.responseClass = classOf(result, q.hash, q.qtype);
    } catch (err) {
      return this.fail(err, buf, limit, out, outOff);
    }
    // a compiled reply that was too big for this client stays; anything else is (re)compiled
    if (this.cache && !known) this.compile(buf, reply);
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

  /** Stores the untruncated reply without OPT for the fast path. */
  private compile(buf: Uint8Array, reply: Reply): void {
    const q = this.q;
    const n = encodeReply(this.w, buf, q, reply, TCP_LIMIT, undefined);
    const bytes = Buffer.from(this.w.buf.subarray(0, n));
    this.cache!.set(q.hash, { kind: 'static', qname: this.lowerQname(buf), qtype: q.qtype, bytes, cls: this.responseClass });
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

  /** The fast path: copy, then patch ID, RD/CD, the question's case and the OPT. */
  private patch(bytes: Buffer, buf: Uint8Array, out: Uint8Array, o: number, scope: number): number {
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

/** Compares the question name in the packet with a lowercased wire name, ignoring ASCII case. */
function sameName(buf: Uint8Array, off: number, lower: Uint8Array): boolean {
  const n = lower.length;
  if (off + n > buf.length || buf[off + n - 1] !== 0) return false;
  for (let i = 0; i < n; i++) {
    let c = buf[off + i]!;
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== lower[i]) return false;
  }
  return true;
}

import { LRUCache } from 'lru-cache';
import { errorReply, replyFor } from '../answer.js';
import { readUncompressedName } from '../wire/name.js';
import { ParsedQuery, QueryStatus, parseQuery } from '../wire/query.js';
import { encodeReply, optSize, writeOpt } from '../wire/response.js';
import type { OptOut, Reply } from '../wire/response.js';
import { CLASS_ANY, CLASS_IN, RCode, RRType } from '../wire/types.js';
import { MessageWriter } from '../wire/writer.js';
import { lookup } from '../zone/lookup.js';
import type { ZoneSet } from '../zone/zone.js';

/** Tunables of the query engine. */
export interface EngineOptions {
  /** largest UDP reply we send, whatever the client offers (RFC 9715 / DNS flag day 2020: 1232) */
  readonly udpCap: number;
  /** precompiled replies kept; 0 turns the fast path off (tests compare both paths) */
  readonly cacheEntries: number;
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = { udpCap: 1232, cacheEntries: 100_000 };

/** A precompiled reply: full, untruncated, without OPT; ID, flags, case and OPT are patched in. */
interface Compiled {
  /** lowercased question name in wire form, to tell hash collisions apart */
  readonly qname: Uint8Array;
  readonly qtype: number;
  readonly bytes: Buffer;
  /** ECS scope for this answer: 0 for zone data */
  readonly ecsScope: number;
}

/** Counters for metrics and tests. */
export interface EngineStats {
  queries: number;
  fast: number;
  dropped: number;
  errors: number;
}

const TCP_LIMIT = 65535;

/**
 * Answers DNS queries from the zones: validate, look up, encode. Holds no socket; the UDP and
 * TCP servers call `handle`. Never throws: a bug in lookup becomes SERVFAIL and `onError`.
 */
export class Engine {
  private zones: ZoneSet;
  private readonly q = new ParsedQuery();
  private readonly w = new MessageWriter(TCP_LIMIT + 2);
  private readonly cache: LRUCache<number, Compiled> | undefined;
  private readonly opt: OptOut;
  readonly stats: EngineStats = { queries: 0, fast: 0, dropped: 0, errors: 0 };

  constructor(zones: ZoneSet, private readonly options: EngineOptions = DEFAULT_ENGINE_OPTIONS,
    private readonly onError: (err: unknown, q: ParsedQuery) => void = () => {}) {
    this.zones = zones;
    this.opt = { udpSize: options.udpCap, ecsScope: 0 };
    this.cache = options.cacheEntries > 0 ? new LRUCache({ max: options.cacheEntries }) : undefined;
  }

  /** Swaps the zone data (reload); cached replies of the old data are dropped. */
  setZones(zones: ZoneSet): void {
    this.zones = zones;
    this.cache?.clear();
  }

  get zoneSet(): ZoneSet {
    return this.zones;
  }

  /**
   * Answers the query buf[off, off+len) into out[outOff, outOff+outMax). Returns the reply
   * length, or 0 when nothing is to be sent.
   */
  handle(buf: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number, outMax: number, tcp: boolean): number {
    const q = this.q;
    this.stats.queries++;
    const st = parseQuery(buf, off, len, q);
    if (st === QueryStatus.Drop) { this.stats.dropped++; return 0; }
    let limit = tcp ? TCP_LIMIT : q.edns ? Math.min(q.udpSize, this.options.udpCap) : 512;
    if (limit > outMax) limit = outMax;
    if (st !== QueryStatus.Ok) {
      const rcode = st === QueryStatus.NotImp ? RCode.NOTIMP : st === QueryStatus.BadVers ? RCode.BADVERS : RCode.FORMERR;
      return this.emit(buf, errorReply(rcode), limit, out, outOff, q.edns);
    }
    const early = this.refuseEarly(q);
    if (early >= 0) return this.emit(buf, errorReply(early), limit, out, outOff, q.edns);

    const hit = this.cache?.get(q.hash);
    const compiled = hit !== undefined && hit.qtype === q.qtype && sameName(buf, q.qnameOff, hit.qname);
    if (compiled && hit.bytes.length + optSize(q) <= limit) {
      this.stats.fast++;
      return this.patch(hit, buf, out, outOff);
    }
    let reply: Reply;
    try {
      const qname = readUncompressedName(buf, q.qnameOff).name;
      reply = replyFor(lookup(this.zones, qname, q.qtype));
    } catch (err) {
      this.stats.errors++;
      this.onError(err, q);
      return this.emit(buf, errorReply(RCode.SERVFAIL), limit, out, outOff, q.edns);
    }
    // a compiled reply that was too big for this client stays; anything else is (re)compiled
    if (this.cache && !compiled) this.compile(buf, reply);
    return this.emit(buf, reply, limit, out, outOff, q.edns);
  }

  /** rcodes decided by the question alone, before any lookup; -1 when it goes on. */
  private refuseEarly(q: ParsedQuery): number {
    if (q.qclass !== CLASS_IN && q.qclass !== CLASS_ANY) return RCode.REFUSED;
    const t = q.qtype;
    if (t === RRType.OPT) return RCode.FORMERR;
    if (t === RRType.AXFR || t === RRType.IXFR) return RCode.REFUSED;
    if (t >= 128 && t < 255) return RCode.NOTIMP;
    return -1;
  }

  private emit(buf: Uint8Array, reply: Reply, limit: number, out: Uint8Array, outOff: number, withOpt: boolean): number {
    const n = encodeReply(this.w, buf, this.q, reply, limit, withOpt ? this.opt : undefined);
    out.set(this.w.buf.subarray(0, n), outOff);
    return n;
  }

  /** Stores the untruncated reply without OPT for the fast path. */
  private compile(buf: Uint8Array, reply: Reply): void {
    const q = this.q;
    const n = encodeReply(this.w, buf, q, reply, TCP_LIMIT, undefined);
    const bytes = Buffer.from(this.w.buf.subarray(0, n));
    const qname = new Uint8Array(q.qnameLen);
    for (let i = 0; i < q.qnameLen; i++) {
      const c = buf[q.qnameOff + i]!;
      qname[i] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
    }
    this.cache!.set(q.hash, { qname, qtype: q.qtype, bytes, ecsScope: 0 });
  }

  /** The fast path: copy, then patch ID, RD/CD, the question's case and the OPT. */
  private patch(c: Compiled, buf: Uint8Array, out: Uint8Array, o: number): number {
    const q = this.q;
    const bytes = c.bytes;
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
      const opt = c.ecsScope === 0 ? this.opt : { udpSize: this.opt.udpSize, ecsScope: c.ecsScope };
      n = writeOpt(out, o + n, q, opt, bytes[3]! & 0x0f) - o;
    }
    return n;
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

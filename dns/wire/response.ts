import type { ParsedQuery } from './query.js';
import { RCode, RRType } from './types.js';
import type { MessageWriter } from './writer.js';

/** A record set to put in a reply. */
export interface WireRRset {
  readonly ownerWire: Uint8Array;
  readonly type: number;
  readonly ttl: number;
  readonly rdatas: readonly Uint8Array[];
}

/** What goes into a reply, decided by answer.ts. */
export interface Reply {
  /** full 12-bit rcode; values above 15 need an OPT to carry the upper bits */
  readonly rcode: number;
  readonly aa: boolean;
  readonly answer: readonly WireRRset[];
  readonly authority: readonly WireRRset[];
  readonly additional: readonly WireRRset[];
  /** referral glue that must fit or the reply is truncated (RFC 9471) */
  readonly glueRequired: boolean;
  /** an unsigned TSIG record (MAC size 0) ending the reply, for TSIG errors (RFC 8945 §5.3.2) */
  readonly tsig?: TsigOut;
}

/** The fields of an unsigned TSIG record in an error reply (RFC 8945 §4.2). */
export interface TsigOut {
  /** owner: the key name, uncompressed wire */
  readonly keyWire: Uint8Array;
  readonly algorithmWire: Uint8Array;
  /** 48-bit time signed, as 6 bytes */
  readonly timeSigned: Uint8Array;
  readonly fudge: number;
  readonly originalId: number;
  /** TSIG error code (BADSIG 16, BADKEY 17, BADTIME 18, BADTRUNC 22) */
  readonly error: number;
}

function tsigSize(t: TsigOut): number {
  return t.keyWire.length + 10 + t.algorithmWire.length + 16;
}

/** Writes the TSIG record at b[p]: class ANY, TTL 0, names uncompressed, no MAC, no other data. */
function writeTsig(b: Uint8Array, p: number, t: TsigOut): number {
  b.set(t.keyWire, p); p += t.keyWire.length;
  b[p++] = 0; b[p++] = 250;
  b[p++] = 0; b[p++] = 255;
  b[p++] = 0; b[p++] = 0; b[p++] = 0; b[p++] = 0;
  const rdlen = t.algorithmWire.length + 16;
  b[p++] = rdlen >> 8; b[p++] = rdlen & 0xff;
  b.set(t.algorithmWire, p); p += t.algorithmWire.length;
  b.set(t.timeSigned, p); p += 6;
  b[p++] = t.fudge >> 8; b[p++] = t.fudge & 0xff;
  b[p++] = 0; b[p++] = 0;
  b[p++] = t.originalId >> 8; b[p++] = t.originalId & 0xff;
  b[p++] = t.error >> 8; b[p++] = t.error & 0xff;
  b[p++] = 0; b[p++] = 0;
  return p;
}

/** How the OPT record of the reply looks, if there is one. */
export interface OptOut {
  /** our advertised UDP payload size */
  readonly udpSize: number;
  /** ECS scope prefix to return when the query carried ECS */
  readonly ecsScope: number;
}

/** Size in bytes of the OPT record this query's reply carries (0 without EDNS). */
export function optSize(q: ParsedQuery, rcode = 0): number {
  if (!q.edns) return 0;
  return 11 + (echoesEcs(q, rcode) ? 8 + ((q.ecsSourcePrefix + 7) >> 3) : 0);
}

/** ECS is echoed in every reply to a query that had it, except BADVERS (the option belongs to a version we did not speak). */
function echoesEcs(q: ParsedQuery, rcode: number): boolean {
  return q.ecs && rcode !== RCode.BADVERS;
}

/**
 * Encodes a reply to `q` into `w`, at most `limit` bytes. Whole RRsets only: a set of the
 * answer or authority section that does not fit sets TC and ends the reply; additional data
 * that does not fit is left out (TC only for required glue). Returns the length.
 */
export function encodeReply(
  w: MessageWriter, qbuf: Uint8Array, q: ParsedQuery, reply: Reply, limit: number, opt: OptOut | undefined,
): number {
  w.reset(limit);
  const optLen = opt ? optSize(q, reply.rcode) : 0;
  const tsigLen = reply.tsig ? tsigSize(reply.tsig) : 0;
  // the OPT (and a TSIG) always fit: reserve them first
  w.limit = Math.max(12, limit - optLen - tsigLen);
  w.pos = 12;
  let qd = 0;
  if (q.hasQuestion && w.fits(q.questionEnd - q.qnameOff)) {
    w.bytes(qbuf, q.qnameOff, q.questionEnd);
    w.remember(12);
    qd = 1;
  }
  let tc = false;
  const an = qd ? writeSection(w, reply.answer) : -1;
  let ns = 0;
  let ar = 0;
  if (an < 0) {
    tc = qd === 1;
  } else {
    ns = writeSection(w, reply.authority);
    if (ns < 0) { tc = true; ns = 0; } else {
      ar = writeSection(w, reply.additional, true);
      if (ar < 0) { ar = ~ar; if (reply.glueRequired) tc = true; }
    }
  }
  const anCount = an < 0 ? 0 : an;
  if (an < 0) {
    // nothing partial: a truncated answer section is sent empty
    w.rollback(12 + (qd ? q.questionEnd - q.qnameOff : 0));
    ns = 0;
    ar = 0;
  }
  w.limit = limit;
  if (opt && optLen) {
    w.pos = writeOpt(w.buf, w.pos, q, opt, reply.rcode);
    ar++;
  }
  if (reply.tsig) {
    // last in the message (RFC 8945 §5.1)
    w.pos = writeTsig(w.buf, w.pos, reply.tsig);
    ar++;
  }
  const b = w.buf;
  b[0] = q.id >> 8;
  b[1] = q.id & 0xff;
  // RD and CD are copied for QUERY only: their meaning is defined for no other opcode
  const query = q.opcode === 0;
  b[2] = 0x80 | (q.opcode << 3) | (reply.aa ? 0x04 : 0) | (tc ? 0x02 : 0) | (query ? (q.flags >> 8) & 0x01 : 0);
  b[3] = (query ? q.flags & 0x10 : 0) | (reply.rcode & 0x0f);
  b[4] = 0;
  b[5] = qd;
  b[6] = anCount >> 8;
  b[7] = anCount & 0xff;
  b[8] = ns >> 8;
  b[9] = ns & 0xff;
  b[10] = ar >> 8;
  b[11] = ar & 0xff;
  return w.pos;
}

/**
 * Writes whole RRsets; returns the record count, or when a set did not fit: -1 for the
 * strict sections, or ~count (the sets that did fit stay) with `partialOk`.
 */
function writeSection(w: MessageWriter, sets: readonly WireRRset[], partialOk = false): number {
  let n = 0;
  let prevMark = 0;
  for (let i = 0; i < sets.length; i++) {
    const s = sets[i]!;
    const m = w.mark();
    let ok = true;
    for (const rd of s.rdatas) {
      if (!w.record(s.ownerWire, s.type, s.ttl, rd)) { ok = false; break; }
    }
    if (!ok) {
      // an RRSIG that does not fit takes the RRset it signs (just before it) along: data left
      // without its signature in a signed reply would only make a validator fetch it again
      const prev = sets[i - 1];
      if (partialOk && s.type === RRType.RRSIG && prev !== undefined && prev.ownerWire === s.ownerWire) {
        w.rollback(prevMark);
        return ~(n - prev.rdatas.length);
      }
      w.rollback(m);
      return partialOk ? ~n : -1;
    }
    prevMark = m;
    n += s.rdatas.length;
  }
  return n;
}

/**
 * Writes the OPT pseudo-record (RFC 6891 §6.1.2) at b[p], echoing ECS with our scope
 * (RFC 7871 §7.2.1); returns the offset after it.
 */
export function writeOpt(b: Uint8Array, p: number, q: ParsedQuery, opt: OptOut, rcode: number): number {
  b[p++] = 0;
  b[p++] = 0; b[p++] = 41;
  b[p++] = opt.udpSize >> 8; b[p++] = opt.udpSize & 0xff;
  b[p++] = (rcode >> 4) & 0xff;
  b[p++] = 0;
  b[p++] = q.dnssecOk ? 0x80 : 0;
  b[p++] = 0;
  if (echoesEcs(q, rcode)) {
    const n = (q.ecsSourcePrefix + 7) >> 3;
    const rdlen = 8 + n;
    b[p++] = 0; b[p++] = rdlen;
    b[p++] = 0; b[p++] = 8;
    b[p++] = 0; b[p++] = 4 + n;
    b[p++] = 0; b[p++] = q.ecsFamily;
    b[p++] = q.ecsSourcePrefix;
    b[p++] = opt.ecsScope;
    for (let i = 0; i < n; i++) b[p++] = q.ecsAddress[i]!;
  } else {
    b[p++] = 0; b[p++] = 0;
  }
  return p;
}

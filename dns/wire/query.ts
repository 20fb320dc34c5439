/**
 * Query validation and parsing, in place, before anything else looks at a packet.
 *
 * Every packet is walked once with explicit bounds: header, the one question, then every
 * record of the other sections (names followed only through backward pointers, so neither
 * loops nor long forward chains can make the walk more than linear). The result lands in a
 * reused ParsedQuery object so the common case allocates nothing.
 */

/** What the server should do with a packet. */
export const QueryStatus = {
  /** Answer it. */
  Ok: 0,
  /** Send nothing: too short to carry a header, or a response (QR=1). */
  Drop: 1,
  /** Answer FORMERR (header and, when it parsed, the question). */
  FormErr: 2,
  /** Answer NOTIMP: an opcode other than QUERY. */
  NotImp: 3,
  /** Answer BADVERS: EDNS version above 0. */
  BadVers: 4,
  /** Signed with TSIG (the last additional record), whose key this server cannot know: it has none. */
  Tsig: 5,
} as const;
export type QueryStatus = (typeof QueryStatus)[keyof typeof QueryStatus];

/** Fields of a query; a reused object, valid until the next parse. */
export class ParsedQuery {
  id = 0;
  /** header byte 2 and 3 as received */
  flags = 0;
  opcode = 0;
  /** offset of the question name inside the packet buffer, and its wire length */
  qnameOff = 0;
  qnameLen = 0;
  /** offset just after the question (qtype and qclass included) */
  questionEnd = 0;
  qtype = 0;
  qclass = 0;
  /** FNV-1a over the lowercased question name and the type: a cache key, not an identity */
  hash = 0;
  /** did the question parse (so that an error reply can echo it) */
  hasQuestion = false;
  /** EDNS: present, requestor's UDP size, version, DO bit */
  edns = false;
  udpSize = 0;
  ednsVersion = 0;
  dnssecOk = false;
  /** EDNS Client Subnet, when present (RFC 7871) */
  ecs = false;
  ecsFamily = 0;
  ecsSourcePrefix = 0;
  /** the address bytes as sent (ceil(source/8) of them), left-aligned in a 16-byte array */
  readonly ecsAddress = new Uint8Array(16);
  /** TSIG (RFC 8945 §4.2), when the query ends with one: key and algorithm names (uncompressed wire), fields echoed in the error */
  tsig = false;
  tsigKey: Uint8Array = EMPTY;
  tsigAlgorithm: Uint8Array = EMPTY;
  readonly tsigTime = new Uint8Array(6);
  tsigFudge = 0;
  tsigOriginalId = 0;
  /** reason for FORMERR/Drop, for logs and tests */
  error = '';
}

const EMPTY = new Uint8Array(0);
const MAX_UDP_PAYLOAD_FLOOR = 512;
const OPT = 41;
const TSIG = 250;
const ECS_OPTION = 8;

/**
 * Validates and parses the packet buf[off, off+len). Returns what to do; `q` holds the fields.
 * Never throws and never reads outside [off, off+len).
 */
export function parseQuery(buf: Uint8Array, off: number, len: number, q: ParsedQuery): QueryStatus {
  q.hasQuestion = false;
  q.edns = false;
  q.ecs = false;
  q.tsig = false;
  q.error = '';
  if (len < 12) { q.error = 'shorter than a header'; return QueryStatus.Drop; }
  const end = off + len;
  const b2 = buf[off + 2]!;
  if (b2 & 0x80) { q.error = 'QR set'; return QueryStatus.Drop; }
  q.id = (buf[off]! << 8) | buf[off + 1]!;
  q.flags = (b2 << 8) | buf[off + 3]!;
  q.opcode = (b2 >> 3) & 0x0f;
  const qd = (buf[off + 4]! << 8) | buf[off + 5]!;
  const an = (buf[off + 6]! << 8) | buf[off + 7]!;
  const ns = (buf[off + 8]! << 8) | buf[off + 9]!;
  const ar = (buf[off + 10]! << 8) | buf[off + 11]!;
  if (q.opcode !== 0) {
    // still try to echo the question in the NOTIMP reply
    if (qd === 1) parseQuestion(buf, off, end, q);
    q.error = `opcode ${q.opcode}`;
    return QueryStatus.NotImp;
  }
  if (qd !== 1) { q.error = `QDCOUNT ${qd}`; return QueryStatus.FormErr; }
  if (!parseQuestion(buf, off, end, q)) return QueryStatus.FormErr;
  let p = q.questionEnd;
  // every record needs at least 11 bytes: reject absurd counts before walking anything
  if ((an + ns + ar) * 11 > end - p) { q.error = 'record counts exceed the packet'; return QueryStatus.FormErr; }
  for (let i = 0; i < an + ns; i++) {
    p = skipRecord(buf, off, end, p, q);
    if (p < 0) return QueryStatus.FormErr;
  }
  let status: QueryStatus = QueryStatus.Ok;
  for (let i = 0; i < ar; i++) {
    const nameStart = p;
    p = skipName(buf, off, end, p);
    if (p < 0 || p + 10 > end) { q.error = 'truncated additional record'; return QueryStatus.FormErr; }
    const type = (buf[p]! << 8) | buf[p + 1]!;
    const rdlen = (buf[p + 8]! << 8) | buf[p + 9]!;
    const rdStart = p + 10;
    if (rdStart + rdlen > end) { q.error = 'RDLENGTH past the end'; return QueryStatus.FormErr; }
    if (type === OPT) {
      if (q.edns) { q.error = 'more than one OPT'; q.edns = false; return QueryStatus.FormErr; }
      // RFC 6891 §6.1.1: the OPT owner is the root
      if (buf[nameStart] !== 0 || p !== nameStart + 1) { q.error = 'OPT owner is not the root'; return QueryStatus.FormErr; }
      q.edns = true;
      const size = (buf[p + 2]! << 8) | buf[p + 3]!;
      q.udpSize = size < MAX_UDP_PAYLOAD_FLOOR ? MAX_UDP_PAYLOAD_FLOOR : size;
      q.ednsVersion = buf[p + 5]!;
      q.dnssecOk = (buf[p + 6]! & 0x80) !== 0;
      if (!parseOptions(buf, rdStart, rdStart + rdlen, q)) {
        status = QueryStatus.FormErr;
      } else if (q.ednsVersion !== 0 && status === QueryStatus.Ok) {
        status = QueryStatus.BadVers;
      }
    }
    if (type === TSIG) {
      // RFC 8945 §5.1: only as the last record of the additional section
      if (i !== ar - 1) { q.error = 'TSIG is not the last record'; return QueryStatus.FormErr; }
      if (!parseTsig(buf, off, nameStart, rdStart, rdStart + rdlen, q)) return QueryStatus.FormErr;
    }
    p = rdStart + rdlen;
  }
  if (p !== end && status === QueryStatus.Ok) {
    // trailing garbage after the counted records: treat like BIND and NSD, as a format error
    q.error = 'trailing bytes after the last record';
    return QueryStatus.FormErr;
  }
  if (status === QueryStatus.Ok && q.tsig) return QueryStatus.Tsig;
  return status;
}

/** Reads the TSIG owner (the key name) and the RDATA fields an error reply echoes; false (FORMERR) when the RDATA is malformed. */
function parseTsig(buf: Uint8Array, off: number, nameStart: number, p: number, end: number, q: ParsedQuery): boolean {
  const key = expandName(buf, off, nameStart);
  // the algorithm name is never compressed (RFC 8945 §4.2, RFC 3597 §4)
  let a = p;
  for (;;) {
    if (a >= end) { q.error = 'TSIG algorithm name runs past the RDATA'; return false; }
    const l = buf[a]!;
    if (l === 0) { a++; break; }
    if (l > 63) { q.error = 'TSIG algorithm name is compressed or invalid'; return false; }
    a += 1 + l;
  }
  if (a - p > 255) { q.error = 'malformed TSIG names'; return false; }
  // time signed (6), fudge (2), MAC size (2), MAC, original ID (2), error (2), other len (2), other data
  if (a + 10 > end) { q.error = 'TSIG RDATA too short'; return false; }
  const macSize = (buf[a + 8]! << 8) | buf[a + 9]!;
  const m = a + 10 + macSize;
  if (m + 6 > end) { q.error = 'TSIG MAC runs past the RDATA'; return false; }
  const otherLen = (buf[m + 4]! << 8) | buf[m + 5]!;
  if (m + 6 + otherLen !== end) { q.error = 'TSIG other data does not end the RDATA'; return false; }
  q.tsig = true;
  q.tsigKey = key;
  q.tsigAlgorithm = buf.slice(p, a);
  q.tsigTime.set(buf.subarray(a, a + 6));
  q.tsigFudge = (buf[a + 6]! << 8) | buf[a + 7]!;
  q.tsigOriginalId = (buf[m]! << 8) | buf[m + 1]!;
  return true;
}

/** The possibly compressed name at p, already validated by skipName, as uncompressed wire bytes. */
function expandName(buf: Uint8Array, off: number, p: number): Uint8Array {
  const out: number[] = [];
  for (let cur = p; ;) {
    const l = buf[cur]!;
    if ((l & 0xc0) === 0xc0) { cur = off + (((l & 0x3f) << 8) | buf[cur + 1]!); continue; }
    out.push(l);
    if (l === 0) return Uint8Array.from(out);
    for (let i = 1; i <= l; i++) out.push(buf[cur + i]!);
    cur += 1 + l;
  }
}

/** Parses the question at off+12; the name must be uncompressed (nothing precedes it to point to). */
function parseQuestion(buf: Uint8Array, off: number, end: number, q: ParsedQuery): boolean {
  let p = off + 12;
  let h = 0x811c9dc5;
  let total = 0;
  for (;;) {
    if (p >= end) { q.error = 'question name runs past the end'; return false; }
    const l = buf[p]!;
    if (l === 0) { p++; total++; break; }
    if (l > 63) { q.error = 'compressed or invalid label in the question'; return false; }
    if (p + 1 + l > end) { q.error = 'question label runs past the end'; return false; }
    total += l + 1;
    if (total > 254) { q.error = 'question name longer than 255 octets'; return false; }
    h = Math.imul(h ^ l, 0x01000193);
    for (let i = p + 1; i <= p + l; i++) {
      let c = buf[i]!;
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      h = Math.imul(h ^ c, 0x01000193);
    }
    p += 1 + l;
  }
  if (p + 4 > end) { q.error = 'question type/class missing'; return false; }
  q.qnameOff = off + 12;
  q.qnameLen = total;
  q.qtype = (buf[p]! << 8) | buf[p + 1]!;
  q.qclass = (buf[p + 2]! << 8) | buf[p + 3]!;
  q.hash = Math.imul(h ^ q.qtype, 0x01000193) >>> 0;
  q.questionEnd = p + 4;
  q.hasQuestion = true;
  return true;
}

/**
 * Skips a possibly compressed name starting at p; returns the offset after it, or -1.
 * Pointers must point strictly backwards, to before the label that holds them, which bounds
 * the walk by the packet length and rules out loops.
 */
export function skipName(buf: Uint8Array, off: number, end: number, p: number): number {
  let cur = p;
  let after = -1;
  let total = 0;
  for (let steps = 0; steps < 256; steps++) {
    if (cur >= end) return -1;
    const l = buf[cur]!;
    if (l === 0) return after < 0 ? cur + 1 : after;
    const kind = l & 0xc0;
    if (kind === 0xc0) {
      if (cur + 1 >= end) return -1;
      const target = off + (((l & 0x3f) << 8) | buf[cur + 1]!);
      if (target >= cur || target < off + 12) return -1;
      if (after < 0) after = cur + 2;
      cur = target;
      continue;
    }
    if (kind !== 0) return -1;
    total += l + 1;
    if (total > 254 || cur + 1 + l > end) return -1;
    cur += 1 + l;
  }
  return -1;
}

function skipRecord(buf: Uint8Array, off: number, end: number, p: number, q: ParsedQuery): number {
  const n = skipName(buf, off, end, p);
  if (n < 0 || n + 10 > end) { q.error = 'malformed record'; return -1; }
  const rdlen = (buf[n + 8]! << 8) | buf[n + 9]!;
  if (n + 10 + rdlen > end) { q.error = 'RDLENGTH past the end'; return -1; }
  return n + 10 + rdlen;
}

/** Walks EDNS options; validates ECS strictly (RFC 7871 §6, §7.1.1). */
function parseOptions(buf: Uint8Array, p: number, end: number, q: ParsedQuery): boolean {
  while (p < end) {
    if (p + 4 > end) { q.error = 'truncated EDNS option'; return false; }
    const code = (buf[p]! << 8) | buf[p + 1]!;
    const olen = (buf[p + 2]! << 8) | buf[p + 3]!;
    const d = p + 4;
    if (d + olen > end) { q.error = 'EDNS option longer than the OPT data'; return false; }
    if (code === ECS_OPTION) {
      if (q.ecs) { q.error = 'more than one client subnet option'; return false; }
      if (olen < 4) { q.error = 'client subnet option too short'; return false; }
      const family = (buf[d]! << 8) | buf[d + 1]!;
      const source = buf[d + 2]!;
      const scope = buf[d + 3]!;
      const max = family === 1 ? 32 : family === 2 ? 128 : -1;
      if (max < 0) { q.error = `client subnet family ${family}`; return false; }
      if (source > max) { q.error = `client subnet source prefix /${source} too long`; return false; }
      if (scope !== 0) { q.error = 'client subnet scope prefix must be 0 in queries'; return false; }
      const nbytes = (source + 7) >> 3;
      if (olen !== 4 + nbytes) { q.error = 'client subnet address length does not match its prefix'; return false; }
      q.ecsAddress.fill(0);
      for (let i = 0; i < nbytes; i++) q.ecsAddress[i] = buf[d + 4 + i]!;
      // bits beyond the source prefix must be zero (RFC 7871 §6)
      if (source & 7 && nbytes > 0 && (q.ecsAddress[nbytes - 1]! & (0xff >> (source & 7))) !== 0) {
        q.error = 'client subnet address has bits set beyond its prefix';
        return false;
      }
      q.ecs = true;
      q.ecsFamily = family;
      q.ecsSourcePrefix = source;
    }
    p = d + olen;
  }
  return true;
}

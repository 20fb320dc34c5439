/**
 * RDATA in master-file presentation form <-> uncompressed wire form (RFC 1035 §5, RFC 3597 for
 * the generic `\# <length> <hex>` form). Errors are RdataError with a reason that says what was
 * expected; the zone parser adds file:line.
 */
import { parseAddress, writeIPv4 } from '../../shared/ip.js';
import { NameError, nameToWire, readUncompressedNameAsIs } from '../wire/name.js';
import { RRType, typeName } from '../wire/types.js';
import { formatIPv6 } from '../../shared/ip-text.js';

/** One master-file token: raw text (escapes kept, surrounding quotes removed) and whether it was quoted. */
export interface RdataToken {
  readonly text: string;
  readonly quoted: boolean;
}

/** Master-file text that cannot be parsed; the message says what was expected (callers add file:line). */
export class RdataError extends Error {}

const MAX_TTL = 0x7fffffff; // RFC 2181 §8
const MAX_U32 = 0xffffffff;
const MAX_RDATA = 0xffff;

/** Growable byte buffer; RDATA is small, so this stays cheap. */
class ByteWriter {
  buf = new Uint8Array(64);
  len = 0;

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.len++] = v;
  }

  u16(v: number): void {
    this.room(2);
    this.buf[this.len++] = v >>> 8;
    this.buf[this.len++] = v & 0xff;
  }

  u32(v: number): void {
    this.room(4);
    this.buf[this.len++] = v >>> 24;
    this.buf[this.len++] = (v >>> 16) & 0xff;
    this.buf[this.len++] = (v >>> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  done(): Uint8Array {
    if (this.len > MAX_RDATA) throw new RdataError(`RDATA longer than ${MAX_RDATA} bytes`);
    return this.buf.slice(0, this.len);
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** Number of backslashes directly before position `end`. */
function backslashesBefore(text: string, end: number): number {
  let bs = 0;
  for (let i = end - 1; i >= 0 && text.charCodeAt(i) === 0x5c; i--) bs++;
  return bs;
}

/**
 * Completes a master-file name: `@` is the origin, relative names get the origin appended.
 * Throws NameError for a trailing lone backslash, which would otherwise escape the joining dot.
 */
export function resolveName(text: string, origin: string): string {
  if (text === '@') return origin;
  const n = text.length;
  const last = text.charCodeAt(n - 1);
  // `\.` is a literal dot inside a label, `\\.` is an escaped backslash followed by a separator
  if (last === 0x2e && backslashesBefore(text, n - 1) % 2 === 0) return text;
  if (last === 0x5c && backslashesBefore(text, n) % 2 === 1) throw new NameError(`dangling backslash in "${text}"`);
  return origin === '.' ? text + '.' : text + '.' + origin;
}

/** Seconds from a TTL such as `3600`, `1h30m` or `2W` (BIND units w/d/h/m/s); undefined if malformed. */
function parseDuration(text: string, max: number): number | undefined {
  const n = text.length;
  if (n === 0) return undefined;
  let total = 0;
  let val = 0;
  let digits = 0;
  let sawUnit = false;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (isDigit(c)) {
      val = val * 10 + (c - 0x30);
      if (++digits > 10) return undefined;
      continue;
    }
    if (digits === 0) return undefined;
    let mult: number;
    switch (c | 0x20) {
      case 0x77: mult = 604800; break; // w
      case 0x64: mult = 86400; break; // d
      case 0x68: mult = 3600; break; // h
      case 0x6d: mult = 60; break; // m
      case 0x73: mult = 1; break; // s
      default: return undefined;
    }
    total += val * mult;
    val = 0;
    digits = 0;
    sawUnit = true;
  }
  if (digits > 0) {
    // BIND accepts a bare number only on its own, not trailing after units ("1h30")
    if (sawUnit) return undefined;
    total = val;
  }
  // NaN tells the caller "well-formed but too large", which deserves its own message
  return total <= max ? total : Number.NaN;
}

/** TTL in seconds from `3600` or BIND unit syntax (`1h30m`, `2d`, `1w`); throws RdataError. */
export function parseTtl(text: string, what = 'TTL', max: number = MAX_TTL): number {
  const v = parseDuration(text, max);
  if (v === undefined) throw new RdataError(`bad ${what} "${text}" (expected seconds or units like 1h30m)`);
  if (Number.isNaN(v)) throw new RdataError(`${what} "${text}" out of range (max ${max})`);
  return v;
}

function parseUint(tok: RdataToken, max: number, what: string): number {
  const t = tok.text;
  let v = 0;
  const ok = !tok.quoted && t.length > 0 && t.length <= 10;
  if (ok) {
    for (let i = 0; i < t.length; i++) {
      const c = t.charCodeAt(i);
      if (!isDigit(c)) { v = -1; break; }
      v = v * 10 + (c - 0x30);
    }
  }
  if (!ok || v < 0 || v > max) throw new RdataError(`bad ${what} "${t}" (expected an integer 0-${max})`);
  return v;
}

/** 16 bytes of an IPv6 address (shared/ip.ts rules), undefined when `s` is not one. */
function ipv6Bytes(s: string): Uint8Array | undefined {
  if (!s.includes(':')) return undefined;
  try {
    return parseAddress(s).bytes;
  } catch {
    return undefined;
  }
}

function writeUtf8(cp: number, w: ByteWriter): void {
  if (cp < 0x800) {
    w.u8(0xc0 | (cp >> 6));
  } else if (cp < 0x10000) {
    w.u8(0xe0 | (cp >> 12));
    w.u8(0x80 | ((cp >> 6) & 0x3f));
  } else {
    w.u8(0xf0 | (cp >> 18));
    w.u8(0x80 | ((cp >> 12) & 0x3f));
    w.u8(0x80 | ((cp >> 6) & 0x3f));
  }
  w.u8(0x80 | (cp & 0x3f));
}

/** Appends the bytes of `text` with `\X` and `\DDD` escapes resolved (non-ASCII as UTF-8). */
function decodeEscapes(text: string, w: ByteWriter): void {
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x5c) {
      if (i + 1 >= n) throw new RdataError(`dangling backslash in "${text}"`);
      const d1 = text.charCodeAt(i + 1);
      if (isDigit(d1)) {
        const d2 = text.charCodeAt(i + 2);
        const d3 = text.charCodeAt(i + 3);
        if (!isDigit(d2) || !isDigit(d3)) throw new RdataError(`bad escape in "${text}" (expected \\DDD)`);
        const v = (d1 - 0x30) * 100 + (d2 - 0x30) * 10 + (d3 - 0x30);
        if (v > 255) throw new RdataError(`bad escape in "${text}" (\\DDD above 255)`);
        w.u8(v);
        i += 4;
        continue;
      }
      i++; // the escaped character is taken literally below
    }
    const l = text.charCodeAt(i);
    if (l < 0x80) {
      w.u8(l);
      i++;
    } else {
      const cp = text.codePointAt(i)!;
      writeUtf8(cp, w);
      i += cp > 0xffff ? 2 : 1;
    }
  }
}

function writeCharString(tok: RdataToken, w: ByteWriter, what: string): void {
  const at = w.len;
  w.u8(0);
  decodeEscapes(tok.text, w);
  const n = w.len - at - 1;
  if (n > 255) throw new RdataError(`${what} longer than 255 bytes (split it into several quoted strings)`);
  w.buf[at] = n;
}

function nameWire(tok: RdataToken, origin: string, what: string): Uint8Array {
  if (tok.quoted) throw new RdataError(`expected a domain name for ${what}, got a quoted string`);
  try {
    return nameToWire(resolveName(tok.text, origin));
  } catch (e) {
    if (e instanceof NameError) throw new RdataError(`bad ${what} "${tok.text}": ${e.message}`);
    throw e;
  }
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

function parseGeneric(type: number, tokens: readonly RdataToken[], start: number, end: number): Uint8Array {
  const lenTok = start + 1 < end ? tokens[start + 1] : undefined;
  if (lenTok === undefined) throw new RdataError('missing length after \\# (expected \\# <length> <hex>)');
  const len = parseUint(lenTok, MAX_RDATA, '\\# length');
  const out = new Uint8Array(len);
  let nibbles = 0;
  for (let i = start + 2; i < end; i++) {
    const t = tokens[i]!;
    if (t.quoted) throw new RdataError('expected hex digits after \\# <length>, got a quoted string');
    for (let j = 0; j < t.text.length; j++) {
      const v = hexVal(t.text.charCodeAt(j));
      if (v < 0) throw new RdataError(`bad hex "${t.text}" in \\# RDATA`);
      if (nibbles >= len * 2) throw new RdataError(`\\# RDATA has more than the ${len} bytes declared`);
      const b = nibbles >> 1;
      out[b] = (nibbles & 1) === 0 ? v << 4 : out[b]! | v;
      nibbles++;
    }
  }
  if (nibbles !== len * 2) {
    throw new RdataError(`\\# RDATA declares ${len} bytes but has ${nibbles / 2} (expected ${len * 2} hex digits)`);
  }
  try {
    formatKnown(type, out);
  } catch (e) {
    if (e instanceof RdataError) throw new RdataError(`malformed \\# RDATA for ${typeName(type)}: ${e.message}`);
    throw e;
  }
  return out;
}

/** True for types whose presentation form this module parses and formats (others need `\#`). */
export function hasTextForm(type: number): boolean {
  switch (type) {
    case RRType.A: case RRType.AAAA: case RRType.NS: case RRType.CNAME: case RRType.PTR:
    case RRType.DNAME: case RRType.MX: case RRType.TXT: case RRType.SPF: case RRType.SRV:
    case RRType.CAA: case RRType.SOA: case RRType.HINFO: case RRType.DS:
      return true;
    default:
      return false;
  }
}

/**
 * Uncompressed wire RDATA for tokens[start, end) of one record; relative names are completed with
 * `origin` (absolute, case kept). Throws RdataError naming what was expected.
 */
export function parseRdata(
  type: number, tokens: readonly RdataToken[], origin: string, start = 0, end = tokens.length,
): Uint8Array {
  const first = start < end ? tokens[start] : undefined;
  if (first !== undefined && !first.quoted) {
    if (first.text === '\\#') return parseGeneric(type, tokens, start, end);
    // A records dominate large zones, so they skip the general machinery below
    if (type === RRType.A && end - start === 1) {
      const a = new Uint8Array(4);
      if (!writeIPv4(first.text, a, 0)) throw new RdataError(`bad IPv4 address "${first.text}"`);
      return a;
    }
  }
  let i = start;
  const next = (what: string): RdataToken => {
    const t = i < end ? tokens[i] : undefined;
    i++;
    if (t === undefined) throw new RdataError(`missing ${what} in ${typeName(type)} RDATA`);
    return t;
  };
  const name = typeName(type);
  let rdata: Uint8Array;
  switch (type) {
    case RRType.A: {
      const t = next('IPv4 address');
      rdata = new Uint8Array(4);
      if (t.quoted || !writeIPv4(t.text, rdata, 0)) throw new RdataError(`bad IPv4 address "${t.text}"`);
      break;
    }
    case RRType.AAAA: {
      const t = next('IPv6 address');
      const a = t.quoted ? undefined : ipv6Bytes(t.text);
      if (a === undefined) throw new RdataError(`bad IPv6 address "${t.text}"`);
      rdata = a;
      break;
    }
    case RRType.NS: case RRType.CNAME: case RRType.PTR: case RRType.DNAME: {
      rdata = nameWire(next('target name'), origin, `${name} target`);
      break;
    }
    case RRType.MX: {
      const w = new ByteWriter();
      w.u16(parseUint(next('preference'), 0xffff, 'MX preference'));
      w.bytes(nameWire(next('exchange name'), origin, 'MX exchange'));
      rdata = w.done();
      break;
    }
    case RRType.SRV: {
      const w = new ByteWriter();
      w.u16(parseUint(next('priority'), 0xffff, 'SRV priority'));
      w.u16(parseUint(next('weight'), 0xffff, 'SRV weight'));
      w.u16(parseUint(next('port'), 0xffff, 'SRV port'));
      w.bytes(nameWire(next('target name'), origin, 'SRV target'));
      rdata = w.done();
      break;
    }
    case RRType.TXT: case RRType.SPF: {
      const w = new ByteWriter();
      next('text');
      i--;
      while (i < end) writeCharString(tokens[i++]!, w, `${name} string`);
      rdata = w.done();
      break;
    }
    case RRType.HINFO: {
      const w = new ByteWriter();
      writeCharString(next('CPU string'), w, 'HINFO CPU');
      writeCharString(next('OS string'), w, 'HINFO OS');
      rdata = w.done();
      break;
    }
    case RRType.CAA: {
      const w = new ByteWriter();
      w.u8(parseUint(next('flags'), 255, 'CAA flags'));
      const tag = next('tag');
      if (tag.quoted || !/^[A-Za-z0-9]{1,15}$/.test(tag.text)) {
        throw new RdataError(`bad CAA tag "${tag.text}" (expected 1-15 letters and digits)`);
      }
      w.u8(tag.text.length);
      for (let k = 0; k < tag.text.length; k++) w.u8(tag.text.charCodeAt(k));
      decodeEscapes(next('value').text, w);
      rdata = w.done();
      break;
    }
    case RRType.SOA: {
      const w = new ByteWriter();
      w.bytes(nameWire(next('primary server name'), origin, 'SOA MNAME'));
      w.bytes(nameWire(next('responsible mailbox name'), origin, 'SOA RNAME'));
      w.u32(parseUint(next('serial'), MAX_U32, 'SOA serial'));
      for (const field of ['refresh', 'retry', 'expire', 'minimum']) {
        const t = next(field);
        if (t.quoted) throw new RdataError(`bad SOA ${field} "${t.text}" (expected seconds or units like 1h30m)`);
        w.u32(parseTtl(t.text, `SOA ${field}`, MAX_U32));
      }
      rdata = w.done();
      break;
    }
    case RRType.DS: {
      // RFC 4034 §5.3: key tag, algorithm, digest type, then the digest in hex (spaces allowed)
      const w = new ByteWriter();
      w.u16(parseUint(next('key tag'), 0xffff, 'DS key tag'));
      w.u8(parseUint(next('algorithm'), 255, 'DS algorithm'));
      w.u8(parseUint(next('digest type'), 255, 'DS digest type'));
      let hex = next('digest').text;
      while (i < end) hex += tokens[i++]!.text;
      if (!/^(?:[0-9a-fA-F]{2})+$/.test(hex)) throw new RdataError(`bad DS digest "${hex}" (expected hex digits)`);
      w.bytes(Buffer.from(hex, 'hex'));
      rdata = w.done();
      break;
    }
    default:
      throw new RdataError(`type ${name} is only supported in the RFC 3597 form \\# <length> <hex>`);
  }
  const extra = i < end ? tokens[i] : undefined;
  if (extra !== undefined) throw new RdataError(`unexpected "${extra.text}" after ${name} RDATA`);
  return rdata;
}

/** Sequential reader over RDATA that throws RdataError when the bytes do not fit the type. */
class Reader {
  o = 0;
  constructor(readonly b: Uint8Array) {}

  private need(n: number): void {
    if (this.o + n > this.b.length) throw new RdataError('RDATA too short');
  }

  u8(): number {
    this.need(1);
    return this.b[this.o++]!;
  }

  u16(): number {
    this.need(2);
    const v = (this.b[this.o]! << 8) | this.b[this.o + 1]!;
    this.o += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = ((this.b[this.o]! << 24) | (this.b[this.o + 1]! << 16) | (this.b[this.o + 2]! << 8) |
      this.b[this.o + 3]!) >>> 0;
    this.o += 4;
    return v;
  }

  name(): string {
    try {
      const r = readUncompressedNameAsIs(this.b, this.o);
      if (r.end - this.o > 255) throw new RdataError('name longer than 255 octets');
      this.o = r.end;
      return r.name;
    } catch (e) {
      if (e instanceof NameError) throw new RdataError(e.message);
      throw e;
    }
  }

  charString(): string {
    const n = this.u8();
    this.need(n);
    const s = quoteBytes(this.b, this.o, this.o + n);
    this.o += n;
    return s;
  }

  atEnd(): boolean {
    return this.o === this.b.length;
  }

  end(): void {
    if (!this.atEnd()) throw new RdataError(`${this.b.length - this.o} trailing bytes in RDATA`);
  }
}

/** `"..."` with `"` and `\` escaped and non-printable bytes as `\DDD`. */
function quoteBytes(b: Uint8Array, start: number, end: number): string {
  let s = '"';
  for (let i = start; i < end; i++) {
    const c = b[i]!;
    if (c === 0x22 || c === 0x5c) s += '\\' + String.fromCharCode(c);
    else if (c >= 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += '\\' + String(c).padStart(3, '0');
  }
  return s + '"';
}


/** Presentation text for the types this module knows; undefined for others; throws when malformed. */
function formatKnown(type: number, rdata: Uint8Array): string | undefined {
  const r = new Reader(rdata);
  let s: string;
  switch (type) {
    case RRType.A:
      if (rdata.length !== 4) throw new RdataError(`A RDATA must be 4 bytes, not ${rdata.length}`);
      return `${rdata[0]}.${rdata[1]}.${rdata[2]}.${rdata[3]}`;
    case RRType.AAAA:
      if (rdata.length !== 16) throw new RdataError(`AAAA RDATA must be 16 bytes, not ${rdata.length}`);
      return formatIPv6(rdata);
    case RRType.NS: case RRType.CNAME: case RRType.PTR: case RRType.DNAME:
      s = r.name();
      break;
    case RRType.MX:
      s = `${r.u16()} ${r.name()}`;
      break;
    case RRType.SRV:
      s = `${r.u16()} ${r.u16()} ${r.u16()} ${r.name()}`;
      break;
    case RRType.TXT: case RRType.SPF: {
      const parts: string[] = [r.charString()];
      while (!r.atEnd()) parts.push(r.charString());
      s = parts.join(' ');
      break;
    }
    case RRType.HINFO:
      s = `${r.charString()} ${r.charString()}`;
      break;
    case RRType.CAA: {
      const flags = r.u8();
      const tagLen = r.u8();
      if (tagLen === 0 || tagLen > 15) throw new RdataError(`CAA tag length ${tagLen} (expected 1-15)`);
      const tagStart = r.o;
      for (let k = 0; k < tagLen; k++) {
        const c = r.u8();
        const l = c | 0x20;
        if (!isDigit(c) && !(l >= 0x61 && l <= 0x7a)) throw new RdataError('CAA tag is not letters and digits');
      }
      const tag = String.fromCharCode(...rdata.subarray(tagStart, r.o));
      s = `${flags} ${tag} ${quoteBytes(rdata, r.o, rdata.length)}`;
      r.o = rdata.length;
      break;
    }
    case RRType.SOA:
      s = `${r.name()} ${r.name()} ${r.u32()} ${r.u32()} ${r.u32()} ${r.u32()} ${r.u32()}`;
      break;
    case RRType.DS:
      s = `${r.u16()} ${r.u8()} ${r.u8()} ${Buffer.from(rdata.subarray(4)).toString('hex').toUpperCase()}`;
      if (rdata.length === 4) throw new RdataError('DS without a digest');
      r.o = rdata.length;
      break;
    default:
      return undefined;
  }
  r.end();
  return s;
}

function formatGeneric(rdata: Uint8Array): string {
  if (rdata.length === 0) return '\\# 0';
  return `\\# ${rdata.length} ${Buffer.from(rdata.buffer, rdata.byteOffset, rdata.length).toString('hex')}`;
}

/** Presentation text of RDATA; RFC 3597 `\# <len> <hex>` for types not formatted here or malformed data. */
export function formatRdata(type: number, rdata: Uint8Array): string {
  try {
    return formatKnown(type, rdata) ?? formatGeneric(rdata);
  } catch (e) {
    if (e instanceof RdataError) return formatGeneric(rdata);
    throw e;
  }
}

/** Lowercases the ASCII letters of the uncompressed name at `off` in place; returns the offset after it. */
function lowerName(b: Uint8Array, off: number): number {
  let o = off;
  while (o < b.length) {
    const len = b[o]!;
    if (len === 0 || len > 63) return o + 1;
    for (let k = o + 1; k <= o + len && k < b.length; k++) {
      const c = b[k]!;
      if (c >= 0x41 && c <= 0x5a) b[k] = c | 0x20;
    }
    o += 1 + len;
  }
  return o;
}

/** RDATA with embedded names lowercased (RFC 4034 §6.2), so equal records compare byte-equal. */
export function canonicalRdata(type: number, rdata: Uint8Array): Uint8Array {
  switch (type) {
    case RRType.NS: case RRType.CNAME: case RRType.PTR: case RRType.DNAME: {
      const b = rdata.slice();
      lowerName(b, 0);
      return b;
    }
    case RRType.MX: {
      const b = rdata.slice();
      lowerName(b, 2);
      return b;
    }
    case RRType.SRV: {
      const b = rdata.slice();
      lowerName(b, 6);
      return b;
    }
    case RRType.SOA: {
      const b = rdata.slice();
      lowerName(b, lowerName(b, 0));
      return b;
    }
    default:
      return rdata;
  }
}

import { RRType } from './types.js';

/**
 * Builds a DNS message with RFC 1035 §4.1.4 name compression into a fixed buffer.
 * Writes are all-or-nothing per record set: `mark()`/`rollback()` undo a set that did not
 * fit, including the compression entries it added, so a truncated reply never holds a
 * partial RRset or a pointer into dropped bytes.
 */
export class MessageWriter {
  readonly buf: Buffer;
  pos = 0;
  limit: number;
  /** lowercased wire suffix (as latin1 string) -> offset of its first occurrence */
  private readonly names = new Map<string, number>();

  constructor(capacity: number) {
    this.buf = Buffer.alloc(capacity);
    this.limit = capacity;
  }

  reset(limit: number): void {
    this.pos = 0;
    this.limit = Math.min(limit, this.buf.length);
    this.names.clear();
  }

  /** True when n more bytes fit under the limit. */
  fits(n: number): boolean {
    return this.pos + n <= this.limit;
  }

  u16(v: number): void {
    this.buf[this.pos] = v >>> 8;
    this.buf[this.pos + 1] = v & 0xff;
    this.pos += 2;
  }

  u32(v: number): void {
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
  }

  bytes(src: Uint8Array, start = 0, end = src.length): void {
    this.buf.set(src.subarray(start, end), this.pos);
    this.pos += end - start;
  }

  /**
   * Registers the uncompressed name already written at `at` (e.g. the copied question) so
   * later names can point to it.
   */
  remember(at: number): void {
    let p = at;
    while (p < 0x3fff) {
      const l = this.buf[p]!;
      if (l === 0) return;
      const key = suffixKey(this.buf, p);
      if (!this.names.has(key)) this.names.set(key, p);
      p += 1 + l;
    }
  }

  /**
   * Writes an uncompressed wire name, compressed against names already in the message when
   * `compress` is set. Returns false (writing nothing useful) when it does not fit.
   */
  name(wire: Uint8Array, compress: boolean): boolean {
    let p = 0;
    while (wire[p] !== 0) {
      if (compress) {
        const key = suffixKey(wire, p);
        const at = this.names.get(key);
        if (at !== undefined) {
          if (!this.fits(2)) return false;
          this.u16(0xc000 | at);
          return true;
        }
        if (this.pos < 0x3fff) this.names.set(key, this.pos);
      }
      const l = wire[p]!;
      if (!this.fits(l + 1)) return false;
      this.bytes(wire, p, p + 1 + l);
      p += 1 + l;
    }
    if (!this.fits(1)) return false;
    this.buf[this.pos++] = 0;
    return true;
  }

  /** Writes one resource record; false when it did not fit (caller rolls back). */
  record(owner: Uint8Array, type: number, ttl: number, rdata: Uint8Array): boolean {
    if (!this.name(owner, true)) return false;
    if (!this.fits(10)) return false;
    this.u16(type);
    this.u16(1);
    this.u32(ttl);
    const lenAt = this.pos;
    this.pos += 2;
    if (!this.rdata(type, rdata)) return false;
    const rdlen = this.pos - lenAt - 2;
    this.buf[lenAt] = rdlen >>> 8;
    this.buf[lenAt + 1] = rdlen & 0xff;
    return true;
  }

  /** Compresses the names inside RDATA only for the types RFC 3597 §4 allows. */
  private rdata(type: number, rdata: Uint8Array): boolean {
    switch (type) {
      case RRType.NS:
      case RRType.CNAME:
      case RRType.PTR:
        return this.name(rdata, true);
      case RRType.MX: {
        if (!this.fits(2)) return false;
        this.bytes(rdata, 0, 2);
        return this.name(rdata.subarray(2), true);
      }
      case RRType.SOA: {
        const m = nameEnd(rdata, 0);
        const r = nameEnd(rdata, m);
        if (!this.name(rdata.subarray(0, m), true)) return false;
        if (!this.name(rdata.subarray(m, r), true)) return false;
        if (!this.fits(rdata.length - r)) return false;
        this.bytes(rdata, r);
        return true;
      }
      default:
        if (!this.fits(rdata.length)) return false;
        this.bytes(rdata);
        return true;
    }
  }

  /** A position to roll back to. */
  mark(): number {
    return this.pos;
  }

  /** Drops everything written after `m`, with the compression entries that point there. */
  rollback(m: number): void {
    if (this.pos === m) return;
    this.pos = m;
    for (const [k, v] of this.names) if (v >= m) this.names.delete(k);
  }
}

/** Offset just after the uncompressed name that starts at p. */
export function nameEnd(wire: Uint8Array, p: number): number {
  while (wire[p] !== 0) p += 1 + wire[p]!;
  return p + 1;
}

/** The uncompressed name suffix at p, lowercased, as a string key. */
function suffixKey(wire: Uint8Array, p: number): string {
  let s = '';
  for (;;) {
    const l = wire[p]!;
    s += String.fromCharCode(l);
    if (l === 0) return s;
    for (let i = p + 1; i <= p + l; i++) {
      const c = wire[i]!;
      s += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c | 0x20 : c);
    }
    p += 1 + l;
  }
}

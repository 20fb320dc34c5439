/**
 * Domain names. Inside the server a name is its presentation form, absolute (trailing dot),
 * ASCII-lowercased, with RFC 1035 §5.1 escapes (`\.`, `\\`, `\DDD`) for bytes that need them.
 * That string is a map key; the wire form is derived from it once, at load time.
 */

export class NameError extends Error {}

const MAX_NAME = 255;
const MAX_LABEL = 63;

function isPlain(b: number): boolean {
  // printable ASCII except the characters that are special in master files
  return b > 0x20 && b < 0x7f && b !== 0x2e && b !== 0x5c && b !== 0x22 && b !== 0x28 &&
    b !== 0x29 && b !== 0x3b && b !== 0x40 && b !== 0x24;
}

/** Appends one label's presentation text for wire bytes [start, end). */
function labelText(buf: Uint8Array, start: number, end: number, lower: boolean): string {
  let s = '';
  for (let i = start; i < end; i++) {
    let b = buf[i]!;
    if (lower && b >= 0x41 && b <= 0x5a) b |= 0x20;
    if (isPlain(b)) s += String.fromCharCode(b);
    else if (b === 0x2e || b === 0x5c || b === 0x22 || b === 0x28 || b === 0x29 || b === 0x3b ||
      b === 0x40 || b === 0x24) s += '\\' + String.fromCharCode(b);
    else s += '\\' + String(b).padStart(3, '0');
  }
  return s;
}

/** Splits a presentation name into label byte arrays; throws NameError on bad syntax. */
export function labelsOf(name: string): Uint8Array[] {
  if (name === '.' ) return [];
  const labels: Uint8Array[] = [];
  let cur: number[] = [];
  let i = 0;
  const n = name.length;
  while (i < n) {
    const c = name.charCodeAt(i);
    if (c === 0x2e) {
      if (cur.length === 0) throw new NameError(`empty label in "${name}"`);
      labels.push(Uint8Array.from(cur));
      cur = [];
      i++;
      continue;
    }
    if (c === 0x5c) {
      const d = name.slice(i + 1, i + 4);
      if (/^\d{3}$/.test(d)) {
        const v = Number(d);
        if (v > 255) throw new NameError(`escape \\${d} out of range in "${name}"`);
        cur.push(v);
        i += 4;
      } else if (i + 1 < n) {
        cur.push(name.charCodeAt(i + 1) & 0xff);
        i += 2;
      } else {
        throw new NameError(`dangling backslash in "${name}"`);
      }
    } else {
      if (c > 0x7e) throw new NameError(`non-ASCII character in "${name}"`);
      cur.push(c);
      i++;
    }
    if (cur.length > MAX_LABEL) throw new NameError(`label longer than 63 octets in "${name}"`);
  }
  if (cur.length > 0) labels.push(Uint8Array.from(cur));
  let total = 1;
  for (const l of labels) total += l.length + 1;
  if (total > MAX_NAME) throw new NameError(`name longer than 255 octets: "${name}"`);
  return labels;
}

/** Canonical (lowercase, escaped, absolute) form of a presentation name that is already absolute. */
export function canonicalName(name: string): string {
  const labels = labelsOf(name);
  if (labels.length === 0) return '.';
  let s = '';
  for (const l of labels) s += labelText(l, 0, l.length, true) + '.';
  return s;
}

/** Uncompressed wire form of an absolute presentation name. */
export function nameToWire(name: string): Uint8Array {
  if (name.indexOf('\\') < 0 && name.charCodeAt(name.length - 1) === 0x2e) {
    const fast = plainNameToWire(name);
    if (fast) return fast;
  }
  // escapes, or something wrong: the careful path, which also words the error
  const labels = labelsOf(name);
  let len = 1;
  for (const l of labels) len += l.length + 1;
  const out = new Uint8Array(len);
  let o = 0;
  for (const l of labels) {
    out[o++] = l.length;
    out.set(l, o);
    o += l.length;
  }
  out[o] = 0;
  return out;
}

/** The common case without escapes, in one pass (zone loading calls this per owner); undefined when not that case. */
function plainNameToWire(name: string): Uint8Array | undefined {
  const n = name.length;
  if (n === 1) return new Uint8Array(1);
  if (n > 254) return undefined;
  const out = new Uint8Array(n + 1);
  let lenAt = 0;
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x2e) {
      const l = i - lenAt;
      if (l === 0 || l > MAX_LABEL) return undefined;
      out[lenAt] = l;
      lenAt = i + 1;
    } else {
      if (c > 0x7e) return undefined;
      out[i + 1] = c;
    }
  }
  out[n] = 0;
  return out;
}

/**
 * Reads an uncompressed name at `off` (as stored in our own RDATA); returns the name, canonical
 * (lowercased) unless `keepCase`, and the offset after it. Throws NameError when the bytes are
 * not a valid name.
 */
export function readUncompressedName(buf: Uint8Array, off: number, keepCase = false): { name: string; end: number } {
  let s = '';
  let o = off;
  for (;;) {
    if (o >= buf.length) throw new NameError('name runs past the end of its data');
    const len = buf[o]!;
    if (len === 0) return { name: s === '' ? '.' : s, end: o + 1 };
    if (len > MAX_LABEL) throw new NameError('compressed or oversized label in rdata name');
    if (o + 1 + len > buf.length) throw new NameError('label runs past the end of its data');
    s += labelText(buf, o + 1, o + 1 + len, !keepCase) + '.';
    o += 1 + len;
  }
}

/** Canonical name of wire labels between [start, end) that end with the root label (no pointers). */
export function wireLabelsToName(buf: Uint8Array, start: number): string {
  return readUncompressedName(buf, start).name;
}

/** Parent of a canonical name ('.' has none). */
export function parentName(name: string): string | undefined {
  if (name === '.') return undefined;
  // labels may contain escaped dots, so walk the escapes
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x5c) { i += /\d/.test(name[i + 1] ?? '') ? 3 : 1; continue; }
    if (c === 0x2e) return i === name.length - 1 ? '.' : name.slice(i + 1);
  }
  return '.';
}

/** True when `name` equals `zone` or lies below it (both canonical). */
export function isInZone(name: string, zone: string): boolean {
  if (zone === '.') return true;
  if (name === zone) return true;
  if (!name.endsWith(zone)) return false;
  // the character before the zone suffix must be an unescaped label separator
  const cut = name.length - zone.length - 1;
  if (name.charCodeAt(cut) !== 0x2e) return false;
  let bs = 0;
  for (let i = cut - 1; i >= 0 && name.charCodeAt(i) === 0x5c; i--) bs++;
  return bs % 2 === 0;
}

/** Number of labels in a canonical name. */
export function labelCount(name: string): number {
  let n = 0;
  let p: string | undefined = name;
  while (p !== undefined && p !== '.') { n++; p = parentName(p); }
  return n;
}

/** Like readUncompressedName, but keeps the case of the bytes, for presenting RDATA as written. */
export function readUncompressedNameAsIs(buf: Uint8Array, off: number): { name: string; end: number } {
  return readUncompressedName(buf, off, true);
}

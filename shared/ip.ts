/**
 * IP address parsing for every configuration and wire path that reads an address from text:
 * strict (no leading zeros, no zone ids), with RFC 5952 canonical text, so that the same address
 * written two ways compares equal everywhere (gslb-dns pools, slb-agent VIPs, report members).
 */
import { formatIPv4, formatIPv6 } from './ip-text.js';

/** A parsed IP address: `bytes` is 4 bytes for IPv4, 16 for IPv6; `canonical` is RFC 5952 text. */
export interface ParsedAddress {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly canonical: string;
}

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/**
 * Writes the four bytes of a strict dotted quad at `out[off]`; false when `s` is not one. A loop
 * over char codes, not split(): zone files call it for every A record.
 */
export function writeIPv4(s: string, out: Uint8Array, off: number): boolean {
  let part = 0;
  let val = 0;
  let digits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      // leading zeros are rejected because some parsers read them as octal
      if (digits > 0 && val === 0) return false;
      val = val * 10 + (c - 0x30);
      if (++digits > 3 || val > 255) return false;
    } else if (c === 0x2e) {
      if (digits === 0 || part === 3) return false;
      out[off + part++] = val;
      val = 0;
      digits = 0;
    } else {
      return false;
    }
  }
  if (digits === 0 || part !== 3) return false;
  out[off + 3] = val;
  return true;
}

/** The 4 bytes of a dotted-quad IPv4 address, or undefined when `text` is not one. */
function parseIPv4(text: string): Uint8Array | undefined {
  const out = new Uint8Array(4);
  return writeIPv4(text, out, 0) ? out : undefined;
}

/** Appends the 16-bit groups of a `:`-separated run (a dotted quad allowed last) to `out`. */
function ipv6Groups(text: string, allowV4Last: boolean, out: number[]): boolean {
  if (text === '') return true;
  const groups = text.split(':');
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i]!;
    if (allowV4Last && i === groups.length - 1 && g.includes('.')) {
      const v4 = parseIPv4(g);
      if (v4 === undefined) return false;
      out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    } else {
      if (!HEX_GROUP.test(g)) return false;
      out.push(parseInt(g, 16));
    }
  }
  return true;
}

/** The 16 bytes of an IPv6 address (embedded dotted quad allowed), or undefined when invalid. */
function parseIPv6(text: string): Uint8Array | undefined {
  // zone ids (fe80::1%eth0) name an interface, which has no meaning in a pool or site file
  if (text.includes('%')) return undefined;
  const groups: number[] = [];
  const dbl = text.indexOf('::');
  if (dbl < 0) {
    if (!ipv6Groups(text, true, groups) || groups.length !== 8) return undefined;
  } else {
    if (text.indexOf('::', dbl + 1) >= 0) return undefined;
    const head: number[] = [];
    const tail: number[] = [];
    if (!ipv6Groups(text.slice(0, dbl), false, head) || !ipv6Groups(text.slice(dbl + 2), true, tail)) return undefined;
    // `::` stands for at least one zero group
    if (head.length + tail.length > 7) return undefined;
    groups.push(...head);
    while (groups.length + tail.length < 8) groups.push(0);
    groups.push(...tail);
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = groups[i]! >>> 8;
    out[2 * i + 1] = groups[i]! & 0xff;
  }
  return out;
}

/**
 * The 4 or 16 bytes of an IP address, or undefined; no canonical text, so nothing but the bytes
 * is allocated (per-datagram source addresses).
 */
export function addressBytes(text: string): Uint8Array | undefined {
  return text.includes(':') ? parseIPv6(text) : parseIPv4(text);
}

/** Parses an IPv4 or IPv6 address; throws an Error naming the text when it is not one. */
export function parseAddress(text: string): ParsedAddress {
  if (text.includes(':')) {
    const bytes = parseIPv6(text);
    if (bytes === undefined) throw new Error(`invalid IPv6 address "${text}"`);
    return { family: 6, bytes, canonical: formatIPv6(bytes) };
  }
  const bytes = parseIPv4(text);
  if (bytes === undefined) throw new Error(`invalid IPv4 address "${text}" (expected a.b.c.d)`);
  return { family: 4, bytes, canonical: formatIPv4(bytes) };
}

/** An address prefix: `bytes` is 16 bytes, left-aligned (IPv4 in the first 4); `text` is canonical. */
export interface Prefix {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly length: number;
  readonly text: string;
}

const PREFIX_LENGTH = /^(0|[1-9][0-9]{0,2})$/;

/**
 * Parses `address/length`, or a bare address as a host prefix of full length; throws an Error
 * naming the text when malformed. Host bits set beyond the length are an error that names the
 * network (`10.1.2.3/8` is rejected with "did you mean 10.0.0.0/8?"): a typo there would
 * otherwise widen or move a subnet without a word.
 */
export function parsePrefix(text: string): Prefix {
  const slash = text.indexOf('/');
  let addr: ParsedAddress;
  try {
    addr = parseAddress(slash < 0 ? text : text.slice(0, slash));
  } catch (e) {
    throw new Error(`invalid prefix "${text}": ${(e as Error).message}`);
  }
  const max = addr.family === 4 ? 32 : 128;
  let length = max;
  if (slash >= 0) {
    const lenText = text.slice(slash + 1);
    if (!PREFIX_LENGTH.test(lenText) || Number(lenText) > max) {
      throw new Error(`invalid prefix "${text}": length must be an integer 0..${max}`);
    }
    length = Number(lenText);
  }
  const bytes = new Uint8Array(16);
  bytes.set(addr.bytes);
  const full = length >>> 3;
  const rem = length & 7;
  if (rem !== 0) bytes[full] = bytes[full]! & (0xff << (8 - rem));
  bytes.fill(0, rem !== 0 ? full + 1 : full);
  const network = bytes.subarray(0, addr.bytes.length);
  const canonical = addr.family === 4 ? formatIPv4(network) : formatIPv6(network);
  if (network.some((b, i) => b !== addr.bytes[i])) {
    throw new Error(`host bits set in "${text}" (did you mean ${canonical}/${length}?)`);
  }
  return { family: addr.family, bytes, length, text: `${canonical}/${length}` };
}

/** A host and port; `host` is canonical address text (IPv6 without brackets) or a host name. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
  /** 0 for a host name */
  readonly family: 0 | 4 | 6;
}

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * Parses `HOST:PORT` or `[IPv6]:PORT` (port 0..65535; 0 asks the OS for one); throws an Error
 * naming the text. HOST is an IP address, or with `names` also a host name (localhost).
 */
export function parseHostPort(text: string, opts: { readonly names?: boolean } = {}): HostPort {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]]+):(\d{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  const form = opts.names ? 'HOST:PORT or [IPv6]:PORT' : 'IPv4:PORT or [IPv6]:PORT';
  if (!m) throw new Error(`expected ${form}, got ${JSON.stringify(text)}`);
  if (port > 65535) throw new Error(`port must be 0 to 65535, got ${m[2]} in ${JSON.stringify(text)}`);
  const host = m[1]!;
  try {
    const a = parseAddress(host);
    return { host: a.canonical, port, family: a.family };
  } catch (e) {
    // all digits and dots is a mistyped address, not a name
    if (text.startsWith('[') || !opts.names || !HOST_NAME.test(host) || /^[\d.]+$/.test(host)) {
      throw new Error(`expected ${form}, got ${JSON.stringify(text)}: ${(e as Error).message}`);
    }
    return { host, port, family: 0 };
  }
}

/** `host:port`, with an IPv6 address in brackets: the form parseHostPort reads and URLs need. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** parseHostPort with host names allowed, or the reason `text` is not one (for config loaders that collect errors). */
export function hostPortOrReason(text: string): { host: string; port: number } | string {
  try {
    const { host, port } = parseHostPort(text, { names: true });
    return { host, port };
  } catch (e) {
    return (e as Error).message;
  }
}

/** The family of `text` as an IP address (strict, as parseAddress), or 0 when it is not one. */
export function addressFamily(text: string): 0 | 4 | 6 {
  try {
    return parseAddress(text).family;
  } catch {
    return 0;
  }
}

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

const DECIMAL_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** The 4 bytes of a dotted-quad IPv4 address, or undefined when `text` is not one. */
function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    // leading zeros are rejected because some parsers read them as octal
    if (!DECIMAL_OCTET.test(part)) return undefined;
    const v = Number(part);
    if (v > 255) return undefined;
    out[i] = v;
  }
  return out;
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

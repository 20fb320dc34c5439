/**
 * IP addresses and prefixes for GSLB: parsing (load time, may allocate) and containment
 * (query time, allocation-free).
 */
import type { Prefix } from './model.js';
import { parseAddress } from '../../shared/ip.js';
import type { ParsedAddress } from '../../shared/ip.js';
import { formatIPv4, formatIPv6 } from '../../shared/ip-text.js';

const PREFIX_LENGTH = /^(0|[1-9][0-9]{0,2})$/;

/**
 * Parses `address/length` or a bare address (a host prefix of full length); throws an Error
 * naming the text when malformed. Host bits set beyond the prefix length are accepted and
 * cleared (10.1.2.3/8 becomes 10.0.0.0/8), so `bytes` and `text` are always the network.
 */
export function parsePrefix(text: string): Prefix {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  let addr: ParsedAddress;
  try {
    addr = parseAddress(addrText);
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
  const network = bytes.subarray(0, addr.family === 4 ? 4 : 16);
  const canonical = addr.family === 4 ? formatIPv4(network) : formatIPv6(network);
  return { family: addr.family, bytes, length, text: `${canonical}/${length}` };
}

/**
 * True when prefix `p` contains the subnet `addr16`/`len` of `family` (16 bytes, left-aligned):
 * the subnet is at least as long as `p` and agrees with it on `p.length` bits. Allocation-free.
 */
export function prefixContains(p: Prefix, family: 4 | 6, addr16: Uint8Array, len: number): boolean {
  if (p.family !== family || len < p.length) return false;
  const pb = p.bytes;
  const full = p.length >>> 3;
  for (let i = 0; i < full; i++) {
    if (pb[i] !== addr16[i]) return false;
  }
  const rem = p.length & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return ((pb[full]! ^ addr16[full]!) & mask) === 0;
}

/**
 * Prefix containment for GSLB (query time, allocation-free).
 */
import type { Prefix } from './model.js';

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

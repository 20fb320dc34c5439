/** Policy `hashed`: a client subnet sticks to one member while that member stays a candidate. */
import type { PoolConfig, Policy, PolicyContext } from '../model.js';
import { answerLimit, isCandidate } from './failover.js';
import { fmix32 } from '../../../shared/hash.js';

/** Client bits that form the key: resolvers send /24 and /56 by default (RFC 7871 §11.1). */
const KEY_BITS_V4 = 24;
const KEY_BITS_V6 = 56;

interface PoolTable {
  /** hash of each member's address bytes, folded into every score */
  readonly memberHash: Uint32Array;
  /** per-query scores; reused because queries are handled one at a time */
  readonly score: Float64Array;
}

const tables = new WeakMap<PoolConfig, PoolTable>();

/** One murmur3 block step: mixes the 32-bit word `k` into state `h`. */
function mixWord(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** murmur3-style hash of `len` bytes of `b` (zero-padded to whole words), seeded. */
function hashBytes(seed: number, b: Uint8Array, len: number): number {
  let h = seed | 0;
  for (let i = 0; i < len; i += 4) {
    const w = (b[i] ?? 0) | ((i + 1 < len ? b[i + 1]! : 0) << 8) | ((i + 2 < len ? b[i + 2]! : 0) << 16) | ((i + 3 < len ? b[i + 3]! : 0) << 24);
    h = mixWord(h, w);
  }
  return h;
}

function tableFor(pool: PoolConfig): PoolTable {
  let t = tables.get(pool);
  if (t === undefined) {
    const n = pool.members.length;
    const memberHash = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const a = pool.members[i]!.addressBytes;
      memberHash[i] = fmix32(hashBytes(0x6a09e667 ^ a.length, a, a.length));
    }
    t = { memberHash, score: new Float64Array(n) };
    tables.set(pool, t);
  }
  return t;
}

/**
 * Hash of the client key: the first `bits` bits of the client address (the partial last byte
 * masked), its family and the bit count, so 10.0.0.0/16 and 10.0.0.0/24 are different keys.
 */
function keyHash(ctx: PolicyContext, bits: number): number {
  const a = ctx.clientAddress;
  // without a client the context's client fields are stale from an earlier query
  const family = ctx.hasClient ? ctx.clientFamily : 0;
  const full = bits >>> 3;
  const rem = bits & 7;
  let h = mixWord(0x3c6ef372, (family << 8) | bits);
  let w = 0;
  let k = 0;
  const bytes = rem === 0 ? full : full + 1;
  for (let i = 0; i < bytes; i++) {
    let b = a[i] ?? 0;
    if (i === full) b &= (0xff << (8 - rem)) & 0xff;
    w |= b << (8 * k);
    if (++k === 4) { h = mixWord(h, w); w = 0; k = 0; }
  }
  if (k !== 0) h = mixWord(h, w);
  return h;
}

/**
 * Weighted rendezvous hashing (HRW): each candidate scores -ln(u)/weight with u uniform from a
 * hash of (client key, member address); the lowest scores win. Removing a member therefore
 * moves only the keys it held. Key and scope: the client subnet truncated to /24 (IPv4) or /56
 * (IPv6), or shorter when the client sent less; no client means key 0/0 and scope 0. Weights are
 * the configured `member.weight`, not the reported weight %, so that a healthy member keeps its
 * clients while others' reported weights move; a reported weight % of 0 still drains a member.
 */
export const hashed: Policy = (ctx, out) => {
  let bits = 0;
  if (ctx.hasClient) {
    const cap = ctx.clientFamily === 4 ? KEY_BITS_V4 : KEY_BITS_V6;
    bits = ctx.clientPrefix < cap ? ctx.clientPrefix : cap;
    if (!(bits > 0)) bits = 0;
  }
  ctx.scope = bits;
  const members = ctx.pool.members;
  const limit = answerLimit(ctx, out);
  const table = tableFor(ctx.pool);
  const key = keyHash(ctx, bits);
  let n = 0;
  for (let i = 0; i < members.length; i++) {
    const m = members[i]!;
    if (!(m.weight > 0) || !isCandidate(ctx, m, i)) continue;
    if (!ctx.ignoreHealth && !((ctx.health.members[i]?.weightPct ?? 0) > 0)) continue;
    const h = fmix32(mixWord(key, table.memberHash[i]!));
    // u in (0, 1): never 0, so the logarithm stays finite
    const u = (h + 0.5) / 4294967296;
    const s = -Math.log(u) / m.weight;
    table.score[i] = s;
    // insertion into the sorted best-`limit` prefix of out; ties keep config order
    let p = n;
    while (p > 0 && table.score[out[p - 1]!]! > s) p--;
    if (p >= limit) continue;
    const end = n < limit ? n : limit - 1;
    for (let q = end; q > p; q--) out[q] = out[q - 1]!;
    out[p] = i;
    if (n < limit) n++;
  }
  return n;
};

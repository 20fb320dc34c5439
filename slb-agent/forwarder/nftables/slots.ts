/**
 * The slot tables the kernel indexes to place a new flow: `slot -> real server mark`. The kernel
 * computes the slot (a hash of the flow, or a counter for rr/wrr) and looks it up in a map, so
 * every scheduler becomes a table built here and diffed element by element on each change.
 */
import type { Backend } from '../model.js';
import { buildMaglevTable, isPrime, maglevTableSize } from '../schedulers/maglev.js';

/** How the kernel computes the slot of a new flow. */
export type SlotKey = 'flow-hash' | 'source-hash' | 'counter';

export interface SlotTable {
  readonly key: SlotKey;
  /** number of slots; the kernel takes its hash or counter modulo this */
  readonly size: number;
  /** slot -> mark of the real server, 0 for none; `size` entries */
  readonly slots: Int32Array;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Integer weights with their common divisor taken out (weights may be fractional in config). */
function integerWeights(backends: readonly Backend[]): number[] {
  const scaled = backends.map((b) => Math.max(0, Math.round(b.weight * 1000)));
  const g = scaled.reduce((acc, w) => (w > 0 ? gcd(acc, w) : acc), 0);
  return scaled.map((w) => (g > 0 ? w / g : 0));
}

/** Smooth weighted round robin order (nginx), one full cycle of sum(weights) picks. */
function smoothOrder(weights: readonly number[]): number[] {
  const total = weights.reduce((a, b) => a + b, 0);
  const current = weights.map(() => 0);
  const order: number[] = [];
  for (let k = 0; k < total; k++) {
    let best = -1;
    for (let i = 0; i < weights.length; i++) {
      if (weights[i]! <= 0) continue;
      current[i]! += weights[i]!;
      if (best < 0 || current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    order.push(best);
  }
  return order;
}

/**
 * The kernel's Maglev table size for a VIP with `configured` real servers: the smallest prime
 * >= 1000 x configured (at least 1009), or the proxy's size (>= max(100 x N, 65537)) for large
 * pools. Sized by the configured count, not the healthy one, so a health change keeps M and only
 * the dead server's slots move. 1000 x N keeps the extra churn small (removing 1 of N moves
 * <= 1.11/N at N = 10, 1.18/N at N = 20) while a health change rewrites ~1000 slots, not M/N of
 * 65537 (which took nft ~130 ms at N = 10).
 */
export function kernelMaglevSize(configured: number): number {
  const n = Math.max(1, configured);
  if (1000 * n > 65537) return maglevTableSize(n);
  let m = Math.max(1009, 1000 * n);
  while (!isPrime(m)) m++;
  return m;
}

const SH_BUCKETS = 1024;

/**
 * lc/wlc for nat, where the kernel places flows but conntrack knows the open ones: the shares of
 * the next new flows that bring every server towards the same load per weight, as weights for a
 * counter table the plane rebuilds from fresh counts every refresh. A window of 4 flows per
 * server keeps a burst between refreshes from piling onto one server.
 */
export function leastConnectionShares(backends: readonly Backend[], weighted: boolean, loadOf: (b: Backend) => number): Backend[] {
  const w = backends.map((b) => (weighted ? b.weight : 1));
  const sumW = w.reduce((a, x) => a + x, 0);
  const load = backends.map(loadOf);
  const total = load.reduce((a, x) => a + x, 0) + 4 * backends.length;
  const deficit = backends.map((_, i) => Math.max(0, (total * w[i]!) / sumW - load[i]!));
  const sumD = deficit.reduce((a, x) => a + x, 0);
  // whole units, at most ~64 slots; a server below its share keeps at least one
  return backends.map((b, i) => ({ ...b, weight: sumD > 0 ? (deficit[i]! > 0 ? Math.max(1, Math.round((64 * deficit[i]!) / sumD)) : 0) : w[i]! }));
}

/** Above this many slots a weighted rr/sh table is refused: weights need a smaller common ratio. */
const MAX_WEIGHTED_SLOTS = 65536;

/**
 * The table for `scheduler` over the eligible backends; `markOf` gives each backend's mark.
 * - maglev: Maglev table (size: kernelMaglevSize) keyed by a hash of source
 *   address and port: consistent, removing 1 of N moves about 1/N of flows.
 * - sh: the weighted list interleaved over ~1024 buckets, keyed by a hash of the source address
 *   (and port with shPorts): the list entry is the hash modulo the list length, like IPVS sh;
 *   sticky per client but not consistent.
 * - rr / wrr: one slot per turn, keyed by a counter of new flows.
 */
export function buildSlotTable(scheduler: string, backends: readonly Backend[], markOf: (b: Backend) => number, configured: number, loadOf?: (b: Backend) => number): SlotTable {
  const active = backends.filter((b) => b.weight > 0);
  if ((scheduler === 'lc' || scheduler === 'wlc') && loadOf !== undefined) {
    return buildSlotTable('wrr', leastConnectionShares(active, scheduler === 'wlc', loadOf), markOf, configured);
  }
  if (scheduler === 'maglev') {
    const size = kernelMaglevSize(configured);
    const t = buildMaglevTable(active, size);
    const slots = new Int32Array(size);
    const marks = Int32Array.from(t.backends, markOf);
    for (let s = 0; s < size; s++) {
      const i = t.table[s]!;
      if (i >= 0) slots[s] = marks[i]!;
    }
    return { key: 'flow-hash', size, slots };
  }
  if (scheduler === 'rr' || scheduler === 'wrr' || scheduler === 'sh') {
    const weights = scheduler === 'rr' ? active.map(() => 1) : integerWeights(active);
    const total = weights.reduce((a, b) => a + b, 0);
    if (total > MAX_WEIGHTED_SLOTS) throw new Error(`weights need ${total} slots (> ${MAX_WEIGHTED_SLOTS}); use weights with a smaller common ratio`);
    const order = scheduler === 'sh' ? weights.flatMap((w, i) => Array.from({ length: w }, () => i)) : smoothOrder(weights);
    // nft scales a hash into `mod N` by multiplication (reciprocal_scale), which splits the hash
    // range into N runs; sh interleaves the weighted list over ~1024 buckets instead, so the
    // server is the hash modulo the list length (IPVS sh buckets), the plain modulo hashing
    // that maglev is measured against
    const size = scheduler === 'sh' ? order.length * Math.max(1, Math.ceil(SH_BUCKETS / Math.max(1, order.length))) : order.length;
    const slots = new Int32Array(Math.max(1, size));
    for (let s = 0; s < size; s++) slots[s] = markOf(active[order[s % order.length]!]!);
    return { key: scheduler === 'sh' ? 'source-hash' : 'counter', size: Math.max(1, size), slots };
  }
  throw new Error(`scheduler ${scheduler} needs connection counts, which the kernel sees only in mode nat (conntrack); use rr, wrr, sh or maglev here, or mode nat or proxy for lc/wlc`);
}

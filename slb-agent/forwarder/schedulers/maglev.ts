/**
 * Weighted Maglev consistent hashing (Eisenbud et al., NSDI 2016). Each backend walks its own
 * permutation of the M table slots (offset and skip from two hashes of its id) and claims the next
 * free slot on its turn; a backend takes a turn in a round only when its weight credit reaches the
 * largest weight, so slot shares follow weights. A flow's hash indexes the table.
 */
import type { Backend, Flow, Scheduler } from '../model.js';
import { hashFlow, hashString } from './sh.js';

const OFFSET_SEED = 0;
const SKIP_SEED = 0x5bd1e995;
const MIN_TABLE_SIZE = 65537;

/** Whether n is prime (trial division; table sizes are small). */
export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/**
 * The default table size: the smallest prime >= max(100 x backendCount, 65537). The 65537 floor
 * (Katran's size) keeps M fixed while the pool changes size below 656 backends, and keeps the extra
 * churn of a removal small: removing 1 of N moves <= 1.1/N of flows for N <= 20 (1.26/N at N = 50),
 * where M = 100 x N alone moves up to 1.35/N at N = 10 and 1.64/N at N = 20.
 */
export function maglevTableSize(backendCount: number): number {
  let m = Math.max(MIN_TABLE_SIZE, 100 * backendCount);
  while (!isPrime(m)) m++;
  return m;
}

/** A built lookup table: `table[slot]` is an index into `backends`, or -1 when there is none. */
export interface MaglevTable {
  readonly size: number;
  readonly table: Int32Array;
  /** the backends with weight > 0, sorted by id, that the table indexes */
  readonly backends: readonly Backend[];
}

/**
 * Fills a table of `size` (a prime) slots; the result depends only on the set of (id, weight)
 * pairs with weight > 0, not on list order. Throws on a non-prime size or duplicate ids.
 */
export function buildMaglevTable(backends: readonly Backend[], size: number): MaglevTable {
  if (!isPrime(size)) throw new Error(`maglev table size must be a prime, got ${size}`);
  if (size > 0x7fffffff) throw new Error(`maglev table size ${size} is too large`);
  for (const b of backends) {
    if (!Number.isFinite(b.weight) || b.weight < 0) throw new Error(`maglev: backend ${b.id} has weight ${b.weight}, expected a finite number >= 0`);
  }
  const active = backends.filter((b) => b.weight > 0).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (let i = 1; i < active.length; i++) {
    if (active[i]!.id === active[i - 1]!.id) throw new Error(`maglev: duplicate backend id ${active[i]!.id}`);
  }
  const n = active.length;
  const table = new Int32Array(size).fill(-1);
  if (n === 0) return { size, table, backends: active };

  const position = new Float64Array(n); // current slot of each permutation
  const skip = new Float64Array(n);
  const weight = new Float64Array(n);
  const credit = new Float64Array(n);
  let maxWeight = 0;
  for (let i = 0; i < n; i++) {
    const b = active[i]!;
    position[i] = hashString(b.id, OFFSET_SEED) % size;
    skip[i] = (hashString(b.id, SKIP_SEED) % (size - 1)) + 1;
    weight[i] = b.weight;
    if (b.weight > maxWeight) maxWeight = b.weight;
  }

  let filled = 0;
  while (filled < size) {
    for (let i = 0; i < n && filled < size; i++) {
      credit[i] = credit[i]! + weight[i]!;
      if (credit[i]! < maxWeight) continue;
      credit[i] = credit[i]! - maxWeight;
      let slot = position[i]!;
      while (table[slot] !== -1) slot = (slot + skip[i]!) % size;
      table[slot] = i;
      position[i] = (slot + skip[i]!) % size;
      filled++;
    }
  }
  return { size, table, backends: active };
}

/**
 * Maps a flow (source address, port, protocol; the VIP is fixed per scheduler) to a backend through
 * the Maglev table; removing one of N equal backends moves about 1/N of flows.
 */
export function createMaglev(backends: readonly Backend[], opts: { tableSize?: number } = {}): Scheduler {
  const { size, table, backends: active } = buildMaglevTable(backends, opts.tableSize ?? maglevTableSize(backends.length));
  if (active.length === 0) return { pick: () => undefined };
  return {
    pick(flow: Flow): Backend | undefined {
      return active[table[hashFlow(flow, true, true) % size]!];
    },
  };
}

/**
 * Smooth weighted round robin (nginx): every pick adds each backend's weight to its counter, takes
 * the largest counter (ties: lowest index) and subtracts the total weight from it, so 3:2:1 gives
 * a a b a b c ... interleaved rather than a a a b b c.
 */
import type { Backend, Scheduler } from '../model.js';

/** Over any window of sum(weights) picks each backend is chosen exactly `weight` times. */
export function createWeightedRoundRobin(backends: readonly Backend[]): Scheduler {
  const active = backends.filter((b) => b.weight > 0);
  const n = active.length;
  const weight = Float64Array.from(active, (b) => b.weight);
  const current = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) total += weight[i]!;
  return {
    pick(): Backend | undefined {
      if (n === 0) return undefined;
      let best = 0;
      let bestValue = -Infinity;
      for (let i = 0; i < n; i++) {
        const v = current[i]! + weight[i]!;
        current[i] = v;
        if (v > bestValue) { bestValue = v; best = i; }
      }
      current[best] = bestValue - total;
      return active[best];
    },
  };
}

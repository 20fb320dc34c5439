/** Least connections and weighted least connections, reading live counts from the data plane. */
import type { Backend, ConnectionCounts, Scheduler } from '../model.js';

/**
 * `lc`: the backend with weight > 0 and the fewest connections; `wlc`: the lowest
 * connections / weight. Ties go to the lowest list index; weight 0 is never picked.
 */
export function createLeastConnections(
  backends: readonly Backend[],
  connections: ConnectionCounts | undefined,
  opts: { weighted: boolean },
): Scheduler {
  if (typeof connections !== 'function') {
    throw new Error(`scheduler ${opts.weighted ? 'wlc' : 'lc'} needs opts.connections (live connection counts from the data plane)`);
  }
  const count = connections;
  const active = backends.filter((b) => b.weight > 0);
  const n = active.length;
  const weight = Float64Array.from(active, (b) => (opts.weighted ? b.weight : 1));
  return {
    pick(): Backend | undefined {
      if (n === 0) return undefined;
      let best = 0;
      let bestConns = count(active[0]!);
      let bestWeight = weight[0]!;
      for (let i = 1; i < n; i++) {
        const c = count(active[i]!);
        const w = weight[i]!;
        // c / w < bestConns / bestWeight without dividing (weights are > 0)
        if (c * bestWeight < bestConns * w) { best = i; bestConns = c; bestWeight = w; }
      }
      return active[best];
    },
  };
}

/** Round robin: each backend with weight > 0 in list order, one flow each, then again. */
import type { Backend, Scheduler } from '../model.js';

/** Cycles through the backends with weight > 0 in list order; weights beyond "> 0" are ignored. */
export function createRoundRobin(backends: readonly Backend[]): Scheduler {
  const active = backends.filter((b) => b.weight > 0);
  const n = active.length;
  let next = 0;
  return {
    pick(): Backend | undefined {
      if (n === 0) return undefined;
      const b = active[next];
      next = next + 1 === n ? 0 : next + 1;
      return b;
    },
  };
}

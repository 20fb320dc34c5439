/** One factory for every scheduler kind the forwarder config can name. */
import type { Backend, ConnectionCounts, Scheduler, SchedulerKind } from '../model.js';
import { createLeastConnections } from './lc.js';
import { createMaglev } from './maglev.js';
import { createRoundRobin } from './rr.js';
import { createSourceHash } from './sh.js';
import { createWeightedRoundRobin } from './wrr.js';

export { SCHEDULER_KINDS } from '../model.js';
export type { SchedulerKind } from '../model.js';

export interface SchedulerOptions {
  /** live connection counts; required by `lc` and `wlc` */
  connections?: ConnectionCounts;
  /** `sh` only: hash source address and port (L3+L4) instead of the address alone */
  shPorts?: boolean;
  /** `maglev` only: lookup table size, a prime; default the smallest prime >= max(100 x backends.length, 65537) */
  tableSize?: number;
}

/**
 * A scheduler of `kind` over `backends`, precomputed now; backends with weight 0 never get new
 * flows and `pick` returns undefined when none has weight > 0.
 */
export function createScheduler(kind: SchedulerKind, backends: readonly Backend[], opts: SchedulerOptions = {}): Scheduler {
  switch (kind) {
    case 'rr': return createRoundRobin(backends);
    case 'wrr': return createWeightedRoundRobin(backends);
    case 'sh': return createSourceHash(backends, { ports: opts.shPorts === true });
    case 'maglev': return createMaglev(backends, opts.tableSize === undefined ? {} : { tableSize: opts.tableSize });
    case 'lc': return createLeastConnections(backends, opts.connections, { weighted: false });
    case 'wlc': return createLeastConnections(backends, opts.connections, { weighted: true });
    default: {
      const never: never = kind;
      throw new Error(`unknown scheduler kind ${String(never)}`);
    }
  }
}

export { createLeastConnections } from './lc.js';
export { buildMaglevTable, createMaglev, isPrime, maglevTableSize } from './maglev.js';
export type { MaglevTable } from './maglev.js';
export { createRoundRobin } from './rr.js';
export { createSourceHash, hashFlow, hashString } from './sh.js';
export { createWeightedRoundRobin } from './wrr.js';

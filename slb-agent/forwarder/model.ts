/**
 * What every data plane (nftables, userspace proxy) and every scheduler agree on: the real servers
 * a VIP may send new flows to, and how one is picked for a flow.
 */

/** A real server as the data plane sees it. */
export interface Backend {
  /** stable identity, e.g. `127.0.0.11:8080`: schedulers hash on it, not on list positions */
  readonly id: string;
  readonly address: string;
  readonly port: number;
  /** relative weight, >= 0; 0 takes no new flows */
  readonly weight: number;
}

/** What a scheduler may look at to place a new flow. */
export interface Flow {
  readonly srcAddress: string;
  readonly srcPort: number;
  readonly protocol: 'tcp' | 'udp';
}

/** The scheduler kinds a VIP's forwarder may name, in a fixed order (config schema, shared test suites). */
export const SCHEDULER_KINDS = ['rr', 'wrr', 'sh', 'maglev', 'lc', 'wlc'] as const;
/** A forwarder scheduler kind (`forwarder.scheduler` in the agent file). */
export type SchedulerKind = (typeof SCHEDULER_KINDS)[number];

/** Places new flows on backends. Implementations precompute in their factory; `pick` is cheap. */
export interface Scheduler {
  /** the backend for a new flow; undefined when there is none with weight > 0 */
  pick(flow: Flow): Backend | undefined;
}

/** Live connection counts, for the least-connection schedulers (proxy, nat see connections). */
export type ConnectionCounts = (backend: Backend) => number;

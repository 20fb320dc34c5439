/**
 * The one interface every forwarder data plane (nftables, userspace proxy) implements: the agent
 * computes the desired VIPs and `apply()` converges to them (ARCHITECTURE principle 4), so the
 * same behaviour suite can run against each implementation (principle 8).
 */
import type { Backend } from './model.js';
import type { SchedulerKind } from './schedulers/index.js';

/** A real server of a VIP with the health and admin state the agent decided on. */
export interface RealServerSpec {
  /** stable identity, e.g. `10.0.0.11:8080`; schedulers and persistence key on it */
  readonly id: string;
  readonly address: string;
  readonly port: number;
  /** relative weight, >= 0; 0 takes no new flows */
  readonly weight: number;
  /** takes traffic only when no primary is eligible */
  readonly backup: boolean;
  readonly healthy: boolean;
  /** no new flows; existing flows finish */
  readonly drained: boolean;
}

/** How packets reach the real servers (the `forwarder.mode` of a VIP in the agent's file). */
export type ForwarderMode = 'dsr' | 'l3dsr-dscp' | 'l3dsr-tunnel' | 'nat' | 'proxy';

/** One VIP as the data plane must serve it. */
export interface VipSpec {
  /** unique among the VIPs given to one `apply()`; identifies the VIP across applies */
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
  readonly scheduler: SchedulerKind;
  /** `sh` only: hash source address and port (L3+L4) instead of the address alone (L3) */
  readonly shPorts?: boolean;
  /** > 0: a client address keeps its real server across flows until this long idle; 0: off */
  readonly persistenceMs: number;
  readonly realServers: readonly RealServerSpec[];
  /** the proxy plane serves `proxy`; the nftables plane the kernel modes */
  readonly mode: ForwarderMode;
  /** kernel modes: the interface the VIP's packets arrive on (dsr: real servers are on it too) */
  readonly interface?: string;
  /** l3dsr-dscp: the DSCP value (1-63) that tells real servers which VIP a packet was for */
  readonly dscp?: number;
  /** l3dsr-tunnel: the encapsulation */
  readonly tunnel?: 'vxlan' | 'ipip' | 'gre';
  /** l3dsr-tunnel with vxlan: the first VNI the LB may use (one per real server; real servers take any) */
  readonly vni?: number;
  /** nat: also rewrite the source to the LB's address (full NAT); false needs the LB as the real servers' gateway */
  readonly snat?: boolean;
  /** idle time after which a flow is forgotten (kernel flow table, proxy UDP sessions); plane default when absent */
  readonly flowTimeoutMs?: number;
}

/** Per-backend connection counters of one VIP. */
export interface BackendStats {
  readonly vip: string;
  readonly backend: string;
  /** flows open now */
  readonly active: number;
  /** flows ever placed on this backend by this VIP */
  readonly total: number;
}

/**
 * An apply that failed for some VIPs only: `failed` maps each failed VIP's name to its reason;
 * the plane's other VIPs of that apply are in place. A plain Error means every VIP failed.
 */
export class PlaneApplyError extends Error {
  constructor(message: string, readonly failed: ReadonlyMap<string, string>) {
    super(message);
    this.name = 'PlaneApplyError';
  }
}

/** A forwarder data plane: converges to a desired set of VIPs and reports per-backend counters. */
export interface DataPlane {
  /** Converge to exactly these VIPs: start new ones, stop removed ones, swap changed backends for new flows; existing flows continue. */
  apply(vips: readonly VipSpec[]): Promise<void>;
  /** Active and total flows per VIP and backend (the kernel plane reads its counters, hence async). */
  stats(): Promise<BackendStats[]>;
  /** Stop all listeners and end all flows. */
  close(): Promise<void>;
  /**
   * A successor took over: stop accepting new flows (its listeners serve them) and wait up to
   * `ms` for the open ones to end; `close()` follows. Planes whose flows outlive the process
   * (the kernel's) need not implement it.
   */
  drain?(ms: number): Promise<void>;
}

/**
 * The backends a VIP may place new flows on: healthy, non-drained primaries with weight > 0; if
 * there is none, the healthy, non-drained backups with weight > 0 (the priority / sorry-server
 * pattern). List order is kept, since rr/wrr/lc tie-breaking depend on it.
 */
export function eligibleBackends(vip: VipSpec): Backend[] {
  const usable = (rs: RealServerSpec): boolean => rs.healthy && !rs.drained && rs.weight > 0;
  const toBackend = (rs: RealServerSpec): Backend => ({ id: rs.id, address: rs.address, port: rs.port, weight: rs.weight });
  const primaries = vip.realServers.filter((rs) => !rs.backup && usable(rs));
  if (primaries.length > 0) return primaries.map(toBackend);
  return vip.realServers.filter((rs) => rs.backup && usable(rs)).map(toBackend);
}

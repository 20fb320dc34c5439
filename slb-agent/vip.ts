/**
 * VIP state and weight, derived (purely) from its real servers' health, operator drains and
 * agent-check advice. This is what the reporter sends to gslb-dns for the VIP's address.
 *
 * A real server *serves* (takes new flows) when its health is up, no operator drained it and its
 * agent-check advice (if any) is not `drain`, `maint` or `down`. Then, in order:
 *
 *   | condition                                            | state | on      | weight %                        |
 *   |------------------------------------------------------|-------|---------|---------------------------------|
 *   | the operator drained the VIP                         | drain | (below) | as the rows below would give    |
 *   | serving primaries >= quorum                          | up    | primary | serving primary share           |
 *   | no primary serves, a backup serves                   | up    | backup  | serving backup share            |
 *   | none serves, but a healthy one is drained (operator  | drain | none    | 0                               |
 *   |   or agent word): maintenance, not failure           |       |         |                                 |
 *   | else (incl. some primaries serve but below quorum)   | down  | none    | 0                               |
 *
 * Share = sum(weight x agent weight %) of the serving servers of that tier / sum(weight) of all
 * servers of that tier, x 100, rounded to 0.01 and clamped to 0..100. Below quorum the VIP is
 * down even when a few primaries serve: quorum says how many the site needs to carry the VIP,
 * so GSLB should send clients elsewhere (keepalived's quorum, HAProxy's backups only when no
 * active server is left).
 */
import { MAX_REASON_CHARS } from '../shared/protocol/report.js';
import type { MemberState, ReportMember } from '../shared/protocol/report.js';
import type { AgentAdvice, HealthStatus } from './health/state.js';

/** What the derivation needs to know about one real server. */
export interface RealServerInput {
  readonly address: string;
  readonly port: number;
  /** configured weight (>= 0) */
  readonly weight: number;
  readonly backup: boolean;
  readonly health: HealthStatus;
  /** an operator drained it (local API) */
  readonly drained: boolean;
  readonly agent?: AgentAdvice;
}

/** What the derivation needs to know about one VIP. */
export interface VipInput {
  readonly name: string;
  readonly address: string;
  readonly capacity: number;
  /** serving primaries needed for the VIP to be up (>= 1) */
  readonly quorum: number;
  /** the operator drained the whole VIP */
  readonly drained: boolean;
  /** active connections, when the forwarder knows them */
  readonly connections?: number;
  readonly realServers: readonly RealServerInput[];
}

/** The derived VIP state, as reported (plus `on` and `serving` for the status page). */
export interface VipStatus {
  readonly name: string;
  readonly address: string;
  readonly state: MemberState;
  /** 0..100 */
  readonly weight: number;
  /** which tier carries the VIP */
  readonly on: 'primary' | 'backup' | 'none';
  /** real servers that serve new flows (primaries and backups) */
  readonly healthy: number;
  readonly total: number;
  readonly connections: number;
  readonly capacity: number;
  /** why the VIP is down although its real servers may serve (forwarder not applied, VIP check failing, agent stopped) */
  readonly reason?: string;
  /** false: reported but no longer checked (the agent stopped, the kernel keeps forwarding) */
  readonly checked?: boolean;
}

/** The status `s` forced down for `reason` (cut to the report's limit). */
export function downFor(s: VipStatus, reason: string): VipStatus {
  return { ...s, state: 'down', weight: 0, reason: reason.slice(0, MAX_REASON_CHARS) };
}

/** True when the real server takes new flows: health up, not drained, agent not refusing. */
export function serves(rs: RealServerInput): boolean {
  return rs.health === 'up' && !rs.drained && !agentRefuses(rs.agent);
}

function agentRefuses(a: AgentAdvice | undefined): boolean {
  return a?.state === 'drain' || a?.state === 'maint' || a?.state === 'down';
}

/** The weight a serving real server contributes: configured weight scaled by its agent's %. */
export function effectiveWeight(rs: RealServerInput): number {
  const pct = rs.agent?.weightPct;
  return pct === undefined ? rs.weight : rs.weight * Math.min(100, Math.max(0, pct)) / 100;
}

function share(tier: readonly RealServerInput[]): number {
  let all = 0;
  let up = 0;
  for (const rs of tier) {
    all += rs.weight;
    if (serves(rs)) up += effectiveWeight(rs);
  }
  if (all <= 0) return 0;
  return Math.min(100, Math.max(0, Math.round(up / all * 10_000) / 100));
}

/** Derives a VIP's state, weight % and counts per the table above; pure. */
export function deriveVip(vip: VipInput): VipStatus {
  const primaries = vip.realServers.filter((rs) => !rs.backup);
  const backups = vip.realServers.filter((rs) => rs.backup);
  const servingPrimaries = primaries.filter(serves).length;
  const servingBackups = backups.filter(serves).length;
  const base = {
    name: vip.name,
    address: vip.address,
    healthy: servingPrimaries + servingBackups,
    total: vip.realServers.length,
    connections: vip.connections ?? 0,
    capacity: vip.capacity,
  };
  let state: MemberState;
  let on: VipStatus['on'];
  let weight: number;
  if (servingPrimaries > 0 && servingPrimaries >= Math.max(1, vip.quorum)) {
    state = 'up'; on = 'primary'; weight = share(primaries);
  } else if (servingPrimaries === 0 && servingBackups > 0) {
    state = 'up'; on = 'backup'; weight = share(backups);
  } else {
    const maintenance = vip.realServers.some((rs) => rs.health === 'up' && (rs.drained || agentRefuses(rs.agent)) && rs.agent?.state !== 'down');
    state = maintenance && servingPrimaries === 0 ? 'drain' : 'down'; on = 'none'; weight = 0;
  }
  if (vip.drained) state = 'drain';
  return { ...base, state, on, weight };
}

/** True when two statuses would produce different reports. */
export function vipStatusChanged(a: VipStatus | undefined, b: VipStatus): boolean {
  return a === undefined || a.state !== b.state || a.weight !== b.weight || a.healthy !== b.healthy ||
    a.total !== b.total || a.connections !== b.connections || a.capacity !== b.capacity || a.reason !== b.reason || a.checked !== b.checked;
}

const STATE_RANK = { down: 0, drain: 1, up: 2 } as const;

/**
 * One report member per address: VIPs sharing an address (web:80 and web:443) merge into the
 * weakest state and weight, since gslb-dns steers the whole address.
 */
export function mergeMembers(statuses: readonly VipStatus[]): ReportMember[] {
  const byAddress = new Map<string, ReportMember & { healthy: number; total: number; connections: number; capacity: number }>();
  for (const s of statuses) {
    const m = byAddress.get(s.address);
    if (!m) {
      byAddress.set(s.address, {
        address: s.address, state: s.state, weight: s.weight, connections: s.connections, capacity: s.capacity, healthy: s.healthy, total: s.total,
        ...(s.reason !== undefined ? { reason: s.reason } : {}), ...(s.checked !== undefined ? { checked: s.checked } : {}),
      });
      continue;
    }
    if (STATE_RANK[s.state] < STATE_RANK[m.state]) {
      m.state = s.state;
      // the weakest VIP's reason is the address's
      if (s.reason !== undefined) m.reason = s.reason; else delete m.reason;
    }
    // unchecked only when every VIP of the address is
    if (s.checked !== false) delete m.checked;
    m.weight = Math.min(m.weight, s.weight);
    m.connections += s.connections;
    m.capacity = Math.min(m.capacity, s.capacity);
    m.healthy += s.healthy;
    m.total += s.total;
  }
  return [...byAddress.values()];
}

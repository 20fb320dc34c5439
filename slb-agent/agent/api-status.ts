/** A VIP and its real servers as GET /status shows them. */
import type { ForwarderVipStatus } from '../forwarder/manager.js';
import { realServerId } from '../forwarder/manager.js';
import { serves } from '../vip.js';
import type { RsRuntime, VipRuntime } from './runtime.js';
import { rsInput } from './vip-status.js';
import type { FlowCounts, RealServerStatus, VipFullStatus } from './types.js';

function realServerStatus(rs: RsRuntime, forwarded: boolean): RealServerStatus {
  const id = realServerId(rs.config.address, rs.config.port);
  const { check } = rs.config;
  return {
    key: rs.key, address: rs.config.address, port: rs.config.port, weight: rs.config.weight, backup: rs.config.backup,
    drained: rs.drained, serving: serves(rsInput(rs)), health: rs.health.record, passes: rs.passes, fails: rs.fails,
    check: { type: check.type, intervalMs: check.intervalMs, timeoutMs: check.timeoutMs, rise: check.rise, fall: check.fall },
    ...(forwarded ? { forwarder: { id, ...(rs.vip.flows.get(id) ?? { active: 0, total: 0 }) } } : {}),
  };
}

/** `fv`: the forwarder's view of this VIP (forwarded VIPs only). */
export function vipFullStatus(v: VipRuntime, fv: ForwarderVipStatus | undefined): VipFullStatus {
  let flows: FlowCounts = { active: 0, total: 0 };
  for (const c of v.flows.values()) flows = { active: flows.active + c.active, total: flows.total + c.total };
  return {
    ...v.status,
    port: v.config.port, protocol: v.config.protocol, quorum: v.config.quorum, drained: v.drained,
    realServers: v.realServers.map((rs) => realServerStatus(rs, fv !== undefined)),
    ...(fv !== undefined ? { forwarder: { ...fv, flows } } : {}),
    ...(v.vipCheck !== undefined ? { vipCheck: { type: v.vipCheck.config.type, health: v.vipCheck.health.record } } : {}),
  };
}

/**
 * A VIP's reported status: its real servers' verdict (vip.ts), unless the data plane failed or has
 * not applied it yet, or the VIP's own check says down.
 */
import type { ApplyOutcome, LiveRealServer } from '../forwarder/manager.js';
import { deriveVip, downFor } from '../vip.js';
import type { RealServerInput, VipStatus } from '../vip.js';
import type { RsRuntime, VipRuntime } from './runtime.js';

/** A real server as vip.ts weighs it. */
export function rsInput(rs: RsRuntime): RealServerInput {
  const agent = rs.health.record.agent;
  return {
    address: rs.config.address, port: rs.config.port, weight: rs.config.weight, backup: rs.config.backup,
    health: rs.health.state, drained: rs.drained, ...(agent === undefined ? {} : { agent }),
  };
}

/** A real server as the forwarder manager programs it (a drained VIP drains all of them). */
export function liveRealServer(rs: RsRuntime): LiveRealServer {
  const agent = rs.health.record.agent;
  return { config: rs.config, health: rs.health.state, drained: rs.drained || rs.vip.drained, ...(agent === undefined ? {} : { agent }) };
}

function deriveServers(v: VipRuntime): VipStatus {
  return deriveVip({
    name: v.config.name, address: v.config.address, capacity: v.config.capacity, quorum: v.config.quorum,
    drained: v.drained, realServers: v.realServers.map(rsInput),
    ...(v.connections !== undefined ? { connections: v.connections } : {}),
  });
}

/**
 * The VIP's reported status; `outcome` reads the forwarder's last apply of a VIP (consulted only
 * for forwarded VIPs). A drained VIP reports its real servers' verdict as it is.
 */
export function reportedStatus(v: VipRuntime, outcome: (vipName: string) => ApplyOutcome | undefined): VipStatus {
  const base = deriveServers(v);
  if (v.drained) return base;
  if (v.config.forwarder !== undefined) {
    const applied = outcome(v.config.name);
    if (applied === undefined) return downFor(base, 'forwarder not applied yet');
    if (!applied.ok) return downFor(base, `forwarder: ${applied.error ?? 'apply failed'}`);
  }
  const vch = v.vipCheck?.health.record;
  if (vch !== undefined && vch.state === 'down') return downFor(base, `vip check: ${vch.lastError ?? 'not passed yet'}`);
  return base;
}

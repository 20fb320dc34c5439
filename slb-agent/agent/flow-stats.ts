/** The data planes' flow counters, spread over the forwarded VIPs they belong to. */
import type { BackendStats } from '../forwarder/data-plane.js';
import type { VipRuntime } from './runtime.js';

/** Sets each VIP's per-real-server flows and its open connections; a VIP without counters has none. */
export function applyFlowStats(forwarded: readonly VipRuntime[], stats: readonly BackendStats[]): void {
  const byVip = new Map<string, BackendStats[]>();
  for (const s of stats) {
    const list = byVip.get(s.vip);
    if (list) list.push(s); else byVip.set(s.vip, [s]);
  }
  for (const v of forwarded) {
    const mine = byVip.get(v.config.name) ?? [];
    v.flows = new Map(mine.map((s) => [s.backend, { active: s.active, total: s.total }]));
    v.connections = mine.reduce((n, s) => n + s.active, 0);
  }
}

/** The data planes' flow counters, spread over the forwarded VIPs they belong to. */
import type { Clock, TimerHandle } from '../../shared/clock.js';
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

export interface FlowStatsReaderOptions {
  readonly forwarded: () => VipRuntime[];
  /** the data planes' counters */
  readonly read: () => Promise<readonly BackendStats[]>;
  /** after the counters were spread over the forwarded VIPs */
  readonly onRead: (forwarded: VipRuntime[]) => void;
  readonly clock: Clock;
  /** longest a caller waits for a slow plane; it then sees the last counters */
  readonly waitMs: number;
}

/** Reads the counters now, one read at a time (callers in the meantime share it); a no-op without forwarded VIPs. */
export function createFlowStatsReader(opts: FlowStatsReaderOptions): () => Promise<void> {
  const { clock } = opts;
  let statsRead: Promise<void> | undefined;
  return () => {
    if (opts.forwarded().length === 0) return Promise.resolve();
    statsRead ??= opts.read().then((stats) => {
      const fw = opts.forwarded();
      applyFlowStats(fw, stats);
      opts.onRead(fw);
    }, () => undefined).finally(() => { statsRead = undefined; });
    let timer: TimerHandle | undefined;
    return Promise.race([statsRead, new Promise<void>((r) => { timer = clock.setTimeout(r, opts.waitMs); })])
      .finally(() => clock.clearTimeout(timer));
  };
}

/**
 * The agent's VIP table: the VIP and real-server runtimes and their reported statuses, kept
 * current. Every change of a real server's health, agent advice or drain, of a VIP check or of a
 * forwarder outcome re-derives the VIP; the data plane hears of each change, the reporter once per
 * tick of the changes that alter a report. It also counts the real servers that have settled.
 */
import type { Logger } from 'pino';
import type { Clock } from '../../shared/clock.js';
import type { CheckConfig, VipConfig } from '../config.js';
import type { ApplyOutcome } from '../forwarder/manager.js';
import type { CheckResult, Checker } from '../health/checkers/types.js';
import { vipStatusChanged } from '../vip.js';
import type { VipStatus } from '../vip.js';
import { createRuntimeBuilder, findRealServer } from './runtime.js';
import type { RsRuntime, RuntimeBuilder, VipRuntime } from './runtime.js';
import type { DrainOutcome, RealServerRef } from './types.js';
import { reportedStatus } from './vip-status.js';

export interface VipTableOptions {
  readonly logger: Logger;
  readonly makeChecker: (check: CheckConfig, vipName: string, clock: Clock) => Checker;
  readonly clock: Clock;
  readonly now: () => number;
  /** where a real server's check results go (the agent, which ignores them once stopping) */
  readonly onRealServerResult: (key: string, result: CheckResult) => void;
  /** the forwarder's last apply of a VIP */
  readonly outcome: (vipName: string) => ApplyOutcome | undefined;
  /** a forwarded VIP's real servers changed: the data plane converges again */
  readonly planeChanged: () => void;
  /** some VIP's report changed; called at most once per tick */
  readonly reportChanged: () => void;
}

export interface VipTable {
  readonly vips: Map<string, VipRuntime>;
  readonly byKey: Map<string, RsRuntime>;
  /** addresses of VIPs a reload removed: reported down so DNS does not keep their last state */
  readonly removedAddresses: Set<string>;
  readonly build: RuntimeBuilder;
  /** real servers whose state says something (see isSettled) */
  readonly settled: number;
  /** builds the runtimes of the configured VIPs (checks stopped, statuses not derived yet) */
  load(vcs: readonly VipConfig[]): void;
  forwarded(): VipRuntime[];
  derive(v: VipRuntime): VipStatus;
  /** re-derives the VIP; `plane`: the data plane hears of it too (not when the plane itself told us) */
  recompute(v: VipRuntime, plane?: boolean): void;
  /** asks for one report this tick */
  notify(): void;
  /** applies a real server's check result; true when it settled the last unsettled real server */
  applyResult(key: string, result: CheckResult): boolean;
  /** counts the settled real servers again (after a reload) */
  recount(): void;
  drainRealServer(ref: RealServerRef, drained: boolean): DrainOutcome;
  drainVip(name: string, drained: boolean): DrainOutcome;
}

// a real server is settled once its state says something: up, failed, or `rise` checks done
function isSettled(rs: RsRuntime): boolean {
  const r = rs.health.record;
  return r.state === 'up' || r.failures > 0 || r.checks >= rs.config.check.rise;
}

/** The longest any of these real servers needs to settle: rise full intervals plus a timeout, plus slack. */
export function settleHoldOffMs(realServers: Iterable<RsRuntime>): number {
  return Math.max(0, ...[...realServers].map((rs) => rs.config.check.intervalMs * (rs.config.check.rise + 1) + rs.config.check.timeoutMs));
}

export function createVipTable(opts: VipTableOptions): VipTable {
  const { logger } = opts;
  const vips = new Map<string, VipRuntime>();
  const byKey = new Map<string, RsRuntime>();
  const countSettled = (): number => [...byKey.values()].filter(isSettled).length;

  const derive = (v: VipRuntime): VipStatus => reportedStatus(v, opts.outcome);

  // several real servers changing in one tick make one report, not one each
  let notifyQueued = false;
  const notify = (): void => {
    if (notifyQueued) return;
    notifyQueued = true;
    setImmediate(() => { notifyQueued = false; opts.reportChanged(); });
  };

  const recompute = (v: VipRuntime, plane = true): void => {
    // the data plane hears of every change, also those that leave the report as it was
    if (plane && v.config.forwarder !== undefined) opts.planeChanged();
    const next = derive(v);
    const prev = v.status;
    v.status = next;
    if (!vipStatusChanged(prev, next)) return;
    if (prev.state !== next.state || prev.reason !== next.reason) {
      logger.info({ vip: v.config.name, address: v.config.address, from: prev.state, to: next.state, weight: next.weight, on: next.on,
        healthy: next.healthy, total: next.total, ...(next.reason !== undefined ? { reason: next.reason } : {}) }, `vip ${v.config.name} ${next.state}`);
    }
    notify();
  };

  const applyVipCheckResult = (v: VipRuntime, result: CheckResult): void => {
    if (v.vipCheck === undefined || vips.get(v.config.name) !== v) return;
    const t = v.vipCheck.health.apply(result);
    if (t) logger.info({ vip: v.config.name, from: t.from, to: t.to, err: v.vipCheck.health.record.lastError }, `vip check of ${v.config.name} ${t.to}`);
    if (t) recompute(v, false);
  };

  const build = createRuntimeBuilder({
    makeChecker: opts.makeChecker, clock: opts.clock, now: opts.now,
    onRealServerResult: opts.onRealServerResult,
    onVipCheckResult: applyVipCheckResult,
  });
  let settled = 0;

  return {
    vips, byKey, removedAddresses: new Set<string>(), build,
    get settled() {
      return settled;
    },
    load(vcs) {
      for (const vc of vcs) {
        const v = build.newVip(vc);
        for (const rs of v.realServers) byKey.set(rs.key, rs);
        vips.set(vc.name, v);
      }
      settled = countSettled();
    },
    forwarded: () => [...vips.values()].filter((v) => v.config.forwarder !== undefined),
    derive, recompute, notify,
    recount() {
      settled = countSettled();
    },
    applyResult(key, result) {
      const rs = byKey.get(key);
      if (!rs) return false;
      if (result.ok) rs.passes++; else rs.fails++;
      const before = rs.health.record.agent;
      const wasSettled = isSettled(rs);
      const transition = rs.health.apply(result);
      const after = rs.health.record.agent;
      if (transition) {
        const rec = rs.health.record;
        const fields = { vip: rs.vip.config.name, realServer: rs.key, from: transition.from, to: transition.to, latencyMs: result.latencyMs };
        logger.info(rec.state === 'down' ? { ...fields, err: rec.lastError } : fields, `real server ${rs.key} ${transition.to}`);
      }
      if (transition || before?.state !== after?.state || before?.weightPct !== after?.weightPct) recompute(rs.vip);
      // after recompute: the first report must carry this result
      return !wasSettled && isSettled(rs) && ++settled === byKey.size;
    },
    drainRealServer(ref, drained) {
      const rs = findRealServer(vips, ref);
      if (!('key' in rs)) return rs;
      if (rs.drained === drained) return { ok: true, changed: false };
      rs.drained = drained;
      logger.info({ vip: ref.vip, realServer: rs.key }, `real server ${rs.key} ${drained ? 'drained' : 'undrained'} by the operator`);
      recompute(rs.vip);
      return { ok: true, changed: true };
    },
    drainVip(name, drained) {
      const v = vips.get(name);
      if (!v) return { ok: false, reason: `no VIP named "${name}"` };
      if (v.drained === drained) return { ok: true, changed: false };
      v.drained = drained;
      logger.info({ vip: name }, `vip ${name} ${drained ? 'drained' : 'undrained'} by the operator`);
      recompute(v);
      return { ok: true, changed: true };
    },
  };
}

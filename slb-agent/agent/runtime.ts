/**
 * The agent's live objects: one runtime per VIP and per real server, each check with its own
 * scheduler (so a reload can add and remove them one by one). Nothing here starts a timer.
 */
import type { Clock } from '../../shared/clock.js';
import type { CheckConfig, RealServerConfig, VipConfig } from '../config.js';
import type { CheckResult, Checker } from '../health/checkers/types.js';
import { createCheckScheduler } from '../health/scheduler.js';
import type { CheckScheduler } from '../health/scheduler.js';
import { HealthState } from '../health/state.js';
import { deriveVip } from '../vip.js';
import type { VipStatus } from '../vip.js';
import type { DrainOutcome, FlowCounts, RealServerRef } from './types.js';

export interface RsRuntime {
  readonly key: string;
  readonly vip: VipRuntime;
  config: RealServerConfig;
  health: HealthState;
  /** this real server's own check timer (one per real server, so a reload adds and removes them) */
  scheduler: CheckScheduler;
  drained: boolean;
  passes: number;
  fails: number;
}

/** The VIP's own check (`vipCheck:`), through the forwarder. */
export interface VipCheckRuntime {
  readonly config: CheckConfig;
  readonly health: HealthState;
  readonly scheduler: CheckScheduler;
}

export interface VipRuntime {
  config: VipConfig;
  realServers: RsRuntime[];
  drained: boolean;
  status: VipStatus;
  /** flows per real server id, from the last stats read (forwarded VIPs) */
  flows: Map<string, FlowCounts>;
  /** open flows of the VIP, from the last stats read (forwarded VIPs) */
  connections?: number;
  vipCheck?: VipCheckRuntime;
}

/** `web/127.0.0.11:8080`, `web/[2001:db8::1]:80`: a real server's key in logs, metrics and the API. */
export function realServerKey(vip: string, address: string, port: number): string {
  return `${vip}/${address.includes(':') ? `[${address}]` : address}:${port}`;
}

/** What the runtimes are built with: the checker factory, the clock, and where check results go. */
export interface RuntimeBuilderOptions {
  readonly makeChecker: (check: CheckConfig, vipName: string, clock: Clock) => Checker;
  readonly clock: Clock;
  /** unix ms, for the health records */
  readonly now: () => number;
  readonly onRealServerResult: (key: string, result: CheckResult) => void;
  readonly onVipCheckResult: (v: VipRuntime, result: CheckResult) => void;
}

/** Builds VIP and real-server runtimes; their schedulers are created stopped. */
export interface RuntimeBuilder {
  newVip(vc: VipConfig): VipRuntime;
  newRealServer(v: VipRuntime, rc: RealServerConfig): RsRuntime;
  newVipCheck(v: VipRuntime, check: CheckConfig): VipCheckRuntime;
  /** gives a kept real server a new check: a new health state from its current one, a new (stopped) scheduler */
  recheck(rs: RsRuntime, rc: RealServerConfig): void;
}

export function createRuntimeBuilder(opts: RuntimeBuilderOptions): RuntimeBuilder {
  const { clock, now } = opts;

  const checkSchedulerFor = (key: string, target: { address: string; port: number }, check: CheckConfig, vipName: string,
    sink: (result: CheckResult) => void): CheckScheduler => createCheckScheduler([{
    key, target, checker: opts.makeChecker(check, vipName, clock), intervalMs: check.intervalMs, timeoutMs: check.timeoutMs, jitter: check.jitter,
  }], (_key, result) => sink(result), { clock });

  const rsTarget = (rc: RealServerConfig): { address: string; port: number } =>
    ({ address: rc.address, port: rc.check.port !== undefined && rc.check.port > 0 ? rc.check.port : rc.port });

  const rsScheduler = (key: string, rc: RealServerConfig, vipName: string): CheckScheduler =>
    checkSchedulerFor(key, rsTarget(rc), rc.check, vipName, (result) => opts.onRealServerResult(key, result));

  const newRealServer = (v: VipRuntime, rc: RealServerConfig): RsRuntime => {
    const key = realServerKey(v.config.name, rc.address, rc.port);
    return {
      key, vip: v, config: rc, drained: false, passes: 0, fails: 0,
      health: new HealthState({ rise: rc.check.rise, fall: rc.check.fall, start: rc.check.startState }, now),
      scheduler: rsScheduler(key, rc, v.config.name),
    };
  };

  const newVipCheck = (v: VipRuntime, vc: CheckConfig): VipCheckRuntime => ({
    config: vc,
    health: new HealthState({ rise: vc.rise, fall: vc.fall, start: vc.startState }, now),
    scheduler: checkSchedulerFor(`vip:${v.config.name}`, { address: v.config.address, port: vc.port !== undefined && vc.port > 0 ? vc.port : v.config.port },
      vc, v.config.name, (result) => opts.onVipCheckResult(v, result)),
  });

  return {
    newRealServer,
    newVipCheck,
    newVip(vc) {
      const v: VipRuntime = {
        config: vc, realServers: [], drained: false, flows: new Map(),
        status: deriveVip({ name: vc.name, address: vc.address, capacity: vc.capacity, quorum: vc.quorum, drained: false, realServers: [] }),
      };
      for (const rc of vc.realServers) v.realServers.push(newRealServer(v, rc));
      if (vc.vipCheck !== undefined) v.vipCheck = newVipCheck(v, vc.vipCheck);
      return v;
    },
    recheck(rs, rc) {
      // a new check starts from the current state: no flap, the new check proves or fails it
      rs.health = new HealthState({ rise: rc.check.rise, fall: rc.check.fall, start: rs.health.state }, now);
      rs.scheduler = rsScheduler(rs.key, rc, rs.vip.config.name);
    },
  };
}

/** Every check timer of these VIPs: their real servers' and their VIP checks'. */
export function allSchedulers(vips: Iterable<VipRuntime>): CheckScheduler[] {
  return [...vips].flatMap((v) => [...v.realServers.map((rs) => rs.scheduler), ...(v.vipCheck ? [v.vipCheck.scheduler] : [])]);
}

/** The real server an API request names, or why there is none. */
export function findRealServer(vips: ReadonlyMap<string, VipRuntime>, ref: RealServerRef): RsRuntime | DrainOutcome {
  const v = vips.get(ref.vip);
  if (!v) return { ok: false, reason: `no VIP named "${ref.vip}"` };
  const rs = v.realServers.find((r) => r.config.address === ref.address && r.config.port === ref.port);
  return rs ?? { ok: false, reason: `VIP "${ref.vip}" has no real server ${ref.address} port ${ref.port}` };
}

/**
 * The running agent: one HealthState per real server, fed by the scheduler; VIP statuses derived
 * from them (vip.ts) whenever a real server's state, agent advice or drain changes; the reporter
 * told at once when a VIP's report would change. main.ts wires it to the CLI, api/app.ts reads it.
 * Nothing here waits on the network: checks, derivation and reports run independently.
 * Reporting and the forwarder's first apply start once every real server has settled (up, failed
 * once, or `rise` checks done) or after a bounded hold-off, so a restarted agent does not flap its VIPs down in DNS while its
 * down-until-proven real servers prove themselves again.
 * VIPs with a `forwarder` block are also forwarded: the forwarder manager is told of every change
 * of their real servers (health, drain, agent advice) and converges the data planes at once; its
 * flow counters are read every report interval (and for each GET /status, /metrics) and feed the
 * VIP's reported `connections`.
 */
import type { Logger } from 'pino';
import { systemClock, unrefTimer } from '../shared/clock.js';
import type { Clock, TimerHandle } from '../shared/clock.js';
import type { ReportMember } from '../shared/protocol/report.js';
import type { AgentConfig, CheckConfig, RealServerConfig, VipConfig } from './config.js';
import type { BackendStats, DataPlane } from './forwarder/data-plane.js';
import { buildVipSpec, createForwarderManager, realServerId } from './forwarder/manager.js';
import type { ForwarderManager, ForwarderManagerOptions, ForwarderManagerStatus, ForwarderVipStatus, LiveRealServer, PlaneKind } from './forwarder/manager.js';
import { createNftablesDataPlane } from './forwarder/nftables/index.js';
import { createProxyDataPlane } from './forwarder/proxy/proxy.js';
import { createChecker as defaultCreateChecker } from './health/checkers/index.js';
import type { CheckResult, Checker } from './health/checkers/types.js';
import { createScheduler } from './health/scheduler.js';
import type { Scheduler } from './health/scheduler.js';
import { HealthState } from './health/state.js';
import { createPinger } from './pinger/pinger.js';
import type { Pinger, PingerStatus } from './pinger/pinger.js';
import type { HealthRecord } from './health/state.js';
import { createReporter } from './reporter/reporter.js';
import type { DeliveryStatus, Reporter, ReporterOptions } from './reporter/reporter.js';
import { deriveVip, mergeMembers, serves, vipStatusChanged } from './vip.js';
import type { RealServerInput, VipStatus } from './vip.js';

/** How the agent is built; everything but `config` and `logger` has a production default. */
export interface AgentOptions {
  readonly config: AgentConfig;
  readonly logger: Logger;
  /** the checker factory (tests inject fakes); checkers time out on the agent's clock */
  readonly createChecker?: (check: CheckConfig, vipName: string, clock: Clock) => Checker;
  /** unix ms; the clock's wallNow by default */
  readonly now?: () => number;
  /** timers and clocks of the scheduler, reporter, pinger, hold-off and stats refresh; the system's by default */
  readonly clock?: Clock;
  /** reporter knobs beyond the config (backoff, timeout) */
  readonly reporter?: Pick<ReporterOptions, 'backoff' | 'timeoutMs'>;
  /** the data plane factory (tests inject recording planes); default: proxy / nftables */
  readonly createDataPlane?: (kind: PlaneKind) => DataPlane;
  /** forwarder manager knobs (retry backoff, plane timeouts) */
  readonly forwarder?: Pick<ForwarderManagerOptions, 'retry' | 'timeoutMs'>;
}

/** Flows of one backend, as the data plane counts them. */
export interface FlowCounts {
  /** open now */
  readonly active: number;
  /** ever placed on it */
  readonly total: number;
}

/** A real server as the API sees it. */
export interface RealServerStatus {
  readonly key: string;
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  readonly backup: boolean;
  readonly drained: boolean;
  /** takes new flows (health up, not drained, agent not refusing) */
  readonly serving: boolean;
  readonly health: HealthRecord;
  readonly check: { readonly type: string; readonly intervalMs: number; readonly timeoutMs: number; readonly rise: number; readonly fall: number };
  readonly passes: number;
  readonly fails: number;
  /** forwarded VIPs only: the data plane's id and flow counters for this real server */
  readonly forwarder?: { readonly id: string } & FlowCounts;
}

/** A VIP as the API sees it. */
export interface VipFullStatus extends VipStatus {
  readonly port: number;
  readonly protocol: string;
  readonly quorum: number;
  readonly drained: boolean;
  readonly realServers: readonly RealServerStatus[];
  /** forwarded VIPs only: mode, scheduler, the last apply and the VIP's flows */
  readonly forwarder?: ForwarderVipStatus & { readonly flows: FlowCounts };
}

/** The whole agent's state for GET /status. */
export interface AgentStatus {
  readonly site: string;
  readonly agent: string;
  readonly startedAt: number;
  readonly vips: readonly VipFullStatus[];
  readonly dns: readonly DeliveryStatus[];
  /** present when some VIP is forwarded */
  readonly forwarder?: ForwarderManagerStatus & { readonly cleanupOnExit: boolean };
  /** present when the config has a `pinger:` block */
  readonly pinger?: PingerStatus;
}

/** A real server named by the API. */
export interface RealServerRef {
  readonly vip: string;
  readonly address: string;
  readonly port: number;
}

/** The outcome of an operator action. */
export type DrainOutcome = { readonly ok: true; readonly changed: boolean } | { readonly ok: false; readonly reason: string };

/** The running agent. */
export interface Agent {
  readonly config: AgentConfig;
  /** starts checks; reports start once every real server's first checks settled (bounded hold-off) */
  start(): void;
  /** stops checks, closes the data planes (kernel forwarding stays unless cleanupOnExit), then reports */
  stop(): Promise<void>;
  /** reads the data planes' flow counters now (bounded); a no-op without forwarded VIPs */
  refreshStats(): Promise<void>;
  /** feeds one check result (the scheduler does; tests may too) */
  applyResult(key: string, result: CheckResult): void;
  drainRealServer(ref: RealServerRef, drained: boolean): DrainOutcome;
  drainVip(vip: string, drained: boolean): DrainOutcome;
  /** the members of the next report: one per VIP address */
  members(): ReportMember[];
  vips(): VipStatus[];
  status(): AgentStatus;
}

interface RsRuntime {
  readonly key: string;
  readonly vip: VipRuntime;
  readonly config: RealServerConfig;
  readonly health: HealthState;
  drained: boolean;
  passes: number;
  fails: number;
}

interface VipRuntime {
  readonly config: VipConfig;
  readonly realServers: RsRuntime[];
  drained: boolean;
  status: VipStatus;
  /** flows per real server id, from the last stats read (forwarded VIPs) */
  flows: Map<string, FlowCounts>;
  /** open flows of the VIP, from the last stats read (forwarded VIPs) */
  connections?: number;
}

/** Longest an API request waits for fresh flow counters. */
const STATS_WAIT_MS = 1000;

/** `web/127.0.0.11:8080`, `web/[2001:db8::1]:80`: a real server's key in logs, metrics and the API. */
export function realServerKey(vip: string, address: string, port: number): string {
  return `${vip}/${address.includes(':') ? `[${address}]` : address}:${port}`;
}

function rsInput(rs: RsRuntime): RealServerInput {
  const agent = rs.health.record.agent;
  return {
    address: rs.config.address, port: rs.config.port, weight: rs.config.weight, backup: rs.config.backup,
    health: rs.health.state, drained: rs.drained, ...(agent === undefined ? {} : { agent }),
  };
}

function derive(v: VipRuntime): VipStatus {
  return deriveVip({
    name: v.config.name, address: v.config.address, capacity: v.config.capacity, quorum: v.config.quorum,
    drained: v.drained, realServers: v.realServers.map(rsInput),
    ...(v.connections !== undefined ? { connections: v.connections } : {}),
  });
}

function liveRealServer(rs: RsRuntime): LiveRealServer {
  const agent = rs.health.record.agent;
  return { config: rs.config, health: rs.health.state, drained: rs.drained || rs.vip.drained, ...(agent === undefined ? {} : { agent }) };
}

function defaultCreateDataPlane(config: AgentConfig, logger: Logger): (kind: PlaneKind) => DataPlane {
  return (kind) => (kind === 'proxy'
    ? createProxyDataPlane()
    : createNftablesDataPlane({ logger, cleanupOnClose: config.forwarder.cleanupOnExit }));
}

/** Builds the agent from a validated config; nothing runs before `start()`. */
export function createAgent(opts: AgentOptions): Agent {
  const { config, logger } = opts;
  const clock = opts.clock ?? systemClock;
  const now = opts.now ?? clock.wallNow;
  const makeChecker = opts.createChecker ?? defaultCreateChecker;
  const startedAt = now();
  const vips = new Map<string, VipRuntime>();
  const byKey = new Map<string, RsRuntime>();
  for (const vc of config.vips) {
    const v: VipRuntime = {
      config: vc, realServers: [], drained: false, flows: new Map(),
      status: deriveVip({ name: vc.name, address: vc.address, capacity: vc.capacity, quorum: vc.quorum, drained: false, realServers: [] }),
    };
    for (const rc of vc.realServers) {
      const key = realServerKey(vc.name, rc.address, rc.port);
      const rs: RsRuntime = {
        key, vip: v, config: rc, drained: false, passes: 0, fails: 0,
        health: new HealthState({ rise: rc.check.rise, fall: rc.check.fall, start: rc.check.startState }, now),
      };
      v.realServers.push(rs);
      byKey.set(key, rs);
    }
    v.status = derive(v);
    vips.set(vc.name, v);
  }

  const reporter: Reporter = createReporter({
    site: config.site, agent: config.agent, secret: config.secret, dns: config.dns,
    intervalMs: config.report.intervalMs, timeoutMs: opts.reporter?.timeoutMs ?? config.report.timeoutMs,
    ...(opts.reporter?.backoff ? { backoff: opts.reporter.backoff } : {}),
    members: () => mergeMembers([...vips.values()].map((v) => v.status)),
    // only an injected clock replaces the reporter's own (sub-millisecond seq by default)
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
    logger,
  });

  const forwarded = [...vips.values()].filter((v) => v.config.forwarder !== undefined);
  const manager: ForwarderManager | undefined = forwarded.length === 0 ? undefined : createForwarderManager({
    desired: () => forwarded.map((v) => buildVipSpec(v.config, v.config.forwarder!, v.realServers.map(liveRealServer))),
    createDataPlane: opts.createDataPlane ?? defaultCreateDataPlane(config, logger),
    logger,
    ...(opts.forwarder?.retry ? { retry: opts.forwarder.retry } : {}),
    ...(opts.forwarder?.timeoutMs !== undefined ? { timeoutMs: opts.forwarder.timeoutMs } : {}),
    now,
    clock,
  });

  // the MAC-keepalive pinger never probes the agent's own VIPs
  const pinger: Pinger | undefined = config.pinger === undefined ? undefined
    : createPinger({ config: config.pinger, logger, exclude: config.vips.map((v) => v.address), clock });

  let statsRead: Promise<void> | undefined;
  let statsTimer: TimerHandle | undefined;
  const applyStats = (stats: readonly BackendStats[]): void => {
    const byVip = new Map<string, BackendStats[]>();
    for (const s of stats) {
      const list = byVip.get(s.vip);
      if (list) list.push(s); else byVip.set(s.vip, [s]);
    }
    for (const v of forwarded) {
      const mine = byVip.get(v.config.name) ?? [];
      v.flows = new Map(mine.map((s) => [s.backend, { active: s.active, total: s.total }]));
      v.connections = mine.reduce((n, s) => n + s.active, 0);
      // connections alone do not trigger a report: the heartbeat carries them
      v.status = derive(v);
    }
  };
  const refreshStats = (): Promise<void> => {
    if (!manager) return Promise.resolve();
    // one read at a time; callers in the meantime share it
    statsRead ??= manager.stats().then(applyStats, () => undefined).finally(() => { statsRead = undefined; });
    // an API request waits at most a second for a slow plane; it then shows the last counters
    let timer: TimerHandle | undefined;
    return Promise.race([statsRead, new Promise<void>((r) => { timer = clock.setTimeout(r, STATS_WAIT_MS); })])
      .finally(() => clock.clearTimeout(timer));
  };

  // several real servers changing in one tick make one report, not one each
  let notifyQueued = false;
  const notify = (): void => {
    if (notifyQueued) return;
    notifyQueued = true;
    setImmediate(() => { notifyQueued = false; reporter.notify(); });
  };

  const recompute = (v: VipRuntime): void => {
    // the data plane hears of every change, also those that leave the report as it was
    if (v.config.forwarder !== undefined) manager?.changed();
    const next = derive(v);
    const prev = v.status;
    v.status = next;
    if (!vipStatusChanged(prev, next)) return;
    if (prev.state !== next.state) {
      logger.info({ vip: v.config.name, address: v.config.address, from: prev.state, to: next.state, weight: next.weight, on: next.on,
        healthy: next.healthy, total: next.total }, `vip ${v.config.name} ${next.state}`);
    }
    notify();
  };

  const scheduler: Scheduler = createScheduler([...byKey.values()].map((rs) => {
    const check = rs.config.check;
    return {
      key: rs.key,
      target: { address: rs.config.address, port: check.port !== undefined && check.port > 0 ? check.port : rs.config.port },
      checker: makeChecker(check, rs.vip.config.name, clock),
      intervalMs: check.intervalMs,
      timeoutMs: check.timeoutMs,
      jitter: check.jitter,
    };
  }), (key, result) => agent.applyResult(key, result), { clock });

  // a real server is settled once its state says something: up, failed, or `rise` checks done
  const isSettled = (rs: RsRuntime): boolean => {
    const r = rs.health.record;
    return r.state === 'up' || r.failures > 0 || r.checks >= rs.config.check.rise;
  };
  let settled = [...byKey.values()].filter(isSettled).length;
  // the longest any real server needs to settle: rise full intervals plus a timeout, plus slack
  const holdOffMs = Math.max(0, ...[...byKey.values()].map((rs) => rs.config.check.intervalMs * (rs.config.check.rise + 1) + rs.config.check.timeoutMs));
  let started = false;
  let reporting = false;
  let startedMono = 0;
  let holdTimer: TimerHandle | undefined;
  // The data plane waits for the same moment: a restarted agent finds its kernel forwarding still
  // programmed, and applying before the first checks settle would program every real server as
  // down (their start state), resetting live flows and refusing new ones until they rise again.
  const startReporting = (why: string): void => {
    if (reporting || !started) return;
    reporting = true;
    clock.clearTimeout(holdTimer);
    logger.info({ why, afterMs: Math.round(clock.now() - startedMono), settled, realServers: byKey.size }, 'reporting started');
    manager?.start();
    reporter.start();
  };

  const find = (ref: RealServerRef): RsRuntime | DrainOutcome => {
    const v = vips.get(ref.vip);
    if (!v) return { ok: false, reason: `no VIP named "${ref.vip}"` };
    const rs = v.realServers.find((r) => r.config.address === ref.address && r.config.port === ref.port);
    return rs ?? { ok: false, reason: `VIP "${ref.vip}" has no real server ${ref.address} port ${ref.port}` };
  };

  const agent: Agent = {
    config,
    start() {
      if (started) return;
      started = true;
      startedMono = clock.now();
      scheduler.start();
      // the pinger is an aid, not the agent's job: a pinger that cannot open its sockets is logged, the agent runs on
      pinger?.start().catch((err: unknown) => logger.error({ err: (err as Error).message }, 'pinger failed to start; running without it'));
      if (manager) {
        statsTimer = unrefTimer(clock.setInterval(() => void refreshStats(), config.report.intervalMs));
      }
      logger.info({ site: config.site, agent: config.agent, vips: vips.size, realServers: byKey.size, dns: config.dns }, 'agent started');
      // reports wait until the first checks have settled (bounded), so that a restarted agent
      // does not report its VIPs down for the `rise` checks it takes to prove them up again
      holdTimer = clock.setTimeout(() => startReporting('hold-off expired'), holdOffMs);
      if (settled === byKey.size) startReporting('checks settled');
    },
    async stop() {
      clock.clearTimeout(holdTimer);
      clock.clearInterval(statsTimer);
      await scheduler.stop();
      await pinger?.stop();
      await manager?.close();
      await reporter.stop();
    },
    refreshStats,
    applyResult(key, result) {
      const rs = byKey.get(key);
      if (!rs) return;
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
      if (!wasSettled && isSettled(rs) && ++settled === byKey.size) startReporting('checks settled');
    },
    drainRealServer(ref, drained) {
      const rs = find(ref);
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
    members() {
      return mergeMembers([...vips.values()].map((v) => v.status));
    },
    vips() {
      return [...vips.values()].map((v) => v.status);
    },
    status() {
      const fw = manager?.status();
      const flowsOf = (v: VipRuntime, id: string): FlowCounts => v.flows.get(id) ?? { active: 0, total: 0 };
      return {
        site: config.site,
        agent: config.agent,
        startedAt,
        vips: [...vips.values()].map((v) => {
          const fv = fw?.vips[v.config.name];
          let flows = { active: 0, total: 0 };
          for (const c of v.flows.values()) flows = { active: flows.active + c.active, total: flows.total + c.total };
          return {
            ...v.status,
            port: v.config.port, protocol: v.config.protocol, quorum: v.config.quorum, drained: v.drained,
            realServers: v.realServers.map((rs) => {
              const id = realServerId(rs.config.address, rs.config.port);
              return {
                key: rs.key, address: rs.config.address, port: rs.config.port, weight: rs.config.weight, backup: rs.config.backup,
                drained: rs.drained, serving: serves(rsInput(rs)), health: rs.health.record, passes: rs.passes, fails: rs.fails,
                check: { type: rs.config.check.type, intervalMs: rs.config.check.intervalMs, timeoutMs: rs.config.check.timeoutMs,
                  rise: rs.config.check.rise, fall: rs.config.check.fall },
                ...(fv !== undefined ? { forwarder: { id, ...flowsOf(v, id) } } : {}),
              };
            }),
            ...(fv !== undefined ? { forwarder: { ...fv, flows } } : {}),
          };
        }),
        dns: reporter.status(),
        ...(fw !== undefined ? { forwarder: { ...fw, cleanupOnExit: config.forwarder.cleanupOnExit } } : {}),
        ...(pinger !== undefined ? { pinger: pinger.status() } : {}),
      };
    },
  };
  return agent;
}

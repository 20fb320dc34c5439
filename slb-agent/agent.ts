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
import type { ApplyOutcome, ForwarderManager, ForwarderManagerOptions, ForwarderManagerStatus, ForwarderVipStatus, LiveRealServer, PlaneKind } from './forwarder/manager.js';
import { createNftablesDataPlane } from './forwarder/nftables/index.js';
import { createProxyDataPlane } from './forwarder/proxy/proxy.js';
import { loadReusePort } from './forwarder/proxy/reuseport.js';
import { createChecker as defaultCreateChecker } from './health/checkers/index.js';
import type { CheckResult, Checker } from './health/checkers/types.js';
import { createScheduler } from './health/scheduler.js';
import type { Scheduler } from './health/scheduler.js';
import { HealthState } from './health/state.js';
import { createPinger } from './pinger/pinger.js';
import type { Pinger, PingerStatus } from './pinger/pinger.js';
import type { HealthRecord, HealthStatus } from './health/state.js';
import { createReporter } from './reporter/reporter.js';
import type { DeliveryStatus, Reporter, ReporterOptions } from './reporter/reporter.js';
import { deriveVip, downFor, mergeMembers, serves, vipStatusChanged } from './vip.js';
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
  /** forwarder manager knobs (retry backoff, plane timeouts, its own clock: the agent's by default) */
  readonly forwarder?: Pick<ForwarderManagerOptions, 'retry' | 'timeoutMs' | 'clock'>;
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
  /** VIPs with a `vipCheck:` only: the check of the VIP itself */
  readonly vipCheck?: { readonly type: string; readonly health: HealthRecord };
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
  /**
   * stop (default): stops checks, sends the final report (proxy VIPs and those cleaned up on exit
   * down "agent stopped", the others unchecked), then closes the data planes (kernel forwarding
   * stays unless cleanupOnExit). handover: no report; the proxy stops accepting and lets open
   * flows finish (up to drainMs) while a successor serves.
   */
  stop(how?: StopKind): Promise<void>;
  /** applies a new config without a restart (see ReloadSummary); refuses a different site, agent or api */
  reload(next: AgentConfig): ReloadOutcome;
  /** resolves once the data plane's first apply settled (at once without forwarded VIPs) */
  ready(): Promise<void>;
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
  config: RealServerConfig;
  health: HealthState;
  /** this real server's own check timer (one per real server, so a reload adds and removes them) */
  scheduler: Scheduler;
  drained: boolean;
  passes: number;
  fails: number;
}

/** The VIP's own check (`vipCheck:`), through the forwarder. */
interface VipCheckRuntime {
  readonly config: CheckConfig;
  readonly health: HealthState;
  readonly scheduler: Scheduler;
}

interface VipRuntime {
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

/** What a reload changed (logged as `config reloaded`). */
export interface ReloadSummary {
  readonly vips: { readonly added: string[]; readonly removed: string[]; readonly changed: string[] };
  readonly realServers: { readonly added: string[]; readonly removed: string[]; readonly changed: string[] };
  /** dns, secret or report settings changed: the reporter was replaced */
  readonly reporter: boolean;
  readonly pinger: boolean;
  readonly cleanupOnExit: boolean;
}

/** A reload's outcome: applied (with what changed) or refused (the running config stays). */
export type ReloadOutcome = { readonly ok: true; readonly summary: ReloadSummary } | { readonly ok: false; readonly reason: string };

/** How the agent ends: a stop (final report) or a handover to a successor (no report; the proxy drains). */
export type StopKind = { readonly kind: 'stop' } | { readonly kind: 'handover'; readonly drainMs: number };

/** Longest the final report of a graceful stop waits for the DNS instances. */
export const FINAL_REPORT_TIMEOUT_MS = 800;

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

function deriveServers(v: VipRuntime): VipStatus {
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

/** The production planes; `cleanup()` is read when the kernel plane closes (a handover never cleans up). */
function defaultCreateDataPlane(logger: Logger, cleanup: () => boolean): (kind: PlaneKind) => DataPlane {
  return (kind) => {
    if (kind === 'nftables') return createNftablesDataPlane({ logger, cleanupOnClose: cleanup });
    const rp = loadReusePort();
    if (rp.open === undefined) {
      logger.warn({ reason: rp.reason }, 'proxy: listening without SO_REUSEPORT (reuseport_sock addon unavailable): a restarted agent cannot take the listeners over, connections are refused until it listens');
    }
    return createProxyDataPlane(rp.open !== undefined ? { reusePort: rp.open } : {});
  };
}

/** Builds the agent from a validated config; nothing runs before `start()`. */
export function createAgent(opts: AgentOptions): Agent {
  const { logger } = opts;
  let config = opts.config;
  const clock = opts.clock ?? systemClock;
  const now = opts.now ?? clock.wallNow;
  const makeChecker = opts.createChecker ?? defaultCreateChecker;
  const startedAt = now();
  const vips = new Map<string, VipRuntime>();
  const byKey = new Map<string, RsRuntime>();
  /** addresses of VIPs a reload removed: reported down so DNS does not keep their last state */
  const removedAddresses = new Set<string>();
  let started = false;
  let reporting = false;
  let stopping = false;

  const isForwarded = (v: VipRuntime): boolean => v.config.forwarder !== undefined;
  const forwarded = (): VipRuntime[] => [...vips.values()].filter(isForwarded);

  const checkSchedulerFor = (key: string, target: { address: string; port: number }, check: CheckConfig, vipName: string,
    sink: (result: CheckResult) => void): Scheduler => createScheduler([{
    key, target, checker: makeChecker(check, vipName, clock), intervalMs: check.intervalMs, timeoutMs: check.timeoutMs, jitter: check.jitter,
  }], (_key, result) => sink(result), { clock });

  const rsTarget = (rc: RealServerConfig): { address: string; port: number } =>
    ({ address: rc.address, port: rc.check.port !== undefined && rc.check.port > 0 ? rc.check.port : rc.port });

  const newRealServer = (v: VipRuntime, rc: RealServerConfig, start?: HealthStatus): RsRuntime => {
    const key = realServerKey(v.config.name, rc.address, rc.port);
    const rs: RsRuntime = {
      key, vip: v, config: rc, drained: false, passes: 0, fails: 0,
      health: new HealthState({ rise: rc.check.rise, fall: rc.check.fall, start: start ?? rc.check.startState }, now),
      scheduler: checkSchedulerFor(key, rsTarget(rc), rc.check, v.config.name, (result) => agent.applyResult(key, result)),
    };
    return rs;
  };

  const newVipCheck = (v: VipRuntime, vc: CheckConfig): VipCheckRuntime => ({
    config: vc,
    health: new HealthState({ rise: vc.rise, fall: vc.fall, start: vc.startState }, now),
    scheduler: checkSchedulerFor(`vip:${v.config.name}`, { address: v.config.address, port: vc.port !== undefined && vc.port > 0 ? vc.port : v.config.port },
      vc, v.config.name, (result) => applyVipCheckResult(v, result)),
  });

  const newVip = (vc: VipConfig): VipRuntime => {
    const v: VipRuntime = {
      config: vc, realServers: [], drained: false, flows: new Map(),
      status: deriveVip({ name: vc.name, address: vc.address, capacity: vc.capacity, quorum: vc.quorum, drained: false, realServers: [] }),
    };
    for (const rc of vc.realServers) {
      const rs = newRealServer(v, rc);
      v.realServers.push(rs);
      byKey.set(rs.key, rs);
    }
    if (vc.vipCheck !== undefined) v.vipCheck = newVipCheck(v, vc.vipCheck);
    return v;
  };

  let manager: ForwarderManager;
  /** the VIP's reported status: its real servers' verdict, unless the data plane or the VIP check says down */
  const derive = (v: VipRuntime): VipStatus => {
    const base = deriveServers(v);
    if (v.drained) return base;
    if (isForwarded(v)) {
      const outcome = manager.outcome(v.config.name);
      if (outcome === undefined) return downFor(base, 'forwarder not applied yet');
      if (!outcome.ok) return downFor(base, `forwarder: ${outcome.error ?? 'apply failed'}`);
    }
    const vch = v.vipCheck?.health.record;
    if (vch !== undefined && vch.state === 'down') return downFor(base, `vip check: ${vch.lastError ?? 'not passed yet'}`);
    return base;
  };

  const makeReporter = (c: AgentConfig): Reporter => createReporter({
    site: c.site, agent: c.agent, secret: c.secret, dns: c.dns,
    intervalMs: c.report.intervalMs, timeoutMs: opts.reporter?.timeoutMs ?? c.report.timeoutMs,
    ...(opts.reporter?.backoff ? { backoff: opts.reporter.backoff } : {}),
    members: () => agent.members(),
    // only an injected clock replaces the reporter's own (sub-millisecond seq by default)
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
    logger,
  });
  let reporter: Reporter = makeReporter(config);

  // the first report waits for the data plane's first apply, so it tells whether the VIP is in place
  let firstApplied = false;
  let resolveReady: () => void = () => undefined;
  const readyPromise = new Promise<void>((r) => { resolveReady = r; });
  const onApplied = (outcomes: ReadonlyMap<string, ApplyOutcome>): void => {
    for (const name of outcomes.keys()) {
      const v = vips.get(name);
      if (v !== undefined) recompute(v, false);
    }
    if (!firstApplied) {
      firstApplied = true;
      resolveReady();
      if (reporting && !stopping) reporter.start();
    }
  };

  let handingOver = false;
  const createPlane = opts.createDataPlane ?? defaultCreateDataPlane(logger, () => config.forwarder.cleanupOnExit && !handingOver);
  manager = createForwarderManager({
    desired: () => forwarded().map((v) => buildVipSpec(v.config, v.config.forwarder!, v.realServers.map(liveRealServer))),
    createDataPlane: createPlane,
    logger,
    ...(opts.forwarder?.retry ? { retry: opts.forwarder.retry } : {}),
    ...(opts.forwarder?.timeoutMs !== undefined ? { timeoutMs: opts.forwarder.timeoutMs } : {}),
    now,
    onApplied,
    clock: opts.forwarder?.clock ?? clock,
  });

  for (const vc of config.vips) vips.set(vc.name, newVip(vc));
  for (const v of vips.values()) v.status = derive(v);

  // the MAC-keepalive pinger never probes the agent's own VIPs
  const makePinger = (c: AgentConfig): Pinger | undefined => (c.pinger === undefined ? undefined
    : createPinger({ config: c.pinger, logger, exclude: c.vips.map((v) => v.address), clock }));
  let pinger: Pinger | undefined = makePinger(config);
  const startPinger = (p: Pinger | undefined): void => {
    // the pinger is an aid, not the agent's job: a pinger that cannot open its sockets is logged, the agent runs on
    p?.start().catch((err: unknown) => logger.error({ err: (err as Error).message }, 'pinger failed to start; running without it'));
  };

  let statsRead: Promise<void> | undefined;
  let statsTimer: TimerHandle | undefined;
  const applyStats = (stats: readonly BackendStats[]): void => {
    const byVip = new Map<string, BackendStats[]>();
    for (const s of stats) {
      const list = byVip.get(s.vip);
      if (list) list.push(s); else byVip.set(s.vip, [s]);
    }
    for (const v of forwarded()) {
      const mine = byVip.get(v.config.name) ?? [];
      v.flows = new Map(mine.map((s) => [s.backend, { active: s.active, total: s.total }]));
      v.connections = mine.reduce((n, s) => n + s.active, 0);
      // connections alone do not trigger a report: the heartbeat carries them
      v.status = derive(v);
    }
  };
  const refreshStats = (): Promise<void> => {
    if (forwarded().length === 0) return Promise.resolve();
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

  /** re-derives the VIP; `plane`: the data plane hears of it too (not when the plane itself told us) */
  const recompute = (v: VipRuntime, plane = true): void => {
    // the data plane hears of every change, also those that leave the report as it was
    if (plane && isForwarded(v)) manager.changed();
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

  // a real server is settled once its state says something: up, failed, or `rise` checks done
  const isSettled = (rs: RsRuntime): boolean => {
    const r = rs.health.record;
    return r.state === 'up' || r.failures > 0 || r.checks >= rs.config.check.rise;
  };
  let settled = [...byKey.values()].filter(isSettled).length;
  // the longest any real server needs to settle: rise full intervals plus a timeout, plus slack
  const holdOffMs = Math.max(0, ...[...byKey.values()].map((rs) => rs.config.check.intervalMs * (rs.config.check.rise + 1) + rs.config.check.timeoutMs));
  let startedMono = 0;
  let holdTimer: TimerHandle | undefined;
  // The data plane waits for the same moment: a restarted agent finds its kernel forwarding still
  // programmed, and applying before the first checks settle would program every real server as
  // down (their start state), resetting live flows and refusing new ones until they rise again.
  const startReporting = (why: string): void => {
    if (reporting || !started || stopping) return;
    reporting = true;
    clock.clearTimeout(holdTimer);
    logger.info({ why, afterMs: Math.round(clock.now() - startedMono), settled, realServers: byKey.size }, 'reporting started');
    manager.start();
    // VIP checks go through the forwarder: they start with it
    for (const v of vips.values()) v.vipCheck?.scheduler.start();
    if (forwarded().length === 0 && !firstApplied) {
      firstApplied = true;
      resolveReady();
    }
    if (firstApplied) reporter.start();
  };

  const find = (ref: RealServerRef): RsRuntime | DrainOutcome => {
    const v = vips.get(ref.vip);
    if (!v) return { ok: false, reason: `no VIP named "${ref.vip}"` };
    const rs = v.realServers.find((r) => r.config.address === ref.address && r.config.port === ref.port);
    return rs ?? { ok: false, reason: `VIP "${ref.vip}" has no real server ${ref.address} port ${ref.port}` };
  };

  const allSchedulers = (): Scheduler[] => [...vips.values()].flatMap((v) => [
    ...v.realServers.map((rs) => rs.scheduler), ...(v.vipCheck ? [v.vipCheck.scheduler] : [])]);

  /** the members of the final report: what stops with the agent is down, what the kernel keeps is unchecked */
  const finalMembers = (): ReportMember[] => mergeMembers([...vips.values()].map((v) => {
    const fw = v.config.forwarder;
    const stopsWithUs = fw !== undefined && (fw.mode === 'proxy' || config.forwarder.cleanupOnExit);
    return stopsWithUs ? downFor(v.status, 'agent stopped') : { ...v.status, checked: false };
  })).concat(removedMembers());

  const removedMembers = (): ReportMember[] => {
    const live = new Set([...vips.values()].map((v) => v.config.address));
    return [...removedAddresses].filter((a) => !live.has(a))
      .map((address) => ({ address, state: 'down' as const, weight: 0, reason: 'removed from the agent config' }));
  };

  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

  const agent: Agent = {
    get config() {
      return config;
    },
    start() {
      if (started) return;
      started = true;
      startedMono = clock.now();
      for (const v of vips.values()) for (const rs of v.realServers) rs.scheduler.start();
      startPinger(pinger);
      statsTimer = unrefTimer(clock.setInterval(() => void refreshStats(), config.report.intervalMs));
      logger.info({ site: config.site, agent: config.agent, vips: vips.size, realServers: byKey.size, dns: config.dns }, 'agent started');
      // reports wait until the first checks have settled (bounded), so that a restarted agent
      // does not report its VIPs down for the `rise` checks it takes to prove them up again
      holdTimer = clock.setTimeout(() => startReporting('hold-off expired'), holdOffMs);
      if (settled === byKey.size) startReporting('checks settled');
    },
    ready: () => readyPromise,
    async stop(how = { kind: 'stop' }) {
      if (stopping) return;
      stopping = true;
      clock.clearTimeout(holdTimer);
      clock.clearInterval(statsTimer);
      await Promise.all(allSchedulers().map((s) => s.stop()));
      await pinger?.stop();
      if (how.kind === 'stop' && reporting && firstApplied) {
        // before the data plane closes: DNS stops answering what is about to refuse connections
        await reporter.final(finalMembers(), Math.min(FINAL_REPORT_TIMEOUT_MS, config.report.timeoutMs));
      } else {
        await reporter.stop();
      }
      if (how.kind === 'handover') {
        handingOver = true;
        await manager.drain(how.drainMs);
      }
      await manager.close();
    },
    reload(next) {
      if (stopping) return { ok: false, reason: 'the agent is stopping' };
      for (const k of ['site', 'agent'] as const) {
        if (next[k] !== config[k]) return { ok: false, reason: `${k} changed (${config[k]} -> ${next[k]}): that is another agent; restart it` };
      }
      if (next.api.host !== config.api.host || next.api.port !== config.api.port) {
        return { ok: false, reason: `api changed (${config.api.host}:${config.api.port} -> ${next.api.host}:${next.api.port}): restart the agent to move its API` };
      }
      const summary = {
        vips: { added: [] as string[], removed: [] as string[], changed: [] as string[] },
        realServers: { added: [] as string[], removed: [] as string[], changed: [] as string[] },
        reporter: !(config.secret.equals(next.secret) && same(config.dns, next.dns) && same(config.report, next.report)),
        pinger: !same(config.pinger, next.pinger) || !same(config.vips.map((v) => v.address), next.vips.map((v) => v.address)),
        cleanupOnExit: config.forwarder.cleanupOnExit !== next.forwarder.cleanupOnExit,
      };
      const stopping_: Scheduler[] = [];
      const nextNames = new Set(next.vips.map((v) => v.name));
      for (const [name, v] of [...vips]) {
        if (nextNames.has(name)) continue;
        summary.vips.removed.push(name);
        for (const rs of v.realServers) { stopping_.push(rs.scheduler); byKey.delete(rs.key); summary.realServers.removed.push(rs.key); }
        if (v.vipCheck) stopping_.push(v.vipCheck.scheduler);
        vips.delete(name);
        removedAddresses.add(v.config.address);
      }
      const touched: VipRuntime[] = [];
      for (const vc of next.vips) {
        removedAddresses.delete(vc.address);
        const v = vips.get(vc.name);
        if (v === undefined) {
          const fresh = newVip(vc);
          vips.set(vc.name, fresh);
          summary.vips.added.push(vc.name);
          summary.realServers.added.push(...fresh.realServers.map((rs) => rs.key));
          if (started) for (const rs of fresh.realServers) rs.scheduler.start();
          if (reporting) fresh.vipCheck?.scheduler.start();
          touched.push(fresh);
          continue;
        }
        const { realServers: _a, ...restOld } = v.config;
        const { realServers: _b, ...restNew } = vc;
        const vipChanged = !same(restOld, restNew);
        if (v.config.address !== vc.address) removedAddresses.add(v.config.address);
        // the VIP check probes the VIP's address and port: a moved VIP needs a new one
        const moved = v.config.address !== vc.address || v.config.port !== vc.port;
        v.config = vc;
        if (vipChanged) summary.vips.changed.push(vc.name);
        if (moved || !same(v.vipCheck?.config, vc.vipCheck)) {
          if (v.vipCheck) stopping_.push(v.vipCheck.scheduler);
          delete v.vipCheck;
          if (vc.vipCheck !== undefined) {
            v.vipCheck = newVipCheck(v, vc.vipCheck);
            if (reporting) v.vipCheck.scheduler.start();
          }
        }
        const old = new Map(v.realServers.map((rs) => [rs.key, rs]));
        const list: RsRuntime[] = [];
        for (const rc of vc.realServers) {
          const key = realServerKey(vc.name, rc.address, rc.port);
          const had = old.get(key);
          old.delete(key);
          if (had === undefined) {
            const rs = newRealServer(v, rc);
            byKey.set(key, rs);
            if (started) rs.scheduler.start();
            list.push(rs);
            summary.realServers.added.push(key);
            continue;
          }
          if (!same(had.config.check, rc.check)) {
            // a new check starts from the current state: no flap, the new check proves or fails it
            stopping_.push(had.scheduler);
            had.health = new HealthState({ rise: rc.check.rise, fall: rc.check.fall, start: had.health.state }, now);
            had.scheduler = checkSchedulerFor(key, rsTarget(rc), rc.check, vc.name, (result) => agent.applyResult(key, result));
            if (started) had.scheduler.start();
            summary.realServers.changed.push(key);
          } else if (!same({ ...had.config, index: 0 }, { ...rc, index: 0 })) {
            summary.realServers.changed.push(key);
          }
          had.config = rc;
          list.push(had);
        }
        for (const rs of old.values()) {
          stopping_.push(rs.scheduler);
          byKey.delete(rs.key);
          summary.realServers.removed.push(rs.key);
        }
        v.realServers = list;
        touched.push(v);
      }
      void Promise.all(stopping_.map((s) => s.stop()));

      if (summary.reporter) {
        const old = reporter;
        reporter = makeReporter(next);
        void old.stop();
        if (reporting && firstApplied) reporter.start();
      }
      if (summary.pinger) {
        const old = pinger;
        pinger = makePinger(next);
        void old?.stop().then(() => { if (started && !stopping) startPinger(pinger); });
        if (old === undefined && started) startPinger(pinger);
      }
      config = next;
      settled = [...byKey.values()].filter(isSettled).length;
      for (const v of touched) recompute(v);
      manager.changed();
      notify();
      if (started && !reporting && settled === byKey.size) startReporting('checks settled');
      return { ok: true, summary };
    },
    refreshStats,
    applyResult(key, result) {
      const rs = byKey.get(key);
      if (!rs || stopping) return;
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
      return mergeMembers([...vips.values()].map((v) => v.status)).concat(removedMembers());
    },
    vips() {
      return [...vips.values()].map((v) => v.status);
    },
    status() {
      const fw = forwarded().length > 0 ? manager.status() : undefined;
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
            ...(v.vipCheck !== undefined ? { vipCheck: { type: v.vipCheck.config.type, health: v.vipCheck.health.record } } : {}),
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

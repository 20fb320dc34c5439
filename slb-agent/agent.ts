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
import type { AgentConfig } from './config.js';
import type { DataPlane } from './forwarder/data-plane.js';
import { buildVipSpec, createForwarderManager } from './forwarder/manager.js';
import type { ApplyOutcome, PlaneKind } from './forwarder/manager.js';
import { createNftablesDataPlane } from './forwarder/nftables/index.js';
import { createProxyDataPlane } from './forwarder/proxy/proxy.js';
import { loadReusePort } from './forwarder/proxy/reuseport.js';
import { createChecker as defaultCreateChecker } from './health/checkers/index.js';
import { createPinger } from './pinger/pinger.js';
import type { Pinger } from './pinger/pinger.js';
import { createReporter } from './reporter/reporter.js';
import type { Reporter } from './reporter/reporter.js';
import { vipFullStatus } from './agent/api-status.js';
import { createFlowStatsReader } from './agent/flow-stats.js';
import { refuseReload, reloadVips, servicesChanged } from './agent/reload.js';
import { finalMembers, liveMembers } from './agent/report-members.js';
import { allSchedulers } from './agent/runtime.js';
import type { Agent, AgentOptions, RealServerRef } from './agent/types.js';
import type { CheckResult } from './health/checkers/types.js';
import { createReportGate } from './agent/report-gate.js';
import { createVipTable, settleHoldOffMs } from './agent/vip-table.js';
import { liveRealServer } from './agent/vip-status.js';

export type {
  Agent, AgentOptions, AgentStatus, DrainOutcome, FlowCounts, RealServerRef, RealServerStatus, ReloadOutcome, ReloadSummary,
  StopKind, VipFullStatus,
} from './agent/types.js';
export { realServerKey } from './agent/runtime.js';

/** Longest the final report of a graceful stop waits for the DNS instances. */
export const FINAL_REPORT_TIMEOUT_MS = 800;

/** Longest an API request waits for fresh flow counters. */
const STATS_WAIT_MS = 1000;

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

function createAgentReporter(c: AgentConfig, opts: AgentOptions, members: Agent['members']): Reporter {
  return createReporter({
    site: c.site, agent: c.agent, secret: c.secret, dns: c.dns,
    intervalMs: c.report.intervalMs, timeoutMs: opts.reporter?.timeoutMs ?? c.report.timeoutMs,
    ...(opts.reporter?.backoff ? { backoff: opts.reporter.backoff } : {}),
    members,
    // only an injected clock replaces the reporter's own (sub-millisecond seq by default)
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
    logger: opts.logger,
  });
}

// the MAC-keepalive pinger never probes the agent's own VIPs
function createAgentPinger(c: AgentConfig, logger: Logger, clock: Clock): Pinger | undefined {
  return c.pinger === undefined ? undefined : createPinger({ config: c.pinger, logger, exclude: c.vips.map((v) => v.address), clock });
}

function startPinger(p: Pinger | undefined, logger: Logger): void {
  // the pinger is an aid, not the agent's job: a pinger that cannot open its sockets is logged, the agent runs on
  p?.start().catch((err: unknown) => logger.error({ err: (err as Error).message }, 'pinger failed to start; running without it'));
}

/** Builds the agent from a validated config; nothing runs before `start()`. */
export function createAgent(opts: AgentOptions): Agent {
  const { logger } = opts;
  let config = opts.config;
  const clock = opts.clock ?? systemClock;
  const now = opts.now ?? clock.wallNow;
  const startedAt = now();
  let started = false;
  let stopping = false;
  const checkListeners = new Set<(rs: RealServerRef, result: CheckResult) => void>();

  const table = createVipTable({
    logger, makeChecker: opts.createChecker ?? defaultCreateChecker, clock, now,
    onRealServerResult: (key, result) => agent.applyResult(key, result),
    outcome: (name) => manager.outcome(name),
    planeChanged: () => manager.changed(),
    reportChanged: () => reporter.notify(),
  });
  const { vips, byKey, removedAddresses, forwarded } = table;

  let reporter: Reporter = createAgentReporter(config, opts, () => agent.members());

  const onApplied = (outcomes: ReadonlyMap<string, ApplyOutcome>): void => {
    for (const name of outcomes.keys()) {
      const v = vips.get(name);
      if (v !== undefined) table.recompute(v, false);
    }
    // the first report waits for the data plane's first apply, so it tells whether the VIP is in place
    gate.onApplied();
  };

  let handingOver = false;
  const manager = createForwarderManager({
    desired: () => forwarded().map((v) => buildVipSpec(v.config, v.config.forwarder!, v.realServers.map(liveRealServer))),
    createDataPlane: opts.createDataPlane ?? defaultCreateDataPlane(logger, () => config.forwarder.cleanupOnExit && !handingOver),
    logger,
    ...(opts.forwarder?.retry ? { retry: opts.forwarder.retry } : {}),
    ...(opts.forwarder?.timeoutMs !== undefined ? { timeoutMs: opts.forwarder.timeoutMs } : {}),
    now,
    onApplied,
    clock: opts.forwarder?.clock ?? clock,
  });
  // after the manager, which reads the desired state when it is built: its status lists the VIPs
  // and planes from its first apply on
  table.load(config.vips);
  for (const v of vips.values()) v.status = table.derive(v);

  let pinger: Pinger | undefined = createAgentPinger(config, logger, clock);

  let statsTimer: TimerHandle | undefined;
  const refreshStats = createFlowStatsReader({
    forwarded, read: () => manager.stats(), clock, waitMs: STATS_WAIT_MS,
    // connections alone do not trigger a report: the heartbeat carries them
    onRead: (fw) => { for (const v of fw) v.status = table.derive(v); },
  });

  // reports and the data plane wait until the first checks have settled (bounded), so that a
  // restarted agent neither reports its VIPs down nor programs its real servers down meanwhile
  const gate = createReportGate({
    clock, logger, holdOffMs: settleHoldOffMs(byKey.values()),
    settled: () => ({ settled: table.settled, total: byKey.size }),
    mayOpen: () => started && !stopping,
    mayReport: () => !stopping,
    forwards: () => forwarded().length > 0,
    onOpen: () => {
      manager.start();
      // VIP checks go through the forwarder: they start with it
      for (const v of vips.values()) v.vipCheck?.scheduler.start();
    },
    startReporter: () => reporter.start(),
  });

  const agent: Agent = {
    get config() {
      return config;
    },
    start() {
      if (started) return;
      started = true;
      const since = clock.now();
      for (const v of vips.values()) for (const rs of v.realServers) rs.scheduler.start();
      startPinger(pinger, logger);
      statsTimer = unrefTimer(clock.setInterval(() => void refreshStats(), config.report.intervalMs));
      logger.info({ site: config.site, agent: config.agent, vips: vips.size, realServers: byKey.size, dns: config.dns }, 'agent started');
      gate.arm(since);
    },
    ready: () => gate.ready(),
    async stop(how = { kind: 'stop' }) {
      if (stopping) return;
      stopping = true;
      gate.disarm();
      clock.clearInterval(statsTimer);
      await Promise.all(allSchedulers(vips.values()).map((s) => s.stop()));
      await pinger?.stop();
      if (how.kind === 'stop' && gate.open && gate.applied) {
        // before the data plane closes: DNS stops answering what is about to refuse connections
        await reporter.final(finalMembers([...vips.values()], removedAddresses, config.forwarder.cleanupOnExit), Math.min(FINAL_REPORT_TIMEOUT_MS, config.report.timeoutMs));
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
      const refused = refuseReload(config, next);
      if (refused !== undefined) return { ok: false, reason: refused };
      const services = servicesChanged(config, next);
      const { stopped, touched, ...lists } = reloadVips({ vips, byKey, removedAddresses, build: table.build, started, reporting: gate.open }, next);
      void Promise.all(stopped.map((s) => s.stop()));
      if (services.reporter) {
        const old = reporter;
        reporter = createAgentReporter(next, opts, () => agent.members());
        void old.stop();
        if (gate.open && gate.applied) reporter.start();
      }
      if (services.pinger) {
        const old = pinger;
        pinger = createAgentPinger(next, logger, clock);
        void old?.stop().then(() => { if (started && !stopping) startPinger(pinger, logger); });
        if (old === undefined && started) startPinger(pinger, logger);
      }
      config = next;
      table.recount();
      for (const v of touched) table.recompute(v);
      manager.changed();
      table.notify();
      if (started && !gate.open && table.settled === byKey.size) gate.tryOpen('checks settled');
      return { ok: true, summary: { ...lists, ...services } };
    },
    refreshStats,
    applyResult(key, result) {
      if (stopping) return;
      if (table.applyResult(key, result)) gate.tryOpen('checks settled');
      const rs = checkListeners.size > 0 ? byKey.get(key) : undefined;
      if (rs !== undefined) {
        const ref = { vip: rs.vip.config.name, address: rs.config.address, port: rs.config.port };
        for (const fn of checkListeners) fn(ref, result);
      }
    },
    onCheckResult(listener) {
      checkListeners.add(listener);
      return () => { checkListeners.delete(listener); };
    },
    drainRealServer: (ref, drained) => table.drainRealServer(ref, drained),
    drainVip: (name, drained) => table.drainVip(name, drained),
    members() {
      return liveMembers([...vips.values()], removedAddresses);
    },
    vips() {
      return [...vips.values()].map((v) => v.status);
    },
    status() {
      const fw = forwarded().length > 0 ? manager.status() : undefined;
      return {
        site: config.site,
        agent: config.agent,
        startedAt,
        vips: [...vips.values()].map((v) => vipFullStatus(v, fw?.vips[v.config.name])),
        dns: reporter.status(),
        ...(fw !== undefined ? { forwarder: { ...fw, cleanupOnExit: config.forwarder.cleanupOnExit } } : {}),
        ...(pinger !== undefined ? { pinger: pinger.status() } : {}),
      };
    },
  };
  return agent;
}

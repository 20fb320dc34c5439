/** The agent's public shapes: how it is built, what it answers the API, what a reload or stop does. */
import type { Logger } from 'pino';
import type { Clock } from '../../shared/clock.js';
import type { ReportMember } from '../../shared/protocol/report.js';
import type { AgentConfig, CheckConfig } from '../config.js';
import type { DataPlane } from '../forwarder/data-plane.js';
import type { ForwarderManagerOptions, ForwarderManagerStatus, ForwarderVipStatus, PlaneKind } from '../forwarder/manager.js';
import type { CheckResult, Checker } from '../health/checkers/types.js';
import type { HealthRecord } from '../health/state.js';
import type { PingerStatus } from '../pinger/pinger.js';
import type { DeliveryStatus, ReporterOptions } from '../reporter/reporter.js';
import type { VipStatus } from '../vip.js';

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
  /** calls `listener` with every real server check result applied from now on (metrics); returns the unsubscribe */
  onCheckResult(listener: (rs: RealServerRef, result: CheckResult) => void): () => void;
  drainRealServer(ref: RealServerRef, drained: boolean): DrainOutcome;
  drainVip(vip: string, drained: boolean): DrainOutcome;
  /** the members of the next report: one per VIP address */
  members(): ReportMember[];
  vips(): VipStatus[];
  status(): AgentStatus;
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

/**
 * The forwarder manager: owns the data planes of the agent's forwarded VIPs and keeps them at the
 * desired state. The agent says "something changed" (`changed()`); the manager reads the desired
 * VipSpec[] once per tick and converges the planes to it.
 *
 *   | event                        | what happens                                                  |
 *   |------------------------------|---------------------------------------------------------------|
 *   | changed(), nothing in flight | apply on the next setImmediate (changes of one tick coalesce)  |
 *   | changed(), apply in flight   | remembered; one more apply right after, with the latest state  |
 *   | apply fails                  | logged with the VIP names, counted, retried after a backoff    |
 *   |                              | (200 ms doubling, capped at 1 s so a VIP is back within 2 s of  |
 *   |                              | its cause going away); a new change retries at once            |
 *   | apply succeeds               | lastApplyMs = first unapplied change -> apply() resolved       |
 *
 * Never a timer between a health change and the data plane: the target is under 100 ms from a
 * health change to the plane. Each plane's apply and close is bounded by a timeout, so a hung
 * plane shows up as an error instead of stopping the loop. After every attempt `onApplied` hears
 * which VIPs are in place and which failed (a plane may fail some VIPs only: PlaneApplyError), so
 * the agent reports a VIP whose data plane is not in place as down. The VIPs (and so the planes)
 * may change between applies: a reloaded config.
 */
import type { Logger } from 'pino';
import { systemClock, unrefTimer } from '../../shared/clock.js';
import type { Clock, TimerHandle } from '../../shared/clock.js';
import type { ForwarderConfig, RealServerConfig, VipConfig } from '../config.js';
import type { AgentAdvice } from '../health/state.js';
import { PlaneApplyError } from './data-plane.js';
import type { BackendStats, DataPlane, ForwarderMode, RealServerSpec, VipSpec } from './data-plane.js';

/** The two data plane implementations: the userspace proxy and the kernel (nftables) one. */
export type PlaneKind = 'proxy' | 'nftables';

/** The plane that serves a mode. */
export function planeOf(mode: ForwarderMode): PlaneKind {
  return mode === 'proxy' ? 'proxy' : 'nftables';
}

/** A real server's id in specs, stats and metrics: `10.0.0.1:80`, `[2001:db8::1]:80`. */
export function realServerId(address: string, port: number): string {
  return `${address.includes(':') ? `[${address}]` : address}:${port}`;
}

/** What the agent knows about a real server right now. */
export interface LiveRealServer {
  readonly config: RealServerConfig;
  /** health after rise/fall */
  readonly health: 'up' | 'down';
  /** the operator drained this real server or its VIP */
  readonly drained: boolean;
  readonly agent?: AgentAdvice;
}

function gcd(a: number, b: number): number {
  while (b > 0) [a, b] = [b, a % b];
  return a;
}

/**
 * Data plane weights: the configured ones, or, when an agent check advises a percentage for some
 * real server of the VIP, weight x percent (100 where none is advised) reduced by the common
 * divisor, so the ratios hold in integers (the kernel plane spreads flows over integer weights).
 * A positive advice never rounds a server down to 0, which would mean "no new flows".
 */
function planeWeights(rss: readonly LiveRealServer[]): number[] {
  if (!rss.some((rs) => rs.agent?.weightPct !== undefined)) return rss.map((rs) => rs.config.weight);
  const scaled = rss.map((rs) => {
    const pct = Math.min(100, Math.max(0, rs.agent?.weightPct ?? 100));
    const w = Math.round(rs.config.weight * pct);
    return w === 0 && rs.config.weight > 0 && pct > 0 ? 1 : w;
  });
  const d = scaled.reduce((g, w) => gcd(g, w), 0);
  return d > 1 ? scaled.map((w) => w / d) : scaled;
}

/**
 * The VipSpec of a forwarded VIP. A real server is healthy when its health is up and no agent
 * check says `down`; drained (no new flows, open ones finish) when the operator drained it or
 * its VIP, or an agent check says `drain` or `maint`. Together that is the agent's `serving`.
 */
export function buildVipSpec(vip: VipConfig, forwarder: ForwarderConfig, rss: readonly LiveRealServer[]): VipSpec {
  const weights = planeWeights(rss);
  const realServers: RealServerSpec[] = rss.map((rs, i) => ({
    id: realServerId(rs.config.address, rs.config.port),
    address: rs.config.address,
    port: rs.config.port,
    weight: weights[i] ?? rs.config.weight,
    backup: rs.config.backup,
    healthy: rs.health === 'up' && rs.agent?.state !== 'down',
    drained: rs.drained || rs.agent?.state === 'drain' || rs.agent?.state === 'maint',
  }));
  return {
    name: vip.name,
    address: vip.address,
    port: vip.port,
    protocol: vip.protocol,
    mode: forwarder.mode,
    scheduler: forwarder.scheduler,
    persistenceMs: forwarder.persistenceMs,
    realServers,
    ...(forwarder.interface !== undefined ? { interface: forwarder.interface } : {}),
    ...(forwarder.dscp !== undefined ? { dscp: forwarder.dscp } : {}),
    ...(forwarder.tunnel !== undefined ? { tunnel: forwarder.tunnel } : {}),
    ...(forwarder.vni !== undefined ? { vni: forwarder.vni } : {}),
    ...(forwarder.snat !== undefined ? { snat: forwarder.snat } : {}),
    ...(forwarder.flowTimeoutMs !== undefined ? { flowTimeoutMs: forwarder.flowTimeoutMs } : {}),
    ...(forwarder.shPorts !== undefined ? { shPorts: forwarder.shPorts } : {}),
  };
}

/** A latency histogram in Prometheus form: cumulative counts per upper bound (seconds). */
export interface Histogram {
  readonly buckets: readonly { readonly le: number; readonly count: number }[];
  readonly sum: number;
  readonly count: number;
}

/** The outcome of the last apply that included a VIP. */
export interface ApplyOutcome {
  readonly ok: boolean;
  /** unix ms when it finished */
  readonly at: number;
  readonly error?: string;
}

/** One forwarded VIP as GET /status shows it. */
export interface ForwarderVipStatus {
  readonly mode: ForwarderMode;
  readonly scheduler: string;
  readonly plane: PlaneKind;
  readonly lastApply?: ApplyOutcome;
  /** health change -> its apply resolved, for the last successful apply of this VIP's plane */
  readonly lastApplyMs?: number;
}

/** The manager as GET /status and /metrics show it. */
export interface ForwarderManagerStatus {
  readonly planes: readonly PlaneKind[];
  /** successful applies (every plane converged) */
  readonly applies: number;
  /** failed plane applies (one per plane per attempt) */
  readonly applyErrors: number;
  readonly consecutiveFailures: number;
  /** a change is waiting or being applied */
  readonly pending: boolean;
  readonly lastApplyMs?: number;
  /** health change -> every plane applied, in seconds */
  readonly applyLatency: Histogram;
  readonly vips: Readonly<Record<string, ForwarderVipStatus>>;
}

/** How the manager is built; everything but `desired`, `createDataPlane` and `logger` has a default. */
export interface ForwarderManagerOptions {
  /** the desired state now; called once per apply */
  readonly desired: () => readonly VipSpec[];
  readonly createDataPlane: (kind: PlaneKind) => DataPlane;
  readonly logger: Logger;
  /** retry after a failed apply: initialMs doubling up to maxMs; default 200 ms .. 10 s */
  readonly retry?: { readonly initialMs: number; readonly maxMs: number };
  /** longest wait for one plane's apply(), stats() or close(); default 10 s */
  readonly timeoutMs?: number;
  /** unix ms, for the status */
  readonly now?: () => number;
  /** retry and plane-timeout timers, apply latency; the system's by default */
  readonly clock?: Clock;
  /** after every apply attempt: the outcome of each VIP it included */
  readonly onApplied?: (outcomes: ReadonlyMap<string, ApplyOutcome>) => void;
}

/** Owns the data planes; see the table at the top. */
export interface ForwarderManager {
  /** the planes the desired state needs or that are open (empty: the manager does nothing) */
  readonly planes: readonly PlaneKind[];
  /** the outcome of the last apply that included VIP `name` (undefined before the first) */
  outcome(name: string): ApplyOutcome | undefined;
  /** first apply (the planes are created on it) */
  start(): void;
  /** the desired state may have changed: converge soon (same tick changes coalesce) */
  changed(): void;
  /** per-backend flow counters of every plane (a plane that fails or hangs is left out) */
  stats(): Promise<BackendStats[]>;
  status(): ForwarderManagerStatus;
  /** waits for the apply in flight (bounded), then closes the planes */
  close(): Promise<void>;
  /** a successor took over: no more applies; planes that can stop accepting and let open flows finish, up to `ms` */
  drain(ms: number): Promise<void>;
}

/** Upper bounds (seconds) of the apply latency histogram. */
export const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function withTimeout<T>(clock: Clock, p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: TimerHandle | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clock.clearTimeout(timer));
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Builds the manager; nothing is created or applied before `start()`. */
export function createForwarderManager(opts: ForwarderManagerOptions): ForwarderManager {
  const { logger } = opts;
  const clock = opts.clock ?? systemClock;
  const now = opts.now ?? clock.wallNow;
  const retry = opts.retry ?? { initialMs: 200, maxMs: 1000 };
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const live = new Map<PlaneKind, DataPlane>();
  type VipState = { mode: ForwarderMode; scheduler: string; plane: PlaneKind; lastApply?: ApplyOutcome; lastApplyMs?: number };
  const vipStatus = new Map<string, VipState>();
  /** the planes of `specs`, and those open (a plane whose VIPs all went converges to none) */
  const planesOf = (specs: readonly VipSpec[]): PlaneKind[] =>
    (['proxy', 'nftables'] as const).filter((k) => live.has(k) || specs.some((s) => planeOf(s.mode) === k));
  const syncVips = (specs: readonly VipSpec[]): void => {
    const names = new Set(specs.map((s) => s.name));
    for (const name of [...vipStatus.keys()]) if (!names.has(name)) vipStatus.delete(name);
    for (const s of specs) {
      const v = vipStatus.get(s.name);
      if (v === undefined || v.mode !== s.mode) vipStatus.set(s.name, { mode: s.mode, scheduler: s.scheduler, plane: planeOf(s.mode) });
      else v.scheduler = s.scheduler;
    }
  };
  let planes: PlaneKind[] = [];
  {
    const initial = opts.desired();
    planes = planesOf(initial);
    syncVips(initial);
  }
  const bucketCounts = LATENCY_BUCKETS_S.map(() => 0);
  let latencySum = 0;
  let latencyCount = 0;

  let started = false;
  let closed = false;
  /** clock.now() of the oldest change no apply has included yet */
  let dirtySince: number | undefined;
  let tickQueued = false;
  let inFlight: Promise<void> | undefined;
  let retryTimer: TimerHandle | undefined;
  let applies = 0;
  let applyErrors = 0;
  let consecutiveFailures = 0;
  let lastApplyMs: number | undefined;

  const plane = (kind: PlaneKind): DataPlane => {
    let p = live.get(kind);
    if (p === undefined) {
      // a factory that throws (a kernel without nftables) fails this apply; the retry tries again
      p = opts.createDataPlane(kind);
      live.set(kind, p);
    }
    return p;
  };

  const schedule = (): void => {
    if (tickQueued || !started || closed) return;
    tickQueued = true;
    setImmediate(() => {
      tickQueued = false;
      if (inFlight === undefined && dirtySince !== undefined && !closed) run();
    });
  };

  const run = (): void => {
    clock.clearTimeout(retryTimer);
    retryTimer = undefined;
    const since = dirtySince ?? clock.now();
    dirtySince = undefined;
    let specs: readonly VipSpec[];
    try {
      specs = opts.desired();
    } catch (err) {
      // a bug in building the specs must not end the loop: count it as a failed apply
      logger.error({ err: message(err) }, 'forwarder: building the desired state failed');
      applyErrors++;
      failedAttempt(since);
      return;
    }
    inFlight = applyAll(specs, since).finally(() => {
      inFlight = undefined;
      if (dirtySince !== undefined && retryTimer === undefined) schedule();
    });
  };

  const failedAttempt = (since: number): void => {
    consecutiveFailures++;
    // keep the oldest change: lastApplyMs measures from it once an apply gets through
    dirtySince = Math.min(dirtySince ?? since, since);
    if (closed) return;
    const delay = Math.min(retry.maxMs, retry.initialMs * 2 ** Math.min(consecutiveFailures - 1, 30));
    retryTimer = unrefTimer(clock.setTimeout(() => { retryTimer = undefined; schedule(); }, delay));
  };

  const applyAll = async (specs: readonly VipSpec[], since: number): Promise<void> => {
    planes = planesOf(specs);
    syncVips(specs);
    const results = await Promise.all(planes.map(async (kind) => {
      const mine = specs.filter((s) => planeOf(s.mode) === kind);
      try {
        await withTimeout(clock, Promise.resolve().then(() => plane(kind).apply(mine)), timeoutMs, `${kind} apply`);
        return { kind, mine, error: undefined, only: undefined };
      } catch (err) {
        return { kind, mine, error: message(err), only: err instanceof PlaneApplyError ? err.failed : undefined };
      }
    }));
    const ms = clock.now() - since;
    const at = now();
    let failed = false;
    const outcomes = new Map<string, ApplyOutcome>();
    for (const { kind, mine, error, only } of results) {
      for (const s of mine) {
        const v = vipStatus.get(s.name);
        if (v === undefined) continue;
        // a plane that failed some VIPs only names them; the others are in place
        const mineError = only !== undefined ? only.get(s.name) : error;
        v.lastApply = mineError === undefined ? { ok: true, at } : { ok: false, at, error: mineError };
        if (mineError === undefined) v.lastApplyMs = ms;
        outcomes.set(s.name, v.lastApply);
      }
      if (error !== undefined) {
        failed = true;
        applyErrors++;
        logger.error({ plane: kind, vips: mine.map((s) => s.name), err: error, attempt: consecutiveFailures + 1 },
          `forwarder: ${kind} apply failed for ${mine.map((s) => s.name).join(', ')}`);
      }
    }
    try {
      opts.onApplied?.(outcomes);
    } catch (err) {
      logger.error({ err: message(err) }, 'forwarder: onApplied failed');
    }
    if (failed) {
      failedAttempt(since);
      return;
    }
    if (consecutiveFailures > 0) logger.info({ after: consecutiveFailures }, 'forwarder: apply succeeded again');
    consecutiveFailures = 0;
    applies++;
    lastApplyMs = ms;
    latencySum += ms / 1000;
    latencyCount++;
    LATENCY_BUCKETS_S.forEach((le, i) => { if (ms / 1000 <= le) bucketCounts[i]!++; });
    logger.debug({ ms: Math.round(ms * 100) / 100, vips: specs.length }, 'forwarder: applied');
  };

  /** no retry and no new apply from now on (closed is set at once); waits, bounded, for the apply in flight */
  const stopApplying = async (): Promise<void> => {
    closed = true;
    clock.clearTimeout(retryTimer);
    retryTimer = undefined;
    if (inFlight !== undefined) await withTimeout(clock, inFlight, timeoutMs, 'apply in flight').catch(() => undefined);
  };

  return {
    get planes() {
      return planes;
    },
    outcome(name) {
      return vipStatus.get(name)?.lastApply;
    },
    start() {
      if (started || closed) return;
      started = true;
      dirtySince ??= clock.now();
      schedule();
    },
    changed() {
      if (closed) return;
      dirtySince ??= clock.now();
      // a change retries a failing apply at once; the backoff only paces retries without news
      if (retryTimer !== undefined) {
        clock.clearTimeout(retryTimer);
        retryTimer = undefined;
      }
      schedule();
    },
    async stats() {
      const out: BackendStats[] = [];
      await Promise.all([...live.entries()].map(async ([kind, p]) => {
        try {
          out.push(...await withTimeout(clock, p.stats(), timeoutMs, `${kind} stats`));
        } catch (err) {
          logger.warn({ plane: kind, err: message(err) }, 'forwarder: stats failed');
        }
      }));
      return out;
    },
    status() {
      return {
        planes,
        applies,
        applyErrors,
        consecutiveFailures,
        pending: dirtySince !== undefined || inFlight !== undefined,
        ...(lastApplyMs !== undefined ? { lastApplyMs } : {}),
        applyLatency: {
          buckets: LATENCY_BUCKETS_S.map((le, i) => ({ le, count: bucketCounts[i] ?? 0 })),
          sum: latencySum,
          count: latencyCount,
        },
        vips: Object.fromEntries([...vipStatus].map(([name, v]) => [name, { ...v }])),
      };
    },
    async drain(ms) {
      if (closed) return;
      await stopApplying();
      await Promise.all([...live.entries()].map(async ([kind, p]) => {
        if (p.drain === undefined) return;
        try {
          await withTimeout(clock, p.drain(ms), ms + 1000, `${kind} drain`);
        } catch (err) {
          logger.warn({ plane: kind, err: message(err) }, 'forwarder: draining the data plane failed');
        }
      }));
      closed = false;
    },
    async close() {
      if (closed) return;
      await stopApplying();
      await Promise.all([...live.entries()].map(async ([kind, p]) => {
        try {
          await withTimeout(clock, p.close(), timeoutMs, `${kind} close`);
        } catch (err) {
          logger.warn({ plane: kind, err: message(err) }, 'forwarder: closing the data plane failed');
        }
      }));
      live.clear();
    },
  };
}

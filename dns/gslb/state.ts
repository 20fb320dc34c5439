/**
 * The health state machine of gslb-dns: one place where reports, probe results, staleness and
 * operator overrides become the immutable HealthView that policies read (gdnsd's model:
 * monitors feed a state table, resolvers read a snapshot swapped atomically).
 *
 * Member state, per (site, address), from observations (a report entry or a probe result):
 *
 *   | state   | observation   | streak reaches | next    |
 *   |---------|---------------|----------------|---------|
 *   | unknown | up            | rise           | up      |
 *   | unknown | down          | fall           | down    |
 *   | down    | up            | rise           | up      |
 *   | up      | down          | fall           | down    |
 *   | any     | drain         | (at once)      | drain   |
 *   | drain   | up / down     | rise / fall    | up/down |
 *
 * A member serves only when it is up, its site is fresh (a valid report within staleAfter, or a
 * probe-only site), and no operator override (drain, force-down) holds it or its site. Until the
 * first observation a member is unknown and does not serve. While its site is within staleAfter
 * of this state's start (the startup window) an unknown member is also `pending`: with the
 * pool's `startup` key at servfail (the default), an answer that would include a pending member
 * were it up is held (SERVFAIL), so a restarted instance does not answer from whichever site
 * reported first while the others are seconds away (selector.ts); after the window, per allDown. restoreHealth (from --state-dir) sets members to what the last instance knew,
 * when that is younger than staleAfter, so they serve (or stay out) at once.
 */
import type { GslbConfig, MemberHealth, PoolConfig, PoolHealth } from './model.js';
import type { StoredHealth, StoredSiteHealth } from './health-store.js';
import type { Report } from '../../shared/protocol/report.js';

export type MemberStatus = 'unknown' | 'up' | 'down' | 'drain';
export type OverrideAction = 'drain' | 'force-down';
export type AdminAction = 'drain' | 'undrain' | 'force-down' | 'release';

/** An operator override target: a whole site, or one member of it. */
export interface OverrideTarget {
  readonly site: string;
  readonly address?: string;
}

/** One operator override as listed, persisted and shared: what, on which target, when, who and why. */
export interface OverrideRecord {
  action: OverrideAction;
  site: string;
  address?: string;
  at: string;
  actor?: string;
  reason?: string;
}

/** Who asks for an admin action and why; `force` overrides a pool guard (a reason is then required by the API). */
export interface AdminRequest {
  readonly actor?: string;
  readonly reason?: string;
  readonly force?: boolean;
}

/** A pool that an action would leave with fewer serving members than its guard asks. */
export interface GuardBreach {
  readonly pool: string;
  readonly minServing: number;
  readonly servingNow: number;
  readonly servingAfter: number;
}

/**
 * What an admin action would do, decided against the current state: refused (unknown target,
 * or a guard breach not forced), a no-op, or one change of one override (`record` null: removed).
 */
export type AdminPlan =
  | { readonly ok: false; readonly status: 404; readonly reason: string }
  | { readonly ok: false; readonly status: 409; readonly reason: string; readonly breaches: readonly GuardBreach[] }
  | { readonly ok: true; readonly changed: false }
  | {
    readonly ok: true; readonly changed: true; readonly key: string; readonly target: OverrideTarget;
    readonly record: OverrideRecord | null; readonly forced: boolean; readonly breaches: readonly GuardBreach[];
    /** pools this action leaves with no serving member (they answer per allDown), guarded or not */
    readonly warnings: readonly string[];
  };

/** The result of GslbState.admin (`forced`: applied past a guard). */
export type AdminOutcome =
  | { readonly ok: true; readonly changed: boolean; readonly forced?: true; readonly warnings?: readonly string[] }
  | { readonly ok: false; readonly changed: false; readonly status: 404 | 409; readonly reason: string; readonly breaches?: readonly GuardBreach[] };

/** What GslbState.memberWhy says about one member. */
export interface MemberWhy {
  /** as the state API's `why`: up, down, unknown, site stale, drained by operator, ... */
  readonly why: string;
  /** the operator override holding it out (a site's or its own) */
  readonly override?: { readonly action: OverrideAction; readonly scope: 'site' | 'member'; readonly actor?: string; readonly reason?: string };
}

/** Everything policies need, immutable; `epoch` changes whenever any answer could change. */
export interface HealthView {
  readonly epoch: number;
  readonly pools: ReadonlyMap<string, PoolHealth>;
}

/** One line of the recent-events ring. */
export interface HealthEvent {
  readonly at: string;
  readonly type: string;
  readonly site: string;
  readonly address?: string;
  readonly detail: string;
}

/**
 * What changed in the state, for live views (the status page's event stream): one site's
 * freshness or last report, the health view (a new epoch), the overrides, a new recent event,
 * or everything (a configuration reload).
 */
export type StateChange =
  | { readonly kind: 'site'; readonly site: string }
  | { readonly kind: 'pools'; readonly epoch: number }
  | { readonly kind: 'overrides' }
  | { readonly kind: 'event'; readonly event: HealthEvent }
  | { readonly kind: 'reset' };

/** One site as `snapshot()` and the `site` change show it. */
export interface SiteSnapshot {
  readonly name: string;
  readonly mode: 'probe' | 'agent';
  readonly stale: boolean;
  readonly restored: boolean;
  readonly lastReportAgeMs: number | null;
  /** unix ms (this state's clock) of the last valid report, null when none is known */
  readonly lastReportAt: number | null;
  /** the agent of the last accepted report, null when none since the start */
  readonly agent: string | null;
  readonly lastSeq: Record<string, number>;
  readonly staleAfterMs: number;
}

export type ReportOutcome =
  | { readonly ok: true; readonly changed: boolean }
  | { readonly ok: false; readonly status: number; readonly reason: string };

interface MemberRuntime {
  readonly site: string;
  readonly address: string;
  status: MemberStatus;
  upStreak: number;
  downStreak: number;
  weightPct: number;
  connections: number;
  capacity: number;
  healthy: number;
  total: number;
  lastObservedAt: number;
  /** the status came from restoreHealth and no observation has replaced it yet */
  restored: boolean;
}

interface SiteRuntime {
  lastValidAt: number;
  stale: boolean;
  readonly lastSeq: Map<string, number>;
  probed: boolean;
  /** wall-clock ms of the last valid report (this run or restored); undefined when none is known */
  lastReportAt: number | undefined;
  /** within staleAfter of the start: unknown members are pending */
  window: boolean;
  /** for readiness: reported once since the start, restored, or gone stale */
  settled: boolean;
  /** its health came from restoreHealth and no report has arrived since */
  restored: boolean;
  /** the agent of the last accepted report of this run */
  lastAgent: string | undefined;
}

const EVENTS_KEPT = 200;

interface OverrideEntry {
  readonly action: OverrideAction;
  readonly target: OverrideTarget;
  readonly at: string;
  readonly actor?: string;
  readonly reason?: string;
}
type OverrideMap = Map<string, OverrideEntry>;

function memberKey(site: string, address: string): string {
  return `${site}|${address}`;
}

/** The identity of an override target: `site:<site>` or `member:<site>|<address>`. */
export function overrideKey(t: OverrideTarget): string {
  return t.address === undefined ? `site:${t.site}` : `member:${t.site}|${t.address}`;
}

/** The GSLB health store; see the table above. `now` is injectable for tests. */
export class GslbState {
  private readonly members = new Map<string, MemberRuntime>();
  private readonly sites = new Map<string, SiteRuntime>();
  private overrides: OverrideMap = new Map();
  private readonly events: HealthEvent[] = [];
  private current: HealthView;
  private readonly listeners: ((v: HealthView) => void)[] = [];
  /** member key -> where it stands in pools, and site -> its member keys (built by index) */
  private memberRefs = new Map<string, { pool: PoolConfig; index: number }[]>();
  private siteMembers = new Map<string, string[]>();
  /** members whose effective health may have changed since the last publish */
  private readonly dirty = new Set<string>();
  private readonly reportListeners: (() => void)[] = [];
  private readonly changeListeners = new Set<(c: StateChange) => void>();
  /** listener exceptions swallowed by notify (a live view must not break the state) */
  listenerErrors = 0;
  readonly counters = { reportsAccepted: 0, reportsRejected: new Map<string, number>() };
  /** when this state (the process) started, on its clock: the startup window and the replay bound count from here */
  readonly startedAt: number;

  constructor(private config: GslbConfig, private readonly now: () => number = Date.now,
    private readonly onEvent: (e: HealthEvent) => void = () => {}) {
    this.startedAt = now();
    this.index(config);
    this.current = { epoch: 1, pools: this.buildPools() };
  }

  /** The current view; replaced, never mutated. */
  get view(): HealthView {
    return this.current;
  }

  get gslb(): GslbConfig {
    return this.config;
  }

  /** Called with every new view (after the swap). */
  onChange(fn: (v: HealthView) => void): void {
    this.listeners.push(fn);
  }

  /** Called after every accepted report (what exportHealth returns has changed: at least a seq). */
  onReport(fn: () => void): void {
    this.reportListeners.push(fn);
  }

  /**
   * Calls `fn` synchronously with every change (see StateChange) until the returned function is
   * called. An exception thrown by `fn` is counted and dropped: it never reaches the state.
   */
  subscribe(fn: (c: StateChange) => void): () => void {
    // a wrapper per subscription, so the same function may subscribe twice and unsubscribe once
    const entry = (c: StateChange): void => fn(c);
    this.changeListeners.add(entry);
    return () => { this.changeListeners.delete(entry); };
  }

  /** How many change listeners are subscribed (live views; for tests and clean-up checks). */
  get subscribers(): number {
    return this.changeListeners.size;
  }

  /** This state's clock (unix ms): report ages on live views are computed against it. */
  time(): number {
    return this.now();
  }

  private notify(c: StateChange): void {
    if (this.changeListeners.size === 0) return;
    for (const fn of [...this.changeListeners]) {
      try {
        fn(c);
      } catch {
        this.listenerErrors++;
      }
    }
  }

  /** Swaps in a reloaded configuration, keeping what is known about members that remain. */
  setConfig(config: GslbConfig): void {
    this.config = config;
    this.index(config);
    for (const k of [...this.members.keys()]) {
      const m = this.members.get(k)!;
      if (!config.sites.has(m.site) || !this.isConfigured(m.site, m.address)) this.members.delete(k);
    }
    for (const s of [...this.sites.keys()]) if (!config.sites.has(s)) this.sites.delete(s);
    // overrides of targets that no longer exist go, as they do on a restart (restoreOverrides)
    for (const [k, o] of [...this.overrides]) {
      const t = o.target;
      if (!config.sites.has(t.site) || (t.address !== undefined && !this.members.has(memberKey(t.site, t.address)))) {
        this.overrides.delete(k);
        this.event('override-dropped', t.site, t.address, `${o.action}: target no longer configured`);
      }
    }
    this.publishAll(true);
    this.notify({ kind: 'reset' });
  }

  private index(config: GslbConfig): void {
    const t = this.now();
    for (const [name, site] of config.sites) {
      const rt = this.sites.get(name);
      const probed = site.probe !== undefined;
      if (!rt) {
        // a new site is "fresh" from now: staleness counts from start-up, not from the epoch
        this.sites.set(name, {
          lastValidAt: t, stale: false, lastSeq: new Map(), probed, lastReportAt: undefined,
          window: t - this.startedAt < site.staleAfterMs, settled: probed, restored: false, lastAgent: undefined,
        });
      } else if (rt.probed !== probed) {
        // a reload switched the site between agent and probes: staleness counts from now
        rt.probed = probed;
        rt.stale = false;
        rt.lastValidAt = t;
      }
    }
    this.memberRefs = new Map();
    this.siteMembers = new Map();
    for (const pool of config.pools.values()) {
      for (const m of pool.members) {
        const k = memberKey(m.site, m.address);
        let refs = this.memberRefs.get(k);
        if (!refs) {
          refs = [];
          this.memberRefs.set(k, refs);
          let list = this.siteMembers.get(m.site);
          if (!list) { list = []; this.siteMembers.set(m.site, list); }
          list.push(k);
        }
        refs.push({ pool, index: m.index });
        if (!this.members.has(k)) {
          this.members.set(k, {
            site: m.site, address: m.address, status: 'unknown', upStreak: 0, downStreak: 0,
            weightPct: 100, connections: 0, capacity: 0, healthy: 0, total: 0, lastObservedAt: 0, restored: false,
          });
        }
      }
    }
  }

  private isConfigured(site: string, address: string): boolean {
    return this.memberRefs.has(memberKey(site, address));
  }

  private touchSite(site: string): void {
    for (const k of this.siteMembers.get(site) ?? []) this.dirty.add(k);
  }

  /** Whether (site, address) is a member of some pool (reports may only name those). */
  hasMember(site: string, address: string): boolean {
    return this.members.has(memberKey(site, address));
  }

  /**
   * Applies a report whose signature was already verified. Replays, foreign members and
   * unknown sites are refused whole: nothing of a refused report is applied.
   */
  applyReport(r: Report): ReportOutcome {
    const site = this.sites.get(r.site);
    if (!site || !this.config.sites.has(r.site)) return this.reject(404, `unknown site "${r.site}"`);
    const last = site.lastSeq.get(r.agent);
    if (last !== undefined && r.seq <= last) return this.reject(409, `seq ${r.seq} is not greater than the last accepted ${last} (replay?)`);
    for (const m of r.members) {
      if (!this.members.has(memberKey(r.site, m.address))) {
        return this.reject(422, `member ${m.address} is not configured in site ${r.site}`);
      }
    }
    site.lastSeq.set(r.agent, r.seq);
    site.lastAgent = r.agent;
    site.lastValidAt = this.now();
    site.lastReportAt = site.lastValidAt;
    // the first report since the start decides which members are still pending (effective())
    if (!site.settled) this.touchSite(r.site);
    site.settled = true;
    site.restored = false;
    if (site.stale) {
      site.stale = false;
      this.touchSite(r.site);
      this.event('site-fresh', r.site, undefined, `report from ${r.agent} after staleness`);
    }
    const t = this.now();
    for (const m of r.members) {
      const key = memberKey(r.site, m.address);
      const mr = this.members.get(key)!;
      this.dirty.add(key);
      mr.weightPct = m.weight;
      mr.connections = m.connections ?? 0;
      mr.capacity = m.capacity ?? 0;
      mr.healthy = m.healthy ?? 0;
      mr.total = m.total ?? 0;
      mr.lastObservedAt = t;
      this.observe(mr, m.state);
    }
    this.counters.reportsAccepted++;
    const changed = this.publish(false);
    for (const fn of this.reportListeners) fn();
    this.notify({ kind: 'site', site: r.site });
    return { ok: true, changed };
  }

  /** Counts a report refused before it reached applyReport (signature, skew, schema). */
  countRejected(reason: string): void {
    const key = reason.split(':')[0]!;
    this.counters.reportsRejected.set(key, (this.counters.reportsRejected.get(key) ?? 0) + 1);
  }

  private reject(status: number, reason: string): ReportOutcome {
    this.countRejected(status === 409 ? 'replay' : status === 404 ? 'unknown-site' : 'foreign-member');
    return { ok: false, status, reason };
  }

  /** A probe result for a member of a probe-only site. */
  applyProbe(site: string, address: string, pass: boolean): boolean {
    const key = memberKey(site, address);
    const mr = this.members.get(key);
    if (!mr) return false;
    this.dirty.add(key);
    mr.lastObservedAt = this.now();
    mr.weightPct = 100;
    this.observe(mr, pass ? 'up' : 'down');
    return this.publish(false);
  }

  private observe(mr: MemberRuntime, obs: 'up' | 'down' | 'drain'): void {
    const site = this.config.sites.get(mr.site)!;
    const before = mr.status;
    mr.restored = false;
    if (obs === 'drain') {
      mr.status = 'drain';
      mr.upStreak = 0;
      mr.downStreak = 0;
    } else if (obs === 'up') {
      mr.downStreak = 0;
      mr.upStreak++;
      if (mr.status !== 'up' && mr.upStreak >= site.rise) mr.status = 'up';
    } else {
      mr.upStreak = 0;
      mr.downStreak++;
      if (mr.status !== 'down' && mr.downStreak >= site.fall) mr.status = 'down';
    }
    if (mr.status !== before) this.event(`member-${mr.status}`, mr.site, mr.address, `was ${before}`);
  }

  /**
   * Marks sites without a valid report for staleAfter as down and closes each site's startup
   * window staleAfter after the start (its unknown members stop being pending: a new epoch);
   * call periodically.
   */
  tick(): boolean {
    const t = this.now();
    let changed = false;
    const flipped: string[] = [];
    for (const [name, s] of this.sites) {
      const cfg = this.config.sites.get(name);
      if (!cfg) continue;
      if (s.window && t - this.startedAt >= cfg.staleAfterMs) {
        s.window = false;
        changed = true;
        this.touchSite(name);
      }
      if (s.probed) continue;
      const stale = t - s.lastValidAt > cfg.staleAfterMs;
      if (stale !== s.stale) {
        s.stale = stale;
        changed = true;
        flipped.push(name);
        this.touchSite(name);
        if (stale) {
          s.settled = true;
          this.event('site-stale', name, undefined, `no valid report for ${t - s.lastValidAt} ms (staleAfter ${cfg.staleAfterMs} ms)`);
        }
      }
    }
    const swapped = changed ? this.publish(false) : false;
    for (const name of flipped) this.notify({ kind: 'site', site: name });
    return swapped;
  }

  /**
   * Why this instance is not ready yet, [] when it is: every agent-fed site has reported once
   * since the start, was restored, or went stale (probe-only sites never block).
   */
  readiness(): string[] {
    const waiting: string[] = [];
    for (const [name, cfg] of this.config.sites) {
      const s = this.sites.get(name);
      if (!s || s.settled || s.probed) continue;
      waiting.push(`site ${name}: no report since the start yet (stale after ${cfg.staleAfterMs} ms)`);
    }
    return waiting;
  }

  /** What a later instance needs to start where this one stands (agent-fed sites with a report; see health-store.ts). */
  exportHealth(): StoredHealth {
    const sites: Record<string, StoredSiteHealth> = {};
    for (const [name, s] of this.sites) {
      if (s.probed || s.lastReportAt === undefined || !this.config.sites.has(name)) continue;
      const members: StoredSiteHealth['members'] = [];
      for (const k of this.siteMembers.get(name) ?? []) {
        const m = this.members.get(k);
        if (!m || m.status === 'unknown') continue;
        members.push({
          address: m.address, status: m.status, upStreak: m.upStreak, downStreak: m.downStreak, weightPct: m.weightPct,
          connections: m.connections, capacity: m.capacity, healthy: m.healthy, total: m.total, lastObservedAt: m.lastObservedAt,
        });
      }
      sites[name] = { lastValidAt: s.lastReportAt, lastSeq: Object.fromEntries(s.lastSeq), members };
    }
    return { version: 1, savedAt: this.now(), sites };
  }

  /**
   * Takes what a previous instance saved: every site's last accepted seq per agent (replay
   * protection, whatever its age), and the member health of sites whose last valid report is
   * younger than their staleAfter (those members and sites are marked restored). Returns the
   * sites restored and those skipped, with why.
   */
  restoreHealth(saved: StoredHealth): { restored: string[]; skipped: { site: string; reason: string }[] } {
    const t = this.now();
    const restored: string[] = [];
    const skipped: { site: string; reason: string }[] = [];
    for (const [name, sv] of Object.entries(saved.sites)) {
      const cfg = this.config.sites.get(name);
      const s = this.sites.get(name);
      if (!cfg || !s) { skipped.push({ site: name, reason: 'no longer configured' }); continue; }
      if (s.probed) { skipped.push({ site: name, reason: 'probed, not agent-fed' }); continue; }
      for (const [agent, seq] of Object.entries(sv.lastSeq)) {
        if (seq > (s.lastSeq.get(agent) ?? -1)) s.lastSeq.set(agent, seq);
      }
      s.lastReportAt ??= sv.lastValidAt;
      const age = t - sv.lastValidAt;
      if (age >= cfg.staleAfterMs || age < 0) {
        skipped.push({ site: name, reason: age < 0 ? `saved in the future (${-age} ms ahead)` : `last report ${age} ms old (staleAfter ${cfg.staleAfterMs} ms)` });
        continue;
      }
      s.lastValidAt = sv.lastValidAt;
      s.lastReportAt = sv.lastValidAt;
      s.stale = false;
      s.settled = true;
      s.restored = true;
      for (const m of sv.members) {
        const key = memberKey(name, m.address);
        const mr = this.members.get(key);
        if (!mr) continue;
        Object.assign(mr, {
          status: m.status, upStreak: m.upStreak, downStreak: m.downStreak, weightPct: m.weightPct, connections: m.connections,
          capacity: m.capacity, healthy: m.healthy, total: m.total, lastObservedAt: m.lastObservedAt, restored: true,
        });
      }
      this.touchSite(name);
      this.event('site-restored', name, undefined, `health from ${age} ms ago restored (${sv.members.length} members)`);
      restored.push(name);
    }
    this.publish(false);
    for (const name of restored) this.notify({ kind: 'site', site: name });
    return { restored, skipped };
  }

  /**
   * Decides an operator action against the current state without applying it: unknown targets
   * are 404; a drain or force-down that changes something and would leave a guarded pool with
   * fewer than `guard.minServing` serving members (health and overrides; also when it is already
   * below) is 409 naming the pools, unless `req.force`.
   */
  planAdmin(action: AdminAction, target: OverrideTarget, req: AdminRequest = {}): AdminPlan {
    if (!this.config.sites.has(target.site)) return { ok: false, status: 404, reason: `unknown site "${target.site}"` };
    if (target.address !== undefined && !this.members.has(memberKey(target.site, target.address))) {
      return { ok: false, status: 404, reason: `no member ${target.address} in site ${target.site}` };
    }
    const t: OverrideTarget = target.address === undefined ? { site: target.site } : { site: target.site, address: target.address };
    const key = overrideKey(t);
    const prev = this.overrides.get(key);
    let record: OverrideRecord | null;
    if (action === 'drain' || action === 'force-down') {
      // force-down is the stronger hold: a drain does not soften it (release or force-down does)
      if (prev?.action === action || (action === 'drain' && prev?.action === 'force-down')) return { ok: true, changed: false };
      record = {
        action, site: t.site, ...(t.address !== undefined ? { address: t.address } : {}), at: new Date(this.now()).toISOString(),
        ...(req.actor !== undefined ? { actor: req.actor } : {}), ...(req.reason !== undefined ? { reason: req.reason } : {}),
      };
    } else {
      // undrain lifts a drain, release lifts anything
      if (!prev || (action === 'undrain' && prev.action !== 'drain')) return { ok: true, changed: false };
      record = null;
    }
    const impact = record === null ? [] : this.impact(t, key, record);
    const breaches = impact.filter((i): i is GuardBreach => i.minServing !== undefined && i.servingAfter < i.minServing);
    const warnings = impact.filter((i) => i.servingAfter === 0 && i.servingNow > 0)
      .map((i) => `pool ${i.pool} is left with no serving member: it answers per allDown (${allDownText(this.config.pools.get(i.pool)!)})`);
    if (breaches.length > 0 && req.force !== true) {
      const what = breaches.map((b) => `pool ${b.pool} needs ${b.minServing} serving members, it would have ${b.servingAfter} (now ${b.servingNow})`).join('; ');
      return { ok: false, status: 409, reason: `refused by guard: ${what}; send "force": true with a "reason" to do it anyway`, breaches };
    }
    return { ok: true, changed: true, key, target: t, record, forced: breaches.length > 0, breaches, warnings };
  }

  /** Serving members now and after `record` on `key`, for each pool holding a member of `target`. */
  private impact(target: OverrideTarget, key: string, record: OverrideRecord): { pool: string; minServing?: number; servingNow: number; servingAfter: number }[] {
    const next: OverrideMap = new Map(this.overrides);
    next.set(key, entryOf(record));
    const affected = target.address === undefined ? this.siteMembers.get(target.site) ?? [] : [memberKey(target.site, target.address)];
    const pools = new Set<PoolConfig>();
    for (const k of affected) for (const ref of this.memberRefs.get(k) ?? []) pools.add(ref.pool);
    const out: { pool: string; minServing?: number; servingNow: number; servingAfter: number }[] = [];
    for (const pool of pools) {
      let servingNow = 0;
      let servingAfter = 0;
      for (const m of pool.members) {
        if (this.effective(m.site, m.address).up) servingNow++;
        if (this.effective(m.site, m.address, next).up) servingAfter++;
      }
      out.push({ pool: pool.name, ...(pool.guard ? { minServing: pool.guard.minServing } : {}), servingNow, servingAfter });
    }
    return out.sort((a, b) => (a.pool < b.pool ? -1 : a.pool > b.pool ? 1 : 0));
  }

  /** Operator action on a site or member, applied here when planAdmin allows it and it changes something. */
  admin(action: AdminAction, target: OverrideTarget, req: AdminRequest = {}): AdminOutcome {
    const plan = this.planAdmin(action, target, req);
    if (!plan.ok) return { changed: false, ...plan };
    if (!plan.changed) return { ok: true, changed: false };
    if (plan.record === null) this.overrides.delete(plan.key);
    else this.overrides.set(plan.key, entryOf(plan.record));
    const who = [req.actor ?? 'operator', req.reason !== undefined ? `reason: ${req.reason}` : '', plan.forced ? 'forced past guard' : ''].filter((x) => x !== '').join('; ');
    this.event(`admin-${action}`, plan.target.site, plan.target.address, who);
    this.touchTarget(plan.target);
    this.publish(false);
    this.notify({ kind: 'overrides' });
    return outcomeOf(plan);
  }

  private touchTarget(t: OverrideTarget): void {
    if (t.address === undefined) this.touchSite(t.site);
    else this.dirty.add(memberKey(t.site, t.address));
  }

  /** The overrides in a stable order (persisted, shared and digested). */
  listOverrides(): OverrideRecord[] {
    return [...this.overrides.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, o]) => ({
      action: o.action, site: o.target.site, ...(o.target.address !== undefined ? { address: o.target.address } : {}), at: o.at,
      ...(o.actor !== undefined ? { actor: o.actor } : {}), ...(o.reason !== undefined ? { reason: o.reason } : {}),
    }));
  }

  /**
   * Replaces the overrides (from the state dir at start-up, or the shared store's current set);
   * unknown targets are dropped and returned. With `source`, each difference is an event naming it.
   */
  restoreOverrides(list: readonly (Omit<OverrideRecord, 'at'> & { at?: string })[], source?: string): string[] {
    const dropped: string[] = [];
    const before = this.overrides;
    this.overrides = new Map();
    for (const o of list) {
      const target: OverrideTarget = o.address === undefined ? { site: o.site } : { site: o.site, address: o.address };
      if (!this.config.sites.has(o.site) || (o.address !== undefined && !this.members.has(memberKey(o.site, o.address)))) {
        dropped.push(overrideKey(target));
        continue;
      }
      this.overrides.set(overrideKey(target), entryOf({ ...o, at: o.at ?? new Date(this.now()).toISOString() }));
    }
    if (source !== undefined) {
      for (const [k, o] of this.overrides) {
        const b = before.get(k);
        if (b?.action === o.action) continue;
        const why = [o.actor ?? 'operator', o.reason !== undefined ? `reason: ${o.reason}` : '', `via ${source}`].filter((x) => x !== '').join('; ');
        this.event(`admin-${o.action}`, o.target.site, o.target.address, why);
      }
      for (const [k, b] of before) {
        if (!this.overrides.has(k)) this.event('override-cleared', b.target.site, b.target.address, `${b.action} lifted via ${source}`);
      }
    }
    this.publishAll(false);
    this.notify({ kind: 'overrides' });
    return dropped;
  }

  /**
   * Why a member does or does not serve (as GET /api/v1/state's `why`), with the actor and reason
   * of the operator override that holds it, if any; undefined for a member not configured.
   */
  memberWhy(site: string, address: string): MemberWhy | undefined {
    if (!this.members.has(memberKey(site, address))) return undefined;
    const e = this.effective(site, address);
    const held: OverrideAction | undefined = e.forcedDown ? 'force-down' : e.reason === 'drained by operator' ? 'drain' : undefined;
    const ov = [this.overrides.get(`member:${site}|${address}`), this.overrides.get(`site:${site}`)].find((o) => o !== undefined && o.action === held);
    return {
      why: e.reason,
      ...(ov !== undefined ? { override: { action: ov.action, scope: ov.target.address === undefined ? 'site' as const : 'member' as const, ...(ov.actor !== undefined ? { actor: ov.actor } : {}), ...(ov.reason !== undefined ? { reason: ov.reason } : {}) } } : {}),
    };
  }

  /** Why a member does or does not serve, for the state API. */
  private effective(site: string, address: string, overrides: OverrideMap = this.overrides): { up: boolean; reason: string; forcedDown?: true; pending?: true } {
    const mr = this.members.get(memberKey(site, address))!;
    const siteOv = overrides.get(`site:${site}`);
    const memOv = overrides.get(`member:${site}|${address}`);
    if (memOv?.action === 'force-down' || siteOv?.action === 'force-down') return { up: false, reason: 'forced down by operator', forcedDown: true };
    if (memOv?.action === 'drain' || siteOv?.action === 'drain') return { up: false, reason: 'drained by operator' };
    if (this.sites.get(site)?.stale) return { up: false, reason: 'site stale' };
    if (mr.status === 'drain') return { up: false, reason: 'drained by agent' };
    if (mr.status === 'unknown') {
      const s = this.sites.get(site);
      if (s?.window !== true) return { up: false, reason: 'no report or probe yet' };
      // an agent's first report names every member it knows: one it left out is not coming
      // within the window, so it no longer holds answers (one with rise in progress still does)
      if (s.settled && !s.probed && mr.upStreak + mr.downStreak === 0) return { up: false, reason: 'not in the site\'s reports' };
      return { up: false, reason: 'no report or probe yet', pending: true };
    }
    return { up: mr.status === 'up', reason: mr.status };
  }

  private memberHealth(mr: MemberRuntime): MemberHealth {
    const e = this.effective(mr.site, mr.address);
    const h: MemberHealth = { up: e.up, weightPct: e.up ? mr.weightPct : 0, connections: mr.connections, capacity: mr.capacity };
    if (e.forcedDown) return { ...h, forcedDown: true };
    return e.pending ? { ...h, pending: true } : h;
  }

  private buildPools(): Map<string, PoolHealth> {
    const pools = new Map<string, PoolHealth>();
    for (const pool of this.config.pools.values()) pools.set(pool.name, this.poolHealth(pool));
    return pools;
  }

  private poolHealth(pool: PoolConfig): PoolHealth {
    let degraded = false;
    const members: MemberHealth[] = pool.members.map((m) => {
      const h = this.memberHealth(this.members.get(memberKey(m.site, m.address))!);
      if (!h.up) degraded = true;
      return h;
    });
    return withPending(pool, { members, degraded });
  }

  /** Rebuilds everything (configuration changes); swaps when forced or when an answer could differ. */
  private publishAll(force: boolean): boolean {
    this.dirty.clear();
    const pools = this.buildPools();
    if (!force && samePools(this.config, this.current.pools, pools)) return false;
    return this.swap(pools);
  }

  /**
   * Recomputes only the members touched since the last publish, so that a report costs what
   * it names, not the size of the configuration; swaps (new epoch) only when an answer could
   * differ, copying just the pools that changed.
   */
  private publish(_force: boolean): boolean {
    if (this.dirty.size === 0) return false;
    let changed: Map<PoolConfig, MemberHealth[]> | undefined;
    for (const key of this.dirty) {
      const mr = this.members.get(key);
      const refs = this.memberRefs.get(key);
      if (!mr || !refs) continue;
      const next = this.memberHealth(mr);
      for (const { pool, index } of refs) {
        const cur = (changed?.get(pool) ?? this.current.pools.get(pool.name)?.members)?.[index];
        if (cur && sameMember(cur, next, pool.policy === 'least-load')) continue;
        changed ??= new Map();
        let arr = changed.get(pool);
        if (!arr) {
          arr = [...(this.current.pools.get(pool.name)?.members ?? [])];
          changed.set(pool, arr);
        }
        arr[index] = next;
      }
    }
    this.dirty.clear();
    if (!changed) return false;
    const pools = new Map(this.current.pools);
    for (const [pool, members] of changed) pools.set(pool.name, withPending(pool, { members, degraded: members.some((m) => !m.up) }));
    return this.swap(pools);
  }

  private swap(pools: Map<string, PoolHealth>): boolean {
    this.current = { epoch: this.current.epoch + 1, pools };
    for (const fn of this.listeners) fn(this.current);
    this.notify({ kind: 'pools', epoch: this.current.epoch });
    return true;
  }

  private event(type: string, site: string, address: string | undefined, detail: string): void {
    const e: HealthEvent = { at: new Date(this.now()).toISOString(), type, site, ...(address !== undefined ? { address } : {}), detail };
    this.events.push(e);
    if (this.events.length > EVENTS_KEPT) this.events.shift();
    this.onEvent(e);
    this.notify({ kind: 'event', event: e });
  }

  /** The JSON of `GET /api/v1/state`, minus the digest the HTTP layer adds. */
  snapshot(): object {
    const t = this.now();
    const sites = [...this.config.sites.keys()].map((name) => this.siteSnapshot(name, t)!);
    return { epoch: this.current.epoch, serverTime: t, sites, pools: this.poolsSnapshot(t), overrides: this.listOverrides(), events: [...this.events].reverse() };
  }

  /** The pools as in `snapshot()`: each member's state, why, configured and effective weight. */
  poolsSnapshot(t = this.now()): object[] {
    return [...this.config.pools.values()].map((p) => {
      const health = this.current.pools.get(p.name)!;
      return {
        name: p.name, policy: p.policy, names: p.names, degraded: health.degraded,
        startupPending: (health.pending ?? 0) !== 0,
        members: p.members.map((m, i) => {
          const mr = this.members.get(memberKey(m.site, m.address))!;
          const h = health.members[i]!;
          return {
            site: m.site, address: m.address, tier: m.tier, weight: m.weight,
            status: mr.status, restored: mr.restored, pending: h.pending === true, serving: h.up, why: this.effective(m.site, m.address).reason,
            reportedWeightPct: mr.weightPct, effectiveWeight: h.up ? (m.weight * h.weightPct) / 100 : 0,
            connections: mr.connections, capacity: mr.capacity, healthy: mr.healthy, total: mr.total,
            lastObservedAgeMs: mr.lastObservedAt ? t - mr.lastObservedAt : null,
          };
        }),
      };
    });
  }

  /** One site as in `snapshot()`; undefined for a site not configured. */
  siteSnapshot(name: string, t = this.now()): SiteSnapshot | undefined {
    const s = this.config.sites.get(name);
    const rt = this.sites.get(name);
    if (!s || !rt) return undefined;
    return {
      name: s.name,
      mode: s.probe ? 'probe' : 'agent',
      stale: rt.stale,
      restored: rt.restored,
      lastReportAgeMs: rt.probed ? null : t - rt.lastValidAt,
      lastReportAt: rt.lastReportAt ?? null,
      agent: rt.lastAgent ?? null,
      lastSeq: Object.fromEntries(rt.lastSeq),
      staleAfterMs: s.staleAfterMs,
    };
  }

  /** For metrics: per agent-fed site, ms since its last valid report (since the start before the first), as GET /api/v1/state shows. */
  siteReportAges(): { site: string; ageMs: number }[] {
    const t = this.now();
    const out: { site: string; ageMs: number }[] = [];
    for (const s of this.config.sites.values()) {
      const rt = this.sites.get(s.name);
      if (rt !== undefined && !rt.probed) out.push({ site: s.name, ageMs: Math.max(0, t - rt.lastValidAt) });
    }
    return out;
  }

  /** Member states for metrics: (site, address, status, serving). */
  memberStates(): { site: string; address: string; status: MemberStatus; serving: boolean }[] {
    return [...this.members.values()].map((m) => ({ site: m.site, address: m.address, status: m.status, serving: this.effective(m.site, m.address).up }));
  }
}

/** The AdminOutcome of an applied plan (`forced` and `warnings` only when there are). */
export function outcomeOf(plan: Extract<AdminPlan, { changed: true }>): AdminOutcome {
  return { ok: true, changed: true, ...(plan.forced ? { forced: true as const } : {}), ...(plan.warnings.length ? { warnings: plan.warnings } : {}) };
}

function allDownText(pool: PoolConfig): string {
  const a = pool.allDown;
  if (a.kind === 'pool') return `pool:${a.pool}`;
  return a.kind === 'all' ? 'all: fails open, every member not forced down' : a.kind === 'first-tier' ? 'first-tier: fails open to the first tier' : 'nodata';
}

function entryOf(r: OverrideRecord): OverrideEntry {
  return {
    action: r.action, target: r.address === undefined ? { site: r.site } : { site: r.site, address: r.address }, at: r.at,
    ...(r.actor !== undefined ? { actor: r.actor } : {}), ...(r.reason !== undefined ? { reason: r.reason } : {}),
  };
}

/** Equal when no policy could answer differently (least-load also compares loads). */
function samePools(config: GslbConfig, a: ReadonlyMap<string, PoolHealth>, b: ReadonlyMap<string, PoolHealth>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, pb] of b) {
    const pa = a.get(name);
    if (!pa || pa.degraded !== pb.degraded || (pa.pending ?? 0) !== (pb.pending ?? 0) || pa.members.length !== pb.members.length) return false;
    const loadMatters = config.pools.get(name)?.policy === 'least-load';
    for (let i = 0; i < pb.members.length; i++) if (!sameMember(pa.members[i]!, pb.members[i]!, loadMatters)) return false;
  }
  return true;
}

function sameMember(x: MemberHealth, y: MemberHealth, loadMatters: boolean): boolean {
  if (x.up !== y.up || x.weightPct !== y.weightPct || x.forcedDown !== y.forcedDown || x.pending !== y.pending) return false;
  return !loadMatters || (x.connections === y.connections && x.capacity === y.capacity);
}

/** The pool health with its per-family pending bits (1: an IPv4 member, 2: an IPv6 member is pending). */
function withPending(pool: PoolConfig, h: { members: MemberHealth[]; degraded: boolean }): PoolHealth {
  let bits = 0;
  h.members.forEach((m, i) => { if (m.pending) bits |= pool.members[i]!.family === 4 ? 1 : 2; });
  if (bits === 0) return h;
  const ifPendingUp: PoolHealth = { degraded: h.degraded, members: h.members.map((m) => (m.pending ? { ...m, up: true, weightPct: 100 } : m)) };
  return { ...h, pending: bits, ifPendingUp };
}

import type { GslbConfig, Policy, PolicyContext, PoolConfig, PoolHealth } from './model.js';
import { policyFor } from './policies/index.js';
import type { HealthView } from './state.js';

/**
 * How the answer was reached; part of the cache key. Startup: with `startup: servfail`, the
 * answer would include a member of the family that is still pending, or nothing serves and one
 * is pending (no members selected; answer.ts makes it SERVFAIL). Fallback + hop: answered by the allDown pool that many hops away.
 */
export const Mode = { Healthy: 0, AllDownAll: 1, AllDownFirstTier: 2, NoData: 3, Fallback: 4, Startup: 64 } as const;

/** Whether a selection's mode is one of allDown's (fail-open all / first-tier, NODATA, a fallback pool). */
export function isAllDownMode(mode: number): boolean {
  return mode !== Mode.Healthy && mode !== Mode.Startup;
}

const MAX_FALLBACK_HOPS = 8;
const EMPTY_HEALTH: PoolHealth = { members: [], degraded: true };

/**
 * Runs a pool's policy for one query and applies allDown when nothing qualifies. The result
 * lands in fields of this object (reused, no allocation per query): `pool` (the pool that
 * answered: a fallback pool for allDown pool:<name>), `count` members in `selected`, `ttl`,
 * `scope`, and `key`, a hash of everything the encoded answer depends on.
 */
export class PoolSelector {
  readonly selected = new Int32Array(64);
  count = 0;
  pool: PoolConfig | undefined;
  ttl = 0;
  mode: number = Mode.Healthy;
  key = 0;
  private readonly policies = new Map<string, Policy>();
  private readonly poolIds = new Map<string, number>();
  readonly ctx: PolicyContext;

  constructor(private readonly config: GslbConfig, random: () => number = Math.random) {
    let id = 1;
    for (const p of config.pools.values()) {
      this.policies.set(p.name, policyFor(p.policy, config.sites));
      this.poolIds.set(p.name, id++);
    }
    const first = config.pools.values().next().value as PoolConfig | undefined;
    this.ctx = {
      pool: first!, health: EMPTY_HEALTH, family: 4, hasClient: false, clientFamily: 4,
      clientAddress: new Uint8Array(16), clientPrefix: 0, ignoreHealth: false, onlyTier: 0, scope: 0,
      random, sequence: 0,
    };
  }

  /** Sets the client subnet for the next select (ECS, else the source address). */
  client(has: boolean, family: 4 | 6, address: Uint8Array, prefix: number): void {
    const c = this.ctx;
    c.hasClient = has;
    if (!has) return;
    c.clientFamily = family;
    c.clientPrefix = prefix;
    const a = c.clientAddress;
    a.fill(0);
    const n = Math.min(address.length, 16);
    for (let i = 0; i < n; i++) a[i] = address[i]!;
  }

  /** Selects for `start` and the address family; see the class comment for the outputs. */
  select(start: PoolConfig, view: HealthView, family: 4 | 6): void {
    const c = this.ctx;
    c.family = family;
    c.sequence = (c.sequence + 1) | 0;
    let pool = start;
    let mode: number = Mode.Healthy;
    let n = 0;
    for (let hop = 0; hop <= MAX_FALLBACK_HOPS; hop++) {
      const health = view.pools.get(pool.name) ?? EMPTY_HEALTH;
      c.pool = pool;
      c.health = health;
      c.ignoreHealth = false;
      c.onlyTier = 0;
      c.scope = 0;
      const policy = this.policies.get(pool.name)!;
      // Startup window: pick as if pending members were up, and hold (SERVFAIL: resolvers ask
      // another instance) when the pick needs one of them. Answering from whichever site reported
      // first would put one site's VIPs into resolver caches for a whole TTL. A pick of members
      // already known is a pick the real health makes too (pending ones only add candidates).
      const holding = ((health.pending ?? 0) & (family === 4 ? 1 : 2)) !== 0 && (pool.startup ?? 'servfail') === 'servfail';
      if (holding && health.ifPendingUp !== undefined) c.health = health.ifPendingUp;
      n = policy(c, this.selected);
      c.health = health;
      if (holding && (n === 0 || picksPending(health, this.selected, n))) {
        this.finish(pool, 0, Mode.Startup, true);
        return;
      }
      if (n > 0) {
        if (hop > 0) mode = Mode.Fallback + hop;
        this.finish(pool, n, mode, health.degraded || hop > 0);
        return;
      }
      const ad = pool.allDown;
      if (ad.kind === 'pool') {
        const next = this.config.pools.get(ad.pool);
        if (!next) break;
        pool = next;
        continue;
      }
      if (ad.kind === 'nodata') { mode = Mode.NoData; break; }
      // answer as if every member (or every member of the first tier) were up: a deliberate fail-open
      c.ignoreHealth = true;
      c.onlyTier = ad.kind === 'first-tier' ? firstTier(pool, family) : 0;
      mode = ad.kind === 'first-tier' ? Mode.AllDownFirstTier : Mode.AllDownAll;
      n = policy(c, this.selected);
      this.finish(pool, n, mode, true);
      return;
    }
    this.finish(pool, 0, Mode.NoData, true);
  }

  private finish(pool: PoolConfig, n: number, mode: number, degraded: boolean): void {
    this.pool = pool;
    this.count = n;
    this.mode = mode;
    this.ttl = degraded ? pool.degradedTtl : pool.ttl;
    let h = Math.imul(0x811c9dc5 ^ (this.poolIds.get(pool.name) ?? 0), 0x01000193);
    h = Math.imul(h ^ mode, 0x01000193);
    h = Math.imul(h ^ this.ttl, 0x01000193);
    h = Math.imul(h ^ n, 0x01000193);
    for (let i = 0; i < n; i++) h = Math.imul(h ^ (this.selected[i]! + 1), 0x01000193);
    this.key = h >>> 0;
  }
}

function picksPending(health: PoolHealth, selected: Int32Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (health.members[selected[i]!]?.pending === true) return true;
  return false;
}

/** The lowest tier number among the pool's members of a family (0 when there are none). */
function firstTier(pool: PoolConfig, family: 4 | 6): number {
  let t = 0;
  for (const m of pool.members) if (m.family === family && (t === 0 || m.tier < t)) t = m.tier;
  return t;
}

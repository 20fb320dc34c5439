/**
 * The GSLB model: validated pool and site configuration, the immutable health view that
 * policies read, and the mutable context a policy fills without allocating.
 */

import type { Prefix } from '../../shared/ip.js';

export type { Prefix };

/** How a site's members are observed when no agent reports for it. */
export interface ProbeConfig {
  readonly type: 'tcp' | 'http';
  readonly port: number;
  /** http only */
  readonly path: string;
  readonly expect: readonly number[];
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

/** A site: where one SLB agent (or gslb-dns's own probes) reports from. */
export interface SiteConfig {
  readonly name: string;
  /** the keys a report may be signed with (`secret:`, one or a list), resolved at load time; empty only for probe-only sites */
  readonly secrets: readonly Buffer[];
  /** `secret:` as written (`env:NAME` / `file:/path`, or a list of them), safe to show */
  readonly secretRef: string | readonly string[] | undefined;
  readonly subnets: readonly Prefix[];
  readonly staleAfterMs: number;
  /** consecutive observations needed to turn a member up / down (hysteresis) */
  readonly rise: number;
  readonly fall: number;
  readonly probe: ProbeConfig | undefined;
}

export type PolicyName = 'weighted' | 'failover' | 'topology' | 'least-load' | 'hashed' | 'all';

/**
 * What a pool answers while it has no serving member but still waits for the first word on some
 * member (unknown, neither restored nor reported) within its site's staleAfter of the start:
 * `servfail` (default) sends resolvers to another name server; `allDown` answers as allDown does.
 */
export type StartupMode = 'servfail' | 'allDown';

export type AllDown =
  | { readonly kind: 'all' }
  | { readonly kind: 'first-tier' }
  | { readonly kind: 'nodata' }
  | { readonly kind: 'pool'; readonly pool: string };

/** One pool member; `index` is its position in the pool's member list. */
export interface MemberConfig {
  readonly index: number;
  readonly site: string;
  /** canonical text (RFC 5952 for IPv6) */
  readonly address: string;
  readonly family: 4 | 6;
  /** 4 or 16 bytes, the RDATA of its A/AAAA record */
  readonly addressBytes: Uint8Array;
  readonly weight: number;
  readonly tier: number;
}

/** A safety rule on operator actions: how many members must stay serving. */
export interface PoolGuard {
  readonly minServing: number;
}

export interface PoolConfig {
  readonly name: string;
  /** absent: operator actions are never refused for this pool */
  readonly guard?: PoolGuard;
  /** the zone (canonical origin) whose names it answers */
  readonly zone: string;
  /** canonical owner names (absolute) answered from this pool */
  readonly names: readonly string[];
  readonly ttl: number;
  readonly degradedTtl: number;
  readonly policy: PolicyName;
  readonly maxAnswers: number;
  readonly allDown: AllDown;
  /** undefined reads as 'servfail' (the loader always sets it) */
  readonly startup?: StartupMode;
  readonly members: readonly MemberConfig[];
}

/** All GSLB configuration loaded from the `*.gslb.yaml` files of a zones directory. */
export interface GslbConfig {
  readonly sites: ReadonlyMap<string, SiteConfig>;
  readonly pools: ReadonlyMap<string, PoolConfig>;
  /** canonical owner name -> pool */
  readonly byName: ReadonlyMap<string, PoolConfig>;
  /** load warnings, `file:line: path: reason` (absent in configs built by hand) */
  readonly warnings?: readonly string[];
}

/** The effective health of one member, as policies see it. */
export interface MemberHealth {
  /** may receive traffic: reported up (after hysteresis), site fresh, not drained or forced down */
  readonly up: boolean;
  /** effective weight factor 0..100 (reported weight %, 0 when not up) */
  readonly weightPct: number;
  readonly connections: number;
  readonly capacity: number;
  /** an operator forced it down: it stays out even when allDown fails open */
  readonly forcedDown?: boolean;
  /** not up because nothing is known yet (unknown, its site within staleAfter of the start) */
  readonly pending?: boolean;
}

/** Immutable health of one pool, aligned with `pool.members`. */
export interface PoolHealth {
  readonly members: readonly MemberHealth[];
  /** some member is not up: answers use degradedTtl */
  readonly degraded: boolean;
  /** startup pending per family: bit 1 an IPv4 member, bit 2 an IPv6 member is pending (0 or absent: none) */
  readonly pending?: number;
  /**
   * With pending members: the same health with each pending member counted up at full weight,
   * i.e. what the policy would pick once they report up (the selector holds an answer that
   * would include one). Absent when nothing is pending.
   */
  readonly ifPendingUp?: PoolHealth;
}

/**
 * What a policy reads and writes for one query. A single object is reused for every query:
 * policies must not keep references to it, and write their choice into `out`.
 */
export interface PolicyContext {
  pool: PoolConfig;
  health: PoolHealth;
  /** the address family asked for (A -> 4, AAAA -> 6) */
  family: 4 | 6;
  /** client subnet: from ECS, else the source address with its full length; hasClient false over neither */
  hasClient: boolean;
  clientFamily: 4 | 6;
  /** 16 bytes, left-aligned, bits beyond clientPrefix zero */
  clientAddress: Uint8Array;
  clientPrefix: number;
  /** treat every member as up (allDown: all / first-tier) */
  ignoreHealth: boolean;
  /** only members of this tier count (allDown: first-tier), 0 for no restriction */
  onlyTier: number;
  /** written by the policy: the ECS scope prefix length this answer is valid for */
  scope: number;
  /** a number in [0, 1): Math.random in production, seeded in tests */
  random: () => number;
  /** per-query counter for rotation (policy `all`) */
  sequence: number;
}

/**
 * A selection policy: picks up to pool.maxAnswers members of ctx.family into `out` (member
 * indices, in answer order) and returns how many; 0 when no member qualifies (the caller then
 * applies allDown). Sets ctx.scope. Never allocates per call.
 */
export type Policy = (ctx: PolicyContext, out: Int32Array) => number;

/** Compact builders for GSLB model objects (pools, sites, health, policy contexts) in tests. */
import type {
  MemberConfig, MemberHealth, Policy, PolicyContext, PoolConfig, PoolHealth, SiteConfig,
} from '../../dns/gslb/model.js';
import { parsePrefix } from '../../shared/ip.js';
import { parseAddress } from '../../shared/ip.js';

/** A member as a literal: `'192.0.2.1'` or `['192.0.2.1', { site: 'b', weight: 3, tier: 2 }]`. */
export type MemberLit = string | readonly [address: string, opts?: { site?: string; weight?: number; tier?: number }];

export interface PoolOpts {
  name?: string;
  maxAnswers?: number;
  policy?: PoolConfig['policy'];
}

/** A member from its address; site defaults to 'a', weight and tier to 1. */
export function member(lit: MemberLit, index: number): MemberConfig {
  const [address, opts = {}] = typeof lit === 'string' ? [lit] : lit;
  const a = parseAddress(address);
  return {
    index,
    site: opts.site ?? 'a',
    address: a.canonical,
    family: a.family,
    addressBytes: a.bytes,
    weight: opts.weight ?? 1,
    tier: opts.tier ?? 1,
  };
}

/** A pool of the given members (indices in order); maxAnswers defaults to 1. */
export function pool(members: readonly MemberLit[], opts: PoolOpts = {}): PoolConfig {
  const name = opts.name ?? 'www';
  return {
    name,
    zone: 'gslb.example.test.',
    names: [`${name}.gslb.example.test.`],
    ttl: 30,
    degradedTtl: 10,
    policy: opts.policy ?? 'failover',
    maxAnswers: opts.maxAnswers ?? 1,
    allDown: { kind: 'nodata' },
    members: members.map(member),
  };
}

/** A copy of `p` with another maxAnswers (members and everything else shared). */
export function withMax(p: PoolConfig, maxAnswers: number): PoolConfig {
  return { ...p, maxAnswers };
}

export interface HealthSpec {
  down?: readonly number[];
  pct?: Readonly<Record<number, number>>;
  load?: Readonly<Record<number, readonly [connections: number, capacity: number]>>;
  set?: Readonly<Record<number, Partial<MemberHealth>>>;
}

/**
 * Health aligned with `p.members`. Every member is up at 100 % with no load unless `spec` says
 * otherwise: `down` lists member indices that are not up (weightPct 0); `pct` sets a reported
 * weight %; `load` gives [connections, capacity] per index; `set` overrides fields as given, even
 * inconsistently (up false with weightPct 100), to show which field a policy reads.
 */
export function health(p: PoolConfig, spec: HealthSpec = {}): PoolHealth {
  const members: MemberHealth[] = p.members.map((_, i) => {
    const up = !(spec.down ?? []).includes(i);
    const [connections, capacity] = spec.load?.[i] ?? [0, 100];
    return { up, weightPct: up ? (spec.pct?.[i] ?? 100) : 0, connections, capacity, ...spec.set?.[i] };
  });
  return { members, degraded: members.some((m) => !m.up) };
}

/** A site with the given subnets (prefix text). */
export function site(name: string, ...subnets: string[]): SiteConfig {
  return {
    name, secrets: [], secretRef: undefined, subnets: subnets.map(parsePrefix),
    staleAfterMs: 3000, rise: 2, fall: 2, probe: undefined,
  };
}

/** A sites map, in the order given. */
export function sites(...list: SiteConfig[]): ReadonlyMap<string, SiteConfig> {
  return new Map(list.map((s) => [s.name, s]));
}

export interface CtxOpts {
  family?: 4 | 6;
  /** client subnet text (`10.1.2.0/24`, `2001:db8::/56`, a bare address = full length); none when absent */
  client?: string;
  ignoreHealth?: boolean;
  onlyTier?: number;
  random?: () => number;
  sequence?: number;
}

/** The 16-byte left-aligned client address and its prefix length, as the server fills them in. */
export function clientOf(text: string): { family: 4 | 6; address: Uint8Array; prefix: number } {
  const p = parsePrefix(text);
  return { family: p.family, address: Uint8Array.from(p.bytes), prefix: p.length };
}

/** A policy context; `scope` starts at a poison value so a test sees whether the policy wrote it. */
export function ctx(p: PoolConfig, h: PoolHealth, opts: CtxOpts = {}): PolicyContext {
  const c = opts.client === undefined ? undefined : clientOf(opts.client);
  return {
    pool: p,
    health: h,
    family: opts.family ?? 4,
    hasClient: c !== undefined,
    clientFamily: c?.family ?? 4,
    clientAddress: c?.address ?? new Uint8Array(16),
    clientPrefix: c?.prefix ?? 0,
    ignoreHealth: opts.ignoreHealth ?? false,
    onlyTier: opts.onlyTier ?? 0,
    scope: 99,
    random: opts.random ?? (() => { throw new Error('this policy must not use random()'); }),
    sequence: opts.sequence ?? 0,
  };
}

/** Points an existing context at another client subnet (as the server reuses one context). */
export function setClient(c: PolicyContext, text: string): void {
  const cl = clientOf(text);
  c.hasClient = true;
  c.clientFamily = cl.family;
  c.clientAddress.set(cl.address);
  c.clientPrefix = cl.prefix;
}

/** Runs `policy` once with a fresh output buffer larger than any pool in the tests. */
export function run(policy: Policy, c: PolicyContext): { picked: number[]; scope: number } {
  const out = new Int32Array(32).fill(-1);
  const n = policy(c, out);
  return { picked: Array.from(out.subarray(0, n)), scope: c.scope };
}

/** mulberry32: a small seeded PRNG with values in [0, 1), so random policies are reproducible. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

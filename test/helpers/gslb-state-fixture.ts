/**
 * A small GSLB configuration built inline (sites tokyo and osaka with secrets, a probe-only
 * site nagoya, one pool "www" of three members) and a GslbState on a settable clock.
 */
import { isIPv4 } from 'node:net';
import type { GslbConfig, MemberConfig, PoolConfig, SiteConfig } from '../../dns/gslb/model.js';
import { GslbState } from '../../dns/gslb/state.js';
import type { Report } from '../../shared/protocol/report.js';
import { signReport } from '../../shared/protocol/signature.js';

export const SECRETS = {
  tokyo: Buffer.from('tokyo-secret-0123456789abcdef-0123456789'),
  osaka: Buffer.from('osaka-secret-0123456789abcdef-0123456789'),
} as const;

export const MEMBERS = [
  { site: 'tokyo', address: '192.0.2.1' },
  { site: 'tokyo', address: '192.0.2.2' },
  { site: 'osaka', address: '198.51.100.1' },
] as const;

/** A fixed start time, so snapshots compare equal across runs. */
export const T0 = Date.UTC(2024, 0, 1, 0, 0, 0);

function site(name: string, secret: Buffer | undefined, probe = false): SiteConfig {
  return {
    name,
    secrets: secret ? [secret] : [],
    secretRef: secret ? `env:GSLB_SECRET_${name.toUpperCase()}` : undefined,
    subnets: [],
    staleAfterMs: 10_000,
    rise: 1,
    fall: 1,
    probe: probe ? { type: 'tcp', port: 80, path: '/', expect: [], intervalMs: 1000, timeoutMs: 500 } : undefined,
  };
}

function member(index: number, siteName: string, address: string): MemberConfig {
  const v4 = isIPv4(address);
  return {
    index,
    site: siteName,
    address,
    family: v4 ? 4 : 6,
    addressBytes: Uint8Array.from(address.split('.').map(Number)),
    weight: 100,
    tier: 1,
  };
}

/** The fixture configuration. */
export function createGslbConfig(): GslbConfig {
  const sites = new Map<string, SiteConfig>([
    ['tokyo', site('tokyo', SECRETS.tokyo)],
    ['osaka', site('osaka', SECRETS.osaka)],
    ['nagoya', site('nagoya', undefined, true)],
  ]);
  const pool: PoolConfig = {
    name: 'www',
    zone: 'gslb.example.test.',
    names: ['www.gslb.example.test.'],
    ttl: 30,
    degradedTtl: 10,
    policy: 'weighted',
    maxAnswers: 2,
    allDown: { kind: 'all' },
    members: MEMBERS.map((m, i) => member(i, m.site, m.address)),
  };
  return { sites, pools: new Map([['www', pool]]), byName: new Map(pool.names.map((n) => [n, pool])) };
}

/** A settable clock. */
export interface Clock {
  now: () => number;
  set(t: number): void;
  advance(ms: number): void;
}

export function createClock(start = T0): Clock {
  let t = start;
  return { now: () => t, set: (x) => { t = x; }, advance: (ms) => { t += ms; } };
}

/** A fresh state over the fixture configuration. */
export function createFixtureState(clock: Clock = createClock()): { state: GslbState; clock: Clock } {
  return { state: new GslbState(createGslbConfig(), clock.now), clock };
}

/** A valid report for `site` (every member of the site up unless `members` says otherwise). */
export function makeReport(siteName: 'tokyo' | 'osaka', seq: number, members?: Report['members']): Report {
  return {
    site: siteName,
    agent: `${siteName}-agent-1`,
    seq,
    sentAt: new Date(T0).toISOString(),
    members: members ?? MEMBERS.filter((m) => m.site === siteName).map((m) => ({ address: m.address, state: 'up' as const, weight: 100 })),
  };
}

/** Headers for a signed report body. */
export function signedHeaders(body: string, secret: Buffer, timestamp: number): Record<string, string> {
  const ts = String(timestamp);
  return {
    'content-type': 'application/json',
    'x-gslb-timestamp': ts,
    'x-gslb-signature': signReport(secret, ts, body),
  };
}

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GslbConfigError,
  GslbLoadError,
  mergeGslbConfigs,
  parseGslbYaml,
} from '../../../dns/gslb/config.js';
import type { GslbFileConfig } from '../../../dns/gslb/config.js';
import { loadGslbDir } from '../../../dns/gslb/load.js';
import { loadZoneDir } from '../../../dns/zone/load.js';

const FILE = 't.gslb.yaml';
const ZONE = 'example.test.';
const ENV = { GSLB_SECRET_TOKYO: 'tokyo-secret', GSLB_SECRET_OSAKA: 'osaka-secret', S_TOKYO: 't', S_OSAKA: 'o' };

const EXAMPLE = `sites:
  tokyo:
    secret: env:GSLB_SECRET_TOKYO       # or file:/path; secrets are never required inline
    subnets: [198.51.100.0/24]          # client subnets that prefer this site (topology)
    staleAfter: 3s                      # no valid report for this long -> site is down
  osaka:
    secret: env:GSLB_SECRET_OSAKA
    subnets: [203.0.113.0/24]
pools:
  web:
    names: [www]                        # owner names in the zone answered from this pool
    ttl: 20
    degradedTtl: 5                      # TTL while any member is down
    policy: weighted                    # weighted | failover | topology | least-load | hashed | all
    maxAnswers: 1
    allDown: all                        # all | first-tier | nodata | pool:<name>
    members:
      - { site: tokyo, address: 192.0.2.1, weight: 3, tier: 1 }
      - { site: osaka, address: 192.0.2.2, weight: 1, tier: 1 }
      - { site: tokyo, address: "2001:db8::1", weight: 1, tier: 1 }
`;

function parse(text: string, env: NodeJS.ProcessEnv = ENV, file = FILE, zone = ZONE): GslbFileConfig {
  return parseGslbYaml(text, file, zone, env);
}

/** The message of the GslbLoadError that `fn` throws (one error per line), or '(no error)'. */
function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(GslbLoadError);
    for (const x of (e as GslbLoadError).errors) expect(x).toBeInstanceOf(GslbConfigError);
    return (e as Error).message;
  }
  return '(no error)';
}

function bytes(...b: number[]): Uint8Array {
  return Uint8Array.from(b);
}

describe('parseGslbYaml: the contract example', () => {
  const cfg = parse(EXAMPLE);

  it('loads the sites with resolved secrets and parsed subnets', () => {
    expect([...cfg.sites.keys()]).toEqual(['tokyo', 'osaka']);
    expect(cfg.sites.get('tokyo')).toEqual({
      name: 'tokyo',
      secrets: [Buffer.from('tokyo-secret')],
      secretRef: 'env:GSLB_SECRET_TOKYO',
      subnets: [{ family: 4, bytes: bytes(198, 51, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), length: 24, text: '198.51.100.0/24' }],
      staleAfterMs: 3000,
      rise: 1,
      fall: 1,
      probe: undefined,
    });
    const osaka = cfg.sites.get('osaka')!;
    expect(osaka.secrets).toEqual([Buffer.from('osaka-secret')]);
    expect(osaka.subnets.map((p) => p.text)).toEqual(['203.0.113.0/24']);
    expect(osaka.staleAfterMs).toBe(3000);
  });

  it('loads the pool with canonical names and member addresses', () => {
    expect([...cfg.pools.keys()]).toEqual(['web']);
    expect(cfg.pools.get('web')).toEqual({
      name: 'web',
      zone: 'example.test.',
      names: ['www.example.test.'],
      ttl: 20,
      degradedTtl: 5,
      policy: 'weighted',
      maxAnswers: 1,
      allDown: { kind: 'all' },
      startup: 'servfail',
      members: [
        { index: 0, site: 'tokyo', address: '192.0.2.1', family: 4, addressBytes: bytes(192, 0, 2, 1), weight: 3, tier: 1 },
        { index: 1, site: 'osaka', address: '192.0.2.2', family: 4, addressBytes: bytes(192, 0, 2, 2), weight: 1, tier: 1 },
        {
          index: 2, site: 'tokyo', address: '2001:db8::1', family: 6,
          addressBytes: bytes(0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), weight: 1, tier: 1,
        },
      ],
    });
  });

  it('knows the line of a path', () => {
    expect(cfg.file).toBe(FILE);
    expect(cfg.zone).toBe(ZONE);
    expect(cfg.lineOf('pools.web.names[0]')).toBe(11);
    expect(cfg.lineOf('pools.web.members[2].address')).toBe(20);
    expect(cfg.lineOf('sites.osaka')).toBe(6);
  });
});

describe('parseGslbYaml: defaults and forms', () => {
  const SITE = 'sites:\n  s:\n    secret: env:S_TOKYO\n';

  it('fills pool and member defaults', () => {
    const p = parse(`${SITE}pools:\n  p:\n    members: [{ site: s, address: 192.0.2.1 }]\n`).pools.get('p')!;
    expect(p).toMatchObject({ names: [], ttl: 20, degradedTtl: 5, policy: 'weighted', maxAnswers: 1, allDown: { kind: 'all' } });
    expect(p.members[0]).toMatchObject({ weight: 1, tier: 1 });
  });

  it('degradedTtl defaults to min(ttl, 5)', () => {
    const ttl = (t: number): number =>
      parse(`${SITE}pools:\n  p:\n    ttl: ${t}\n    members: [{ site: s, address: 192.0.2.1 }]\n`).pools.get('p')!.degradedTtl;
    expect([ttl(60), ttl(5), ttl(3), ttl(0)]).toEqual([5, 5, 3, 0]);
  });

  it('reads startup: servfail by default, and allDown', () => {
    const cfg = parse(`${SITE}pools:
  a: { members: [{ site: s, address: 192.0.2.1 }] }
  b: { startup: allDown, members: [{ site: s, address: 192.0.2.1 }] }
  c: { startup: servfail, members: [{ site: s, address: 192.0.2.1 }] }
`);
    expect([...cfg.pools.values()].map((p) => p.startup)).toEqual(['servfail', 'allDown', 'servfail']);
  });

  it('reads every allDown form and policy', () => {
    const cfg = parse(`${SITE}pools:
  a: { allDown: first-tier, policy: failover, members: [{ site: s, address: 192.0.2.1 }] }
  b: { allDown: nodata, policy: topology, members: [{ site: s, address: 192.0.2.1 }] }
  c: { allDown: "pool:d", policy: least-load, members: [{ site: s, address: 192.0.2.1 }] }
  d: { allDown: "pool:e", policy: hashed, members: [{ site: s, address: 192.0.2.1 }] }
  e: { policy: all, members: [{ site: s, address: 192.0.2.1 }] }
`);
    expect([...cfg.pools.values()].map((p) => [p.policy, p.allDown])).toEqual([
      ['failover', { kind: 'first-tier' }],
      ['topology', { kind: 'nodata' }],
      ['least-load', { kind: 'pool', pool: 'd' }],
      ['hashed', { kind: 'pool', pool: 'e' }],
      ['all', { kind: 'all' }],
    ]);
  });

  it('reads durations in ms, s, m and h', () => {
    const stale = (v: string): number => parse(`sites:\n  s:\n    secret: env:S_TOKYO\n    staleAfter: ${v}\n`).sites.get('s')!.staleAfterMs;
    expect(['500ms', '3s', '1.5s', '1m', '1h'].map(stale)).toEqual([500, 3000, 1500, 60_000, 3_600_000]);
  });

  it('a duration without a unit is an error naming both readings', () => {
    expect(errorOf(() => parse('sites:\n  s:\n    secret: env:S_TOKYO\n    staleAfter: 10\n')))
      .toBe('t.gslb.yaml:4: sites.s.staleAfter: duration needs a unit: 10ms or 10s');
    expect(errorOf(() => parse('sites:\n  s: { probe: { type: tcp, port: 1, interval: "500" } }\n')))
      .toBe('t.gslb.yaml:2: sites.s.probe.interval: duration needs a unit: 500ms or 500s');
  });

  it('probed sites: probe defaults, rise/fall 2, no secret needed', () => {
    const cfg = parse(`sites:
  h: { probe: { type: http, port: 80 } }
  t: { probe: { type: tcp, port: 443, interval: 1s, timeout: 500ms }, rise: 3, fall: 1 }
  a: { secret: env:S_TOKYO, rise: 2 }
`);
    expect(cfg.sites.get('h')).toMatchObject({
      secrets: [], secretRef: undefined, rise: 2, fall: 2, staleAfterMs: 3000,
      probe: { type: 'http', port: 80, path: '/', expect: [200], intervalMs: 5000, timeoutMs: 2000 },
    });
    expect(cfg.sites.get('t')).toMatchObject({
      rise: 3, fall: 1, probe: { type: 'tcp', port: 443, path: '', expect: [], intervalMs: 1000, timeoutMs: 500 },
    });
    expect(cfg.sites.get('a')).toMatchObject({ rise: 2, fall: 1, probe: undefined });
    const short = parse('sites:\n  s: { probe: { type: tcp, port: 1, interval: 1s } }\n').sites.get('s')!;
    expect(short.probe).toMatchObject({ intervalMs: 1000, timeoutMs: 1000 });
  });

  it('http probe path and expect', () => {
    const s = parse('sites:\n  h: { probe: { type: http, port: 8080, path: /healthz, expect: [200, 204] } }\n').sites.get('h')!;
    expect(s.probe).toMatchObject({ path: '/healthz', expect: [200, 204] });
  });

  it('names: relative, @ for the apex, absolute inside the zone, case-folded', () => {
    const p = parse(`${SITE}pools:
  p:
    names: ['@', www, WWW2.Api, Static.Example.Test., 'a\\.b']
    members: [{ site: s, address: 192.0.2.1 }]
`).pools.get('p')!;
    expect(p.names).toEqual(['example.test.', 'www.example.test.', 'www2.api.example.test.', 'static.example.test.', 'a\\.b.example.test.']);
  });

  it('canonical IPv6 (RFC 5952) and 4/16 address bytes', () => {
    const addrs = ['2001:DB8:0:0:0:0:0:1', '2001:db8:0:1:0:0:0:1', '2001:db8:0:0:1:0:0:1', '2001:db8:0:1:1:1:1:1',
      '2001:0db8:0000:0000:0000:0000:0002:0001', '::', '::1', '::ffff:192.0.2.1', '0:0:0:0:0:ffff:c000:0201', 'fe80::', '1::'];
    // the same address twice would be a duplicate member: alternate between two sites
    const members = addrs.map((a, i) => `      - { site: ${i % 2 ? 't' : 's'}, address: "${a}" }`).join('\n');
    const p = parse(`${SITE}  t:\n    secret: env:S_OSAKA\npools:\n  p:\n    members:\n${members}\n`).pools.get('p')!;
    expect(p.members.map((m) => m.address)).toEqual(['2001:db8::1', '2001:db8:0:1::1', '2001:db8::1:0:0:1', '2001:db8:0:1:1:1:1:1',
      '2001:db8::2:1', '::', '::1', '::ffff:192.0.2.1', '::ffff:192.0.2.1', 'fe80::', '1::']);
    expect(p.members.every((m) => m.family === 6 && m.addressBytes.length === 16)).toBe(true);
    expect([...p.members[7]!.addressBytes]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]);
  });

  it('IPv6 subnets are 16 bytes left-aligned with canonical text', () => {
    const s = parse('sites:\n  s:\n    secret: env:S_TOKYO\n    subnets: ["2001:DB8:00AA::/48", 0.0.0.0/0]\n').sites.get('s')!;
    expect(s.subnets).toEqual([
      { family: 6, bytes: bytes(0x20, 0x01, 0x0d, 0xb8, 0, 0xaa, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), length: 48, text: '2001:db8:aa::/48' },
      { family: 4, bytes: new Uint8Array(16), length: 0, text: '0.0.0.0/0' },
    ]);
  });

  it('an empty file defines nothing', () => {
    const cfg = parse('# nothing yet\n');
    expect(cfg.sites.size + cfg.pools.size).toBe(0);
  });
});

/** Sites on lines 1-5, `pools:` / `  web:` on 6-7; a case's pool body starts at line 8. */
const SITES = `sites:
  tokyo:
    secret: env:S_TOKYO
  osaka:
    secret: env:S_OSAKA
`;
function pool(body: string): string {
  return `${SITES}pools:\n  web:\n${body}`;
}
const M = '    members:\n      - { site: tokyo, address: 192.0.2.1 }\n';

interface ErrorCase {
  name: string;
  yaml: string;
  error: string;
  env?: NodeJS.ProcessEnv;
}

const errorCases: ErrorCase[] = [
  // unknown keys and types
  { name: 'misspelt member key', yaml: pool('    members:\n      - { site: tokyo, address: 192.0.2.1, weigth: 3 }\n'),
    error: 't.gslb.yaml:9: pools.web.members[0]: unknown key "weigth" (did you mean "weight"?)' },
  { name: 'unknown pool key', yaml: pool(`    cache: yes\n${M}`), error: 't.gslb.yaml:8: pools.web: unknown key "cache"' },
  { name: 'unknown site key', yaml: 'sites:\n  s:\n    secret: env:S_TOKYO\n    stale: 3s\n', error: 't.gslb.yaml:4: sites.s: unknown key "stale" (did you mean "staleAfter"?)' },
  { name: 'unknown probe key', yaml: 'sites:\n  s:\n    probe: { type: tcp, port: 1, intervall: 1s }\n', error: 't.gslb.yaml:3: sites.s.probe: unknown key "intervall" (did you mean "interval"?)' },
  { name: 'unknown top-level key', yaml: `${SITES}pool: {}\n`, error: 't.gslb.yaml:6: unknown key "pool" (did you mean "pools"?)' },
  { name: 'names not a list', yaml: pool(`    names: www\n${M}`), error: 't.gslb.yaml:8: pools.web.names: expected a list, got "www"' },
  { name: 'missing members', yaml: pool('    names: [www]\n'), error: 't.gslb.yaml:7: pools.web: missing key "members"' },
  { name: 'member without address', yaml: pool('    members:\n      - { site: tokyo }\n'), error: 't.gslb.yaml:9: pools.web.members[0]: missing key "address"' },
  { name: 'address is a number', yaml: pool('    members:\n      - { site: tokyo, address: 3 }\n'), error: 't.gslb.yaml:9: pools.web.members[0].address: expected a string, got 3' },
  { name: 'sites is a list', yaml: 'sites: [a]\n', error: 't.gslb.yaml:1: sites: expected a mapping, got a list' },
  { name: 'root is a list', yaml: '- a\n', error: 't.gslb.yaml:1: expected a mapping, got a list' },
  { name: 'YAML syntax', yaml: 'pools:\n  web: [\n', error: 't.gslb.yaml:3: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]' },
  { name: 'pool defined twice', yaml: pool(M) + `  web:\n${M}`, error: 't.gslb.yaml:10: invalid YAML: Map keys must be unique' },
  // numbers
  { name: 'negative ttl', yaml: pool(`    ttl: -1\n${M}`), error: 't.gslb.yaml:8: pools.web.ttl: expected an integer from 0 to 2147483647, got -1' },
  { name: 'ttl too large', yaml: pool(`    ttl: 2147483648\n${M}`), error: 't.gslb.yaml:8: pools.web.ttl: expected an integer from 0 to 2147483647, got 2147483648' },
  { name: 'infinite ttl', yaml: pool(`    ttl: .inf\n${M}`), error: 't.gslb.yaml:8: pools.web.ttl: expected an integer from 0 to 2147483647, got Infinity' },
  { name: 'fractional ttl', yaml: pool(`    ttl: 1.5\n${M}`), error: 't.gslb.yaml:8: pools.web.ttl: expected an integer from 0 to 2147483647, got 1.5' },
  { name: 'ttl with a unit', yaml: pool(`    ttl: 20s\n${M}`), error: 't.gslb.yaml:8: pools.web.ttl: expected an integer from 0 to 2147483647, got "20s"' },
  { name: 'degradedTtl negative', yaml: pool(`    degradedTtl: -5\n${M}`), error: 't.gslb.yaml:8: pools.web.degradedTtl: expected an integer from 0 to 2147483647, got -5' },
  { name: 'degradedTtl above ttl', yaml: pool(`    ttl: 10\n    degradedTtl: 30\n${M}`), error: 't.gslb.yaml:9: pools.web.degradedTtl: must not exceed ttl (10), got 30' },
  { name: 'maxAnswers 0', yaml: pool(`    maxAnswers: 0\n${M}`), error: 't.gslb.yaml:8: pools.web.maxAnswers: expected an integer from 1 to 64, got 0' },
  { name: 'maxAnswers 65', yaml: pool(`    maxAnswers: 65\n${M}`), error: 't.gslb.yaml:8: pools.web.maxAnswers: expected an integer from 1 to 64, got 65' },
  { name: 'weight too large', yaml: pool('    members:\n      - { site: tokyo, address: 192.0.2.1, weight: 65536 }\n'),
    error: 't.gslb.yaml:9: pools.web.members[0].weight: expected an integer from 0 to 65535, got 65536' },
  { name: 'negative weight', yaml: pool('    members:\n      - { site: tokyo, address: 192.0.2.1, weight: -1 }\n'),
    error: 't.gslb.yaml:9: pools.web.members[0].weight: expected an integer from 0 to 65535, got -1' },
  { name: 'tier 0', yaml: pool('    members:\n      - site: tokyo\n        address: 192.0.2.1\n        tier: 0\n'),
    error: 't.gslb.yaml:11: pools.web.members[0].tier: expected an integer >= 1, got 0' },
  { name: 'rise 0', yaml: 'sites:\n  s:\n    secret: env:S_TOKYO\n    rise: 0\n', error: 't.gslb.yaml:4: sites.s.rise: expected an integer >= 1, got 0' },
  // enumerations and references
  { name: 'unknown policy', yaml: pool(`    policy: round-robin\n${M}`),
    error: 't.gslb.yaml:8: pools.web.policy: expected one of weighted | failover | topology | least-load | hashed | all, got "round-robin"' },
  { name: 'unknown startup', yaml: pool(`    startup: nodata\n${M}`), error: 't.gslb.yaml:8: pools.web.startup: expected one of servfail | allDown, got "nodata"' },
  { name: 'startup misspelt', yaml: pool(`    startp: servfail\n${M}`), error: 't.gslb.yaml:8: pools.web: unknown key "startp" (did you mean "startup"?)' },
  { name: 'bad allDown', yaml: pool(`    allDown: none\n${M}`), error: 't.gslb.yaml:8: pools.web.allDown: expected all | first-tier | nodata | pool:<name>, got "none"' },
  { name: 'allDown unknown pool', yaml: pool(`    allDown: pool:sorry\n${M}`), error: 't.gslb.yaml:8: pools.web.allDown: unknown pool "sorry"' },
  { name: 'allDown itself', yaml: pool(`    allDown: pool:web\n${M}`), error: 't.gslb.yaml:8: pools.web.allDown: a pool cannot be its own allDown pool' },
  { name: 'allDown loop', yaml: pool(`    allDown: pool:sorry\n${M}  sorry:\n    allDown: pool:web\n${M}`),
    error: 't.gslb.yaml:8: pools.web.allDown: allDown pools form a loop: web -> sorry -> web' },
  { name: 'allDown loop behind a chain', yaml: pool(`    allDown: pool:b\n${M}  a:\n    allDown: pool:web\n${M}  b:\n    allDown: pool:a\n${M}  c:\n    allDown: pool:b\n${M}`),
    error: 't.gslb.yaml:8: pools.web.allDown: allDown pools form a loop: web -> b -> a -> web' },
  { name: 'member of an unknown site', yaml: pool('    members:\n      - { site: kyoto, address: 192.0.2.1 }\n'),
    error: 't.gslb.yaml:9: pools.web.members[0].site: unknown site "kyoto" (sites: tokyo, osaka)' },
  { name: 'no members', yaml: pool('    names: [www]\n    members: []\n'), error: 't.gslb.yaml:9: pools.web.members: a pool needs at least one member' },
  { name: 'duplicate member', yaml: pool('    members:\n      - { site: tokyo, address: "2001:db8::1" }\n      - { site: osaka, address: "2001:db8::1" }\n      - { site: tokyo, address: "2001:DB8:0::1" }\n'),
    error: 't.gslb.yaml:11: pools.web.members[2]: duplicate member: site tokyo address 2001:db8::1 is also members[0]' },
  { name: 'site name with a dot', yaml: 'sites:\n  a.b:\n    secret: env:S_TOKYO\n', error: 't.gslb.yaml:2: sites["a.b"]: site name must be 1-63 letters, digits, "-" or "_", got "a.b"' },
  // addresses and subnets
  { name: 'IPv4 octet out of range', yaml: pool('    members:\n      - { site: tokyo, address: 192.0.2.256 }\n'),
    error: 't.gslb.yaml:9: pools.web.members[0].address: not an IPv4 or IPv6 address: "192.0.2.256"' },
  { name: 'IPv4 with leading zero', yaml: pool('    members:\n      - { site: tokyo, address: 192.0.2.01 }\n'),
    error: 't.gslb.yaml:9: pools.web.members[0].address: not an IPv4 or IPv6 address: "192.0.2.01"' },
  { name: 'bad IPv6', yaml: pool('    members:\n      - { site: tokyo, address: "2001:db8::g" }\n'),
    error: 't.gslb.yaml:9: pools.web.members[0].address: not an IPv4 or IPv6 address: "2001:db8::g"' },
  { name: 'IPv6 with two ::', yaml: pool('    members:\n      - { site: tokyo, address: "2001::1::2" }\n'),
    error: 't.gslb.yaml:9: pools.web.members[0].address: not an IPv4 or IPv6 address: "2001::1::2"' },
  { name: 'IPv6 with a zone id', yaml: pool('    members:\n      - { site: tokyo, address: "fe80::1%eth0" }\n'),
    error: 't.gslb.yaml:9: pools.web.members[0].address: not an IPv4 or IPv6 address: "fe80::1%eth0"' },
  { name: 'address with a prefix length', yaml: pool('    members:\n      - { site: tokyo, address: 192.0.2.1/32 }\n'),
    error: 't.gslb.yaml:9: pools.web.members[0].address: not an IPv4 or IPv6 address: "192.0.2.1/32"' },
  { name: 'IPv4 prefix too long', yaml: 'sites:\n  s:\n    secret: env:S_TOKYO\n    subnets: [198.51.100.0/33]\n',
    error: 't.gslb.yaml:4: sites.s.subnets[0]: invalid prefix "198.51.100.0/33": length must be an integer 0..32' },
  { name: 'IPv6 prefix too long', yaml: 'sites:\n  s:\n    secret: env:S_TOKYO\n    subnets: ["2001:db8::/129"]\n',
    error: 't.gslb.yaml:4: sites.s.subnets[0]: invalid prefix "2001:db8::/129": length must be an integer 0..128' },
  { name: 'subnet without length', yaml: 'sites:\n  s:\n    secret: env:S_TOKYO\n    subnets: [198.51.100.0]\n',
    error: 't.gslb.yaml:4: sites.s.subnets[0]: expected a subnet as address/length, got "198.51.100.0"' },
  { name: 'subnet with a bad address', yaml: 'sites:\n  s:\n    secret: env:S_TOKYO\n    subnets:\n      - 10.0.0.0/8\n      - 198.51.100/24\n',
    error: 't.gslb.yaml:6: sites.s.subnets[1]: invalid prefix "198.51.100/24": invalid IPv4 address "198.51.100" (expected a.b.c.d)' },
  { name: 'subnet with host bits', yaml: 'sites:\n  s:\n    secret: env:S_TOKYO\n    subnets: [198.51.100.7/24]\n',
    error: 't.gslb.yaml:4: sites.s.subnets[0]: host bits set in \"198.51.100.7/24\" (did you mean 198.51.100.0/24?)' },
  { name: 'subnet length not a number', yaml: 'sites:\n  s:\n    secret: env:S_TOKYO\n    subnets: [198.51.100.0/x]\n',
    error: 't.gslb.yaml:4: sites.s.subnets[0]: invalid prefix "198.51.100.0/x": length must be an integer 0..32' },
  { name: 'subnet listed twice', yaml: 'sites:\n  s:\n    secret: env:S_TOKYO\n    subnets: [198.51.100.0/24, 198.51.100.0/24]\n',
    error: 't.gslb.yaml:4: sites.s.subnets[1]: 198.51.100.0/24 is listed twice (also subnets[0])' },
  // durations and probes
  { name: 'bad duration', yaml: 'sites:\n  s:\n    secret: env:S_TOKYO\n    staleAfter: 3x\n',
    error: 't.gslb.yaml:4: sites.s.staleAfter: expected a duration such as 500ms, 2s or 1m, got "3x"' },
  { name: 'zero duration', yaml: 'sites:\n  s:\n    secret: env:S_TOKYO\n    staleAfter: 0s\n', error: 't.gslb.yaml:4: sites.s.staleAfter: must be above 0, got "0s"' },
  { name: 'duration of the wrong type', yaml: 'sites:\n  s:\n    secret: env:S_TOKYO\n    staleAfter: [3s]\n',
    error: 't.gslb.yaml:4: sites.s.staleAfter: expected a duration such as 500ms, 2s or 1m, got a list' },
  { name: 'probe type', yaml: 'sites:\n  s:\n    probe: { type: icmp, port: 1 }\n', error: 't.gslb.yaml:3: sites.s.probe.type: expected one of tcp | http, got "icmp"' },
  { name: 'probe port', yaml: 'sites:\n  s:\n    probe: { type: tcp, port: 0 }\n', error: 't.gslb.yaml:3: sites.s.probe.port: expected an integer from 1 to 65535, got 0' },
  { name: 'tcp probe with a path', yaml: 'sites:\n  s:\n    probe: { type: tcp, port: 1, path: /x }\n', error: 't.gslb.yaml:3: sites.s.probe.path: only for type http' },
  { name: 'http path without a slash', yaml: 'sites:\n  s:\n    probe: { type: http, port: 1, path: health }\n', error: 't.gslb.yaml:3: sites.s.probe.path: must start with "/", got "health"' },
  { name: 'http expect status out of range', yaml: 'sites:\n  s:\n    probe: { type: http, port: 1, expect: [2000] }\n',
    error: 't.gslb.yaml:3: sites.s.probe.expect[0]: expected an integer from 100 to 599, got 2000' },
  { name: 'probe timeout above interval', yaml: 'sites:\n  s:\n    probe:\n      type: tcp\n      port: 1\n      interval: 1s\n      timeout: 2s\n',
    error: 't.gslb.yaml:7: sites.s.probe.timeout: must not exceed the interval (1000ms)' },
  // secrets
  { name: 'inline secret', yaml: 'sites:\n  s:\n    secret: hunter2\n', error: 't.gslb.yaml:3: sites.s.secret: secrets are never inline: use env:NAME or file:/path' },
  { name: 'secret env not set', yaml: 'sites:\n  s:\n    secret: env:NOPE\n', error: 't.gslb.yaml:3: sites.s.secret: environment variable NOPE is not set' },
  { name: 'secret env empty', yaml: 'sites:\n  s:\n    secret: env:EMPTY\n', env: { EMPTY: '' }, error: 't.gslb.yaml:3: sites.s.secret: environment variable EMPTY is empty' },
  { name: 'secret env without a name', yaml: 'sites:\n  s:\n    secret: "env:"\n',
    error: 't.gslb.yaml:3: sites.s.secret: expected env:NAME with NAME an environment variable name, got "env:"' },
  { name: 'no secret and no probe', yaml: 'sites:\n  s:\n    subnets: []\n',
    error: 't.gslb.yaml:2: sites.s: missing key "secret" (env:NAME or file:/path; only a site with a probe needs none)' },
  // names
  { name: 'name outside the zone', yaml: pool(`    names: [www.example.org.]\n${M}`), error: 't.gslb.yaml:8: pools.web.names[0]: www.example.org. is outside the zone example.test.' },
  { name: 'name that only ends like the zone', yaml: pool(`    names: [wwwexample.test.]\n${M}`),
    error: 't.gslb.yaml:8: pools.web.names[0]: wwwexample.test. is outside the zone example.test.' },
  { name: 'name with an empty label', yaml: pool(`    names: [www..x]\n${M}`), error: 't.gslb.yaml:8: pools.web.names[0]: not a domain name: empty label in "www..x.example.test."' },
  { name: 'wildcard name', yaml: pool(`    names: ["*.www"]\n${M}`), error: 't.gslb.yaml:8: pools.web.names[0]: *.www.example.test.: wildcard names cannot be GSLB names' },
  { name: 'name listed twice in a pool', yaml: pool(`    names: [www, WWW.example.test.]\n${M}`),
    error: 't.gslb.yaml:8: pools.web.names[1]: www.example.test. is listed twice (also names[0])' },
  { name: 'name in two pools', yaml: pool(`    names: [www]\n${M}  api:\n    names: [api, www]\n${M}`),
    error: 't.gslb.yaml:12: pools.api.names[1]: www.example.test. is also answered by pool web' },
];

describe('parseGslbYaml errors', () => {
  it.each(errorCases)('$name', ({ yaml, error, env }) => {
    expect(errorOf(() => parse(yaml, env ?? ENV))).toBe(error);
  });

  it('reports every error of a file, in line order, with the fields set', () => {
    const yaml = pool('    ttl: 10\n    degradedTtl: 30\n    allDown: pool:nope\n    members:\n      - { site: kyoto, address: 192.0.2.1 }\n');
    let err: unknown;
    try { parse(yaml); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(GslbLoadError);
    const errors = (err as GslbLoadError).errors;
    expect(errors.map((e) => [e.file, e.line, e.path])).toEqual([
      [FILE, 9, 'pools.web.degradedTtl'],
      [FILE, 10, 'pools.web.allDown'],
      [FILE, 12, 'pools.web.members[0].site'],
    ]);
    expect(errors[1]!.reason).toBe('unknown pool "nope"');
    expect((err as Error).message.split('\n')).toHaveLength(3);
  });

  it('formats a GslbConfigError with and without a line', () => {
    expect(new GslbConfigError('f.yaml', 'pools.web.ttl', 'bad', 3).message).toBe('f.yaml:3: pools.web.ttl: bad');
    expect(new GslbConfigError('f.yaml', 'pools.web.ttl', 'bad').message).toBe('f.yaml: pools.web.ttl: bad');
    expect(new GslbConfigError('f.yaml', '', 'bad').message).toBe('f.yaml: bad');
  });
});

describe('secrets', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-config-'));
    await writeFile(path.join(dir, 'nl.secret'), 'from-file\n');
    await writeFile(path.join(dir, 'crlf.secret'), 'crlf\r\n');
    await writeFile(path.join(dir, 'raw.secret'), 'two\n\n');
    await writeFile(path.join(dir, 'empty.secret'), '\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const site = (ref: string): string => `sites:\n  s:\n    secret: "${ref}"\n`;

  it('env:NAME reads the environment', () => {
    const s = parse(site('env:MY_SECRET'), { MY_SECRET: 'sekrit' }).sites.get('s')!;
    expect(s.secrets).toEqual([Buffer.from('sekrit')]);
    expect(s.secretRef).toBe('env:MY_SECRET');
  });

  it('file:/path reads the file and drops one trailing newline', () => {
    const read = (name: string): string => parse(site(`file:${path.join(dir, name)}`), {}).sites.get('s')!.secrets[0]!.toString();
    expect(read('nl.secret')).toBe('from-file');
    expect(read('crlf.secret')).toBe('crlf');
    expect(read('raw.secret')).toBe('two\n');
  });

  it('a relative file: path is relative to the YAML file', () => {
    const s = parse(site('file:nl.secret'), {}, path.join(dir, 'example.test.gslb.yaml')).sites.get('s')!;
    expect(s.secrets[0]?.toString()).toBe('from-file');
    expect(s.secretRef).toBe('file:nl.secret');
  });

  it('unreadable or empty secret files are errors', () => {
    const missing = path.join(dir, 'missing.secret');
    expect(errorOf(() => parse(site(`file:${missing}`), {}))).toBe(`t.gslb.yaml:3: sites.s.secret: cannot read secret file ${missing}: ENOENT`);
    const empty = path.join(dir, 'empty.secret');
    expect(errorOf(() => parse(site(`file:${empty}`), {}))).toBe(`t.gslb.yaml:3: sites.s.secret: secret file ${empty} is empty`);
    expect(errorOf(() => parse(site(`file:${dir}`), {}))).toBe(`t.gslb.yaml:3: sites.s.secret: cannot read secret file ${dir}: EISDIR`);
  });

  it('a list of secrets: every key verifies (rotation), each resolved with its own path in errors', () => {
    const s = parse('sites:\n  s:\n    secret: [env:NEW, env:OLD]\n', { NEW: 'n'.repeat(32), OLD: 'o'.repeat(40) }).sites.get('s')!;
    expect(s.secrets.map((k) => k.toString())).toEqual(['n'.repeat(32), 'o'.repeat(40)]);
    expect(s.secretRef).toEqual(['env:NEW', 'env:OLD']);
    expect(errorOf(() => parse('sites:\n  s:\n    secret:\n      - env:NEW\n      - env:GONE\n', { NEW: 'n' })))
      .toBe('t.gslb.yaml:5: sites.s.secret[1]: environment variable GONE is not set');
    expect(errorOf(() => parse('sites:\n  s:\n    secret: []\n', {}))).toContain('t.gslb.yaml:3: sites.s.secret:');
  });

  it('a secret shorter than 32 bytes loads with a warning naming the field', () => {
    const cfg = parse('sites:\n  s:\n    secret: [env:LONG, env:SHORT]\n', { LONG: 'l'.repeat(32), SHORT: 'short' });
    expect(cfg.warnings).toEqual(['t.gslb.yaml:3: sites.s.secret[1]: secret env:SHORT is shorter than 32 bytes (5): use e.g. `openssl rand -hex 32`']);
    expect(parse(site('env:MY_SECRET'), { MY_SECRET: 'x'.repeat(32) }).warnings).toEqual([]);
  });

  it('a probed site may still have a secret', () => {
    const s = parse('sites:\n  s: { secret: env:X, probe: { type: tcp, port: 22 } }\n', { X: 'x' }).sites.get('s')!;
    expect(s.secrets[0]?.toString()).toBe('x');
    expect(s.probe?.type).toBe('tcp');
  });
});

describe('mergeGslbConfigs', () => {
  const A = `sites:
  tokyo:
    secret: env:S_TOKYO
    subnets: [198.51.100.0/24]
pools:
  web:
    names: [www]
    members: [{ site: tokyo, address: 192.0.2.1 }]
`;

  it('merges sites defined identically and indexes names', () => {
    const a = parse(A, ENV, 'a.gslb.yaml', 'a.test.');
    const b = parse(A.replace('web:', 'api:').replace('[www]', '[www, api]'), ENV, 'b.gslb.yaml', 'b.test.');
    const cfg = mergeGslbConfigs([a, b]);
    expect([...cfg.sites.keys()]).toEqual(['tokyo']);
    expect([...cfg.pools.keys()]).toEqual(['web', 'api']);
    expect([...cfg.byName.entries()].map(([n, p]) => [n, p.name])).toEqual([
      ['www.a.test.', 'web'], ['www.b.test.', 'api'], ['api.b.test.', 'api'],
    ]);
    expect(cfg.pools.get('api')!.zone).toBe('b.test.');
  });

  it('nothing to merge is an empty config', () => {
    const cfg = mergeGslbConfigs([]);
    expect([cfg.sites.size, cfg.pools.size, cfg.byName.size]).toEqual([0, 0, 0]);
  });

  it('a site defined differently names both files', () => {
    const a = parse(A, ENV, 'a.gslb.yaml', 'a.test.');
    const b = parse(A.replace('web:', 'api:').replace('198.51.100.0/24', '203.0.113.0/24').replace('S_TOKYO', 'S_OSAKA'), ENV, 'b.gslb.yaml', 'b.test.');
    expect(errorOf(() => mergeGslbConfigs([a, b]))).toBe('b.gslb.yaml:2: sites.tokyo: site tokyo is defined differently in a.gslb.yaml (secret, subnets differ)');
  });

  it('pool names are unique across files', () => {
    const a = parse(A, ENV, 'a.gslb.yaml', 'a.test.');
    const b = parse(A.replace('[www]', '[www2]'), ENV, 'b.gslb.yaml', 'b.test.');
    expect(errorOf(() => mergeGslbConfigs([a, b]))).toBe('b.gslb.yaml:6: pools.web: pool web is also defined in a.gslb.yaml');
  });

  it('a name belongs to one pool across files', () => {
    // a.test. also serves names below sub.a.test. (the child zone check is loadGslbDir's)
    const a = parse(A.replace('[www]', '[www.sub]'), ENV, 'a.gslb.yaml', 'a.test.');
    const b = parse(A.replace('web:', 'api:'), ENV, 'b.gslb.yaml', 'sub.a.test.');
    expect(errorOf(() => mergeGslbConfigs([a, b]))).toBe('b.gslb.yaml:7: pools.api.names[0]: www.sub.a.test. is also answered by pool web (a.gslb.yaml)');
  });

  it('a subnet belongs to one site', () => {
    const two = `${A.slice(0, A.indexOf('pools:'))}  osaka:\n    secret: env:S_OSAKA\n    subnets: [10.0.0.0/8, 198.51.100.0/24]\n`;
    expect(errorOf(() => mergeGslbConfigs([parse(two)]))).toBe('t.gslb.yaml:7: sites.osaka.subnets[1]: 198.51.100.0/24 is also a subnet of site tokyo');
  });
});

describe('loadGslbDir', () => {
  const ZONE_TEXT = `$ORIGIN example.test.
$TTL 300
@        SOA   ns1 hostmaster 1 3600 600 604800 60
@        NS    ns1
ns1      A     192.0.2.53
static   A     192.0.2.10
v6only   AAAA  2001:db8::10
alias    CNAME static
txt      TXT   "a GSLB name may keep other types"
sub      NS    ns1.sub
ns1.sub  A     192.0.2.54
old      DNAME elsewhere.example.
`;
  const SITE = 'sites:\n  tokyo:\n    secret: env:S_TOKYO\n';
  const gslb = (names: string): string => `${SITE}pools:\n  web:\n    names: ${names}\n    members: [{ site: tokyo, address: 192.0.2.1 }]\n`;

  const dirs: string[] = [];
  async function setup(files: Record<string, string>): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-load-'));
    dirs.push(dir);
    await writeFile(path.join(dir, 'example.test.zone'), ZONE_TEXT);
    for (const [n, text] of Object.entries(files)) await writeFile(path.join(dir, n), text);
    return dir;
  }
  async function loadError(dir: string): Promise<string> {
    const zones = await loadZoneDir(dir);
    try {
      await loadGslbDir(dir, zones, ENV);
    } catch (e) {
      expect(e).toBeInstanceOf(GslbLoadError);
      return (e as Error).message;
    }
    return '(no error)';
  }
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('no *.gslb.yaml: an empty config', async () => {
    const dir = await setup({});
    const cfg = await loadGslbDir(dir, await loadZoneDir(dir), ENV);
    expect([cfg.sites.size, cfg.pools.size, cfg.byName.size]).toEqual([0, 0, 0]);
  });

  it('loads pools for a loaded zone', async () => {
    const dir = await setup({ 'example.test.gslb.yaml': gslb('[www, "@", txt, new.sub2]') });
    const cfg = await loadGslbDir(dir, await loadZoneDir(dir), ENV);
    expect([...cfg.byName.keys()]).toEqual(['www.example.test.', 'example.test.', 'txt.example.test.', 'new.sub2.example.test.']);
    expect(cfg.pools.get('web')!.zone).toBe('example.test.');
    expect(cfg.sites.get('tokyo')!.secrets[0]?.toString()).toBe('t');
  });

  it('a GSLB name with A or AAAA records in the zone file', async () => {
    const dir = await setup({ 'example.test.gslb.yaml': gslb('[static, v6only]') });
    const zoneFile = path.join(dir, 'example.test.zone');
    const file = path.join(dir, 'example.test.gslb.yaml');
    expect(await loadError(dir)).toBe([
      `${file}:6: pools.web.names[0]: static.example.test. has A/AAAA records in ${zoneFile}; a GSLB name takes its addresses from the pool`,
      `${file}:6: pools.web.names[1]: v6only.example.test. has A/AAAA records in ${zoneFile}; a GSLB name takes its addresses from the pool`,
    ].join('\n'));
  });

  it('CNAME, delegation and DNAME conflicts', async () => {
    const dir = await setup({ 'example.test.gslb.yaml': gslb('\n      - alias\n      - sub\n      - www.sub\n      - x.old') });
    const zoneFile = path.join(dir, 'example.test.zone');
    const file = path.join(dir, 'example.test.gslb.yaml');
    expect(await loadError(dir)).toBe([
      `${file}:7: pools.web.names[0]: alias.example.test. has a CNAME record in ${zoneFile}; a GSLB name takes its addresses from the pool`,
      `${file}:8: pools.web.names[1]: sub.example.test. is at or below the delegation sub.example.test. in ${zoneFile}; the child zone answers for it`,
      `${file}:9: pools.web.names[2]: www.sub.example.test. is at or below the delegation sub.example.test. in ${zoneFile}; the child zone answers for it`,
      `${file}:10: pools.web.names[3]: x.old.example.test. is below the DNAME at old.example.test. in ${zoneFile}; the DNAME redirects it`,
    ].join('\n'));
  });

  it('a name served by a child zone loaded here', async () => {
    const dir = await setup({
      'example.test.gslb.yaml': gslb('[www.child]'),
      'child.example.test.zone': '$ORIGIN child.example.test.\n$TTL 60\n@ SOA ns hostmaster 1 2 3 4 5\n@ NS ns\nns A 192.0.2.9\n',
    });
    const file = path.join(dir, 'example.test.gslb.yaml');
    expect(await loadError(dir)).toBe(
      `${file}:6: pools.web.names[0]: www.child.example.test. is in zone child.example.test. (${path.join(dir, 'child.example.test.zone')}), not example.test.`);
  });

  it('a file for a zone that is not loaded', async () => {
    const dir = await setup({ 'other.test.gslb.yaml': gslb('[www]') });
    expect(await loadError(dir)).toBe(`${path.join(dir, 'other.test.gslb.yaml')}: zone other.test. is not loaded (pools need the zone file other.test.zone)`);
  });

  it('collects the errors of every file and of the merge', async () => {
    const dir = await setup({
      'example.test.gslb.yaml': gslb('[www]').replace('192.0.2.1', '192.0.2.300'),
      'child.example.test.zone': '$ORIGIN child.example.test.\n$TTL 60\n@ SOA ns hostmaster 1 2 3 4 5\n@ NS ns\nns A 192.0.2.9\n',
      'child.example.test.gslb.yaml': `sites:\n  tokyo:\n    secret: env:S_OSAKA\npools:\n  api:\n    names: [ns]\n    members: [{ site: tokyo, address: 192.0.2.1, weigth: 2 }]\n`,
    });
    const f1 = path.join(dir, 'child.example.test.gslb.yaml');
    const f2 = path.join(dir, 'example.test.gslb.yaml');
    expect(await loadError(dir)).toBe([
      `${f1}:7: pools.api.members[0]: unknown key "weigth" (did you mean "weight"?)`,
      `${f2}:7: pools.web.members[0].address: not an IPv4 or IPv6 address: "192.0.2.300"`,
    ].join('\n'));
  });

  it('merge errors across files', async () => {
    const dir = await setup({
      'example.test.gslb.yaml': gslb('[www]'),
      'child.example.test.zone': '$ORIGIN child.example.test.\n$TTL 60\n@ SOA ns hostmaster 1 2 3 4 5\n@ NS ns\nns A 192.0.2.9\n',
      'child.example.test.gslb.yaml': `sites:\n  tokyo:\n    secret: env:S_OSAKA\npools:\n  api:\n    names: [www]\n    members: [{ site: tokyo, address: 192.0.2.1 }]\n`,
    });
    expect(await loadError(dir)).toBe(
      `${path.join(dir, 'example.test.gslb.yaml')}:2: sites.tokyo: site tokyo is defined differently in ${path.join(dir, 'child.example.test.gslb.yaml')} (secret differ)`);
  });
});

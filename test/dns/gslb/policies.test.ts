import { describe, expect, it } from 'vitest';
import type { PolicyContext, PolicyName, PoolConfig } from '../../../dns/gslb/model.js';
import { policyFor } from '../../../dns/gslb/policies/index.js';
import { createTopologyPolicy } from '../../../dns/gslb/policies/topology.js';
import { prefixContains } from '../../../dns/gslb/prefix.js';
import { parsePrefix } from '../../../shared/ip.js';
import { parseAddress } from '../../../shared/ip.js';
import {
  ctx, health, mulberry32, pool, run, setClient, site, sites, withMax,
  type CtxOpts, type HealthSpec, type MemberLit,
} from '../../helpers/gslb-fixtures.js';

/** One table row: pool + health + client -> expected member indices (in order) and scope. */
interface Case {
  name: string;
  members: readonly MemberLit[];
  max?: number;
  health?: HealthSpec;
  opts?: CtxOpts;
  picked: number[];
  scope: number;
}

const SITES = sites(
  site('a', '10.0.0.0/8', '2001:db8::/32'),
  site('b', '10.1.0.0/16', '2001:db8:b::/48'),
  site('c', '192.0.2.0/24'),
);

const NAMES: readonly PolicyName[] = ['weighted', 'failover', 'topology', 'least-load', 'hashed', 'all'];

function runTable(name: PolicyName, cases: readonly Case[]): void {
  const policy = policyFor(name, SITES);
  for (const c of cases) {
    it(c.name, () => {
      const p = pool(c.members, { maxAnswers: c.max ?? 1, policy: name });
      expect(run(policy, ctx(p, health(p, c.health), c.opts))).toEqual({ picked: c.picked, scope: c.scope });
    });
  }
}

/** A random() that returns the given values in turn. */
function values(...v: number[]): () => number {
  let i = 0;
  return () => v[i++ % v.length]!;
}

/** Sorted copy, for checks that are about the set of members and not their order. */
const sorted = (a: readonly number[]): number[] => [...a].sort((x, y) => x - y);

describe('prefix helpers', () => {
  const good: [string, string, 4 | 6][] = [
    ['192.0.2.0/24', '192.0.2.0/24', 4],
    ['10.128.0.0/9', '10.128.0.0/9', 4],
    ['192.0.2.7', '192.0.2.7/32', 4],
    ['0.0.0.0/0', '0.0.0.0/0', 4],
    ['2001:DB8::/32', '2001:db8::/32', 6],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1/128', 6],
    ['2001:db8:8000::/33', '2001:db8:8000::/33', 6],
    ['::/0', '::/0', 6],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1/128', 6],
  ];
  for (const [text, want, family] of good) {
    it(`parses ${text} as ${want}`, () => {
      const p = parsePrefix(text);
      expect(p.text).toBe(want);
      expect(p.family).toBe(family);
      expect(p.bytes.length).toBe(16);
    });
  }
  const bad = ['192.0.2.0/33', '192.0.2/24', '192.0.2.0/', '192.0.2.0/24/1', '01.2.3.4', '256.0.0.0',
    '2001:db8::/129', '2001:db8:::1', '1::2::3', 'fe80::1%eth0', '12345::', 'x', '', '10.0.0.0/08', '10.0.0.0/-1'];
  for (const text of bad) {
    it(`rejects "${text}" with a message naming it`, () => {
      expect(() => parsePrefix(text)).toThrow(`"${text}"`);
    });
  }
  it('rejects host bits beyond the length and names the network (one rule for every prefix)', () => {
    expect(() => parsePrefix('10.1.2.3/8')).toThrow('host bits set in "10.1.2.3/8" (did you mean 10.0.0.0/8?)');
    expect(() => parsePrefix('2001:db8:ffff::/33')).toThrow('host bits set in "2001:db8:ffff::/33" (did you mean 2001:db8:8000::/33?)');
  });
  const canonical: [string, string][] = [
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
  ];
  for (const [text, want] of canonical) {
    it(`writes ${text} as ${want} (RFC 5952)`, () => {
      expect(parseAddress(text)).toMatchObject({ family: 6, canonical: want });
      expect(parseAddress(text).bytes.length).toBe(16);
    });
  }
  it('parses IPv4 to 4 bytes', () => {
    expect(parseAddress('192.0.2.1')).toEqual({ family: 4, bytes: Uint8Array.from([192, 0, 2, 1]), canonical: '192.0.2.1' });
  });

  const contains: [string, string, boolean][] = [
    ['10.0.0.0/8', '10.1.2.0/24', true],
    ['10.0.0.0/8', '10.0.0.0/8', true],
    ['10.0.0.0/8', '10.0.0.0/7', false], // the subnet is wider than the prefix
    ['10.0.0.0/8', '11.0.0.0/24', false],
    ['10.128.0.0/9', '10.200.0.0/16', true],
    ['10.128.0.0/9', '10.100.0.0/16', false],
    ['0.0.0.0/0', '203.0.113.9', true],
    ['2001:db8::/32', '2001:db8:1200::/56', true],
    ['2001:db8::/32', '2001:db9::/56', false],
    ['2001:db8::/32', '32.1.13.184/32', false], // same leading bytes, other family
  ];
  for (const [p, client, want] of contains) {
    it(`${p} ${want ? 'contains' : 'does not contain'} ${client}`, () => {
      const c = parsePrefix(client);
      expect(prefixContains(parsePrefix(p), c.family, c.bytes, c.length)).toBe(want);
    });
  }
});

// One suite, every policy: the rules all of them share (ARCHITECTURE.md principle 8).
describe.each(NAMES)('policy %s: shared rules', (name) => {
  const policy = policyFor(name, SITES);
  const opts = (o: CtxOpts = {}): CtxOpts => ({ random: mulberry32(7), ...o });
  const mixed: MemberLit[] = [
    ['192.0.2.1', { site: 'a' }], ['2001:db8::1', { site: 'a' }],
    ['192.0.2.2', { site: 'b' }], ['2001:db8::2', { site: 'b' }],
    ['192.0.2.3', { site: 'c' }], ['2001:db8::3', { site: 'c' }],
  ];
  const clients = [undefined, '203.0.113.0/24', '10.1.2.0/24', '2001:db8:b:100::/56', '192.0.2.77'];

  for (const client of clients) {
    for (const family of [4, 6] as const) {
      it(`answers only family ${family} members (client ${client ?? 'none'})`, () => {
        const p = pool(mixed, { maxAnswers: 6 });
        const { picked } = run(policy, ctx(p, health(p), opts({ family, ...(client ? { client } : {}) })));
        expect(picked.length).toBeGreaterThan(0);
        for (const i of picked) expect(p.members[i]!.family).toBe(family);
      });
    }
  }

  it('returns every candidate exactly once when maxAnswers allows', () => {
    const p = pool(mixed, { maxAnswers: 8 });
    expect(sorted(run(policy, ctx(p, health(p), opts({ family: 6 }))).picked)).toEqual([1, 3, 5]);
    expect(sorted(run(policy, ctx(p, health(p), opts({ client: '203.0.113.0/24' }))).picked)).toEqual([0, 2, 4]);
  });

  for (const max of [1, 2, 3, 4]) {
    it(`writes exactly maxAnswers = ${max} distinct members when enough qualify`, () => {
      const p = pool(['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4', '192.0.2.5'], { maxAnswers: max });
      const { picked } = run(policy, ctx(p, health(p), opts({ client: '198.51.100.0/24' })));
      expect(picked).toHaveLength(max);
      expect(new Set(picked).size).toBe(max);
      for (const i of picked) expect(i >= 0 && i < 5).toBe(true);
    });
  }

  it('never writes past the output buffer', () => {
    const p = pool(['192.0.2.1', '192.0.2.2', '192.0.2.3'], { maxAnswers: 3 });
    const out = new Int32Array(3).fill(-1);
    const small = out.subarray(0, 1);
    expect(policy(ctx(p, health(p), opts()), small)).toBe(1);
    expect(Array.from(out.subarray(1))).toEqual([-1, -1]);
  });

  it('skips members that are down', () => {
    const p = pool(['192.0.2.1', '192.0.2.2', '192.0.2.3'], { maxAnswers: 3 });
    for (const client of [undefined, '10.1.2.0/24', '192.0.2.0/24']) {
      const { picked } = run(policy, ctx(p, health(p, { down: [1] }), opts(client ? { client } : {})));
      expect(sorted(picked)).toEqual([0, 2]);
    }
  });

  const nothing: [string, MemberLit[], HealthSpec, CtxOpts][] = [
    ['every member is down', ['192.0.2.1', '192.0.2.2'], { down: [0, 1] }, {}],
    ['no member is of the family', ['192.0.2.1', '192.0.2.2'], {}, { family: 6 }],
    ['the family that has members is all down', ['192.0.2.1', '2001:db8::1'], { down: [1] }, { family: 6, client: '10.1.0.0/24' }],
    ['no member is in onlyTier', [['192.0.2.1', { tier: 1 }], ['192.0.2.2', { tier: 2 }]], {}, { onlyTier: 3 }],
    ['the only-tier members are down', [['192.0.2.1', { tier: 1 }], ['192.0.2.2', { tier: 2 }]], { down: [1] }, { onlyTier: 2 }],
    ['the pool is empty', [], {}, { client: '192.0.2.0/24' }],
  ];
  for (const [what, members, h, o] of nothing) {
    it(`returns 0 when ${what}`, () => {
      const p = pool(members, { maxAnswers: 2 });
      const c = ctx(p, health(p, h), opts(o));
      const out = new Int32Array(4);
      expect(policy(c, out)).toBe(0);
      expect(c.scope).not.toBe(99);
    });
  }

  it('with ignoreHealth answers members that are down', () => {
    const p = pool(['192.0.2.1', '192.0.2.2', '192.0.2.3'], { maxAnswers: 3 });
    const h = health(p, { down: [0, 1, 2] });
    expect(run(policy, ctx(p, h, opts())).picked).toEqual([]);
    expect(sorted(run(policy, ctx(p, h, opts({ ignoreHealth: true }))).picked)).toEqual([0, 1, 2]);
  });

  it('with onlyTier answers that tier only, also when a lower tier is up', () => {
    const p = pool([
      ['192.0.2.1', { tier: 1 }], ['192.0.2.2', { tier: 2 }], ['192.0.2.3', { tier: 1 }], ['192.0.2.4', { tier: 2 }],
    ], { maxAnswers: 4 });
    expect(sorted(run(policy, ctx(p, health(p), opts({ onlyTier: 2 }))).picked)).toEqual([1, 3]);
    expect(sorted(run(policy, ctx(p, health(p, { down: [3] }), opts({ onlyTier: 2 }))).picked)).toEqual([1]);
    // allDown: first-tier is onlyTier plus ignoreHealth
    const allDown = health(p, { down: [0, 1, 2, 3] });
    expect(sorted(run(policy, ctx(p, allDown, opts({ onlyTier: 1, ignoreHealth: true }))).picked)).toEqual([0, 2]);
  });

  it('writes a scope within the client prefix, and 0 without a client', () => {
    const p = pool(mixed, { maxAnswers: 2 });
    for (const client of ['203.0.113.0/24', '10.1.2.0/24', '10.2.0.0/16', '192.0.2.7', '2001:db8:b::/56']) {
      const c = ctx(p, health(p), opts({ client }));
      policy(c, new Int32Array(4));
      expect(c.scope).toBeGreaterThanOrEqual(0);
      expect(c.scope).toBeLessThanOrEqual(c.clientPrefix);
    }
    const c = ctx(p, health(p), opts());
    policy(c, new Int32Array(4));
    expect(c.scope).toBe(0);
  });

  it('leaves the context as it found it, apart from scope', () => {
    const p = pool(mixed, { maxAnswers: 2 });
    const c = ctx(p, health(p), opts({ client: '10.1.2.0/24', sequence: 3 }));
    const before = { ...c, clientAddress: Array.from(c.clientAddress) };
    policy(c, new Int32Array(4));
    expect({ ...c, clientAddress: Array.from(c.clientAddress), scope: 99 }).toEqual(before);
  });
});

describe('policy weighted', () => {
  const weighted = policyFor('weighted');
  runTable('weighted', [
    { name: 'random 0 picks the first member', members: [['192.0.2.1', { weight: 3 }], ['192.0.2.2', { weight: 2 }], ['192.0.2.3', { weight: 1 }]], opts: { random: values(0) }, picked: [0], scope: 0 },
    { name: 'a draw at the boundary goes to the next member', members: [['192.0.2.1', { weight: 3 }], ['192.0.2.2', { weight: 2 }], ['192.0.2.3', { weight: 1 }]], opts: { random: values(0.5) }, picked: [1], scope: 0 },
    { name: 'a draw near 1 picks the last member', members: [['192.0.2.1', { weight: 3 }], ['192.0.2.2', { weight: 2 }], ['192.0.2.3', { weight: 1 }]], opts: { random: values(0.9999) }, picked: [2], scope: 0 },
    { name: 'reported weight % scales the weight', members: ['192.0.2.1', '192.0.2.2'], health: { pct: { 0: 25 } }, opts: { random: values(0.3) }, picked: [1], scope: 0 },
    { name: 'weight 0 is not a candidate', members: [['192.0.2.1', { weight: 0 }], '192.0.2.2'], opts: { random: values(0) }, picked: [1], scope: 0 },
    { name: 'only weight-0 members: nothing', members: [['192.0.2.1', { weight: 0 }]], opts: { random: values(0) }, picked: [], scope: 0 },
    { name: 'ignoreHealth uses member.weight alone', members: [['192.0.2.1', { weight: 1 }], ['192.0.2.2', { weight: 3 }]], health: { down: [0, 1] }, opts: { ignoreHealth: true, random: values(0.3) }, picked: [1], scope: 0 },
    { name: 'maxAnswers 2 draws without replacement', members: [['192.0.2.1', { weight: 3 }], ['192.0.2.2', { weight: 2 }], ['192.0.2.3', { weight: 1 }]], max: 2, opts: { random: values(0) }, picked: [0, 1], scope: 0 },
    { name: 'the second draw is over the remaining weight', members: [['192.0.2.1', { weight: 3 }], ['192.0.2.2', { weight: 2 }], ['192.0.2.3', { weight: 1 }]], max: 2, opts: { random: values(0, 0.7) }, picked: [0, 2], scope: 0 },
    { name: 'AAAA draws over IPv6 members only', members: ['192.0.2.1', '2001:db8::1', '2001:db8::2'], opts: { family: 6, random: values(0.6) }, picked: [2], scope: 0 },
  ]);

  function counts(p: PoolConfig, c: PolicyContext, draws: number): number[] {
    const n = new Array<number>(p.members.length).fill(0);
    const out = new Int32Array(4);
    for (let d = 0; d < draws; d++) {
      const k = weighted(c, out);
      for (let j = 0; j < k; j++) n[out[j]!]!++;
    }
    return n;
  }
  const chiSquare = (observed: number[], expected: number[]): number =>
    observed.reduce((s, o, i) => s + (o - expected[i]!) ** 2 / expected[i]!, 0);

  for (const seed of [1, 42, 20240601]) {
    it(`3:2:1 weights over 6,000 draws fit at p = 0.01 (chi-square, seed ${seed})`, () => {
      const p = pool([['192.0.2.1', { weight: 3 }], ['192.0.2.2', { weight: 2 }], ['192.0.2.3', { weight: 1 }]]);
      const n = counts(p, ctx(p, health(p), { random: mulberry32(seed) }), 6000);
      expect(chiSquare(n, [3000, 2000, 1000])).toBeLessThan(9.210);
    });
  }

  it('reported weight % 50 halves the share (chi-square, 1 d.f., p = 0.01)', () => {
    const p = pool(['192.0.2.1', '192.0.2.2']);
    const n = counts(p, ctx(p, health(p, { pct: { 1: 50 } }), { random: mulberry32(9) }), 6000);
    expect(chiSquare(n, [4000, 2000])).toBeLessThan(6.635);
  });

  it('excludes a member reported at weight % 0, and one not up whatever its weight %', () => {
    const p = pool(['192.0.2.1', '192.0.2.2', '192.0.2.3'], { maxAnswers: 2 });
    const h = health(p, { pct: { 0: 0 }, set: { 2: { up: false, weightPct: 100 } } });
    const n = counts(p, ctx(p, h, { random: mulberry32(3) }), 1000);
    expect(n).toEqual([0, 1000, 0]);
  });

  it('maxAnswers 2 gives 2 distinct members, each present as often as its weight allows', () => {
    const p = pool([['192.0.2.1', { weight: 3 }], ['192.0.2.2', { weight: 2 }], ['192.0.2.3', { weight: 1 }]], { maxAnswers: 2 });
    const c = ctx(p, health(p), { random: mulberry32(5) });
    const out = new Int32Array(4);
    const n = [0, 0, 0];
    for (let d = 0; d < 3000; d++) {
      expect(weighted(c, out)).toBe(2);
      expect(out[0]).not.toBe(out[1]);
      n[out[0]!]!++;
      n[out[1]!]!++;
    }
    // without replacement the heaviest member is in most answers but never twice in one
    expect(n[0]!).toBeGreaterThan(n[1]!);
    expect(n[1]!).toBeGreaterThan(n[2]!);
    expect(n[0]!).toBeLessThan(3000);
  });
});

describe('policy failover', () => {
  const tiers: MemberLit[] = [['192.0.2.1', { tier: 1 }], ['192.0.2.2', { tier: 1 }], ['192.0.2.3', { tier: 2 }], ['192.0.2.4', { tier: 3 }]];
  runTable('failover', [
    { name: 'tier 1 wins', members: tiers, picked: [0], scope: 0 },
    { name: 'tier 1 in config order up to maxAnswers', members: tiers, max: 2, picked: [0, 1], scope: 0 },
    { name: 'never mixes tiers to fill maxAnswers', members: tiers, max: 4, picked: [0, 1], scope: 0 },
    { name: 'one tier-1 member down', members: tiers, max: 4, health: { down: [0] }, picked: [1], scope: 0 },
    { name: 'tier 1 down: tier 2', members: tiers, max: 4, health: { down: [0, 1] }, picked: [2], scope: 0 },
    { name: 'tiers 1 and 2 down: tier 3', members: tiers, max: 4, health: { down: [0, 1, 2] }, picked: [3], scope: 0 },
    { name: 'all down: nothing', members: tiers, max: 4, health: { down: [0, 1, 2, 3] }, picked: [], scope: 0 },
    { name: 'lowest tier number wins wherever it is listed', members: [['192.0.2.1', { tier: 5 }], ['192.0.2.2', { tier: 3 }], ['192.0.2.3', { tier: 3 }]], max: 3, picked: [1, 2], scope: 0 },
    { name: 'tiers are per family', members: [['192.0.2.1', { tier: 1 }], ['2001:db8::1', { tier: 1 }], ['2001:db8::2', { tier: 2 }]], health: { down: [1] }, opts: { family: 6 }, picked: [2], scope: 0 },
    { name: 'onlyTier 2', members: tiers, max: 4, opts: { onlyTier: 2 }, picked: [2], scope: 0 },
    { name: 'ignoreHealth: the first tier', members: tiers, max: 4, health: { down: [0, 1, 2, 3] }, opts: { ignoreHealth: true }, picked: [0, 1], scope: 0 },
    { name: 'scope 0 even with a client', members: tiers, opts: { client: '10.1.2.0/24' }, picked: [0], scope: 0 },
  ]);
});

describe('policy least-load', () => {
  runTable('least-load', [
    { name: 'ascending load', members: ['192.0.2.1', '192.0.2.2', '192.0.2.3'], max: 3, health: { load: { 0: [50, 100], 1: [10, 100], 2: [30, 100] } }, picked: [1, 2, 0], scope: 0 },
    { name: 'the least loaded only', members: ['192.0.2.1', '192.0.2.2', '192.0.2.3'], health: { load: { 0: [50, 100], 1: [10, 100], 2: [30, 100] } }, picked: [1], scope: 0 },
    { name: 'load is per capacity', members: ['192.0.2.1', '192.0.2.2'], max: 2, health: { load: { 0: [100, 1000], 1: [50, 100] } }, picked: [0, 1], scope: 0 },
    { name: 'ties in config order', members: ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4'], max: 4, health: { load: { 0: [20, 100], 1: [10, 50], 2: [5, 100], 3: [2, 10] } }, picked: [2, 0, 1, 3], scope: 0 },
    { name: 'capacity 0 counts as fully loaded', members: ['192.0.2.1', '192.0.2.2', '192.0.2.3'], max: 3, health: { load: { 0: [0, 0], 1: [90, 100], 2: [200, 100] } }, picked: [1, 0, 2], scope: 0 },
    { name: 'the least loaded is down', members: ['192.0.2.1', '192.0.2.2', '192.0.2.3'], max: 3, health: { down: [1], load: { 0: [50, 100], 1: [10, 100], 2: [30, 100] } }, picked: [2, 0], scope: 0 },
    { name: 'ignoreHealth still reads the loads', members: ['192.0.2.1', '192.0.2.2', '192.0.2.3'], max: 3, health: { down: [0, 1, 2], load: { 0: [50, 100], 1: [10, 100], 2: [30, 100] } }, opts: { ignoreHealth: true }, picked: [1, 2, 0], scope: 0 },
    { name: 'maxAnswers 2 keeps the two lightest in order', members: ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4'], max: 2, health: { load: { 0: [4, 10], 1: [3, 10], 2: [2, 10], 3: [1, 10] } }, picked: [3, 2], scope: 0 },
    { name: 'AAAA ignores the loads of IPv4 members', members: ['192.0.2.1', '2001:db8::1', '2001:db8::2'], max: 3, health: { load: { 0: [0, 100], 1: [9, 10], 2: [1, 10] } }, opts: { family: 6 }, picked: [2, 1], scope: 0 },
    { name: 'onlyTier', members: [['192.0.2.1', { tier: 1 }], ['192.0.2.2', { tier: 2 }], ['192.0.2.3', { tier: 2 }]], max: 3, health: { load: { 0: [0, 10], 1: [5, 10], 2: [1, 10] } }, opts: { onlyTier: 2 }, picked: [2, 1], scope: 0 },
  ]);
});

describe('policy all', () => {
  const four: MemberLit[] = ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4'];
  runTable('all', [
    { name: 'sequence 0: config order', members: four, max: 4, opts: { sequence: 0 }, picked: [0, 1, 2, 3], scope: 0 },
    { name: 'sequence 1 rotates by one', members: four, max: 4, opts: { sequence: 1 }, picked: [1, 2, 3, 0], scope: 0 },
    { name: 'sequence wraps modulo the candidates', members: four, max: 4, opts: { sequence: 5 }, picked: [1, 2, 3, 0], scope: 0 },
    { name: 'a large sequence', members: four, max: 4, opts: { sequence: 2 ** 40 + 2 }, picked: [2, 3, 0, 1], scope: 0 },
    { name: 'a negative sequence', members: four, max: 4, opts: { sequence: -1 }, picked: [3, 0, 1, 2], scope: 0 },
    { name: 'maxAnswers cuts the rotated list', members: four, max: 2, opts: { sequence: 3 }, picked: [3, 0], scope: 0 },
    { name: 'rotation counts candidates, not members', members: four, max: 4, health: { down: [1] }, opts: { sequence: 1 }, picked: [2, 3, 0], scope: 0 },
    { name: 'AAAA rotates over IPv6 members', members: ['192.0.2.1', '2001:db8::1', '192.0.2.2', '2001:db8::2'], max: 4, opts: { family: 6, sequence: 1 }, picked: [3, 1], scope: 0 },
  ]);

  it('spreads first answers evenly over consecutive queries', () => {
    const all = policyFor('all');
    const p = pool(['192.0.2.1', '192.0.2.2', '192.0.2.3'], { maxAnswers: 3 });
    const c = ctx(p, health(p));
    const firsts: number[] = [];
    for (let s = 0; s < 6; s++) {
      c.sequence = s;
      firsts.push(run(all, c).picked[0]!);
    }
    expect(firsts).toEqual([0, 1, 2, 0, 1, 2]);
  });
});

describe('policy topology', () => {
  const topo = sites(
    site('a', '10.0.0.0/8', '2001:db8::/32'),
    site('b', '10.1.0.0/16', '2001:db8:b::/48'),
    site('c', '192.0.2.0/24', '198.51.100.0/24'),
    site('d', '203.0.113.0/25'),
  );
  const members: MemberLit[] = [
    ['100.64.0.1', { site: 'a', tier: 2 }],
    ['100.64.0.2', { site: 'b', tier: 1 }],
    ['100.64.0.3', { site: 'b', tier: 1 }],
    ['100.64.0.4', { site: 'c', tier: 3 }],
    ['2001:db8:a::1', { site: 'a', tier: 2 }],
    ['2001:db8:c::1', { site: 'c', tier: 1 }],
    ['2001:db8:b::1', { site: 'b', tier: 2 }],
  ];
  const policy = createTopologyPolicy(topo);
  const cases: Case[] = [
    { name: 'a /24 inside a /16 goes to the /16, not the /8 (longest prefix wins)', members, opts: { client: '10.1.2.0/24' }, picked: [1], scope: 16 },
    { name: 'the matched site answers in config order up to maxAnswers', members, max: 3, opts: { client: '10.1.2.0/24' }, picked: [1, 2], scope: 16 },
    { name: 'a client address of full length', members, opts: { client: '10.1.2.3' }, picked: [1], scope: 16 },
    { name: 'outside the nested /16 the /8 matches, but scope is the client prefix', members, opts: { client: '10.2.0.0/24' }, picked: [0], scope: 24 },
    { name: 'nested case, with a /20 client', members, opts: { client: '10.7.16.0/20' }, picked: [0], scope: 20 },
    { name: 'a subnet with nothing nested in it scopes to its own length', members, opts: { client: '192.0.2.128/25' }, picked: [3], scope: 24 },
    { name: 'a site\'s second subnet', members, opts: { client: '198.51.100.0/24' }, picked: [3], scope: 24 },
    { name: 'a client wider than every site subnet matches none', members, opts: { client: '10.0.0.0/7' }, picked: [1], scope: 7 },
    { name: 'no match: failover over all candidates, scope = client prefix', members, max: 3, opts: { client: '203.0.113.128/25' }, picked: [1, 2], scope: 25 },
    { name: 'a matched site without members (d): failover, scope = matched length', members, opts: { client: '203.0.113.0/26' }, picked: [1], scope: 25 },
    { name: 'matched site down: failover over the others', members, health: { down: [3] }, opts: { client: '192.0.2.0/24' }, picked: [1], scope: 24 },
    { name: 'matched site down and tier 1 down: next tier', members, max: 2, health: { down: [1, 2] }, opts: { client: '10.1.0.0/24' }, picked: [0], scope: 16 },
    { name: 'no client: failover, scope 0', members, max: 2, picked: [1, 2], scope: 0 },
    { name: 'AAAA: the matched site\'s IPv6 members', members, opts: { family: 6, client: '192.0.2.0/24' }, picked: [5], scope: 24 },
    { name: 'AAAA: the IPv6 members of the site matched by an IPv4 client', members, opts: { family: 6, client: '10.1.0.0/24' }, picked: [6], scope: 16 },
    { name: 'AAAA: matched site without members falls back over IPv6', members, opts: { family: 6, client: '203.0.113.0/26' }, picked: [5], scope: 25 },
    { name: 'a matched site with IPv6 members only falls back for A', members: [['192.0.2.1', { site: 'a' }], ['2001:db8:c::1', { site: 'c' }]], opts: { client: '192.0.2.0/24' }, picked: [0], scope: 24 },
    { name: 'IPv6 client in the /32 outside the nested /48: scope = client prefix', members, opts: { family: 6, client: '2001:db8:7::/56' }, picked: [4], scope: 56 },
    { name: 'IPv6 longest prefix: the /48 inside the /32', members, opts: { family: 6, client: '2001:db8:b:100::/56' }, picked: [6], scope: 48 },
    { name: 'IPv6 client wins over IPv4 subnets with the same leading bytes', members, opts: { client: 'a00::/56' }, picked: [1], scope: 56 },
    { name: 'onlyTier restricts the matched site', members, max: 2, opts: { client: '10.2.0.0/24', onlyTier: 1 }, picked: [1, 2], scope: 24 },
    { name: 'ignoreHealth: matched site although down', members, health: { down: [0, 1, 2, 3, 4, 5, 6] }, opts: { client: '192.0.2.0/24', ignoreHealth: true }, picked: [3], scope: 24 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const p = pool(c.members, { maxAnswers: c.max ?? 1, policy: 'topology' });
      expect(run(policy, ctx(p, health(p, c.health), c.opts))).toEqual({ picked: c.picked, scope: c.scope });
    });
  }

  it('a /48 with nothing nested in it scopes to 48 even inside a /32 that has it nested', () => {
    const p = pool(members, { maxAnswers: 1 });
    expect(run(policy, ctx(p, health(p), { family: 6, client: '2001:db8:b:1::/64' }))).toEqual({ picked: [6], scope: 48 });
  });

  it('a more specific subnet of the same site does not make the wider one unsafe', () => {
    const own = createTopologyPolicy(sites(site('a', '10.0.0.0/8', '10.1.0.0/16'), site('b', '172.16.0.0/12')));
    const p = pool([['192.0.2.1', { site: 'b' }], ['192.0.2.2', { site: 'a' }]]);
    expect(run(own, ctx(p, health(p), { client: '10.2.0.0/24' }))).toEqual({ picked: [1], scope: 8 });
  });

  it('is one policy per sites map, and policyFor needs the sites', () => {
    expect(createTopologyPolicy(topo)).toBe(policy);
    expect(policyFor('topology', topo)).toBe(policy);
    expect(() => policyFor('topology')).toThrow(/sites/);
  });
});

describe('policy hashed', () => {
  const hashed = policyFor('hashed');
  const ten = Array.from({ length: 10 }, (_, i) => `192.0.2.${i + 1}`);
  const tenV6 = Array.from({ length: 10 }, (_, i) => `2001:db8::${(i + 1).toString(16)}`);
  const subnetsV4 = Array.from({ length: 10_000 }, (_, i) => `10.${i >> 8}.${i & 0xff}.0/24`);
  const subnetsV6 = Array.from({ length: 10_000 }, (_, i) => `2001:db8:${(i >> 8).toString(16)}:${(i & 0xff).toString(16)}00::/56`);

  /** The first answer for each subnet, reusing one context as the server does. */
  function assign(p: PoolConfig, spec: HealthSpec, subnets: readonly string[], family: 4 | 6 = 4): number[] {
    const c = ctx(p, health(p, spec), { family });
    const out = new Int32Array(4);
    return subnets.map((s) => {
      setClient(c, s);
      if (hashed(c, out) !== 1) throw new Error(`no single answer for ${s}`);
      return out[0]!;
    });
  }

  const scopes: [string, string | undefined, number][] = [
    ['IPv4 /24', '10.1.2.0/24', 24],
    ['IPv4 /32 is cut to /24', '10.1.2.3', 24],
    ['IPv4 /16 stays /16', '10.1.0.0/16', 16],
    ['IPv4 /0', '0.0.0.0/0', 0],
    ['IPv6 /64 is cut to /56', '2001:db8:1:2::/64', 56],
    ['IPv6 /48 stays /48', '2001:db8:1::/48', 48],
    ['IPv6 /128 is cut to /56', '2001:db8::1', 56],
    ['no client', undefined, 0],
  ];
  for (const [what, client, scope] of scopes) {
    it(`scope: ${what} -> ${scope}`, () => {
      const p = pool(ten);
      expect(run(hashed, ctx(p, health(p), client ? { client } : {})).scope).toBe(scope);
    });
  }

  runTable('hashed', [
    { name: 'the only candidate', members: ten, health: { down: [0, 1, 2, 3, 4, 5, 6, 8, 9] }, opts: { client: '10.9.9.0/24' }, picked: [7], scope: 24 },
    { name: 'weight 0 is not a candidate', members: [['192.0.2.1', { weight: 0 }], '192.0.2.2'], opts: { client: '10.0.0.0/24' }, picked: [1], scope: 24 },
    { name: 'reported weight % 0 drains a member that is up', members: ['192.0.2.1', '192.0.2.2'], health: { pct: { 0: 0, 1: 0 } }, opts: { client: '10.0.0.0/24' }, picked: [], scope: 24 },
    { name: 'AAAA hashes over IPv6 members only', members: ['192.0.2.1', '2001:db8::1'], opts: { family: 6, client: '10.0.0.0/24' }, picked: [1], scope: 24 },
  ]);

  it('hosts of one /24 and the /24 itself map to the same member', () => {
    const p = pool(ten);
    const c = ctx(p, health(p));
    setClient(c, '10.20.30.0/24');
    const want = run(hashed, c).picked;
    for (const host of ['10.20.30.1', '10.20.30.77', '10.20.30.254', '10.20.30.128/25']) {
      setClient(c, host);
      expect(run(hashed, c).picked).toEqual(want);
    }
  });

  it('without a client answers one member, whatever stale client fields the reused context holds', () => {
    const p = pool(ten);
    const c = ctx(p, health(p));
    const want = run(hashed, c).picked;
    expect(want).toHaveLength(1);
    c.clientFamily = 6;
    c.clientPrefix = 56;
    c.clientAddress.fill(0xab);
    expect(run(hashed, c)).toEqual({ picked: want, scope: 0 });
  });

  it('is stable across calls and independent of query order', () => {
    const p = pool(ten);
    const a = assign(p, {}, subnetsV4.slice(0, 500));
    const b = assign(p, {}, subnetsV4.slice(0, 500).reverse()).reverse();
    expect(b).toEqual(a);
    expect(assign(p, {}, subnetsV4.slice(0, 500))).toEqual(a);
  });

  for (const [family, members, subnets] of [[4, ten, subnetsV4], [6, tenV6, subnetsV6]] as const) {
    it(`IPv${family}: spreads 10,000 subnets evenly over 10 members`, () => {
      const got = assign(pool(members), {}, subnets, family);
      const n = new Array<number>(10).fill(0);
      for (const m of got) n[m]!++;
      // expected 1,000 each (sd ~30): only a broken hash lands outside this
      for (const k of n) expect(k).toBeGreaterThan(800);
      for (const k of n) expect(k).toBeLessThan(1200);
    });

    it(`IPv${family}: marking 1 of 10 down moves at most 15 % of 10,000 subnets, only those it held`, () => {
      const p = pool(members);
      const before = assign(p, {}, subnets, family);
      for (const gone of [3, 0, 9]) {
        const after = assign(p, { down: [gone] }, subnets, family);
        const moved = subnets.filter((_, i) => after[i] !== before[i]);
        const wrongly = subnets.filter((_, i) => after[i] !== before[i] && before[i] !== gone);
        expect(wrongly).toEqual([]);
        expect(after.includes(gone)).toBe(false);
        expect(moved.length).toBe(before.filter((m) => m === gone).length);
        expect(moved.length).toBeLessThanOrEqual(1500);
      }
    });
  }

  it('hashes member addresses, not positions: reordering the config moves no subnet', () => {
    const forward = assign(pool(ten), {}, subnetsV4.slice(0, 2000)).map((i) => ten[i]);
    const reversed = [...ten].reverse();
    expect(assign(pool(reversed), {}, subnetsV4.slice(0, 2000)).map((i) => reversed[i])).toEqual(forward);
  });

  it('bringing the member back returns exactly its subnets', () => {
    const p = pool(ten);
    const before = assign(p, {}, subnetsV4.slice(0, 2000));
    assign(p, { down: [4] }, subnetsV4.slice(0, 2000));
    expect(assign(p, {}, subnetsV4.slice(0, 2000))).toEqual(before);
  });

  it('weights 2:1 give about 2/3 of the subnets to the heavier member', () => {
    const got = assign(pool([['192.0.2.1', { weight: 2 }], ['192.0.2.2', { weight: 1 }]]), {}, subnetsV4);
    const share = got.filter((m) => m === 0).length / got.length;
    expect(share).toBeGreaterThan(0.64);
    expect(share).toBeLessThan(0.69);
  });

  it('a reported weight % above 0 moves no client (stickiness uses the configured weight)', () => {
    const p = pool(ten);
    expect(assign(p, { pct: { 2: 30, 5: 60 } }, subnetsV4.slice(0, 2000))).toEqual(assign(p, {}, subnetsV4.slice(0, 2000)));
  });

  it('maxAnswers 2: two distinct members, the first being the single answer', () => {
    const p1 = pool(ten);
    const p2 = withMax(p1, 2);
    const c1 = ctx(p1, health(p1));
    const c2 = ctx(p2, health(p2));
    for (const s of subnetsV4.slice(0, 300)) {
      setClient(c1, s);
      setClient(c2, s);
      const [first, second] = run(hashed, c2).picked;
      expect(second).not.toBe(first);
      expect(run(hashed, c1).picked).toEqual([first]);
    }
  });

  it('the second answer takes over when the first goes down', () => {
    const p = pool(ten, { maxAnswers: 2 });
    const c = ctx(p, health(p), { client: '10.77.0.0/24' });
    const [first, second] = run(hashed, c).picked;
    const down = ctx(withMax(p, 1), health(p, { down: [first!] }), { client: '10.77.0.0/24' });
    expect(run(hashed, down).picked).toEqual([second]);
  });
});

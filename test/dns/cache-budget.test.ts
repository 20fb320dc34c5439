import { beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../dns/server/engine.js';
import type { EngineOptions } from '../../dns/server/engine.js';
import { typeNumber } from '../../dns/wire/types.js';
import { loadZoneDir } from '../../dns/zone/load.js';
import type { ZoneSet } from '../../dns/zone/zone.js';
import { opt, query } from '../helpers/packet.js';
import { FIXTURE_ZONES } from '../helpers/server.js';

let zones: ZoneSet;
beforeAll(async () => { zones = await loadZoneDir(FIXTURE_ZONES); });

const out = Buffer.alloc(65535);
function ask(e: Engine, name: string, type: string | number): number {
  const q = query({ id: 7, name, type: typeof type === 'number' ? type : typeNumber(type)!, additional: [opt()] });
  e.handle(q, 0, q.length, out, 0, out.length, false);
  return out[3]! & 0x0f;
}

/** Names that exist, with the types their clients ask: answers, NODATA of a common type, a referral at the cut. */
const EXISTING: [string, string][] = [
  ['www.example.test', 'A'], ['www.example.test', 'AAAA'], ['ns1.example.test', 'A'], ['mail.example.test', 'A'],
  ['example.test', 'MX'], ['example.test', 'NS'], ['mail.example.test', 'AAAA'], ['cname.example.test', 'A'],
  ['deleg.example.test', 'A'], ['sub.wild.example.test', 'A'],
];

let seq = 0;
/** The floods: each call names a new question of that kind. */
const FLOODS: Record<string, () => [string, string | number]> = {
  nxdomain: () => [`r${(seq++).toString(36)}x.example.test`, 'A'],
  'nodata (wildcard, no such type)': () => [`r${(seq++).toString(36)}x.wild.example.test`, 'MX'],
  'nodata (random type at a name that exists)': () => ['www.example.test', 1000 + (seq++ % 60_000)],
  'wildcard answers': () => [`r${(seq++).toString(36)}x.wild.example.test`, 'A'],
  'referrals below a cut': () => [`r${(seq++).toString(36)}x.deleg.example.test`, 'A'],
  'refused (not our zone)': () => [`r${(seq++).toString(36)}x.example.org`, 'A'],
};

const SMALL: EngineOptions = { udpCap: 1232, cacheEntries: 1000, cacheNegativeEntries: 50, cacheNegativeBytes: 1 << 20 };

function warm(e: Engine): void {
  for (const [n, t] of EXISTING) ask(e, n, t);
}

describe('reply cache budgets', () => {
  for (const [kind, next] of Object.entries(FLOODS)) {
    it(`a ${kind} flood does not evict the names that exist`, () => {
      const e = new Engine(zones, SMALL);
      warm(e);
      expect(e.cacheSize().positive).toBe(EXISTING.length);
      // 20 times the negative budget, every name asked twice so that the doorkeeper admits it
      for (let i = 0; i < 20 * 50; i++) {
        const [n, t] = next();
        ask(e, n, t);
        ask(e, n, t);
      }
      const size = e.cacheSize();
      expect(size.positive).toBe(EXISTING.length);
      expect(size.negative).toBeGreaterThan(0);
      expect(size.negative).toBeLessThanOrEqual(64); // 50 slots, rounded up to a power of two
      const { hits, misses } = e.stats.cache.positive;
      const fast = e.stats.fast;
      warm(e);
      expect(e.stats.cache.positive.hits - hits).toBe(EXISTING.length);
      expect(e.stats.cache.positive.misses).toBe(misses);
      expect(e.stats.fast - fast).toBe(EXISTING.length);
    });
  }

  it('with one budget (the old behaviour) the same flood does evict them: the test above can fail', () => {
    const e = new Engine(zones, { ...SMALL, cacheEntries: 50, cacheBudgets: 'single' });
    warm(e);
    for (let i = 0; i < 200; i++) ask(e, ...FLOODS['nxdomain']!());
    const fast = e.stats.fast;
    warm(e);
    expect(e.stats.fast).toBe(fast);
  });

  it('admits a negative reply on its second query and serves it fast from the third', () => {
    const e = new Engine(zones, SMALL);
    expect(ask(e, 'typo.example.test', 'A')).toBe(3);
    expect(e.cacheSize().negative).toBe(0);
    expect(ask(e, 'TYPO.example.test', 'A')).toBe(3);
    expect(e.cacheSize().negative).toBe(1);
    const fast = e.stats.fast;
    expect(ask(e, 'typo.example.test', 'A')).toBe(3);
    expect(e.stats.fast).toBe(fast + 1);
    expect(e.stats.cache.negative).toEqual({ hits: 1, misses: 2 });
  });

  it('keeps nothing of names asked once', () => {
    const e = new Engine(zones, SMALL);
    for (let i = 0; i < 2000; i++) ask(e, ...FLOODS['nxdomain']!());
    expect(e.cacheSize()).toEqual({ positive: 0, negative: 0, negativeBytes: 0 });
    expect(e.stats.cache.negative.misses).toBe(2000);
  });

  it('bounds the negative budget by bytes', () => {
    const e = new Engine(zones, { ...SMALL, cacheNegativeBytes: 4096 });
    for (let i = 0; i < 200; i++) {
      const [n, t] = FLOODS['wildcard answers']!();
      ask(e, n, t);
      ask(e, n, t);
    }
    const size = e.cacheSize();
    expect(size.negative).toBeGreaterThan(0);
    expect(size.negativeBytes).toBeLessThanOrEqual(4096);
  });

  it('serves negative replies byte for byte as the general path, also after the ring wrapped many times', () => {
    const ring = new Engine(zones, { ...SMALL, cacheNegativeEntries: 16, cacheNegativeBytes: 1500 });
    const general = new Engine(zones, { ...SMALL, cacheEntries: 0 });
    const a = Buffer.alloc(4096);
    const b = Buffer.alloc(4096);
    const kinds = Object.values(FLOODS);
    for (let i = 0; i < 600; i++) {
      const [n, t] = kinds[i % kinds.length]!();
      // mixed case as resolvers send it: the reply echoes it, the entry is found whatever the case
      const q = query({ id: i, name: i % 2 ? n.toUpperCase() : n, type: typeof t === 'number' ? t : typeNumber(t)!, additional: [opt()] });
      const n1 = general.handle(q, 0, q.length, a, 0, a.length, false);
      for (let k = 0; k < 3; k++) {
        const fast = ring.stats.fast;
        const n2 = ring.handle(q, 0, q.length, b, 0, b.length, false);
        expect(b.subarray(0, n2).toString('hex')).toBe(a.subarray(0, n1).toString('hex'));
        if (k === 2) expect(ring.stats.fast).toBe(fast + 1);
      }
    }
    const size = ring.cacheSize();
    expect(size.negative).toBeGreaterThan(0);
    expect(size.negativeBytes).toBeLessThanOrEqual(1500);
  });

  it('cacheNegativeEntries 0 keeps no negative reply and still answers', () => {
    const e = new Engine(zones, { ...SMALL, cacheNegativeEntries: 0 });
    for (let i = 0; i < 3; i++) expect(ask(e, 'typo.example.test', 'A')).toBe(3);
    expect(e.cacheSize().negative).toBe(0);
    expect(e.stats.cache.negative.misses).toBe(3);
  });
});

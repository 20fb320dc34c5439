/**
 * The forwarder's schedulers: one shared suite every kind runs (weight 0, empty sets, only listed
 * backends), then each algorithm's own guarantees: rr/wrr sequences, sh stickiness and minimal
 * disruption, Maglev table size, weighted shares and remap fractions (printed, with plain modulo
 * hashing for comparison), lc/wlc picking the least loaded.
 */
import { describe, expect, it } from 'vitest';
import {
  buildMaglevTable, createScheduler, hashFlow, isPrime, maglevTableSize, SCHEDULER_KINDS,
} from '../../../slb-agent/forwarder/schedulers/index.js';
import type { SchedulerKind } from '../../../slb-agent/forwarder/schedulers/index.js';
import type { Backend, Flow, Scheduler } from '../../../slb-agent/forwarder/model.js';

function backend(name: string, weight = 1): Backend {
  const last = name.charCodeAt(name.length - 1) % 200;
  return { id: `10.0.0.${last}:80#${name}`, address: `10.0.0.${last}`, port: 80, weight };
}
function backends(n: number, weight = 1): Backend[] {
  return Array.from({ length: n }, (_, i) => backend(`rs${i}`, weight));
}
const flow = (srcAddress: string, srcPort = 40000, protocol: 'tcp' | 'udp' = 'tcp'): Flow => ({ srcAddress, srcPort, protocol });

/** Deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function randomFlows(count: number, seed: number): Flow[] {
  const r = prng(seed);
  return Array.from({ length: count }, () => {
    const ip = Math.floor(r() * 0xffffffff);
    return flow(`${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`, 1024 + Math.floor(r() * 64511), r() < 0.8 ? 'tcp' : 'udp');
  });
}
const FLOWS = randomFlows(100_000, 42);

function assign(s: Scheduler, flows: readonly Flow[]): (string | undefined)[] {
  return flows.map((f) => s.pick(f)?.id);
}
function movedFraction(before: readonly (string | undefined)[], after: readonly (string | undefined)[]): number {
  let moved = 0;
  for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) moved++;
  return moved / before.length;
}
function counts(ids: readonly (string | undefined)[]): Map<string | undefined, number> {
  const m = new Map<string | undefined, number>();
  for (const id of ids) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
}
/** Plain modulo hashing over the list, the baseline consistent hashing is compared against. */
function modulo(list: readonly Backend[]): Scheduler {
  return { pick: (f) => list[hashFlow(f, true, true) % list.length] };
}
function smallestPrimeAtLeast(n: number): number {
  while (!isPrime(n)) n++;
  return n;
}
const zeroConnections = { connections: () => 0 };

describe('every scheduler kind', () => {
  describe.each(SCHEDULER_KINDS.map((k) => [k]))('%s', (kind: SchedulerKind) => {
    it('returns undefined for no backends and for only weight-0 backends', () => {
      expect(createScheduler(kind, [], zeroConnections).pick(flow('192.0.2.1'))).toBeUndefined();
      expect(createScheduler(kind, [backend('a', 0), backend('b', 0)], zeroConnections).pick(flow('192.0.2.1'))).toBeUndefined();
    });

    it('never gives a weight-0 backend a new flow, and picks only listed backends', () => {
      const list = [backend('a', 0), backend('b', 2), backend('c', 0), backend('d', 1)];
      const s = createScheduler(kind, list, zeroConnections);
      const seen = counts(assign(s, FLOWS.slice(0, 5000)));
      expect(seen.has(list[0]!.id)).toBe(false);
      expect(seen.has(list[2]!.id)).toBe(false);
      expect(seen.has(undefined)).toBe(false);
      for (const id of seen.keys()) expect([list[1]!.id, list[3]!.id]).toContain(id);
    });

    it('with a single backend always picks it', () => {
      const only = backend('solo', 3);
      const s = createScheduler(kind, [only], zeroConnections);
      for (const f of FLOWS.slice(0, 100)) expect(s.pick(f)).toBe(only);
    });
  });
});

describe('rr', () => {
  it('cycles in list order and ignores weights beyond > 0', () => {
    const [a, b, c] = [backend('a', 3), backend('b', 0), backend('c', 1)];
    const s = createScheduler('rr', [a, b, c]);
    expect(Array.from({ length: 6 }, () => s.pick(flow('x'))?.id)).toEqual([a.id, c.id, a.id, c.id, a.id, c.id]);
  });
});

describe('wrr', () => {
  it('gives 3:2:1 exactly 300/200/100 over 600 picks, interleaved', () => {
    const list = [backend('a', 3), backend('b', 2), backend('c', 1)];
    const s = createScheduler('wrr', list);
    const seq = Array.from({ length: 600 }, () => s.pick(flow('x'))!.id);
    const n = counts(seq);
    expect([n.get(list[0]!.id), n.get(list[1]!.id), n.get(list[2]!.id)]).toEqual([300, 200, 100]);
    // nginx's smooth sequence for 3:2:1 is a b a c b a: never three a in a row
    expect(seq.slice(0, 6)).toEqual([list[0]!.id, list[1]!.id, list[0]!.id, list[2]!.id, list[1]!.id, list[0]!.id]);
    for (let i = 2; i < seq.length; i++) expect(seq[i] === seq[i - 1] && seq[i] === seq[i - 2]).toBe(false);
  });

  it('with 1:1:1 never picks a backend twice in a row', () => {
    const s = createScheduler('wrr', backends(3));
    let prev: string | undefined;
    for (let i = 0; i < 300; i++) {
      const id = s.pick(flow('x'))!.id;
      expect(id).not.toBe(prev);
      prev = id;
    }
  });
});

describe('sh', () => {
  const list = backends(5);

  it('sends the same source to the same backend; ports matter only with shPorts', () => {
    const l3 = createScheduler('sh', list);
    const l4 = createScheduler('sh', list, { shPorts: true });
    const srcs = FLOWS.slice(0, 200).map((f) => f.srcAddress);
    let l4Differs = 0;
    for (const src of srcs) {
      const first = l3.pick(flow(src, 1111))!;
      expect(l3.pick(flow(src, 2222, 'udp'))).toBe(first);
      expect(createScheduler('sh', list).pick(flow(src, 3333))).toBe(first); // rebuilt: same answer
      expect(l4.pick(flow(src, 1111))).toBe(l4.pick(flow(src, 1111, 'udp')));
      if (l4.pick(flow(src, 1111)) !== l4.pick(flow(src, 2222))) l4Differs++;
    }
    expect(l4Differs).toBeGreaterThan(100); // ~4/5 of 200 with 5 backends
  });

  it('spreads by weight and moves only the removed backend\'s flows', () => {
    const weighted = [backend('a', 1), backend('b', 2), backend('c', 3), backend('d', 4)];
    const before = assign(createScheduler('sh', weighted, { shPorts: true }), FLOWS);
    const n = counts(before);
    weighted.forEach((b) => expect(Math.abs(n.get(b.id)! / FLOWS.length - b.weight / 10)).toBeLessThan(0.01));
    const without = weighted.filter((b) => b.id !== weighted[2]!.id);
    const after = assign(createScheduler('sh', without, { shPorts: true }), FLOWS);
    let movedOthers = 0;
    for (let i = 0; i < FLOWS.length; i++) if (before[i] !== weighted[2]!.id && after[i] !== before[i]) movedOthers++;
    expect(movedOthers).toBe(0);
    expect(movedFraction(before, after)).toBeCloseTo(0.3, 1);
  });
});

describe('maglev', () => {
  it('uses a prime table of at least 100 x N slots (minimum 65537), or the given size', () => {
    for (const n of [0, 1, 2, 5, 10, 20, 33, 100, 655, 656, 1000]) {
      const m = maglevTableSize(n);
      expect(isPrime(m)).toBe(true);
      expect(m).toBeGreaterThanOrEqual(Math.max(65537, 100 * n));
      for (let k = Math.max(65537, 100 * n); k < m; k++) expect(isPrime(k)).toBe(false);
    }
    expect(maglevTableSize(5)).toBe(65537);
    expect(maglevTableSize(1000)).toBe(100003);
    expect(buildMaglevTable(backends(5), 503).size).toBe(503);
    expect(createScheduler('maglev', backends(3), { tableSize: 101 }).pick(flow('192.0.2.1'))).toBeDefined();
    expect(() => createScheduler('maglev', backends(3), { tableSize: 1000 })).toThrow(/prime/);
  });

  it('fills every slot and gives each backend its weight share within ±10%', () => {
    const cases = [backends(5), backends(20), [backend('a', 1), backend('b', 2), backend('c', 3), backend('d', 4)],
      [backend('big', 10), ...backends(6, 1)], [backend('x', 0.5), backend('y', 1.5), backend('z', 1)]];
    for (const [list, size] of cases.flatMap((l) => [[l, maglevTableSize(l.length)], [l, smallestPrimeAtLeast(100 * l.length)]] as const)) {
      const t = buildMaglevTable(list, size);
      const slots = new Map<number, number>();
      for (const i of t.table) slots.set(i, (slots.get(i) ?? 0) + 1);
      expect(slots.has(-1)).toBe(false);
      const total = list.reduce((s, b) => s + b.weight, 0);
      t.backends.forEach((b, i) => {
        const expected = (b.weight / total) * t.size;
        expect(Math.abs(slots.get(i)! - expected) / expected, `${b.id} of ${list.length} in ${size}`).toBeLessThanOrEqual(0.1);
      });
    }
  });

  it('does not depend on list order, and weight 0 is the same table as leaving the backend out', () => {
    const list = backends(10);
    const m = maglevTableSize(list.length);
    expect(buildMaglevTable([...list].reverse(), m).table).toEqual(buildMaglevTable(list, m).table);
    const zeroed = list.map((b, i) => (i === 3 ? { ...b, weight: 0 } : b));
    const a = buildMaglevTable(zeroed, m);
    const b = buildMaglevTable(list.filter((_, i) => i !== 3), m);
    expect(a.table).toEqual(b.table);
    expect(a.backends).toEqual(b.backends);
  });

  it.each([5, 10, 20])('removing 1 of %i backends moves at most 1.2/N of 100,000 flows (modulo: ~(N-1)/N)', (n) => {
    const list = backends(n);
    const before = assign(createScheduler('maglev', list), FLOWS);
    const modBefore = assign(modulo(list), FLOWS);
    let worst = 0;
    let worstOthers = 0;
    let worstMod = 0;
    for (let r = 0; r < n; r++) {
      // the real server stays configured with weight 0 (down or drained), so M stays the same
      const down = list.map((b, i) => (i === r ? { ...b, weight: 0 } : b));
      const after = assign(createScheduler('maglev', down), FLOWS);
      const moved = movedFraction(before, after);
      let others = 0;
      for (let i = 0; i < FLOWS.length; i++) if (before[i] !== list[r]!.id && after[i] !== before[i]) others++;
      worst = Math.max(worst, moved);
      worstOthers = Math.max(worstOthers, others / FLOWS.length);
      worstMod = Math.max(worstMod, movedFraction(modBefore, assign(modulo(list.filter((_, i) => i !== r)), FLOWS)));
      expect(moved).toBeLessThanOrEqual(1.2 / n);
    }
    // deleting the backend from the list keeps the default M, so it is the same as weight 0
    const deleted = assign(createScheduler('maglev', list.slice(1)), FLOWS);
    const zeroed = assign(createScheduler('maglev', list.map((b, i) => (i === 0 ? { ...b, weight: 0 } : b))), FLOWS);
    expect(deleted).toEqual(zeroed);
    // the same removals with the smallest prime >= 100 x N, for the record
    const small = maglevTableSize(0) > 100 * n ? smallestPrimeAtLeast(100 * n) : maglevTableSize(n);
    const smallBefore = assign(createScheduler('maglev', list, { tableSize: small }), FLOWS);
    let worstSmall = 0;
    for (let r = 0; r < n; r++) {
      const down = list.map((b, i) => (i === r ? { ...b, weight: 0 } : b));
      worstSmall = Math.max(worstSmall, movedFraction(smallBefore, assign(createScheduler('maglev', down, { tableSize: small }), FLOWS)));
    }
    console.log(`remap N=${n} M=${maglevTableSize(n)}: maglev worst ${(worst * 100).toFixed(2)}% (bound ${(120 / n).toFixed(2)}%, ideal ${(100 / n).toFixed(2)}%), `
      + `of which flows on other backends ${(worstOthers * 100).toFixed(2)}%; modulo worst ${(worstMod * 100).toFixed(2)}%; `
      + `maglev with M=${small} (100 x N) worst ${(worstSmall * 100).toFixed(2)}% = ${(worstSmall * n).toFixed(2)}/N`);
    expect(worstMod).toBeGreaterThan(0.5);
  });

  it.each([5, 10, 20])('adding a backend to %i moves about 1/(N+1) of flows', (n) => {
    const list = backends(n + 1);
    const without = list.map((b, i) => (i === n ? { ...b, weight: 0 } : b));
    const moved = movedFraction(assign(createScheduler('maglev', without), FLOWS), assign(createScheduler('maglev', list), FLOWS));
    const modMoved = movedFraction(assign(modulo(list.slice(0, n)), FLOWS), assign(modulo(list), FLOWS));
    console.log(`add N=${n}->${n + 1}: maglev ${(moved * 100).toFixed(2)}% (ideal ${(100 / (n + 1)).toFixed(2)}%), modulo ${(modMoved * 100).toFixed(2)}%`);
    expect(moved).toBeGreaterThanOrEqual(0.8 / (n + 1));
    expect(moved).toBeLessThanOrEqual(1.2 / (n + 1));
  });

  it('hashes source address, port and protocol', () => {
    const s = createScheduler('maglev', backends(10));
    let portMatters = 0;
    let protoMatters = 0;
    for (const f of FLOWS.slice(0, 200)) {
      expect(s.pick(f)).toBe(s.pick({ ...f }));
      if (s.pick(f) !== s.pick({ ...f, srcPort: f.srcPort ^ 1 })) portMatters++;
      if (s.pick(f) !== s.pick({ ...f, protocol: f.protocol === 'tcp' ? 'udp' : 'tcp' })) protoMatters++;
    }
    expect(portMatters).toBeGreaterThan(100);
    expect(protoMatters).toBeGreaterThan(100);
  });
});

describe('lc / wlc', () => {
  const [a, b, c] = [backend('a', 1), backend('b', 3), backend('c', 1)];
  const load = new Map<string, number>();
  const connections = (x: Backend) => load.get(x.id) ?? 0;

  it('lc picks the fewest connections, ties to the lowest index, and follows live counts', () => {
    const s = createScheduler('lc', [a, b, c], { connections });
    load.set(a.id, 5).set(b.id, 2).set(c.id, 2);
    expect(s.pick(flow('x'))).toBe(b);
    load.set(b.id, 9);
    expect(s.pick(flow('x'))).toBe(c);
    load.set(a.id, 0);
    expect(s.pick(flow('x'))).toBe(a);
  });

  it('wlc picks the lowest connections / weight and never weight 0', () => {
    const idle = backend('idle', 0);
    const s = createScheduler('wlc', [idle, a, b, c], { connections });
    load.set(a.id, 2).set(b.id, 5).set(c.id, 3); // 2, 1.67, 3
    expect(s.pick(flow('x'))).toBe(b);
    load.set(b.id, 6); // 2, 2, 3: tie to the lower index
    expect(s.pick(flow('x'))).toBe(a);
    load.set(a.id, 7); // 7, 2, 3
    expect(s.pick(flow('x'))).toBe(b);
  });

  it('throws a clear error without opts.connections', () => {
    expect(() => createScheduler('lc', [a])).toThrow(/lc needs opts\.connections/);
    expect(() => createScheduler('wlc', [a])).toThrow(/wlc needs opts\.connections/);
  });
});

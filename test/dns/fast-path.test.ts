import { beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../dns/server/engine.js';
import { loadZoneDir } from '../../dns/zone/load.js';
import type { ZoneSet } from '../../dns/zone/zone.js';
import { typeNumber } from '../../dns/wire/types.js';
import { ecs, opt, query } from '../helpers/packet.js';
import { FIXTURE_ZONES } from '../helpers/server.js';
import { CASES } from './cases.js';

let zones: ZoneSet;
beforeAll(async () => { zones = await loadZoneDir(FIXTURE_ZONES); });

/** Mixed case, as resolvers using 0x20 send it. */
function mixCase(name: string, seed: number): string {
  return [...name].map((c, i) => ((seed >> (i % 16)) & 1 ? c.toUpperCase() : c)).join('');
}

function variants(qname: string, qtype: number): Buffer[] {
  const name = qname.replace(/\.$/, '');
  return [
    query({ id: 1, name, type: qtype }),
    query({ id: 2, name: mixCase(name, 0x5a5a), type: qtype, flags: 0x0100 }),
    query({ id: 3, name, type: qtype, additional: [opt()] }),
    query({ id: 4, name: mixCase(name, 0x3c3c), type: qtype, additional: [opt([], 4096, 0, true)] }),
    query({ id: 5, name, type: qtype, additional: [opt([ecs(1, 24, 0, [192, 0, 2])])] }),
    query({ id: 6, name, type: qtype, additional: [opt([ecs(2, 56, 0, [0x20, 1, 0xd, 0xb8, 0, 0, 0x12])])] }),
    query({ id: 7, name, type: qtype, flags: 0x0010 }),
  ];
}

describe('fast path and general path give identical bytes', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const general = new Engine(zones, { udpCap: 1232, cacheEntries: 0 });
      const fast = new Engine(zones, { udpCap: 1232, cacheEntries: 1000 });
      const a = Buffer.alloc(65535);
      const b = Buffer.alloc(65535);
      for (const q of variants(c.qname, typeNumber(c.qtype)!)) {
        for (const tcp of [false, true]) {
          const n1 = general.handle(q, 0, q.length, a, 0, a.length, tcp);
          // the first query compiles (a negative reply: the second), then it is served from the compiled reply
          fast.handle(q, 0, q.length, b, 0, b.length, tcp);
          fast.handle(q, 0, q.length, b, 0, b.length, tcp);
          const before = fast.stats.fast;
          const n2 = fast.handle(q, 0, q.length, b, 0, b.length, tcp);
          expect(n2).toBe(n1);
          expect(b.subarray(0, n2).toString('hex')).toBe(a.subarray(0, n1).toString('hex'));
          expect(fast.stats.fast).toBe(before + 1);
        }
      }
      expect(general.stats.fast).toBe(0);
    });
  }

  // replies decided before lookup (answer.ts statusReply/questionReply): a compiled answer for the
  // same name and type must never stand in for them
  const early: [string, Buffer, number][] = [
    ['NOTIMP clears RD and CD', query({ id: 8, flags: (2 << 11) | 0x0110 }), 4],
    ['BADVERS drops ECS', query({ id: 9, flags: 0x0110, additional: [opt([ecs(1, 24, 0, [192, 0, 2])], 1232, 1)] }), 0],
    ['TSIG gets NOTAUTH', query({ id: 10, additional: [opt(), Uint8Array.from([1, 0x6b, 0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0, 1, 1, 44, 0, 0, 0, 10, 0, 0, 0, 0])] }), 9],
    ['AXFR is REFUSED', query({ id: 11, type: 252 }), 5],
  ];
  for (const [what, q, rcode] of early) {
    it(what, () => {
      const general = new Engine(zones, { udpCap: 1232, cacheEntries: 0 });
      const fast = new Engine(zones, { udpCap: 1232, cacheEntries: 1000 });
      const a = Buffer.alloc(65535);
      const b = Buffer.alloc(65535);
      const warm = query({ id: 1, flags: 0x0110, additional: [opt([ecs(1, 24, 0, [192, 0, 2])])] });
      fast.handle(warm, 0, warm.length, b, 0, b.length, false);
      fast.handle(warm, 0, warm.length, b, 0, b.length, false);
      for (const tcp of [false, true]) {
        const n1 = general.handle(q, 0, q.length, a, 0, a.length, tcp);
        const n2 = fast.handle(q, 0, q.length, b, 0, b.length, tcp);
        expect(b.subarray(0, n2).toString('hex')).toBe(a.subarray(0, n1).toString('hex'));
        expect(a[3]! & 0x0f).toBe(rcode);
        expect(a[3]! & 0x10).toBe(q[2]! >> 3 === 0 ? 0x10 & q[3]! : 0);
      }
    });
  }

  it('falls back to the general path when the compiled reply does not fit', () => {
    const fast = new Engine(zones, { udpCap: 1232, cacheEntries: 1000 });
    const general = new Engine(zones, { udpCap: 1232, cacheEntries: 0 });
    const q = query({ name: 'big.example.test', type: 16 });
    const a = Buffer.alloc(65535);
    const b = Buffer.alloc(65535);
    fast.handle(q, 0, q.length, b, 0, b.length, true); // compiles the full answer
    const n2 = fast.handle(q, 0, q.length, b, 0, b.length, false);
    const n1 = general.handle(q, 0, q.length, a, 0, a.length, false);
    expect(b.subarray(0, n2).equals(a.subarray(0, n1))).toBe(true);
    expect(b[2]! & 0x02).toBe(0x02);
  });
});

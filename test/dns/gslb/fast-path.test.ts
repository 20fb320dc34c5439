/**
 * GSLB answers on the fast path: the reply bytes for a selection are encoded once per health
 * epoch and then copied; they must equal what the general path encodes for every query.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { GslbState } from '../../../dns/gslb/state.js';
import { Engine } from '../../../dns/server/engine.js';
import { loadServing } from '../../../dns/serving.js';
import type { Serving } from '../../../dns/serving.js';
import { ecs, opt, query } from '../../helpers/packet.js';
import { SECRET_ENV } from '../../helpers/report.js';
import { ROOT } from '../../helpers/server.js';
import path from 'node:path';

let serving: Serving;
let state: GslbState;
beforeAll(async () => {
  serving = await loadServing(path.join(ROOT, 'test/fixtures/gslb'), { ...process.env, ...SECRET_ENV });
  state = new GslbState(serving.gslb);
});

function engines(): [Engine, Engine] {
  const src = { config: serving.gslb, view: () => state.view };
  const general = new Engine(serving.zones, { udpCap: 1232, cacheEntries: 0 });
  const fast = new Engine(serving.zones, { udpCap: 1232, cacheEntries: 1000 });
  general.setZones(serving.zones, src);
  fast.setZones(serving.zones, src);
  return [general, fast];
}

const NAMES = ['www', 'geo', 'hash', 'first', 'nod', 'shop', 'sorry', 'alias'];
const CLIENTS: [number, number, number[]][] = [[1, 24, [198, 51, 100]], [1, 24, [203, 0, 113]], [1, 16, [10, 1]], [2, 56, [0x20, 1, 0xd, 0xb8, 1, 0, 0x12]]];

function compareAll(general: Engine, fast: Engine): void {
  const a = Buffer.alloc(65535);
  const b = Buffer.alloc(65535);
  for (const name of NAMES) {
    for (const type of [1, 28, 16]) {
      const variants = [
        query({ id: 9, name: `${name}.gslb.test`, type }),
        query({ id: 10, name: `${name.toUpperCase()}.GsLb.TeSt`, type, additional: [opt()] }),
        ...CLIENTS.map(([fam, len, addr], i) => query({ id: 11 + i, name: `${name}.gslb.test`, type, additional: [opt([ecs(fam, len, 0, addr)])] })),
      ];
      for (const q of variants) {
        const n1 = general.handle(q, 0, q.length, a, 0, a.length, false);
        fast.handle(q, 0, q.length, b, 0, b.length, false);
        const n2 = fast.handle(q, 0, q.length, b, 0, b.length, false);
        expect(b.subarray(0, n2).toString('hex'), `${name} type ${type}`).toBe(a.subarray(0, n1).toString('hex'));
      }
    }
  }
}

describe('GSLB fast path', () => {
  it('gives the bytes of the general path, before any report (allDown answers)', () => {
    const [general, fast] = engines();
    compareAll(general, fast);
    expect(fast.stats.fast).toBeGreaterThan(0);
  });

  it('gives the bytes of the general path with every member up, then after a change (new epoch)', () => {
    const [general, fast] = engines();
    const up = (site: string, addrs: string[]) => state.applyReport({
      site, agent: 't', seq: Date.now() + Math.floor(Math.random() * 1e6), sentAt: new Date().toISOString(),
      members: addrs.map((address) => ({ address, state: 'up' as const, weight: 100 })),
    });
    expect(up('tokyo', ['192.0.2.1', '2001:db8::1', '192.0.2.11', '192.0.2.21', '192.0.2.31', '192.0.2.41', '192.0.2.51']).ok).toBe(true);
    expect(up('osaka', ['192.0.2.2', '2001:db8::2', '192.0.2.12', '192.0.2.22', '192.0.2.99', '192.0.2.52', '192.0.2.53']).ok).toBe(true);
    compareAll(general, fast);
    const epoch = state.view.epoch;
    state.admin('drain', { site: 'tokyo' });
    expect(state.view.epoch).toBeGreaterThan(epoch);
    compareAll(general, fast);
    state.admin('undrain', { site: 'tokyo' });
  });
});

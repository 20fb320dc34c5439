/**
 * The explanation says what DNS answers: for every pool of the fixture, both types and several
 * client subnets, the answers, TTL and rcode of `explain` equal those of the engine's reply, in
 * start-up, healthy, drained and all-stale states.
 */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { explain, parseExplainQuery } from '../../../dns/gslb/explain.js';
import { GslbState } from '../../../dns/gslb/state.js';
import { Engine } from '../../../dns/server/engine.js';
import { loadServing } from '../../../dns/serving.js';
import type { Serving } from '../../../dns/serving.js';
import { dns2Decode } from '../../helpers/dns2.js';
import { createClock } from '../../helpers/gslb-state-fixture.js';
import type { Clock } from '../../helpers/gslb-state-fixture.js';
import { ecs, opt, query } from '../../helpers/packet.js';
import { SECRET_ENV } from '../../helpers/report.js';
import { ROOT } from '../../helpers/server.js';

let serving: Serving;
beforeAll(async () => {
  serving = await loadServing(path.join(ROOT, 'test/fixtures/gslb'), { ...process.env, ...SECRET_ENV });
});

// policies that neither draw at random nor rotate (the fixture's weighted pools have one member)
const NAMES = ['www', 'geo', 'first', 'nod', 'shop', 'sorry', 'hash'];
const CLIENTS: (undefined | { subnet: string; family: number; len: number; addr: number[] })[] = [
  undefined,
  { subnet: '198.51.100.0/24', family: 1, len: 24, addr: [198, 51, 100] },
  { subnet: '203.0.113.0/24', family: 1, len: 24, addr: [203, 0, 113] },
  { subnet: '10.1.0.0/16', family: 1, len: 16, addr: [10, 1] },
  { subnet: '2001:db8:100::/56', family: 2, len: 56, addr: [0x20, 1, 0xd, 0xb8, 1, 0, 0] },
];

function compareAll(state: GslbState): number {
  const engine = new Engine(serving.zones, { udpCap: 1232, cacheEntries: 0 });
  engine.setZones(serving.zones, { config: serving.gslb, view: () => state.view });
  const out = Buffer.alloc(65535);
  let answered = 0;
  for (const name of NAMES) {
    for (const type of ['A', 'AAAA'] as const) {
      for (const c of CLIENTS) {
        const q = query({ id: 7, name: `${name}.gslb.test`, type: type === 'A' ? 1 : 28, additional: c ? [opt([ecs(c.family, c.len, 0, c.addr)])] : [] });
        const n = engine.handle(q, 0, q.length, out, 0, out.length, false);
        const reply = dns2Decode(Buffer.from(out.subarray(0, n)));
        const e = explain(serving.gslb, state.view, parseExplainQuery({ name: `${name}.gslb.test`, type, ...(c ? { subnet: c.subnet } : {}) }), (s, a) => state.memberWhy(s, a));
        const what = `${name} ${type} ${c?.subnet ?? 'no client'}`;
        expect(reply.rcode, what).toBe(e.rcode);
        const records = reply.answer.map((l) => l.split(' '));
        expect(records.map((r) => r[4]).sort(), what).toEqual([...e.answers].sort());
        for (const r of records) expect(Number(r[1]), what).toBe(e.ttl);
        answered += e.answers.length;
      }
    }
  }
  return answered;
}

function report(state: GslbState, clock: Clock, site: string, addrs: string[]): void {
  const r = state.applyReport({
    site, agent: 't', seq: clock.now(), sentAt: new Date(clock.now()).toISOString(),
    members: addrs.map((address) => ({ address, state: 'up' as const, weight: 100 })),
  });
  expect(r.ok).toBe(true);
}

describe('explain agrees with the engine', () => {
  it('at start-up, healthy, with a site drained, and with every site stale', () => {
    const clock = createClock();
    const state = new GslbState(serving.gslb, clock.now);
    compareAll(state);
    report(state, clock, 'tokyo', ['192.0.2.1', '2001:db8::1', '192.0.2.11', '192.0.2.21', '192.0.2.31', '192.0.2.41', '192.0.2.51']);
    report(state, clock, 'osaka', ['192.0.2.2', '2001:db8::2', '192.0.2.12', '192.0.2.22', '192.0.2.99', '192.0.2.52', '192.0.2.53']);
    expect(compareAll(state)).toBeGreaterThan(0);
    state.admin('drain', { site: 'tokyo' });
    compareAll(state);
    state.admin('undrain', { site: 'tokyo' });
    clock.advance(5_000);
    state.tick();
    expect(compareAll(state)).toBeGreaterThan(0);
  });
});

/** PoolSelector: a policy plus allDown, on the fixture pools of test/fixtures/gslb. */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PoolSelector, Mode } from '../../../dns/gslb/selector.js';
import { GslbState } from '../../../dns/gslb/state.js';
import { loadServing } from '../../../dns/serving.js';
import type { Serving } from '../../../dns/serving.js';
import { SECRET_ENV } from '../../helpers/report.js';
import { ROOT } from '../../helpers/server.js';

let serving: Serving;
beforeAll(async () => {
  serving = await loadServing(path.join(ROOT, 'test/fixtures/gslb'), { ...process.env, ...SECRET_ENV });
});

let seq = 1;
function report(state: GslbState, site: string, members: [string, 'up' | 'down'][]): void {
  const r = state.applyReport({ site, agent: 't', seq: seq++, sentAt: new Date().toISOString(), members: members.map(([address, s]) => ({ address, state: s, weight: 100 })) });
  expect(r.ok).toBe(true);
}

function pick(state: GslbState, pool: string, family: 4 | 6 = 4): { addrs: string[]; mode: number; ttl: number; answering: string } {
  const sel = new PoolSelector(serving.gslb, () => 0.5);
  sel.client(false, 4, new Uint8Array(16), 0);
  sel.select(serving.gslb.pools.get(pool)!, state.view, family);
  const p = sel.pool!;
  return { addrs: [...sel.selected.subarray(0, sel.count)].map((i) => p.members[i]!.address), mode: sel.mode, ttl: sel.ttl, answering: p.name };
}

describe('PoolSelector', () => {
  it('answers healthy members with the normal TTL, and the degraded TTL when any member is down', () => {
    const state = new GslbState(serving.gslb);
    report(state, 'tokyo', [['192.0.2.1', 'up'], ['2001:db8::1', 'up']]);
    report(state, 'osaka', [['192.0.2.2', 'up'], ['2001:db8::2', 'up']]);
    expect(pick(state, 'web')).toEqual({ addrs: ['192.0.2.1'], mode: Mode.Healthy, ttl: 20, answering: 'web' });
    expect(pick(state, 'web', 6).addrs).toEqual(['2001:db8::1']);
    report(state, 'osaka', [['192.0.2.2', 'down']]);
    expect(pick(state, 'web')).toEqual({ addrs: ['192.0.2.1'], mode: Mode.Healthy, ttl: 5, answering: 'web' });
  });

  it('applies allDown: all, first-tier, nodata and pool:<name>', () => {
    const state = new GslbState(serving.gslb);
    expect(pick(state, 'web')).toMatchObject({ addrs: ['192.0.2.1'], mode: Mode.AllDownAll, ttl: 5 });
    expect(pick(state, 'first')).toMatchObject({ addrs: ['192.0.2.21'], mode: Mode.AllDownFirstTier });
    expect(pick(state, 'nod')).toMatchObject({ addrs: [], mode: Mode.NoData });
    expect(pick(state, 'shop')).toMatchObject({ addrs: ['192.0.2.99'], answering: 'sorry', ttl: 5 });
    report(state, 'osaka', [['192.0.2.99', 'up']]);
    expect(pick(state, 'shop')).toMatchObject({ addrs: ['192.0.2.99'], answering: 'sorry', mode: Mode.Fallback + 1 });
  });

  it('fails open on allDown, but never to a member an operator forced down', () => {
    const state = new GslbState(serving.gslb);
    state.admin('force-down', { site: 'tokyo', address: '192.0.2.1' });
    // nothing reported: allDown all, without the forced-down tier-1 member
    expect(pick(state, 'web').addrs).toEqual(['192.0.2.2']);
    state.admin('force-down', { site: 'osaka' });
    expect(pick(state, 'web').addrs).toEqual([]);
    state.admin('release', { site: 'osaka' });
    // a drain is not that strong: a failing-open pool may still use a drained member
    state.admin('drain', { site: 'osaka' });
    expect(pick(state, 'web').addrs).toEqual(['192.0.2.2']);
  });

  it('gives a different key for a different selection or TTL, the same for the same', () => {
    const state = new GslbState(serving.gslb);
    const key = () => { const s = new PoolSelector(serving.gslb); s.select(serving.gslb.pools.get('web')!, state.view, 4); return s.key; };
    const k1 = key();
    expect(key()).toBe(k1);
    report(state, 'tokyo', [['192.0.2.1', 'up'], ['2001:db8::1', 'up']]);
    expect(key()).not.toBe(k1);
  });
});

/** Pool guards (minServing): loaded from the pool file, decided by GslbState.planAdmin / admin. */
import { describe, expect, it } from 'vitest';
import { GslbLoadError, mergeGslbConfigs, parseGslbYaml } from '../../../dns/gslb/config.js';
import type { GslbConfig, PoolConfig } from '../../../dns/gslb/model.js';
import { GslbState } from '../../../dns/gslb/state.js';
import { createClock, createGslbConfig, makeReport, MEMBERS } from '../../helpers/gslb-state-fixture.js';

const ZONE = 'gslb.example.test.';
const ENV = { S_ONE: 'one-secret-0123456789' };

function guarded(minServing: number): GslbConfig {
  const c = createGslbConfig();
  const www = { ...c.pools.get('www')!, guard: { minServing } } satisfies PoolConfig;
  return { sites: c.sites, pools: new Map([['www', www]]), byName: new Map(www.names.map((n) => [n, www])) };
}

/** All three members of www up (tokyo .1 .2, osaka 198.51.100.1). */
function upState(minServing = 2): GslbState {
  const state = new GslbState(guarded(minServing), createClock().now);
  expect(state.applyReport(makeReport('tokyo', 1)).ok).toBe(true);
  expect(state.applyReport(makeReport('osaka', 1)).ok).toBe(true);
  return state;
}

describe('pool guard: configuration', () => {
  it('loads guard.minServing', () => {
    const c = mergeGslbConfigs([parseGslbYaml(`
sites:
  one: { secret: env:S_ONE }
pools:
  web:
    names: [www]
    guard: { minServing: 2 }
    members: [{ site: one, address: 192.0.2.1 }, { site: one, address: 192.0.2.2 }]
`, 'g.gslb.yaml', ZONE, ENV)]);
    expect(c.pools.get('web')!.guard).toEqual({ minServing: 2 });
  });

  it.each([
    ['guard: { minServing: 3 }', /g\.gslb\.yaml:\d+: pools\.web\.guard\.minServing: must not exceed the number of members \(2\), got 3/],
    ['guard: { minServing: 0 }', /pools\.web\.guard\.minServing/],
    ['guard: { minservng: 1 }', /pools\.web\.guard/],
  ])('refuses %s', (line, message) => {
    const parse = () => parseGslbYaml(`
sites:
  one: { secret: env:S_ONE }
pools:
  web:
    names: [www]
    ${line}
    members: [{ site: one, address: 192.0.2.1 }, { site: one, address: 192.0.2.2 }]
`, 'g.gslb.yaml', ZONE, ENV);
    let err: unknown;
    try { parse(); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(GslbLoadError);
    expect((err as GslbLoadError).errors.map((e) => e.message).join('\n')).toMatch(message);
  });
});

describe('pool guard: decisions', () => {
  it('allows what leaves enough members serving', () => {
    const state = upState(2);
    expect(state.admin('drain', { site: 'tokyo', address: MEMBERS[0].address })).toEqual({ ok: true, changed: true });
  });

  it('refuses a site drain that would leave fewer, naming the pool and counts; nothing changes', () => {
    const state = upState(2);
    const epoch = state.view.epoch;
    const r = state.admin('drain', { site: 'tokyo' });
    expect(r).toMatchObject({ ok: false, status: 409, breaches: [{ pool: 'www', minServing: 2, servingNow: 3, servingAfter: 1 }] });
    expect(!r.ok && r.reason).toMatch(/pool www needs 2 serving members, it would have 1 \(now 3\)/);
    expect(state.listOverrides()).toEqual([]);
    expect(state.view.epoch).toBe(epoch);
  });

  it('counts health and existing overrides together', () => {
    const state = upState(2);
    expect(state.admin('drain', { site: 'tokyo', address: MEMBERS[0].address }).ok).toBe(true);
    // two serving now; forcing down the osaka member would leave one
    expect(state.planAdmin('force-down', { site: 'osaka' })).toMatchObject({ ok: false, status: 409, breaches: [{ servingNow: 2, servingAfter: 1 }] });
    // a member reported down counts as not serving
    expect(state.applyReport(makeReport('osaka', 2, [{ address: '198.51.100.1', state: 'down', weight: 100 }])).ok).toBe(true);
    expect(state.planAdmin('drain', { site: 'tokyo', address: MEMBERS[1].address })).toMatchObject({ ok: false, breaches: [{ servingNow: 1, servingAfter: 0 }] });
  });

  it('refuses also when the pool is already below minServing (no reports yet: nothing serves)', () => {
    const state = new GslbState(guarded(1), createClock().now);
    expect(state.admin('drain', { site: 'osaka', address: '198.51.100.1' })).toMatchObject({ ok: false, status: 409, breaches: [{ servingNow: 0, servingAfter: 0 }] });
  });

  it('force passes the guard and says so; the override carries actor and reason', () => {
    const state = upState(3);
    const r = state.admin('drain', { site: 'tokyo', address: MEMBERS[0].address }, { actor: 'alice', reason: 'disk swap', force: true });
    expect(r).toEqual({ ok: true, changed: true, forced: true });
    expect(state.listOverrides()).toEqual([{ action: 'drain', site: 'tokyo', address: MEMBERS[0].address, at: expect.any(String), actor: 'alice', reason: 'disk swap' }]);
  });

  it('never refuses undrain, release or a no-op', () => {
    const state = upState(3);
    expect(state.admin('drain', { site: 'tokyo' }, { force: true, reason: 'x' }).ok).toBe(true);
    expect(state.admin('drain', { site: 'tokyo' })).toEqual({ ok: true, changed: false });
    expect(state.admin('undrain', { site: 'tokyo' })).toEqual({ ok: true, changed: true });
    expect(state.admin('force-down', { site: 'osaka' }, { force: true, reason: 'x' }).ok).toBe(true);
    expect(state.admin('release', { site: 'osaka' })).toEqual({ ok: true, changed: true });
  });

  it('says so when an action leaves a pool with no serving member (guarded or not)', () => {
    const state = new GslbState(createGslbConfig(), createClock().now);
    state.applyReport(makeReport('tokyo', 1));
    state.applyReport(makeReport('osaka', 1));
    expect(state.admin('drain', { site: 'tokyo' })).toEqual({ ok: true, changed: true });
    expect(state.admin('drain', { site: 'osaka' })).toEqual({
      ok: true, changed: true, warnings: ['pool www is left with no serving member: it answers per allDown (all: fails open, every member not forced down)'],
    });
  });

  it('pools without a guard are never refused', () => {
    const state = new GslbState(createGslbConfig(), createClock().now);
    expect(state.admin('force-down', { site: 'tokyo' })).toEqual({ ok: true, changed: true });
  });
});

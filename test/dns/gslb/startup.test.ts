/**
 * A restarted instance: the startup window (pending members, `startup: servfail | allDown`),
 * health restored from a previous instance, readiness, and the fail-open watch. Every test runs
 * on a settable clock; nothing here waits.
 */
import { describe, expect, it } from 'vitest';
import { mergeGslbConfigs, parseGslbYaml } from '../../../dns/gslb/config.js';
import type { GslbConfig } from '../../../dns/gslb/model.js';
import { FailOpenWatch, poolFailOpen } from '../../../dns/gslb/fail-open.js';
import { Mode, PoolSelector } from '../../../dns/gslb/selector.js';
import { GslbState } from '../../../dns/gslb/state.js';
import { mkdtemp, rm as rmDir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Engine } from '../../../dns/server/engine.js';
import { loadServing } from '../../../dns/serving.js';
import type { Serving } from '../../../dns/serving.js';
import { query } from '../../helpers/packet.js';
import type { Report, ReportMember } from '../../../shared/protocol/report.js';
import { createClock, T0 } from '../../helpers/gslb-state-fixture.js';
import type { Clock } from '../../helpers/gslb-state-fixture.js';

const ZONE = 'gslb.example.test.';
const ENV = { S_A: 'a-secret-0123456789', S_B: 'b-secret-0123456789' };

/** Two agent sites (staleAfter 3 s and 10 s) and a probe-only site; pools with each startup mode. */
const YAML = `
sites:
  a: { secret: env:S_A, staleAfter: 3s }
  b: { secret: env:S_B, staleAfter: 10s }
  p: { probe: { type: tcp, port: 9 }, staleAfter: 1s }
pools:
  web:
    names: [www]
    policy: failover
    allDown: all
    members:
      - { site: a, address: 192.0.2.1, tier: 1 }
      - { site: b, address: 192.0.2.2, tier: 2 }
  old:
    names: [old]
    policy: failover
    allDown: all
    startup: allDown
    members:
      - { site: a, address: 192.0.2.11, tier: 1 }
      - { site: b, address: 192.0.2.12, tier: 2 }
  only-b:
    names: [onlyb]
    allDown: nodata
    members:
      - { site: b, address: 192.0.2.21 }
  v4:
    names: [v4]
    allDown: all
    members:
      - { site: b, address: 192.0.2.31 }
  every:
    names: [every]
    policy: all
    maxAnswers: 2
    allDown: nodata
    members:
      - { site: a, address: 192.0.2.41 }
      - { site: b, address: 192.0.2.42 }
`;

function config(text = YAML): GslbConfig {
  return mergeGslbConfigs([parseGslbYaml(text, 'startup.gslb.yaml', ZONE, ENV)]);
}

function rm(address: string, state: 'up' | 'down' | 'drain'): ReportMember {
  return { address, state, weight: 100 };
}

function report(site: string, seq: number, members: ReportMember[]): Report {
  return { site, agent: `${site}-1`, seq, sentAt: new Date(T0).toISOString(), members };
}

function setup(clock: Clock = createClock()): { state: GslbState; clock: Clock; cfg: GslbConfig } {
  const cfg = config();
  return { state: new GslbState(cfg, clock.now), clock, cfg };
}

/** The zone and YAML above as the server loads them (a scratch directory, removed again). */
async function loadYaml(): Promise<Serving> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-startup-'));
  try {
    await writeFile(path.join(dir, `${ZONE}zone`), `$ORIGIN ${ZONE}\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n  IN NS ns1\nns1 IN A 192.0.2.53\n`);
    await writeFile(path.join(dir, `${ZONE}gslb.yaml`), YAML);
    return await loadServing(dir, { ...process.env, ...ENV });
  } finally {
    await rmDir(dir, { recursive: true, force: true });
  }
}

/** What the selector does for `pool`: the mode and the addresses. */
function pick(state: GslbState, pool: string, family: 4 | 6 = 4): { mode: number; addrs: string[] } {
  const sel = new PoolSelector(state.gslb, () => 0);
  sel.client(false, 4, new Uint8Array(16), 0);
  sel.select(state.gslb.pools.get(pool)!, state.view, family);
  return { mode: sel.mode, addrs: [...sel.selected.subarray(0, sel.count)].map((i) => sel.pool!.members[i]!.address) };
}

describe('startup window', () => {
  it('a pool with nothing serving and a pending member answers per startup: servfail (default) or allDown', () => {
    const { state } = setup();
    expect(pick(state, 'web')).toEqual({ mode: Mode.Startup, addrs: [] });
    expect(pick(state, 'old')).toEqual({ mode: Mode.AllDownAll, addrs: ['192.0.2.11'] });
    expect(state.view.pools.get('web')!.pending).toBe(1);
    // the family decides: a v4-only pool asked AAAA has no pending IPv6 member, so allDown as before
    expect(pick(state, 'v4', 6).mode).toBe(Mode.AllDownAll);
  });

  it('holds an answer that a pending member would change, not one it would not', () => {
    const { state } = setup();
    state.applyReport(report('b', 1, [rm('192.0.2.2', 'up'), rm('192.0.2.12', 'up')]));
    // a (tier 1) still pending, b (tier 2) up: answering b now would be the restarted instance
    // failing over to b only because b's agent reported first
    expect(pick(state, 'web')).toEqual({ mode: Mode.Startup, addrs: [] });
    // startup: allDown answers from what serves now
    expect(pick(state, 'old')).toEqual({ mode: Mode.Healthy, addrs: ['192.0.2.12'] });
    state.applyReport(report('a', 1, [rm('192.0.2.1', 'up')]));
    expect(pick(state, 'web')).toEqual({ mode: Mode.Healthy, addrs: ['192.0.2.1'] });
  });

  it('answers at once when the pick needs no pending member (tier 1 known up, tier 2 pending)', () => {
    const { state } = setup();
    state.applyReport(report('a', 1, [rm('192.0.2.1', 'up')]));
    expect(state.view.pools.get('web')!.pending).toBe(1);
    expect(pick(state, 'web')).toEqual({ mode: Mode.Healthy, addrs: ['192.0.2.1'] });
  });

  it('holds a policy-all answer until every site reported, at most until the window closes', () => {
    const { state, clock } = setup();
    state.applyReport(report('b', 1, [rm('192.0.2.42', 'up')]));
    expect(pick(state, 'every').mode).toBe(Mode.Startup);
    // site a never reports: its window (staleAfter 3 s) ends the hold, and b alone answers
    clock.advance(3000);
    state.tick();
    expect(pick(state, 'every')).toEqual({ mode: Mode.Healthy, addrs: ['192.0.2.42'] });
  });

  it('a member left out of its site\'s first report stops pending (it would hold answers for nothing)', () => {
    const { state } = setup();
    state.applyReport(report('b', 1, [rm('192.0.2.2', 'up')]));
    expect(state.view.pools.get('v4')!.pending ?? 0).toBe(0);
    expect(pick(state, 'v4').mode).toBe(Mode.AllDownAll);
    const snap = state.snapshot() as { pools: { name: string; members: { address: string; why: string; pending: boolean }[] }[] };
    expect(snap.pools.find((p) => p.name === 'v4')!.members[0]).toMatchObject({ address: '192.0.2.31', pending: false, why: 'not in the site\'s reports' });
  });

  it('a known-down member stops pending', () => {
    const { state } = setup();
    state.applyReport(report('b', 1, [rm('192.0.2.2', 'up')]));
    state.applyReport(report('b', 2, [rm('192.0.2.21', 'down')]));
    // only-b: its one member is known down, nothing pending: allDown (nodata) at once
    expect(pick(state, 'only-b').mode).toBe(Mode.NoData);
    state.applyReport(report('a', 1, [rm('192.0.2.1', 'down')]));
    state.applyReport(report('b', 3, [rm('192.0.2.2', 'down')]));
    expect(pick(state, 'web')).toEqual({ mode: Mode.AllDownAll, addrs: ['192.0.2.1'] });
  });

  it('ends per site staleAfter after the start, with a new epoch, so cached answers move on', () => {
    const { state, clock } = setup();
    const e0 = state.view.epoch;
    clock.advance(2999);
    expect(state.tick()).toBe(false);
    clock.advance(1);
    // site a's window closed (3 s); b's (10 s) is still open: web still has a pending member
    expect(state.tick()).toBe(true);
    expect(state.view.epoch).toBeGreaterThan(e0);
    expect(pick(state, 'web').mode).toBe(Mode.Startup);
    clock.advance(7000);
    state.tick();
    expect(pick(state, 'web')).toEqual({ mode: Mode.AllDownAll, addrs: ['192.0.2.1'] });
    expect(state.view.pools.get('web')!.pending ?? 0).toBe(0);
  });

  it('the engine answers SERVFAIL while pending and never keeps it: the next epoch answers normally', async () => {
    const serving = await loadYaml();
    const state = new GslbState(serving.gslb, createClock().now);
    const engine = new Engine(serving.zones, { udpCap: 1232, cacheEntries: 100 });
    engine.setZones(serving.zones, { config: serving.gslb, view: () => state.view });
    const out = Buffer.alloc(1500);
    const ask = (): { rcode: number; aa: boolean; ancount: number } => {
      const q = query({ id: 7, name: `www.${ZONE}`, type: 1 });
      expect(engine.handle(q, 0, q.length, out, 0, out.length, false)).toBeGreaterThan(0);
      return { rcode: out[3]! & 0x0f, aa: (out[2]! & 0x04) !== 0, ancount: out.readUInt16BE(6) };
    };
    expect(ask()).toEqual({ rcode: 2, aa: false, ancount: 0 });
    expect(ask()).toEqual({ rcode: 2, aa: false, ancount: 0 });
    state.applyReport(report('a', 1, [rm('192.0.2.1', 'up')]));
    expect(ask()).toEqual({ rcode: 0, aa: true, ancount: 1 });
  });
});

describe('readiness', () => {
  it('waits for every agent-fed site to report, be restored or go stale; probe-only sites never block', () => {
    const { state, clock } = setup();
    expect(state.readiness()).toEqual([
      'site a: no report since the start yet (stale after 3000 ms)',
      'site b: no report since the start yet (stale after 10000 ms)',
    ]);
    state.applyReport(report('b', 1, []));
    expect(state.readiness()).toEqual(['site a: no report since the start yet (stale after 3000 ms)']);
    clock.advance(3001);
    state.tick();
    expect(state.readiness()).toEqual([]);
  });
});

describe('restoreHealth', () => {
  function previous(): GslbState {
    const { state, clock } = setup();
    state.applyReport(report('a', 41, [rm('192.0.2.1', 'down'), rm('192.0.2.11', 'down')]));
    clock.advance(500);
    state.applyReport(report('b', 7, [rm('192.0.2.2', 'up'), rm('192.0.2.12', 'up')]));
    return state;
  }

  it('restores health younger than staleAfter, marked restored, serving at once', () => {
    const saved = previous().exportHealth();
    expect(saved.sites['a']!.lastSeq).toEqual({ 'a-1': 41 });
    expect(saved.sites['a']!.members.map((m) => `${m.address} ${m.status}`)).toEqual(['192.0.2.1 down', '192.0.2.11 down']);
    const { state } = setup(createClock(T0 + 2000));
    const r = state.restoreHealth(saved);
    expect(r).toEqual({ restored: ['a', 'b'], skipped: [] });
    expect(pick(state, 'web')).toEqual({ mode: Mode.Healthy, addrs: ['192.0.2.2'] });
    expect(state.readiness()).toEqual([]);
    const snap = state.snapshot() as { sites: { name: string; restored: boolean }[]; pools: { name: string; members: { address: string; restored: boolean; status: string }[] }[] };
    expect(snap.sites.filter((s) => s.restored).map((s) => s.name)).toEqual(['a', 'b']);
    expect(snap.pools[0]!.members.map((m) => [m.address, m.status, m.restored])).toEqual([['192.0.2.1', 'down', true], ['192.0.2.2', 'up', true]]);
    // a report replaces what was restored
    expect(state.applyReport(report('b', 8, [rm('192.0.2.2', 'up')])).ok).toBe(true);
    const after = state.snapshot() as typeof snap;
    expect(after.sites.find((s) => s.name === 'b')!.restored).toBe(false);
    expect(after.pools[0]!.members[1]!.restored).toBe(false);
  });

  it('skips health older than staleAfter but keeps every last seq: replays are still refused', () => {
    const saved = previous().exportHealth();
    const { state } = setup(createClock(T0 + 3500));
    const r = state.restoreHealth(saved);
    expect(r.restored).toEqual(['b']);
    expect(r.skipped).toEqual([{ site: 'a', reason: 'last report 3500 ms old (staleAfter 3000 ms)' }]);
    expect(state.view.pools.get('web')!.members[0]!.pending).toBe(true);
    expect(state.applyReport(report('a', 41, [rm('192.0.2.1', 'up')]))).toMatchObject({ ok: false, status: 409 });
    expect(state.applyReport(report('a', 42, [rm('192.0.2.1', 'up')]))).toMatchObject({ ok: true });
    // and it is saved again for the instance after this one
    expect(state.exportHealth().sites['a']!.lastSeq).toEqual({ 'a-1': 42 });
  });

  it('ignores sites no longer configured and saves nothing for sites that never reported', () => {
    const saved = previous().exportHealth();
    const { state } = setup(createClock(T0 + 1000));
    const r = state.restoreHealth({ ...saved, sites: { ...saved.sites, gone: { lastValidAt: T0, lastSeq: { x: 1 }, members: [] } } });
    expect(r.skipped).toEqual([{ site: 'gone', reason: 'no longer configured' }]);
    const fresh = setup().state;
    expect(fresh.exportHealth().sites).toEqual({});
  });
});

describe('fail-open', () => {
  it('the gauge follows the selector: startup pending is not fail-open under servfail, is under allDown', () => {
    const { state } = setup();
    const row = (pool: string) => poolFailOpen(state.gslb, state.view).find((p) => p.pool === pool);
    expect(row('web')).toEqual({ pool: 'web', failOpen: false, startupPending: true, allDown: 'all' });
    expect(row('old')).toEqual({ pool: 'old', failOpen: true, startupPending: true, allDown: 'all' });
    state.applyReport(report('b', 1, [rm('192.0.2.21', 'down'), rm('192.0.2.2', 'up')]));
    expect(row('only-b')).toEqual({ pool: 'only-b', failOpen: true, startupPending: false, allDown: 'nodata' });
    // b (tier 2) serves, but web's pick waits for tier 1 (a, pending): still held, not fail-open
    expect(row('web')).toEqual({ pool: 'web', failOpen: false, startupPending: true, allDown: 'all' });
    state.applyReport(report('a', 1, [rm('192.0.2.1', 'down')]));
    expect(row('web')).toEqual({ pool: 'web', failOpen: false, startupPending: false, allDown: 'all' });
  });

  it('logs one warning on entering and one on leaving allDown, not per view', () => {
    const { state } = setup();
    const warns: { obj: Record<string, unknown>; msg: string }[] = [];
    const watch = new FailOpenWatch(() => state.gslb, state.view, { warn: (obj, msg) => warns.push({ obj: obj as Record<string, unknown>, msg }) });
    state.onChange((v) => watch.update(v));
    // at the start: `old` (startup: allDown) fails open already
    expect(warns.map((w) => w.obj['pool'])).toEqual(['old']);
    warns.length = 0;
    state.applyReport(report('b', 1, [rm('192.0.2.21', 'down')]));
    state.applyReport(report('b', 2, [rm('192.0.2.21', 'down'), rm('192.0.2.2', 'up')]));
    state.applyReport(report('b', 3, [rm('192.0.2.21', 'down'), rm('192.0.2.2', 'up'), rm('192.0.2.12', 'up')]));
    expect(warns).toEqual([
      { obj: { pool: 'only-b', allDown: 'nodata', epoch: expect.any(Number) }, msg: 'pool only-b answers by allDown (nodata): no member serves' },
      // v4's one member is b's, left out of b's reports: not pending, so allDown at once
      { obj: { pool: 'v4', allDown: 'all', epoch: expect.any(Number) }, msg: 'pool v4 answers by allDown (all): no member serves' },
      { obj: { pool: 'old', allDown: 'all', epoch: expect.any(Number) }, msg: 'pool old no longer answers by allDown: a member serves again' },
    ]);
    expect(watch.pools.find((p) => p.pool === 'only-b')!.failOpen).toBe(true);
    warns.length = 0;
    state.applyReport(report('b', 4, [rm('192.0.2.21', 'up')]));
    expect(warns.map((w) => w.msg)).toEqual(['pool only-b no longer answers by allDown: a member serves again']);
  });
});

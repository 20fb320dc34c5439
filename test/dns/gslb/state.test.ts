/**
 * GslbState: the transition table of its header comment, row by row, then what makes a member
 * serve (up, fresh site, no override), overrides, the epoch, refused reports, reloads and the
 * snapshot. Every test runs on a settable clock; nothing here waits.
 */
import { describe, expect, it } from 'vitest';
import { mergeGslbConfigs, parseGslbYaml } from '../../../dns/gslb/config.js';
import type { GslbConfig, PoolConfig } from '../../../dns/gslb/model.js';
import { GslbState } from '../../../dns/gslb/state.js';
import type { HealthEvent, HealthView, MemberStatus, OverrideAction } from '../../../dns/gslb/state.js';
import type { Report, ReportMember } from '../../../shared/protocol/report.js';
import { member } from '../../helpers/gslb-fixtures.js';
import type { MemberLit } from '../../helpers/gslb-fixtures.js';
import { createClock, createGslbConfig, makeReport, MEMBERS, T0 } from '../../helpers/gslb-state-fixture.js';
import type { Clock } from '../../helpers/gslb-state-fixture.js';

// ---------------------------------------------------------------------------------------------
// helpers

const ZONE = 'gslb.example.test.';
const ENV = { S_ONE: 'one-secret-0123456789', S_HYST: 'hyst-secret-0123456789' };

/** A GslbConfig from one `.gslb.yaml` text, as the loader builds it. */
function yamlConfig(text: string): GslbConfig {
  return mergeGslbConfigs([parseGslbYaml(text, 'state.gslb.yaml', ZONE, ENV)]);
}

/** Sites with rise/fall 1/1 (one), 2/3 (hyst) and a probe-only site with 2/3 (probed). */
const HYST_YAML = `
sites:
  one: { secret: env:S_ONE, rise: 1, fall: 1, staleAfter: 10s }
  hyst: { secret: env:S_HYST, rise: 2, fall: 3, staleAfter: 10s }
  probed: { probe: { type: tcp, port: 9 }, rise: 2, fall: 3, staleAfter: 1s }
pools:
  web:
    names: [www]
    policy: failover
    members:
      - { site: one, address: 192.0.2.1 }
      - { site: hyst, address: 192.0.2.2 }
      - { site: probed, address: 192.0.2.3 }
`;

/** One weighted and one least-load pool, each with its own member of site one. */
const LOAD_YAML = `
sites:
  one: { secret: env:S_ONE }
pools:
  wl:
    names: [wl]
    policy: weighted
    members: [{ site: one, address: 192.0.2.10 }]
  ll:
    names: [ll]
    policy: least-load
    members: [{ site: one, address: 192.0.2.11 }]
`;

type Obs = 'up' | 'down' | 'drain';

function rm(address: string, state: Obs, extra: Partial<ReportMember> = {}): ReportMember {
  return { address, state, weight: 100, ...extra };
}

function report(site: string, seq: number, members: ReportMember[], agent = `${site}-agent-1`): Report {
  return { site, agent, seq, sentAt: new Date(T0).toISOString(), members };
}

/** A state with its clock and every event it logged. */
function setup(config: GslbConfig = createGslbConfig(), clock: Clock = createClock()): { state: GslbState; clock: Clock; events: HealthEvent[] } {
  const events: HealthEvent[] = [];
  const state = new GslbState(config, clock.now, (e) => events.push(e));
  return { state, clock, events };
}

function entry(state: GslbState, site: string, address: string): { status: MemberStatus; serving: boolean } {
  const m = state.memberStates().find((x) => x.site === site && x.address === address);
  if (!m) throw new Error(`no member ${site} ${address}`);
  return { status: m.status, serving: m.serving };
}

interface SnapMember {
  site: string;
  address: string;
  status: MemberStatus;
  serving: boolean;
  why: string;
  [k: string]: unknown;
}

interface Snap {
  epoch: number;
  sites: { name: string; mode: string; stale: boolean; lastReportAgeMs: number | null; lastSeq: Record<string, number>; staleAfterMs: number }[];
  pools: { name: string; policy: string; names: string[]; degraded: boolean; members: SnapMember[] }[];
  overrides: { action: OverrideAction; site: string; address?: string; at: string }[];
  events: HealthEvent[];
}

function snap(state: GslbState): Snap {
  return state.snapshot() as Snap;
}

function why(state: GslbState, site: string, address: string): string {
  for (const p of snap(state).pools) for (const m of p.members) if (m.site === site && m.address === address) return m.why;
  throw new Error(`no member ${site} ${address}`);
}

/** Which members of pool www are up in the current view, as `site address`. */
function upInView(state: GslbState, pool = 'www'): string[] {
  const cfg = state.gslb.pools.get(pool)!;
  const h = state.view.pools.get(pool)!;
  return cfg.members.filter((_, i) => h.members[i]!.up).map((m) => `${m.site} ${m.address}`);
}

const [TOKYO1, TOKYO2, OSAKA1] = MEMBERS;
const ALL_TOKYO_UP = (seq: number): Report => makeReport('tokyo', seq);

// ---------------------------------------------------------------------------------------------

describe('GslbState: member transitions (the table of the header comment)', () => {
  interface Row {
    row: string;
    site: 'one' | 'hyst';
    /** observations that set up the starting state */
    before?: Obs[];
    /** each observation and the state right after it */
    steps: [Obs, MemberStatus][];
  }
  const rows: Row[] = [
    // rise/fall 1/1
    { row: 'unknown -> up after rise (1)', site: 'one', steps: [['up', 'up']] },
    { row: 'unknown -> down after fall (1)', site: 'one', steps: [['down', 'down']] },
    { row: 'down -> up after rise (1)', site: 'one', before: ['down'], steps: [['up', 'up'], ['up', 'up']] },
    { row: 'up -> down after fall (1)', site: 'one', before: ['up'], steps: [['down', 'down'], ['down', 'down']] },
    { row: 'unknown -> drain at once', site: 'one', steps: [['drain', 'drain']] },
    { row: 'up -> drain at once', site: 'one', before: ['up'], steps: [['drain', 'drain'], ['drain', 'drain']] },
    { row: 'down -> drain at once', site: 'one', before: ['down'], steps: [['drain', 'drain']] },
    { row: 'drain -> up after rise (1)', site: 'one', before: ['drain'], steps: [['up', 'up']] },
    { row: 'drain -> down after fall (1)', site: 'one', before: ['drain'], steps: [['down', 'down']] },
    // rise/fall 2/3
    { row: 'unknown -> up after rise (2)', site: 'hyst', steps: [['up', 'unknown'], ['up', 'up']] },
    { row: 'unknown -> down after fall (3)', site: 'hyst', steps: [['down', 'unknown'], ['down', 'unknown'], ['down', 'down']] },
    { row: 'down -> up after 2 consecutive ups', site: 'hyst', before: ['down', 'down', 'down'], steps: [['up', 'down'], ['up', 'up']] },
    {
      row: 'up -> down after 3 consecutive downs', site: 'hyst', before: ['up', 'up'],
      steps: [['down', 'up'], ['down', 'up'], ['down', 'down']],
    },
    {
      row: 'an up resets the down streak', site: 'hyst', before: ['up', 'up'],
      steps: [['down', 'up'], ['down', 'up'], ['up', 'up'], ['down', 'up'], ['down', 'up'], ['down', 'down']],
    },
    {
      row: 'a down resets the up streak', site: 'hyst', before: ['down', 'down', 'down'],
      steps: [['up', 'down'], ['down', 'down'], ['up', 'down'], ['up', 'up']],
    },
    {
      row: 'unknown: opposite observations reset the streaks', site: 'hyst',
      steps: [['up', 'unknown'], ['down', 'unknown'], ['up', 'unknown'], ['down', 'unknown'], ['down', 'unknown'], ['down', 'down']],
    },
    { row: 'unknown -> drain at once (2/3)', site: 'hyst', steps: [['drain', 'drain']] },
    { row: 'up -> drain at once (2/3)', site: 'hyst', before: ['up', 'up'], steps: [['drain', 'drain']] },
    { row: 'down -> drain at once (2/3)', site: 'hyst', before: ['down', 'down', 'down'], steps: [['drain', 'drain']] },
    { row: 'drain -> up after rise (2)', site: 'hyst', before: ['drain'], steps: [['up', 'drain'], ['up', 'up']] },
    { row: 'drain -> down after fall (3)', site: 'hyst', before: ['drain'], steps: [['down', 'drain'], ['down', 'drain'], ['down', 'down']] },
    {
      // up with a down streak of 2: the drain starts the count again
      row: 'drain clears the streaks', site: 'hyst', before: ['up', 'up', 'down', 'down'],
      steps: [['drain', 'drain'], ['down', 'drain'], ['down', 'drain'], ['down', 'down']],
    },
  ];

  it.each(rows)('$row', ({ site, before = [], steps }) => {
    const { state, events } = setup(yamlConfig(HYST_YAML));
    const address = site === 'one' ? '192.0.2.1' : '192.0.2.2';
    let seq = 0;
    const observe = (o: Obs) => expect(state.applyReport(report(site, ++seq, [rm(address, o)])).ok).toBe(true);
    for (const o of before) observe(o);
    let prev = entry(state, site, address).status;
    const mark = events.length;
    const wantEvents: string[] = [];
    steps.forEach(([o, want], i) => {
      observe(o);
      expect(entry(state, site, address).status, `after step ${i} (${o})`).toBe(want);
      if (want !== prev) wantEvents.push(`member-${want} was ${prev}`);
      prev = want;
    });
    // one event per change of state, none for observations that change nothing
    expect(events.slice(mark).map((e) => `${e.type} ${e.detail}`)).toEqual(wantEvents);
    expect(events.slice(mark).every((e) => e.site === site && e.address === address)).toBe(true);
  });

  it('probe results go through the same hysteresis (rise 2, fall 3)', () => {
    const { state } = setup(yamlConfig(HYST_YAML));
    const seen: MemberStatus[] = [];
    for (const pass of [true, true, false, false, true, false, false, false]) {
      state.applyProbe('probed', '192.0.2.3', pass);
      seen.push(entry(state, 'probed', '192.0.2.3').status);
    }
    expect(seen).toEqual(['unknown', 'up', 'up', 'up', 'up', 'up', 'up', 'down']);
  });

  it('a probe result for a member that is not configured changes nothing', () => {
    const { state } = setup(yamlConfig(HYST_YAML));
    const epoch = state.view.epoch;
    expect(state.applyProbe('probed', '192.0.2.99', true)).toBe(false);
    expect(state.applyProbe('nowhere', '192.0.2.3', true)).toBe(false);
    expect(state.view.epoch).toBe(epoch);
  });
});

describe('GslbState: a member serves only when up, its site fresh and no override holds it', () => {
  it('nothing serves before the first observation; then the reported state decides', () => {
    const { state } = setup();
    expect(upInView(state)).toEqual([]);
    expect(state.view.pools.get('www')!.degraded).toBe(true);
    expect(why(state, 'tokyo', TOKYO1.address)).toBe('no report or probe yet');

    state.applyReport(report('tokyo', 1, [rm(TOKYO1.address, 'up'), rm(TOKYO2.address, 'down')]));
    expect(upInView(state)).toEqual([`tokyo ${TOKYO1.address}`]);
    expect(why(state, 'tokyo', TOKYO1.address)).toBe('up');
    expect(why(state, 'tokyo', TOKYO2.address)).toBe('down');
    state.applyReport(report('tokyo', 2, [rm(TOKYO1.address, 'up'), rm(TOKYO2.address, 'drain')]));
    expect(why(state, 'tokyo', TOKYO2.address)).toBe('drained by agent');
    state.applyReport(report('osaka', 1, [rm(OSAKA1.address, 'up')]));
    state.applyReport(report('tokyo', 3, [rm(TOKYO1.address, 'up'), rm(TOKYO2.address, 'up')]));
    expect(upInView(state)).toEqual([`tokyo ${TOKYO1.address}`, `tokyo ${TOKYO2.address}`, `osaka ${OSAKA1.address}`]);
    expect(state.view.pools.get('www')!.degraded).toBe(false);
    // weightPct follows the reported weight while up
    state.applyReport(report('tokyo', 4, [rm(TOKYO1.address, 'up', { weight: 40 })]));
    expect(state.view.pools.get('www')!.members.map((m) => m.weightPct)).toEqual([40, 100, 100]);
  });

  it('a site without a valid report for staleAfter goes stale (site-stale); a valid report makes it fresh (site-fresh)', () => {
    const { state, clock, events } = setup();
    state.applyReport(ALL_TOKYO_UP(1));
    state.applyReport(report('osaka', 1, [rm(OSAKA1.address, 'up')]));
    clock.advance(5_000);
    state.applyReport(report('osaka', 2, [rm(OSAKA1.address, 'up')]));
    // staleAfter is 10 s: exactly at it the site is still fresh
    clock.advance(5_000);
    expect(state.tick()).toBe(false);
    expect(upInView(state)).toHaveLength(3);

    clock.advance(1);
    const epoch = state.view.epoch;
    expect(state.tick()).toBe(true);
    expect(state.view.epoch).toBe(epoch + 1);
    expect(upInView(state)).toEqual([`osaka ${OSAKA1.address}`]);
    // the members keep their reported state; only the site is stale
    expect(entry(state, 'tokyo', TOKYO1.address)).toEqual({ status: 'up', serving: false });
    expect(why(state, 'tokyo', TOKYO1.address)).toBe('site stale');
    const stale = events.filter((e) => e.type === 'site-stale');
    expect(stale).toHaveLength(1);
    expect(stale[0]).toMatchObject({ type: 'site-stale', site: 'tokyo', at: new Date(T0 + 10_001).toISOString() });
    expect(snap(state).sites.find((s) => s.name === 'tokyo')!.stale).toBe(true);
    // a second tick changes nothing and logs nothing
    expect(state.tick()).toBe(false);
    expect(events.filter((e) => e.type === 'site-stale')).toHaveLength(1);

    expect(state.applyReport(ALL_TOKYO_UP(2))).toEqual({ ok: true, changed: true });
    expect(events.filter((e) => e.type === 'site-fresh').map((e) => e.site)).toEqual(['tokyo']);
    expect(upInView(state)).toHaveLength(3);
    expect(snap(state).sites.find((s) => s.name === 'tokyo')!.stale).toBe(false);
    expect(state.tick()).toBe(false);
  });

  it('staleness counts from start-up for a site that never reported', () => {
    const { state, clock, events } = setup();
    clock.advance(10_001);
    // no member served before and none does now, but the startup window closed with the same
    // staleAfter: the unknown members stop pending (allDown instead of startup), a new view
    expect(state.tick()).toBe(true);
    expect(events.filter((e) => e.type === 'site-stale').map((e) => e.site)).toEqual(['tokyo', 'osaka']);
    expect(why(state, 'osaka', OSAKA1.address)).toBe('site stale');
  });

  it('a probe-only site never goes stale', () => {
    const { state, clock, events } = setup(yamlConfig(HYST_YAML));
    state.applyProbe('probed', '192.0.2.3', true);
    state.applyProbe('probed', '192.0.2.3', true);
    expect(upInView(state, 'web')).toEqual(['probed 192.0.2.3']);
    clock.advance(3_600_000);
    state.tick();
    expect(upInView(state, 'web')).toEqual(['probed 192.0.2.3']);
    expect(events.filter((e) => e.type === 'site-stale').map((e) => e.site)).toEqual(['one', 'hyst']);
    expect(snap(state).sites.find((s) => s.name === 'probed')).toMatchObject({ mode: 'probe', stale: false, lastReportAgeMs: null });
  });
});

describe('GslbState: operator overrides', () => {
  function upState(): ReturnType<typeof setup> {
    const s = setup();
    s.state.applyReport(ALL_TOKYO_UP(1));
    s.state.applyReport(report('osaka', 1, [rm(OSAKA1.address, 'up')]));
    return s;
  }

  it('drain and undrain a site', () => {
    const { state, events } = upState();
    expect(state.admin('drain', { site: 'tokyo' })).toEqual({ ok: true, changed: true });
    expect(upInView(state)).toEqual([`osaka ${OSAKA1.address}`]);
    expect(why(state, 'tokyo', TOKYO2.address)).toBe('drained by operator');
    // the agent's view of the member is kept underneath
    expect(entry(state, 'tokyo', TOKYO2.address).status).toBe('up');
    expect(state.admin('drain', { site: 'tokyo' })).toEqual({ ok: true, changed: false });
    expect(state.admin('undrain', { site: 'tokyo' })).toEqual({ ok: true, changed: true });
    expect(upInView(state)).toHaveLength(3);
    expect(state.admin('undrain', { site: 'tokyo' })).toEqual({ ok: true, changed: false });
    expect(events.filter((e) => e.type.startsWith('admin-')).map((e) => `${e.type} ${e.site}`)).toEqual(['admin-drain tokyo', 'admin-undrain tokyo']);
  });

  it('drain and undrain a member', () => {
    const { state } = upState();
    expect(state.admin('drain', { site: 'tokyo', address: TOKYO1.address })).toEqual({ ok: true, changed: true });
    expect(upInView(state)).toEqual([`tokyo ${TOKYO2.address}`, `osaka ${OSAKA1.address}`]);
    expect(why(state, 'tokyo', TOKYO1.address)).toBe('drained by operator');
    expect(state.admin('undrain', { site: 'tokyo', address: TOKYO1.address }).changed).toBe(true);
    expect(upInView(state)).toHaveLength(3);
  });

  it('a drain does not soften a force-down', () => {
    const { state } = upState();
    state.admin('force-down', { site: 'tokyo' });
    expect(state.admin('drain', { site: 'tokyo' })).toEqual({ ok: true, changed: false });
    expect(state.admin('undrain', { site: 'tokyo' })).toEqual({ ok: true, changed: false });
    expect(why(state, 'tokyo', TOKYO1.address)).toBe('forced down by operator');
  });

  it('undrain does not lift a force-down; release lifts it (site and member)', () => {
    const { state } = upState();
    for (const target of [{ site: 'tokyo' }, { site: 'osaka', address: OSAKA1.address }]) {
      expect(state.admin('force-down', target)).toMatchObject({ ok: true, changed: true });
      expect(state.admin('force-down', target)).toEqual({ ok: true, changed: false });
      expect(state.admin('undrain', target)).toEqual({ ok: true, changed: false });
    }
    expect(upInView(state)).toEqual([]);
    expect(why(state, 'tokyo', TOKYO1.address)).toBe('forced down by operator');
    expect(why(state, 'osaka', OSAKA1.address)).toBe('forced down by operator');
    expect(state.admin('release', { site: 'tokyo' })).toEqual({ ok: true, changed: true });
    expect(state.admin('release', { site: 'osaka', address: OSAKA1.address })).toEqual({ ok: true, changed: true });
    expect(upInView(state)).toHaveLength(3);
    expect(state.listOverrides()).toEqual([]);
  });

  it('release lifts a drain too; release with nothing to lift changes nothing', () => {
    const { state } = upState();
    state.admin('drain', { site: 'tokyo', address: TOKYO1.address });
    expect(state.admin('release', { site: 'tokyo', address: TOKYO1.address })).toEqual({ ok: true, changed: true });
    expect(upInView(state)).toHaveLength(3);
    expect(state.admin('release', { site: 'tokyo', address: TOKYO1.address })).toEqual({ ok: true, changed: false });
  });

  it('a force-down wins over a drain; site and member overrides are separate targets', () => {
    const { state } = upState();
    state.admin('drain', { site: 'tokyo' });
    state.admin('force-down', { site: 'tokyo', address: TOKYO1.address });
    expect(why(state, 'tokyo', TOKYO1.address)).toBe('forced down by operator');
    expect(why(state, 'tokyo', TOKYO2.address)).toBe('drained by operator');
    // lifting the site drain leaves the member's force-down in place
    state.admin('undrain', { site: 'tokyo' });
    expect(upInView(state)).toEqual([`tokyo ${TOKYO2.address}`, `osaka ${OSAKA1.address}`]);
  });

  it('overrides hold a member even when its site is stale or it was never observed', () => {
    const { state } = setup();
    state.admin('force-down', { site: 'osaka' });
    expect(why(state, 'osaka', OSAKA1.address)).toBe('forced down by operator');
  });

  it('refuses unknown targets, changing nothing', () => {
    const { state, events } = upState();
    const epoch = state.view.epoch;
    const n = events.length;
    expect(state.admin('drain', { site: 'nowhere' })).toEqual({ ok: false, changed: false, status: 404, reason: 'unknown site "nowhere"' });
    expect(state.admin('force-down', { site: 'tokyo', address: '203.0.113.9' }))
      .toEqual({ ok: false, changed: false, status: 404, reason: 'no member 203.0.113.9 in site tokyo' });
    // a member of another site is not a member of this one
    expect(state.admin('drain', { site: 'tokyo', address: OSAKA1.address }).ok).toBe(false);
    expect(state.admin('release', { site: 'nowhere', address: TOKYO1.address }).ok).toBe(false);
    expect(state.listOverrides()).toEqual([]);
    expect(state.view.epoch).toBe(epoch);
    expect(events.length).toBe(n);
  });

  it('listOverrides is in a stable order, whatever order the actions came in', () => {
    const actions: [ 'drain' | 'force-down', { site: string; address?: string }][] = [
      ['drain', { site: 'tokyo' }],
      ['force-down', { site: 'osaka', address: OSAKA1.address }],
      ['drain', { site: 'tokyo', address: TOKYO2.address }],
      ['force-down', { site: 'osaka' }],
      ['drain', { site: 'tokyo', address: TOKYO1.address }],
    ];
    const a = setup().state;
    const b = setup().state;
    for (const [act, t] of actions) a.admin(act, t);
    for (const [act, t] of [...actions].reverse()) b.admin(act, t);
    const at = new Date(T0).toISOString();
    const want = [
      { action: 'force-down', site: 'osaka', address: OSAKA1.address, at },
      { action: 'drain', site: 'tokyo', address: TOKYO1.address, at },
      { action: 'drain', site: 'tokyo', address: TOKYO2.address, at },
      { action: 'force-down', site: 'osaka', at },
      { action: 'drain', site: 'tokyo', at },
    ];
    expect(a.listOverrides()).toEqual(want);
    expect(b.listOverrides()).toEqual(want);
    expect(a.listOverrides()).toEqual(a.listOverrides());
  });

  it('restoreOverrides replaces the overrides, drops unknown targets and returns them', () => {
    const { state, clock } = upState();
    state.admin('drain', { site: 'osaka' });
    clock.advance(1000);
    const dropped = state.restoreOverrides([
      { action: 'drain', site: 'nowhere' },
      { action: 'force-down', site: 'tokyo', address: TOKYO1.address, at: '2023-12-31T00:00:00.000Z' },
      { action: 'drain', site: 'tokyo', address: '203.0.113.9' },
      { action: 'drain', site: 'gone', address: '192.0.2.1' },
      { action: 'drain', site: 'tokyo', address: OSAKA1.address },
    ]);
    expect(dropped).toEqual(['site:nowhere', 'member:tokyo|203.0.113.9', 'member:gone|192.0.2.1', `member:tokyo|${OSAKA1.address}`]);
    expect(state.listOverrides()).toEqual([
      { action: 'force-down', site: 'tokyo', address: TOKYO1.address, at: '2023-12-31T00:00:00.000Z' },
    ]);
    // the earlier osaka drain is gone; the restored force-down holds
    expect(upInView(state)).toEqual([`tokyo ${TOKYO2.address}`, `osaka ${OSAKA1.address}`]);
    // `at` defaults to now
    state.restoreOverrides([{ action: 'drain', site: 'osaka' }]);
    expect(state.listOverrides()).toEqual([{ action: 'drain', site: 'osaka', at: new Date(T0 + 1000).toISOString() }]);
    expect(state.restoreOverrides([])).toEqual([]);
    expect(state.listOverrides()).toEqual([]);
  });
});

describe('GslbState: the epoch changes exactly when an answer could change', () => {
  function watched(config?: GslbConfig) {
    const s = setup(config);
    const views: HealthView[] = [];
    s.state.onChange((v) => views.push(v));
    /** runs fn and returns by how much the epoch moved, checking onChange saw each new view */
    const bumps = (fn: () => unknown): number => {
      const before = s.state.view;
      const n = views.length;
      fn();
      const after = s.state.view;
      expect(views.slice(n)).toEqual(after === before ? [] : [after]);
      if (after !== before) expect(views[views.length - 1]).toBe(after);
      return after.epoch - before.epoch;
    };
    return { ...s, bumps };
  }

  it('reports: a change of serving or weight bumps; a report that changes nothing does not', () => {
    const { state, bumps } = watched();
    expect(bumps(() => expect(state.applyReport(ALL_TOKYO_UP(1))).toEqual({ ok: true, changed: true }))).toBe(1);
    const view = state.view;
    // same states, new seq
    expect(bumps(() => expect(state.applyReport(ALL_TOKYO_UP(2))).toEqual({ ok: true, changed: false }))).toBe(0);
    expect(state.view).toBe(view);
    // an empty report (a heartbeat with no members) changes nothing either
    expect(bumps(() => state.applyReport(report('tokyo', 3, [])))).toBe(0);
    // weights, connections of a weighted pool: only the weight can change an answer
    expect(bumps(() => state.applyReport(report('tokyo', 4, [rm(TOKYO1.address, 'up', { connections: 50, capacity: 100 })])))).toBe(0);
    expect(bumps(() => state.applyReport(report('tokyo', 5, [rm(TOKYO1.address, 'up', { weight: 50 })])))).toBe(1);
    expect(bumps(() => state.applyReport(report('tokyo', 6, [rm(TOKYO1.address, 'up', { weight: 50 })])))).toBe(0);
    // unknown -> down in the startup window: it did not serve before and does not now, but it
    // stops pending (what the pool answers when nothing serves), so the view changes once
    expect(bumps(() => state.applyReport(report('osaka', 1, [rm(OSAKA1.address, 'down')])))).toBe(1);
    expect(bumps(() => state.applyReport(report('osaka', 2, [rm(OSAKA1.address, 'down')])))).toBe(0);
    expect(entry(state, 'osaka', OSAKA1.address).status).toBe('down');
    expect(bumps(() => state.applyReport(report('osaka', 3, [rm(OSAKA1.address, 'up')])))).toBe(1);
    // the last member up makes the pool not degraded; one down makes it degraded again
    expect(bumps(() => state.applyReport(report('tokyo', 7, [rm(TOKYO1.address, 'down')])))).toBe(1);
    expect(state.view.pools.get('www')!.degraded).toBe(true);
  });

  it('hysteresis: observations that do not reach rise or fall do not bump', () => {
    const { state, bumps } = watched(yamlConfig(HYST_YAML));
    expect(bumps(() => state.applyReport(report('hyst', 1, [rm('192.0.2.2', 'up')])))).toBe(0);
    expect(bumps(() => state.applyReport(report('hyst', 2, [rm('192.0.2.2', 'up')])))).toBe(1);
    expect(bumps(() => state.applyProbe('probed', '192.0.2.3', true))).toBe(0);
    expect(bumps(() => state.applyProbe('probed', '192.0.2.3', true))).toBe(1);
    expect(bumps(() => state.applyProbe('probed', '192.0.2.3', true))).toBe(0);
  });

  it('least-load: a change of connections or capacity bumps only for least-load pools', () => {
    const { state, bumps } = watched(yamlConfig(LOAD_YAML));
    const load = (seq: number, wl: [number, number], ll: [number, number]) => report('one', seq, [
      rm('192.0.2.10', 'up', { connections: wl[0], capacity: wl[1] }),
      rm('192.0.2.11', 'up', { connections: ll[0], capacity: ll[1] }),
    ]);
    expect(bumps(() => state.applyReport(load(1, [0, 100], [0, 100])))).toBe(1);
    expect(bumps(() => state.applyReport(load(2, [5, 100], [0, 100])))).toBe(0);
    expect(bumps(() => state.applyReport(load(3, [5, 200], [0, 100])))).toBe(0);
    expect(bumps(() => state.applyReport(load(4, [5, 200], [5, 100])))).toBe(1);
    expect(state.view.pools.get('ll')!.members[0]).toEqual({ up: true, weightPct: 100, connections: 5, capacity: 100 });
    expect(bumps(() => state.applyReport(load(5, [5, 200], [5, 200])))).toBe(1);
    expect(bumps(() => state.applyReport(load(6, [5, 200], [5, 200])))).toBe(0);
    // healthy / total are for people, not policies
    expect(bumps(() => state.applyReport(report('one', 7, [rm('192.0.2.11', 'up', { connections: 5, capacity: 200, healthy: 1, total: 2 })])))).toBe(0);
  });

  it('overrides, staleness and reloads bump only when serving changes', () => {
    const { state, clock, bumps } = watched();
    state.applyReport(ALL_TOKYO_UP(1));
    expect(bumps(() => state.admin('drain', { site: 'tokyo', address: TOKYO1.address }))).toBe(1);
    expect(bumps(() => state.admin('drain', { site: 'tokyo', address: TOKYO1.address }))).toBe(0);
    // drained -> forced down: it did not serve and does not, but a failing-open pool may no
    // longer fall back to it, so answers can change
    expect(bumps(() => expect(state.admin('force-down', { site: 'tokyo', address: TOKYO1.address }).changed).toBe(true))).toBe(1);
    // osaka never reported: forcing it down still takes it out of allDown answers
    expect(bumps(() => state.admin('force-down', { site: 'osaka' }))).toBe(1);
    expect(bumps(() => state.admin('release', { site: 'tokyo', address: TOKYO1.address }))).toBe(1);
    expect(bumps(() => state.tick())).toBe(0);
    clock.advance(10_001);
    expect(bumps(() => state.tick())).toBe(1);
    expect(bumps(() => state.tick())).toBe(0);
    expect(bumps(() => state.applyReport(ALL_TOKYO_UP(2)))).toBe(1);
    // refused reports and targets change nothing
    expect(bumps(() => state.applyReport(ALL_TOKYO_UP(2)))).toBe(0);
    expect(bumps(() => state.admin('drain', { site: 'nowhere' }))).toBe(0);
    // a reload may change any answer
    expect(bumps(() => state.setConfig(state.gslb))).toBe(1);
  });

  it('views are replaced, never mutated', () => {
    const { state } = setup();
    const v1 = state.view;
    const h1 = v1.pools.get('www')!;
    state.applyReport(ALL_TOKYO_UP(1));
    expect(state.view).not.toBe(v1);
    expect(v1.epoch).toBe(state.view.epoch - 1);
    expect(h1.members.map((m) => m.up)).toEqual([false, false, false]);
    expect(v1.pools.get('www')).toBe(h1);
  });
});

describe('GslbState: refused reports apply nothing and are counted', () => {
  it('replays: seq not greater than the last accepted for that (site, agent)', () => {
    const { state, events } = setup();
    expect(state.applyReport(report('tokyo', 5, [rm(TOKYO1.address, 'up')])).ok).toBe(true);
    const epoch = state.view.epoch;
    const n = events.length;
    for (const seq of [5, 4, 0]) {
      const r = state.applyReport(report('tokyo', seq, [rm(TOKYO1.address, 'down')]));
      expect(r).toMatchObject({ ok: false, status: 409 });
      expect(r.ok ? '' : r.reason).toBe(`seq ${seq} is not greater than the last accepted 5 (replay?)`);
    }
    expect(entry(state, 'tokyo', TOKYO1.address)).toEqual({ status: 'up', serving: true });
    expect(state.view.epoch).toBe(epoch);
    expect(events.length).toBe(n);
    expect(state.counters.reportsRejected.get('replay')).toBe(3);
    expect(state.counters.reportsAccepted).toBe(1);
    expect(snap(state).sites.find((s) => s.name === 'tokyo')!.lastSeq).toEqual({ 'tokyo-agent-1': 5 });
    expect(state.applyReport(report('tokyo', 6, [rm(TOKYO1.address, 'down')])).ok).toBe(true);
    expect(entry(state, 'tokyo', TOKYO1.address).status).toBe('down');
  });

  it('two agents of one site have separate sequences', () => {
    const { state } = setup();
    expect(state.applyReport(report('tokyo', 100, [rm(TOKYO1.address, 'up')], 'lb1')).ok).toBe(true);
    expect(state.applyReport(report('tokyo', 1, [rm(TOKYO1.address, 'up')], 'lb2')).ok).toBe(true);
    expect(state.applyReport(report('tokyo', 1, [rm(TOKYO1.address, 'down')], 'lb2'))).toMatchObject({ ok: false, status: 409 });
    expect(state.applyReport(report('tokyo', 50, [rm(TOKYO1.address, 'down')], 'lb1'))).toMatchObject({ ok: false, status: 409 });
    expect(state.applyReport(report('tokyo', 2, [rm(TOKYO1.address, 'up')], 'lb2')).ok).toBe(true);
    // the same seq from the same agent name at another site is another sequence too
    expect(state.applyReport(report('osaka', 100, [rm(OSAKA1.address, 'up')], 'lb1')).ok).toBe(true);
    expect(snap(state).sites.find((s) => s.name === 'tokyo')!.lastSeq).toEqual({ lb1: 100, lb2: 2 });
    expect(state.counters.reportsRejected.get('replay')).toBe(2);
    expect(state.counters.reportsAccepted).toBe(4);
  });

  it('a member not in that site refuses the whole report, and does not use up its seq or freshen the site', () => {
    const { state, clock, events } = setup();
    state.applyReport(ALL_TOKYO_UP(1));
    clock.advance(10_001);
    state.tick();
    const epoch = state.view.epoch;
    const n = events.length;
    const r = state.applyReport(report('tokyo', 2, [rm(TOKYO1.address, 'down'), rm(OSAKA1.address, 'up')]));
    expect(r).toEqual({ ok: false, status: 422, reason: `member ${OSAKA1.address} is not configured in site tokyo` });
    expect(state.applyReport(report('tokyo', 3, [rm('203.0.113.9', 'up')]))).toMatchObject({ ok: false, status: 422 });
    expect(entry(state, 'tokyo', TOKYO1.address).status).toBe('up');
    expect(why(state, 'tokyo', TOKYO1.address)).toBe('site stale');
    expect(state.view.epoch).toBe(epoch);
    expect(events.length).toBe(n);
    expect(state.counters.reportsRejected.get('foreign-member')).toBe(2);
    expect(snap(state).sites.find((s) => s.name === 'tokyo')!.lastSeq).toEqual({ 'tokyo-agent-1': 1 });
    // seq 2 was not consumed
    expect(state.applyReport(report('tokyo', 2, [rm(TOKYO1.address, 'down')])).ok).toBe(true);
  });

  it('an unknown site is refused', () => {
    const { state } = setup();
    const epoch = state.view.epoch;
    expect(state.applyReport(report('nowhere', 1, [rm(TOKYO1.address, 'up')])))
      .toEqual({ ok: false, status: 404, reason: 'unknown site "nowhere"' });
    expect(state.counters.reportsRejected.get('unknown-site')).toBe(1);
    expect(state.counters.reportsAccepted).toBe(0);
    expect(state.view.epoch).toBe(epoch);
    expect(entry(state, 'tokyo', TOKYO1.address).status).toBe('unknown');
  });

  it('countRejected counts refusals made before applyReport by their reason key', () => {
    const { state } = setup();
    state.countRejected('bad-signature: mismatch');
    state.countRejected('bad-signature');
    state.countRejected('skew');
    expect(Object.fromEntries(state.counters.reportsRejected)).toEqual({ 'bad-signature': 2, skew: 1 });
  });
});

describe('GslbState: setConfig', () => {
  /** The fixture config with pool www holding exactly `members` (and only the sites named). */
  function variant(members: readonly MemberLit[], siteNames = ['tokyo', 'osaka', 'nagoya']): GslbConfig {
    const base = createGslbConfig();
    const www: PoolConfig = { ...base.pools.get('www')!, members: members.map(member) };
    const sites = new Map([...base.sites].filter(([n]) => siteNames.includes(n)));
    return { sites, pools: new Map([['www', www]]), byName: new Map(www.names.map((n) => [n, www])) };
  }

  it('keeps the state of members that remain, drops removed ones, adds new ones as unknown', () => {
    const { state, clock } = setup();
    state.applyReport(report('tokyo', 1, [rm(TOKYO1.address, 'up'), rm(TOKYO2.address, 'down')]));
    state.applyReport(report('osaka', 1, [rm(OSAKA1.address, 'up')]));
    state.admin('drain', { site: 'osaka', address: OSAKA1.address });
    clock.advance(3000);
    const epoch = state.view.epoch;
    state.setConfig(variant([
      ['192.0.2.1', { site: 'tokyo' }],
      ['198.51.100.1', { site: 'osaka' }],
      ['192.0.2.3', { site: 'tokyo' }],
    ]));
    expect(state.view.epoch).toBe(epoch + 1);
    expect(state.memberStates()).toEqual([
      { site: 'tokyo', address: '192.0.2.1', status: 'up', serving: true },
      { site: 'osaka', address: '198.51.100.1', status: 'up', serving: false },
      { site: 'tokyo', address: '192.0.2.3', status: 'unknown', serving: false },
    ]);
    expect(state.hasMember('tokyo', TOKYO2.address)).toBe(false);
    expect(state.hasMember('tokyo', '192.0.2.3')).toBe(true);
    expect(upInView(state)).toEqual(['tokyo 192.0.2.1']);
    // the view is aligned with the new member list
    expect(state.view.pools.get('www')!.members.map((m) => m.up)).toEqual([true, false, false]);
    // reports may no longer name a removed member; sequences are kept
    expect(state.applyReport(report('tokyo', 2, [rm(TOKYO2.address, 'up')]))).toMatchObject({ ok: false, status: 422 });
    expect(state.applyReport(report('tokyo', 1, [rm(TOKYO1.address, 'down')]))).toMatchObject({ ok: false, status: 409 });
    // the site keeps its freshness clock: 3 s have passed of 10
    clock.advance(7_001);
    state.tick();
    expect(why(state, 'tokyo', TOKYO1.address)).toBe('site stale');

    // a member that comes back starts over
    state.setConfig(variant([['192.0.2.2', { site: 'tokyo' }]]));
    expect(entry(state, 'tokyo', TOKYO2.address).status).toBe('unknown');
  });

  it('drops overrides whose target is gone, as a restart would, with an event', () => {
    const { state } = setup();
    state.admin('drain', { site: 'tokyo', address: TOKYO2.address });
    state.admin('force-down', { site: 'osaka' });
    state.setConfig(variant([['192.0.2.1', { site: 'tokyo' }]], ['tokyo']));
    expect(state.listOverrides()).toEqual([]);
    const types = (snap(state) as unknown as { events: { type: string }[] }).events.map((e) => e.type);
    expect(types.filter((t) => t === 'override-dropped')).toHaveLength(2);
  });

  it('drops a removed site: its reports are refused as unknown', () => {
    const { state } = setup();
    state.applyReport(report('osaka', 1, [rm(OSAKA1.address, 'up')]));
    state.setConfig(variant([['192.0.2.1', { site: 'tokyo' }]], ['tokyo']));
    expect(snap(state).sites.map((s) => s.name)).toEqual(['tokyo']);
    expect(state.applyReport(report('osaka', 2, [rm(OSAKA1.address, 'up')]))).toMatchObject({ ok: false, status: 404 });
    expect(state.memberStates().map((m) => m.site)).toEqual(['tokyo']);
  });

  it('a site that becomes probe-only on reload no longer goes stale, and one that gets an agent can', () => {
    const agentYaml = `
sites:
  s: { secret: env:S_ONE, staleAfter: 1s, rise: 1, fall: 1 }
pools:
  p: { names: [p], members: [{ site: s, address: 192.0.2.1 }] }
`;
    const probeYaml = `
sites:
  s: { probe: { type: tcp, port: 9 }, staleAfter: 1s, rise: 1, fall: 1 }
pools:
  p: { names: [p], members: [{ site: s, address: 192.0.2.1 }] }
`;
    const { state, clock } = setup(yamlConfig(agentYaml));
    clock.advance(1001);
    state.tick();
    expect(snap(state).sites[0]).toMatchObject({ mode: 'agent', stale: true });

    state.setConfig(yamlConfig(probeYaml));
    state.applyProbe('s', '192.0.2.1', true);
    clock.advance(60_000);
    state.tick();
    expect(snap(state).sites[0]).toMatchObject({ mode: 'probe', stale: false, lastReportAgeMs: null });
    expect(upInView(state, 'p')).toEqual(['s 192.0.2.1']);

    // back to an agent: staleness counts from the reload
    state.setConfig(yamlConfig(agentYaml));
    expect(upInView(state, 'p')).toEqual(['s 192.0.2.1']);
    clock.advance(1001);
    state.tick();
    expect(snap(state).sites[0]).toMatchObject({ mode: 'agent', stale: true });
    expect(upInView(state, 'p')).toEqual([]);
  });
});

describe('GslbState: snapshot', () => {
  it('has sites with report ages, pools with each member and why, overrides and events', () => {
    const { state, clock } = setup();
    state.applyReport(report('tokyo', 7, [
      rm(TOKYO1.address, 'up', { weight: 50, connections: 3, capacity: 10, healthy: 1, total: 2 }),
      rm(TOKYO2.address, 'down', { weight: 0 }),
    ]));
    clock.advance(1500);
    state.admin('drain', { site: 'osaka' });
    clock.advance(500);
    const s = snap(state);
    expect(s).toEqual({
      epoch: state.view.epoch,
      serverTime: T0 + 2000,
      sites: [
        {
          name: 'tokyo', mode: 'agent', stale: false, restored: false, lastReportAgeMs: 2000, lastReportAt: T0, agent: 'tokyo-agent-1',
          lastSeq: { 'tokyo-agent-1': 7 }, staleAfterMs: 10_000,
        },
        // never reported: the age counts from start-up
        { name: 'osaka', mode: 'agent', stale: false, restored: false, lastReportAgeMs: 2000, lastReportAt: null, agent: null, lastSeq: {}, staleAfterMs: 10_000 },
        { name: 'nagoya', mode: 'probe', stale: false, restored: false, lastReportAgeMs: null, lastReportAt: null, agent: null, lastSeq: {}, staleAfterMs: 10_000 },
      ],
      pools: [{
        name: 'www', policy: 'weighted', names: ['www.gslb.example.test.'], degraded: true, startupPending: false,
        members: [
          {
            site: 'tokyo', address: TOKYO1.address, tier: 1, weight: 100, status: 'up', restored: false, pending: false, serving: true, why: 'up',
            reportedWeightPct: 50, effectiveWeight: 50, connections: 3, capacity: 10, healthy: 1, total: 2, lastObservedAgeMs: 2000,
          },
          {
            site: 'tokyo', address: TOKYO2.address, tier: 1, weight: 100, status: 'down', restored: false, pending: false, serving: false, why: 'down',
            reportedWeightPct: 0, effectiveWeight: 0, connections: 0, capacity: 0, healthy: 0, total: 0, lastObservedAgeMs: 2000,
          },
          {
            site: 'osaka', address: OSAKA1.address, tier: 1, weight: 100, status: 'unknown', restored: false, pending: false, serving: false, why: 'drained by operator',
            reportedWeightPct: 100, effectiveWeight: 0, connections: 0, capacity: 0, healthy: 0, total: 0, lastObservedAgeMs: null,
          },
        ],
      }],
      overrides: [{ action: 'drain', site: 'osaka', at: new Date(T0 + 1500).toISOString() }],
      events: [
        { at: new Date(T0 + 1500).toISOString(), type: 'admin-drain', site: 'osaka', detail: 'operator' },
        { at: new Date(T0).toISOString(), type: 'member-down', site: 'tokyo', address: TOKYO2.address, detail: 'was unknown' },
        { at: new Date(T0).toISOString(), type: 'member-up', site: 'tokyo', address: TOKYO1.address, detail: 'was unknown' },
      ],
    });
    // plain data: it survives JSON
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });

  it('keeps at most 200 events, newest first', () => {
    const { state, clock, events } = setup();
    for (let seq = 1; seq <= 150; seq++) {
      clock.advance(1);
      state.applyReport(report('tokyo', seq, [rm(TOKYO1.address, seq % 2 ? 'up' : 'down'), rm(TOKYO2.address, seq % 2 ? 'down' : 'up')]));
    }
    expect(events).toHaveLength(300);
    const kept = snap(state).events;
    expect(kept).toHaveLength(200);
    expect(kept).toEqual(events.slice(-200).reverse());
    expect(kept[0]!.at).toBe(new Date(T0 + 150).toISOString());
    // a snapshot is a copy: taking one does not drain or reorder the ring
    expect(snap(state).events).toEqual(kept);
  });
});

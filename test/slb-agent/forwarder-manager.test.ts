/**
 * The forwarder manager with recording data planes: the specs it builds from config and live
 * health, which plane each VIP goes to, one apply per tick of changes, one apply in flight, and
 * retries after failures. The agent wiring is checked with the same recording planes.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createAgent } from '../../slb-agent/agent.js';
import type { Agent } from '../../slb-agent/agent.js';
import { parseAgentConfig } from '../../slb-agent/config.js';
import type { VipConfig } from '../../slb-agent/config.js';
import type { BackendStats, DataPlane, VipSpec } from '../../slb-agent/forwarder/data-plane.js';
import { buildVipSpec, createForwarderManager, planeOf } from '../../slb-agent/forwarder/manager.js';
import type { ApplyOutcome, ForwarderManager, LiveRealServer, PlaneKind } from '../../slb-agent/forwarder/manager.js';
import { DEFAULT_VNI } from '../../slb-agent/forwarder/tunnel.js';

const CONFIG = `
site: tokyo
agent: lb1
secret: env:S
dns: [ "http://127.0.0.1:1" ]
vips:
  - name: web
    address: 192.0.2.1
    port: 80
    forwarder: { mode: proxy, scheduler: wlc, persistence: 1m, flowTimeout: 30s }
    check: { type: tcp, rise: 1, fall: 1 }
    realServers:
      - { address: 10.0.0.1, port: 8080, weight: 3 }
      - { address: "2001:db8::2", port: 8080 }
      - { address: 10.0.0.3, port: 8080, backup: true }
  - name: dsr
    address: 192.0.2.2
    port: 443
    forwarder: { mode: l3dsr-tunnel, interface: eth0, scheduler: maglev }
    check: { type: tcp, rise: 1, fall: 1 }
    realServers:
      - { address: 10.0.1.1, port: 443 }
      - { address: 10.0.1.2, port: 443 }
  - name: plain
    address: 192.0.2.3
    port: 53
    realServers: [{ address: 10.0.2.1, port: 53 }]
`;

const config = (text = CONFIG) => parseAgentConfig(text, 'site.yaml', { S: 'tokyo-secret-0123456789abcdef-0123456789' });
const silent = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` (bounded); the assertion after it says what was expected. */
async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond() && performance.now() < end) await sleep(2);
}

/** A data plane that records every apply; applies can be held open or made to fail. */
interface RecordingPlane extends DataPlane {
  readonly kind: PlaneKind;
  readonly applies: (readonly VipSpec[])[];
  maxInFlight: number;
  failNext: number;
  closed: boolean;
  stats_: BackendStats[];
  hold(): () => void;
}

function recordingPlane(kind: PlaneKind): RecordingPlane {
  let inFlight = 0;
  let gate: Promise<void> | undefined;
  const plane: RecordingPlane = {
    kind, applies: [], maxInFlight: 0, failNext: 0, closed: false, stats_: [],
    async apply(vips) {
      inFlight++;
      plane.maxInFlight = Math.max(plane.maxInFlight, inFlight);
      plane.applies.push(vips);
      try {
        if (gate) await gate;
        if (plane.failNext > 0) {
          plane.failNext--;
          throw new Error(`${kind} refused`);
        }
      } finally {
        inFlight--;
      }
    },
    async stats() { return plane.stats_; },
    async close() { plane.closed = true; },
    hold() {
      let release!: () => void;
      gate = new Promise((r) => { release = r; });
      return () => { gate = undefined; release(); };
    },
  };
  return plane;
}

function live(vip: VipConfig, over: Record<string, Partial<LiveRealServer>> = {}): LiveRealServer[] {
  return vip.realServers.map((rs) => ({ config: rs, health: 'up' as const, drained: false, ...over[rs.address] }));
}

describe('buildVipSpec', () => {
  const [web, dsr] = config().vips as [VipConfig, VipConfig];

  it('ids are address:port ([v6]:port); healthy, drained, backup and weights from config and live state', () => {
    const spec = buildVipSpec(web, web.forwarder!, live(web, { '2001:db8::2': { health: 'down' }, '10.0.0.3': { drained: true } }));
    expect(spec).toEqual({
      name: 'web', address: '192.0.2.1', port: 80, protocol: 'tcp', mode: 'proxy', scheduler: 'wlc', persistenceMs: 60_000, flowTimeoutMs: 30_000,
      realServers: [
        { id: '10.0.0.1:8080', address: '10.0.0.1', port: 8080, weight: 3, backup: false, healthy: true, drained: false },
        { id: '[2001:db8::2]:8080', address: '2001:db8::2', port: 8080, weight: 1, backup: false, healthy: false, drained: false },
        { id: '10.0.0.3:8080', address: '10.0.0.3', port: 8080, weight: 1, backup: true, healthy: true, drained: true },
      ],
    });
  });

  it('kernel-mode fields pass through', () => {
    expect(buildVipSpec(dsr, dsr.forwarder!, live(dsr))).toMatchObject({
      mode: 'l3dsr-tunnel', interface: 'eth0', tunnel: 'vxlan', vni: DEFAULT_VNI, scheduler: 'maglev', persistenceMs: 0,
    });
  });

  it('agent-check advice: a percentage scales the weight (integer ratios kept), down is unhealthy, drain and maint drain', () => {
    const spec = buildVipSpec(web, web.forwarder!, live(web, {
      '10.0.0.1': { agent: { weightPct: 50 } },
      '2001:db8::2': { agent: { state: 'drain' } },
      '10.0.0.3': { agent: { state: 'down' } },
    }));
    // 3 x 50% : 1 x 100% : 1 x 100% = 150 : 100 : 100 = 3 : 2 : 2
    expect(spec.realServers.map((r) => [r.weight, r.healthy, r.drained])).toEqual([[3, true, false], [2, true, true], [2, false, false]]);
  });
});

describe('forwarder manager', () => {
  let manager: ForwarderManager | undefined;
  afterEach(async () => { await manager?.close(); manager = undefined; });

  /** A manager over `specs()` with recording planes, started and with its first apply done. */
  async function started(specs: () => readonly VipSpec[], retry = { initialMs: 1, maxMs: 4 }) {
    const planes = new Map<PlaneKind, RecordingPlane>();
    const created: PlaneKind[] = [];
    manager = createForwarderManager({
      desired: specs, logger: silent, retry,
      createDataPlane: (kind) => {
        created.push(kind);
        const p = recordingPlane(kind);
        planes.set(kind, p);
        return p;
      },
    });
    manager.start();
    await until(() => manager!.status().applies + manager!.status().applyErrors > 0);
    return { m: manager, planes, created };
  }

  const cfg = config();
  const state = new Map(cfg.vips.flatMap((v) => v.realServers.map((rs) => [`${v.name} ${rs.address}`, { health: 'up' as 'up' | 'down', drained: false }])));
  const desired = (): VipSpec[] => cfg.vips.filter((v) => v.forwarder !== undefined).map((v) =>
    buildVipSpec(v, v.forwarder!, v.realServers.map((rs) => ({ config: rs, ...state.get(`${v.name} ${rs.address}`)! }))));

  it('kernel VIPs go to the nftables plane, proxy VIPs to the proxy plane; unforwarded VIPs to none', async () => {
    const { m, planes, created } = await started(desired);
    expect(m.planes).toEqual(['proxy', 'nftables']);
    expect(created.sort()).toEqual(['nftables', 'proxy']);
    expect(planes.get('proxy')!.applies.map((a) => a.map((s) => s.name))).toEqual([['web']]);
    expect(planes.get('nftables')!.applies.map((a) => a.map((s) => s.name))).toEqual([['dsr']]);
    expect(planeOf('nat')).toBe('nftables');
    const s = m.status();
    expect(s).toMatchObject({ applies: 1, applyErrors: 0, pending: false });
    expect(s.vips['web']).toMatchObject({ mode: 'proxy', scheduler: 'wlc', plane: 'proxy', lastApply: { ok: true } });
    expect(s.vips['dsr']).toMatchObject({ mode: 'l3dsr-tunnel', plane: 'nftables', lastApply: { ok: true } });
    expect(s.lastApplyMs).toBeGreaterThanOrEqual(0);
    expect(s.applyLatency.count).toBe(1);
    expect(s.applyLatency.buckets.at(-1)!.count).toBe(1);
    expect(Object.keys(s.vips)).toEqual(['web', 'dsr']);
  });

  it('creates only the planes the config uses', async () => {
    const proxyOnly = config().vips.filter((v) => v.forwarder?.mode === 'proxy');
    const { m, created } = await started(() => proxyOnly.map((v) => buildVipSpec(v, v.forwarder!, live(v))));
    expect(m.planes).toEqual(['proxy']);
    expect(created).toEqual(['proxy']);
  });

  it('many changes in one tick make one apply, with the latest state', async () => {
    const { m, planes } = await started(desired);
    const proxy = planes.get('proxy')!;
    for (let i = 0; i < 50; i++) {
      state.get('web 10.0.0.1')!.health = i % 2 === 0 ? 'down' : 'up';
      m.changed();
    }
    state.get('web 10.0.0.1')!.health = 'down';
    m.changed();
    await until(() => proxy.applies.length >= 2 && !m.status().pending);
    await sleep(20);
    expect(proxy.applies).toHaveLength(2);
    expect(proxy.applies[1]![0]!.realServers[0]).toMatchObject({ id: '10.0.0.1:8080', healthy: false });
    // both planes converge to the whole desired state, each with its own VIPs
    expect(planes.get('nftables')!.applies).toHaveLength(2);
    state.get('web 10.0.0.1')!.health = 'up';
  });

  it('one apply in flight: changes meanwhile make exactly one more apply, with the latest state', async () => {
    const { m, planes } = await started(desired);
    const proxy = planes.get('proxy')!;
    const release = proxy.hold();
    state.get('web 10.0.0.3')!.drained = true;
    m.changed();
    await until(() => proxy.applies.length === 2);
    // three more changes over several ticks while the apply hangs
    for (const h of ['down', 'up', 'down'] as const) {
      state.get('web 10.0.0.1')!.health = h;
      m.changed();
      await sleep(5);
    }
    expect(proxy.applies).toHaveLength(2);
    expect(m.status().pending).toBe(true);
    release();
    await until(() => proxy.applies.length >= 3 && !m.status().pending);
    await sleep(20);
    expect(proxy.maxInFlight).toBe(1);
    expect(proxy.applies).toHaveLength(3);
    expect(proxy.applies[2]![0]!.realServers.map((r) => [r.healthy, r.drained])).toEqual([[false, false], [true, false], [true, true]]);
    state.get('web 10.0.0.1')!.health = 'up';
    state.get('web 10.0.0.3')!.drained = false;
  });

  it('a failing apply is logged with its VIPs, shown in the status and retried until it succeeds', async () => {
    const logs: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => { logs.push(JSON.parse(l) as Record<string, unknown>); } });
    const plane = recordingPlane('nftables');
    plane.failNext = 3;
    let attempts = 0;
    // the first attempt's outcomes, as the agent hears them (the 1 ms retry may beat a status poll)
    let first: ReadonlyMap<string, ApplyOutcome> | undefined;
    manager = createForwarderManager({
      desired, logger, retry: { initialMs: 1, maxMs: 8 }, onApplied: (o) => { first ??= new Map(o); },
      createDataPlane: (kind) => {
        // the proxy plane cannot even be created the first time (like nftables on a kernel without it)
        if (kind === 'proxy' && attempts++ === 0) throw new Error('no proxy today');
        return kind === 'proxy' ? recordingPlane('proxy') : plane;
      },
    });
    manager.start();
    await until(() => manager!.status().applyErrors > 0);
    expect(first!.get('dsr')).toMatchObject({ ok: false, error: 'nftables refused' });
    expect(first!.get('web')).toMatchObject({ ok: false, error: 'no proxy today' });
    await until(() => manager!.status().applies === 1);
    const s = manager.status();
    expect(plane.applies).toHaveLength(4);
    expect(s).toMatchObject({ applies: 1, applyErrors: 4, consecutiveFailures: 0, pending: false });
    expect(s.vips['dsr']!.lastApply).toEqual({ ok: true, at: expect.any(Number) as number });
    expect(s.vips['web']!.lastApply!.ok).toBe(true);
    expect(logs.filter((l) => l['msg'] === 'forwarder: nftables apply failed for dsr')).toHaveLength(3);
    expect(logs.find((l) => l['msg'] === 'forwarder: proxy apply failed for web')).toMatchObject({ plane: 'proxy', vips: ['web'], err: 'no proxy today' });
    expect(logs.some((l) => l['msg'] === 'forwarder: apply succeeded again')).toBe(true);
  });

  it('stats() gathers every plane; close() closes them and nothing is applied after it', async () => {
    const { m, planes } = await started(desired);
    planes.get('proxy')!.stats_ = [{ vip: 'web', backend: '10.0.0.1:8080', active: 2, total: 5 }];
    planes.get('nftables')!.stats_ = [{ vip: 'dsr', backend: '10.0.1.1:443', active: 1, total: 1 }];
    expect((await m.stats()).sort((a, b) => a.vip.localeCompare(b.vip))).toEqual([
      { vip: 'dsr', backend: '10.0.1.1:443', active: 1, total: 1 },
      { vip: 'web', backend: '10.0.0.1:8080', active: 2, total: 5 },
    ]);
    await m.close();
    expect([...planes.values()].every((p) => p.closed)).toBe(true);
    m.changed();
    await sleep(10);
    expect(planes.get('proxy')!.applies).toHaveLength(1);
  });
});

describe('agent with forwarded VIPs', () => {
  let agent: Agent | undefined;
  afterEach(async () => { await agent?.stop(); agent = undefined; });

  it('health and drains reach the data plane; flow counters reach the status and the VIP report', async () => {
    const planes = new Map<PlaneKind, RecordingPlane>();
    // the checks agree with the results fed by hand below, whenever they run
    const up = new Set<string>();
    agent = createAgent({
      config: config(), logger: silent,
      createChecker: () => async (t) => (up.has(t.address) ? { ok: true, latencyMs: 1 } : { ok: false, latencyMs: 1, error: 'refused' }),
      createDataPlane: (kind) => { const p = recordingPlane(kind); planes.set(kind, p); return p; },
    });
    agent.start();
    await until(() => planes.get('proxy')?.applies.length === 1);
    const proxy = planes.get('proxy')!;
    expect(proxy.applies[0]![0]!.realServers.every((r) => !r.healthy)).toBe(true);

    up.add('10.0.0.1');
    agent.applyResult('web/10.0.0.1:8080', { ok: true, latencyMs: 1 });
    await until(() => proxy.applies.length === 2);
    expect(proxy.applies[1]![0]!.realServers[0]).toMatchObject({ id: '10.0.0.1:8080', healthy: true, drained: false });

    // draining the VIP drains every real server of it in the plane
    expect(agent.drainVip('web', true)).toEqual({ ok: true, changed: true });
    await until(() => proxy.applies.length === 3);
    expect(proxy.applies[2]![0]!.realServers.every((r) => r.drained)).toBe(true);

    proxy.stats_ = [{ vip: 'web', backend: '10.0.0.1:8080', active: 4, total: 9 }];
    await agent.refreshStats();
    const s = agent.status();
    const web = s.vips.find((v) => v.name === 'web')!;
    expect(web.connections).toBe(4);
    expect(web.forwarder).toMatchObject({ mode: 'proxy', scheduler: 'wlc', plane: 'proxy', flows: { active: 4, total: 9 }, lastApply: { ok: true } });
    expect(web.realServers[0]!.forwarder).toEqual({ id: '10.0.0.1:8080', active: 4, total: 9 });
    expect(web.realServers[1]!.forwarder).toEqual({ id: '[2001:db8::2]:8080', active: 0, total: 0 });
    expect(s.vips.find((v) => v.name === 'plain')!.forwarder).toBeUndefined();
    expect(s.forwarder).toMatchObject({ planes: ['proxy', 'nftables'], cleanupOnExit: false });
    expect(agent.members().find((mb) => mb.address === '192.0.2.1')!.connections).toBe(4);

    await agent.stop();
    agent = undefined;
    expect(proxy.closed && planes.get('nftables')!.closed).toBe(true);
  });

  it('without forwarded VIPs no plane is created', async () => {
    const created: PlaneKind[] = [];
    const plainOnly = CONFIG.replace(/ {4}forwarder: .*\n/g, '');
    agent = createAgent({
      config: config(plainOnly), logger: silent,
      createChecker: () => async () => ({ ok: true, latencyMs: 1 }),
      createDataPlane: (kind) => { created.push(kind); return recordingPlane(kind); },
    });
    agent.start();
    agent.applyResult('web/10.0.0.1:8080', { ok: true, latencyMs: 1 });
    await sleep(20);
    expect(created).toEqual([]);
    expect(agent.status().forwarder).toBeUndefined();
    expect(agent.status().vips.every((v) => v.forwarder === undefined)).toBe(true);
  });
});

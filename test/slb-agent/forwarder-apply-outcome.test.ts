/**
 * A VIP whose data plane is not in place is reported down, with the reason, and up again on the
 * next successful apply. The manager side: a plane that fails some VIPs only (PlaneApplyError)
 * fails just those; the retry backoff doubles from 200 ms and is capped at 1 s (driven here by
 * an injected clock), so a VIP is back within 2 s of its cause going away. The agent side: the first
 * report waits for the first apply, and carries `down` + reason while the apply fails.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createAgent } from '../../slb-agent/agent.js';
import type { Agent } from '../../slb-agent/agent.js';
import { parseAgentConfig } from '../../slb-agent/config.js';
import { PlaneApplyError } from '../../slb-agent/forwarder/data-plane.js';
import type { DataPlane, VipSpec } from '../../slb-agent/forwarder/data-plane.js';
import { createForwarderManager } from '../../slb-agent/forwarder/manager.js';
import type { ApplyOutcome, ForwarderManager } from '../../slb-agent/forwarder/manager.js';
import { systemClock } from '../../shared/clock.js';
import type { Clock } from '../../shared/clock.js';
import { startReportSink } from '../helpers/report-sink.js';
import type { ReportSink } from '../helpers/report-sink.js';

const silent = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond() && performance.now() < end) await sleep(2);
  if (!cond()) throw new Error('condition not met in time');
}

/** Plane timeouts and the stats refresh use real timers here: at or above this, a timer is not the retry's. */
const PLANE_TIMEOUT_MS = 60_000;

/**
 * A clock whose retry timers (below PLANE_TIMEOUT_MS) run only when the test says so, remembering
 * every delay asked for; longer timers (plane timeouts) are the system's, and never fire in a test.
 */
function manualRetryClock(): Clock & { delays: number[]; fire(): void } {
  let next: (() => void) | undefined;
  const delays: number[] = [];
  return {
    ...systemClock,
    delays,
    setTimeout(fn, ms) {
      if (ms >= PLANE_TIMEOUT_MS) return systemClock.setTimeout(fn, ms);
      delays.push(ms);
      next = fn;
      return fn;
    },
    clearTimeout(h) { if (h === next) next = undefined; else systemClock.clearTimeout(h); },
    fire() { const f = next; next = undefined; f?.(); },
  };
}

/** A plane that fails the VIPs named in `failing` (PlaneApplyError), recording each apply. */
function partialPlane(failing: Set<string>): DataPlane & { applies: string[][] } {
  const applies: string[][] = [];
  return {
    applies,
    async apply(specs: readonly VipSpec[]) {
      applies.push(specs.map((s) => s.name));
      const failed = new Map(specs.filter((s) => failing.has(s.name)).map((s) => [s.name, `cannot listen on tcp ${s.address}:${s.port}: listen EADDRINUSE`]));
      if (failed.size > 0) throw new PlaneApplyError(`could not start ${[...failed.keys()].join(', ')}`, failed);
    },
    stats: async () => [],
    close: async () => undefined,
  };
}

const spec = (name: string, port: number): VipSpec => ({
  name, address: '127.0.0.1', port, protocol: 'tcp', scheduler: 'wrr', persistenceMs: 0, mode: 'proxy', realServers: [],
});

let manager: ForwarderManager | undefined;
let agent: Agent | undefined;
let sink: ReportSink | undefined;
afterEach(async () => {
  await manager?.close();
  manager = undefined;
  await agent?.stop();
  agent = undefined;
  await sink?.close();
  sink = undefined;
});

describe('apply outcomes', () => {
  it('a plane failing one VIP fails only that one; retries back off 200, 400, 800, then 1000 ms at most', async () => {
    const failing = new Set(['b']);
    const plane = partialPlane(failing);
    const timers = manualRetryClock();
    const heard: ReadonlyMap<string, ApplyOutcome>[] = [];
    manager = createForwarderManager({
      desired: () => [spec('a', 1001), spec('b', 1002)], createDataPlane: () => plane, logger: silent, clock: timers, timeoutMs: PLANE_TIMEOUT_MS,
      onApplied: (o) => heard.push(o),
    });
    manager.start();
    await until(() => heard.length === 1);
    expect(heard[0]!.get('a')).toMatchObject({ ok: true });
    expect(heard[0]!.get('b')).toMatchObject({ ok: false, error: expect.stringContaining('EADDRINUSE') as string });
    expect(manager.outcome('b')!.ok).toBe(false);
    for (let i = 2; i <= 5; i++) {
      timers.fire();
      await until(() => heard.length === i);
    }
    expect(timers.delays).toEqual([200, 400, 800, 1000, 1000]);
    failing.clear();
    timers.fire();
    await until(() => heard.length === 6);
    expect(heard[5]!.get('b')).toMatchObject({ ok: true });
    expect(manager.status()).toMatchObject({ consecutiveFailures: 0, applies: 1 });
  });

  it('the agent reports a VIP whose plane failed as down with the reason, and up after the next successful apply', async () => {
    sink = await startReportSink();
    const { reports } = sink;
    const config = parseAgentConfig(`
site: tokyo
agent: lb1
secret: env:S
dns: [ "${sink.url}" ]
report: { interval: 5s }
vips:
  - { name: web, address: 127.0.0.1, port: 8080, forwarder: { mode: proxy }, check: { type: tcp, interval: 100ms, timeout: 50ms, rise: 1 },
      realServers: [ { address: 127.0.0.11, port: 8080 } ] }
`, 'site.yaml', { S: 'tokyo-secret-0123456789abcdef-0123456789' });
    const failing = new Set(['web']);
    const timers = manualRetryClock();
    agent = createAgent({
      config, logger: silent, createChecker: () => async () => ({ ok: true, latencyMs: 1 }),
      createDataPlane: () => partialPlane(failing), forwarder: { clock: timers, timeoutMs: PLANE_TIMEOUT_MS },
    });
    agent.start();
    await until(() => reports.length > 0);
    // the first report already knows the apply failed: never "up" before the plane is in place
    expect(reports[0]!.members[0]).toMatchObject({ address: '127.0.0.1', state: 'down', weight: 0 });
    expect(reports[0]!.members[0]!.reason).toMatch(/^forwarder: cannot listen on tcp 127\.0\.0\.1:8080: listen EADDRINUSE/);
    expect(agent.status().vips[0]).toMatchObject({ state: 'down', healthy: 1 });
    failing.clear();
    timers.fire();
    await until(() => reports.some((r) => r.members[0]!.state === 'up'));
    const up = reports.find((r) => r.members[0]!.state === 'up')!.members[0]!;
    expect(up.reason).toBeUndefined();
    expect(agent.status().vips[0]!.forwarder!.lastApply).toMatchObject({ ok: true });
  });
});

/**
 * The agent runtime's stop and reload with fake checkers and recording data planes:
 *   - a graceful stop reports proxy VIPs down ("agent stopped") and kernel-forwarded and
 *     check-only VIPs as they were but `checked: false`; with cleanupOnExit the kernel VIPs go
 *     down too; a handover sends nothing;
 *   - a reload keeps the health of real servers whose check did not change (no flap), starts a
 *     changed check from the current state, adds and removes real servers and VIPs, and refuses a
 *     different site, agent or api.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createAgent } from '../../slb-agent/agent.js';
import type { Agent } from '../../slb-agent/agent.js';
import { parseAgentConfig } from '../../slb-agent/config.js';
import type { DataPlane } from '../../slb-agent/forwarder/data-plane.js';
import { startReportSink } from '../helpers/report-sink.js';
import type { ReportSink } from '../helpers/report-sink.js';

const silent = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond() && performance.now() < end) await sleep(5);
  if (!cond()) throw new Error('condition not met in time');
}
const okPlane = (): DataPlane => ({ apply: async () => undefined, stats: async () => [], close: async () => undefined });

let sink: ReportSink | undefined;
let agent: Agent | undefined;
afterEach(async () => {
  await agent?.stop();
  agent = undefined;
  await sink?.close();
  sink = undefined;
});

async function fakeDns(): Promise<ReportSink> {
  sink = await startReportSink();
  return sink;
}

const CHECK = '{ type: tcp, interval: 50ms, timeout: 20ms, rise: 1, fall: 1 }';
function file(dns: string, opts: { cleanup?: boolean; vips?: string[]; site?: string } = {}): string {
  const vips = opts.vips ?? [
    `  - { name: web, address: 192.0.2.1, port: 80, forwarder: { mode: proxy }, check: ${CHECK}, realServers: [ { address: 127.0.0.11, port: 80 } ] }`,
    `  - { name: dsr, address: 192.0.2.2, port: 80, forwarder: { mode: dsr, interface: eth0 }, check: ${CHECK}, realServers: [ { address: 127.0.0.12, port: 80 } ] }`,
    `  - { name: api, address: 192.0.2.3, port: 80, check: ${CHECK}, realServers: [ { address: 127.0.0.13, port: 80 } ] }`,
  ];
  return [`site: ${opts.site ?? 'tokyo'}`, 'agent: lb1', 'secret: env:S', `dns: [ "${dns}" ]`, 'report: { interval: 5s }',
    ...(opts.cleanup === true ? ['forwarder: { cleanupOnExit: true }'] : []), 'vips:', ...vips, ''].join('\n');
}
const parse = (text: string) => parseAgentConfig(text, 'site.yaml', { S: 'tokyo-secret-0123456789abcdef-0123456789' });

describe('agent stop', () => {
  for (const cleanup of [false, true]) {
    it(`final report${cleanup ? ' with cleanupOnExit' : ''}: proxy down, kernel VIPs ${cleanup ? 'down' : 'unchecked'}, check-only unchecked`, async () => {
      const d = await fakeDns();
      agent = createAgent({ config: parse(file(d.url, { cleanup })), logger: silent, createChecker: () => async () => ({ ok: true, latencyMs: 1 }), createDataPlane: okPlane });
      agent.start();
      await until(() => d.reports.some((r) => r.members.every((m) => m.state === 'up')));
      await agent.stop();
      const last = d.reports[d.reports.length - 1]!.members;
      expect(last.find((m) => m.address === '192.0.2.1')).toMatchObject({ state: 'down', weight: 0, reason: 'agent stopped' });
      expect(last.find((m) => m.address === '192.0.2.2')).toMatchObject(cleanup
        ? { state: 'down', reason: 'agent stopped' } : { state: 'up', weight: 100, checked: false });
      expect(last.find((m) => m.address === '192.0.2.3')).toMatchObject({ state: 'up', weight: 100, checked: false });
    });
  }

  it('a handover sends no report', async () => {
    const d = await fakeDns();
    agent = createAgent({ config: parse(file(d.url)), logger: silent, createChecker: () => async () => ({ ok: true, latencyMs: 1 }), createDataPlane: okPlane });
    agent.start();
    await until(() => d.reports.some((r) => r.members.every((m) => m.state === 'up')));
    await agent.stop({ kind: 'handover', drainMs: 10 });
    await sleep(50);
    // (a heartbeat in flight at the stop may still land; no final report does)
    expect(d.reports.flatMap((r) => r.members).filter((m) => m.state !== 'up' || m.checked !== undefined || m.reason !== undefined)).toEqual([]);
  });
});

describe('agent reload', () => {
  it('keeps unchanged health, starts changed checks from the current state, adds and removes; refuses another identity', async () => {
    const d = await fakeDns();
    const calls: string[] = [];
    agent = createAgent({
      config: parse(file(d.url)), logger: silent, createDataPlane: okPlane,
      createChecker: (check) => async (t) => { calls.push(`${t.address}:${check.intervalMs}`); return { ok: true, latencyMs: 1 }; },
    });
    agent.start();
    await until(() => agent!.vips().every((v) => v.state === 'up'));
    const before = agent.status().vips.find((v) => v.name === 'web')!.realServers[0]!.health;

    const next = file(d.url, { vips: [
      // web: same real server, a second one added
      `  - { name: web, address: 192.0.2.1, port: 80, forwarder: { mode: proxy }, check: ${CHECK}, realServers: [ { address: 127.0.0.11, port: 80 }, { address: 127.0.0.14, port: 80 } ] }`,
      // dsr: its check changed (interval)
      `  - { name: dsr, address: 192.0.2.2, port: 80, forwarder: { mode: dsr, interface: eth0 }, check: { type: tcp, interval: 70ms, timeout: 20ms, rise: 3, fall: 1 }, realServers: [ { address: 127.0.0.12, port: 80 } ] }`,
      // api removed; new added
      `  - { name: new, address: 192.0.2.4, port: 80, check: ${CHECK}, realServers: [ { address: 127.0.0.15, port: 80 } ] }`,
    ] });
    const r = agent.reload(parse(next));
    expect(r).toMatchObject({ ok: true, summary: {
      vips: { added: ['new'], removed: ['api'], changed: ['dsr'] },
      realServers: { added: ['web/127.0.0.14:80', 'new/127.0.0.15:80'], removed: ['api/127.0.0.13:80'], changed: ['dsr/127.0.0.12:80'] },
      reporter: false,
    } });
    const s = agent.status();
    // unchanged: the same health record (its history goes on), never reset to down
    expect(s.vips.find((v) => v.name === 'web')!.realServers[0]!.health.lastChangeAt).toBe(before.lastChangeAt);
    // changed check: starts up (the current state) although rise is now 3
    expect(s.vips.find((v) => v.name === 'dsr')!.realServers[0]!.health.state).toBe('up');
    expect(agent.vips().find((v) => v.name === 'dsr')!.state).toBe('up');
    await until(() => calls.includes('127.0.0.12:70') && calls.includes('127.0.0.15:50'));
    // the removed VIP's address is reported down, so DNS does not keep its last state
    expect(agent.members().find((m) => m.address === '192.0.2.3')).toMatchObject({ state: 'down', reason: 'removed from the agent config' });

    const other = agent.reload(parse(file(d.url, { site: 'osaka' })));
    expect(other).toMatchObject({ ok: false });
    expect((other as { reason: string }).reason).toContain('site changed');
    expect(agent.config.site).toBe('tokyo');
  });
});

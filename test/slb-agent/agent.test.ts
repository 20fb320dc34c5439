/**
 * The agent runtime with fake checkers and a real local HTTP server standing in for gslb-dns:
 * the first report waits for the checks to settle (no "down" flap on restart), changes are sent
 * at once, and a drain reaches DNS without waiting for the heartbeat.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Report } from '../../shared/protocol/report.js';
import { createAgent } from '../../slb-agent/agent.js';
import type { Agent } from '../../slb-agent/agent.js';
import { parseAgentConfig } from '../../slb-agent/config.js';
import { ManualClock } from '../helpers/manual-clock.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let server: http.Server | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  await agent?.stop();
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
});

async function fakeDns(): Promise<{ url: string; reports: { at: number; report: Report }[] }> {
  const reports: { at: number; report: Report }[] = [];
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => { reports.push({ at: performance.now(), report: JSON.parse(body) as Report }); res.writeHead(200); res.end('{}'); });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, reports };
}

function config(dns: string) {
  return parseAgentConfig(`
site: tokyo
agent: lb1
secret: env:S
dns: [ "${dns}" ]
report: { interval: 5s }
vips:
  - name: web
    address: 192.0.2.1
    port: 80
    check: { type: tcp, interval: 100ms, timeout: 50ms, rise: 3, fall: 1 }
    realServers:
      - { address: 127.0.0.11, port: 8080 }
      - { address: 127.0.0.12, port: 8080 }
`, 'site.yaml', { S: 'tokyo-secret-0123456789abcdef-0123456789' });
}

/** Waits (real time) for `pred`: the reports are real HTTP round trips. */
async function until(pred: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!pred()) {
    if (performance.now() > end) throw new Error(`${what}: not met within ${ms} ms`);
    await sleep(5);
  }
}

describe('agent runtime', () => {
  it('holds the first report until the checks settled, then reports up; changes and drains go out at once', async () => {
    const dns = await fakeDns();
    const clock = new ManualClock();
    const healthy = new Set(['127.0.0.11', '127.0.0.12']);
    const logs: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>); } });
    let checks = 0;
    agent = createAgent({
      config: config(dns.url), logger, clock,
      createChecker: () => async (t) => { checks++; return healthy.has(t.address) ? { ok: true, latencyMs: 1 } : { ok: false, latencyMs: 1, error: 'refused' }; },
    });
    agent.start();
    // rise 3 at 100 ms: after 150 ms each real server has passed at most twice, nothing is reported
    await clock.tick(150);
    expect(checks).toBeGreaterThanOrEqual(2);
    expect(logs.find((l) => l['msg'] === 'reporting started')).toBeUndefined();
    expect(agent.status().dns[0]).toMatchObject({ sent: 0, failed: 0, inFlight: false });
    // the third pass of each (before the 450 ms hold-off) proves the VIP up, and that is the first report
    await clock.tick(250);
    expect(logs.find((l) => l['msg'] === 'reporting started')).toMatchObject({ why: 'checks settled', settled: 2 });
    await until(() => dns.reports.length >= 1, 'the first report');
    expect(dns.reports[0]!.report.members).toEqual([{ address: '192.0.2.1', state: 'up', weight: 100, connections: 0, capacity: 0, healthy: 2, total: 2 }]);
    // a real server fails (fall 1): the change is reported without waiting for the 5 s heartbeat
    // (the clock moves 200 ms: every check runs again, at most 105 ms jittered interval plus the
    // 25 ms start tick after its last run, and stays far from the heartbeat)
    healthy.delete('127.0.0.12');
    const n = dns.reports.length;
    await clock.tick(200);
    await until(() => dns.reports.slice(n).some((r) => r.report.members[0]!.weight === 50), 'the change');
    expect(dns.reports.at(-1)!.report.members[0]).toMatchObject({ state: 'up', weight: 50, healthy: 1 });
    // the operator drains the last one: drain, reported at once (the clock stands still)
    expect(agent.drainRealServer({ vip: 'web', address: '127.0.0.11', port: 8080 }, true)).toEqual({ ok: true, changed: true });
    await until(() => dns.reports.at(-1)!.report.members[0]!.state === 'drain', 'the drain');
    expect(dns.reports.at(-1)!.report.members[0]).toMatchObject({ state: 'drain', weight: 0, healthy: 0 });
    await until(() => !agent!.status().dns[0]!.inFlight, 'the last report answered');
    expect(agent.status().dns[0]!.sent).toBe(dns.reports.length);
  });

  it('a failing real server settles at its first failure: the first report is not held for it', async () => {
    const dns = await fakeDns();
    const clock = new ManualClock();
    const logs: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>); } });
    agent = createAgent({
      config: config(dns.url), logger, clock,
      createChecker: () => async (t) => (t.address === '127.0.0.11' ? { ok: true, latencyMs: 1 } : { ok: false, latencyMs: 1, error: 'refused' }),
    });
    agent.start();
    await clock.tick(400);
    await until(() => dns.reports.length >= 1, 'the first report');
    expect(dns.reports[0]!.report.members[0]).toMatchObject({ state: 'up', weight: 50, healthy: 1, total: 2 });
    // reporting began because every real server settled, not because the hold-off ran out
    expect(logs.find((l) => l['msg'] === 'reporting started')).toMatchObject({ why: 'checks settled', settled: 2 });
  });
});

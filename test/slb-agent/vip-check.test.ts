/**
 * `vipCheck:` with the real proxy data plane in process: an HTTP check of the VIP itself, through
 * the forwarder, takes the VIP down with the reason when the service behind it answers 500 while
 * the real servers' own (tcp) checks still pass, and brings it back when the service recovers.
 * The config side: keys checked like any check, paths under `vipCheck`, startState up by default.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { Report } from '../../shared/protocol/report.js';
import { createAgent } from '../../slb-agent/agent.js';
import type { Agent } from '../../slb-agent/agent.js';
import { AgentConfigError, parseAgentConfig } from '../../slb-agent/config.js';
import { freePort, sleep } from '../helpers/agent-site.js';

const VIP = '127.0.0.43';
const ENV = { S: 'tokyo-secret-0123456789abcdef-0123456789' };
const servers: http.Server[] = [];
let agent: Agent | undefined;

afterAll(async () => {
  await agent?.stop();
  for (const s of servers) { s.closeAllConnections(); await new Promise<void>((r) => s.close(() => r())); }
});

async function listen(handler: http.RequestListener): Promise<number> {
  const s = http.createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
}

const file = (vipPort: number, rsPort: number, dnsPort: number, vipCheck: string): string => `
site: tokyo
agent: lb1
secret: env:S
dns: [ "http://127.0.0.1:${dnsPort}" ]
report: { interval: 5s }
vips:
  - name: web
    address: ${VIP}
    port: ${vipPort}
    forwarder: { mode: proxy }
    check: { type: tcp, interval: 100ms, timeout: 80ms, rise: 1, fall: 1 }
    ${vipCheck}
    realServers:
      - { address: 127.0.0.1, port: ${rsPort} }
`;

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond() && performance.now() < end) await sleep(20);
  if (!cond()) throw new Error('condition not met in time');
}

describe('vipCheck', () => {
  it('parses like a check, under its own path, starting up', () => {
    const c = parseAgentConfig(file(80, 8080, 8053, 'vipCheck: { type: http, path: /healthz, interval: 1s, timeout: 500ms, fall: 3 }'), 'site.yaml', ENV);
    expect(c.vips[0]!.vipCheck).toMatchObject({ type: 'http', path: '/healthz', intervalMs: 1000, timeoutMs: 500, rise: 2, fall: 3, startState: 'up' });
    expect(parseAgentConfig(file(80, 8080, 8053, ''), 'site.yaml', ENV).vips[0]!.vipCheck).toBeUndefined();
    let err: unknown;
    try {
      parseAgentConfig(file(80, 8080, 8053, 'vipCheck: { type: tcp, path: /x }'), 'site.yaml', ENV);
    } catch (e) { err = e; }
    expect(err).toBeInstanceOf(AgentConfigError);
    expect((err as Error).message).toMatch(/^site\.yaml:\d+: vips\[0\]\.vipCheck\.path: not used by tcp checks/);
  });

  it('through the proxy: the VIP goes down with the reason when the service fails behind passing real server checks, and back up', async () => {
    let broken = false;
    const rsPort = await listen((_req, res) => { res.writeHead(broken ? 500 : 200); res.end('ok\n'); });
    const reports: Report[] = [];
    const dnsPort = await listen((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => { body += c.toString(); });
      req.on('end', () => { reports.push(JSON.parse(body) as Report); res.writeHead(200); res.end('{}'); });
    });
    const vipPort = await freePort(VIP);
    const config = parseAgentConfig(file(vipPort, rsPort, dnsPort,
      'vipCheck: { type: http, path: /, expect: [200], interval: 100ms, timeout: 80ms, rise: 1, fall: 2 }'), 'site.yaml', ENV);
    agent = createAgent({ config, logger: pino({ level: 'silent' }) });
    agent.start();
    await until(() => agent!.vips()[0]!.state === 'up' && (agent!.status().vips[0]!.vipCheck?.health.checks ?? 0) >= 2);
    expect(agent.status().vips[0]!.vipCheck).toMatchObject({ type: 'http', health: { state: 'up' } });

    broken = true;
    await until(() => agent!.vips()[0]!.state === 'down');
    const down = agent.vips()[0]!;
    expect(down.reason).toMatch(/^vip check: .*500/);
    // the real servers still pass their own checks: only the VIP check saw it
    expect(down.healthy).toBe(1);
    await until(() => reports.some((r) => r.members[0]?.state === 'down'));
    expect(reports.find((r) => r.members[0]?.state === 'down')!.members[0]!.reason).toMatch(/^vip check: /);

    broken = false;
    await until(() => agent!.vips()[0]!.state === 'up');
    expect(agent.vips()[0]!.reason).toBeUndefined();
    await until(() => reports[reports.length - 1]!.members[0]!.state === 'up');
  });
});

/**
 * slb-agent end to end: the real gslb-dns process, the real slb-agent process (its signed reports
 * over real HTTP) and real local HTTP real servers; answers through the real dig. The agent also
 * reports to a second DNS instance that is down, which must not hold back the first.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, startNode } from '../helpers/cli.js';
import type { Cli, NodeProc } from '../helpers/cli.js';
import { dig } from '../helpers/dig.js';
import { postReport, SECRET_ENV } from '../helpers/report.js';
import { ROOT } from '../helpers/server.js';

const AGENT_MAIN = path.join(ROOT, 'dist/slb-agent/main.js');
const ZONE = 'agent.test';
const TOKYO = '192.0.2.1';
const OSAKA = '192.0.2.2';

/** A real server: an HTTP server on 127.0.0.1 that can be stopped and started on its port. */
interface RealServer { port: number; start(): Promise<void>; stop(): Promise<void> }

async function realServer(): Promise<RealServer> {
  let server: http.Server | undefined;
  let port = 0;
  const rs: RealServer = {
    get port() { return port; },
    async start() {
      server = http.createServer((req, res) => { res.writeHead(req.url === '/healthz' ? 200 : 404); res.end('ok\n'); });
      await new Promise<void>((r) => server!.listen(port, '127.0.0.1', r));
      port = (server.address() as AddressInfo).port;
    },
    async stop() {
      const s = server;
      server = undefined;
      if (!s) return;
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    },
  };
  await rs.start();
  return rs;
}

/** The real slb-agent process with its JSON log lines. */
interface AgentProc extends NodeProc { apiPort: number }

async function startAgent(config: string, env: Record<string, string>): Promise<AgentProc> {
  const p = startNode(AGENT_MAIN, ['--config', config], env);
  try {
    const l = await p.waitLog((x) => x['msg'] === 'api listening');
    return Object.assign(p, { apiPort: l['port'] as number });
  } catch (err) {
    p.proc.kill('SIGKILL');
    throw err;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
let dns: Cli;
let agent: AgentProc | undefined;
let servers: RealServer[] = [];
let osakaTimer: NodeJS.Timeout | undefined;
let deadPort: number;

async function answer(): Promise<string[]> {
  return (await dig(dns.port, ['+norec', `www.${ZONE}`, 'A'])).answer;
}

/** Polls dig until the answer is `want` (bounded); returns the elapsed ms. */
async function waitAnswer(want: string[], ms = 30_000): Promise<number> {
  const t0 = performance.now();
  let last: string[] = [];
  while (performance.now() - t0 < ms) {
    last = await answer();
    if (JSON.stringify(last) === JSON.stringify(want)) return performance.now() - t0;
    await sleep(50);
  }
  throw new Error(`dig answer stayed ${JSON.stringify(last)}, wanted ${JSON.stringify(want)}; agent log: ${JSON.stringify(agent?.lines.slice(-10))}`);
}

async function agentStatus(): Promise<{ vips: { name: string; state: string; weight: number; healthy: number; realServers: { health: { state: string; lastError?: string } }[] }[];
  dns: { url: string; sent: number; consecutiveFailures: number; lastError?: string }[] }> {
  const res = await fetch(`http://127.0.0.1:${agent!.apiPort}/status`);
  return (await res.json()) as never;
}

/** A port nothing listens on right now (bound, then closed). */
async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

// the config parser refuses `api: 127.0.0.1:0`, so the agent's API gets a port picked here
let agentApiPort: number;

type Status = Awaited<ReturnType<typeof agentStatus>>;

/** Polls the agent's /status until `pred` holds (bounded); returns the last status. */
async function waitStatus(pred: (s: Status) => boolean, ms = 30_000): Promise<Status> {
  const end = performance.now() + ms;
  let st = await agentStatus();
  while (!pred(st) && performance.now() < end) { await sleep(50); st = await agentStatus(); }
  return st;
}

function agentYaml(apiPort: number, rsPorts: number[]): string {
  return [
    'site: tokyo',
    'agent: lb1',
    'secret: env:GSLB_SECRET_TOKYO',
    `dns: [ "http://127.0.0.1:${apiPort}", "http://127.0.0.1:${deadPort}" ]`,
    'report: { interval: 500ms, timeout: 300ms }',
    `api: 127.0.0.1:${agentApiPort}`,
    'vips:',
    '  - name: web',
    `    address: ${TOKYO}`,
    '    port: 80',
    '    capacity: 1000',
    '    quorum: 1',
    '    check: { type: http, path: /healthz, expect: [200], interval: 200ms, timeout: 150ms, rise: 2, fall: 2 }',
    '    realServers:',
    ...rsPorts.map((p) => `      - { address: 127.0.0.1, port: ${p}, weight: 1 }`),
    '',
  ].join('\n');
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'slb-agent-e2e-'));
  const zones = path.join(dir, 'zones');
  await import('node:fs/promises').then((fs) => fs.mkdir(zones));
  await writeFile(path.join(zones, `${ZONE}.zone`), [
    `$ORIGIN ${ZONE}.`, '$TTL 300', '@ IN SOA ns1 hostmaster 1 3600 600 86400 60', '  IN NS ns1', 'ns1 IN A 192.0.2.53', '',
  ].join('\n'));
  await writeFile(path.join(zones, `${ZONE}.gslb.yaml`), [
    'sites:',
    '  tokyo: { secret: env:GSLB_SECRET_TOKYO, staleAfter: 3s }',
    '  osaka: { secret: env:GSLB_SECRET_OSAKA, staleAfter: 3s }',
    'pools:',
    '  web:',
    '    names: [www]',
    '    ttl: 20',
    '    degradedTtl: 5',
    '    policy: failover',
    '    maxAnswers: 1',
    '    allDown: all',
    '    members:',
    `      - { site: tokyo, address: ${TOKYO}, tier: 1 }`,
    `      - { site: osaka, address: ${OSAKA}, tier: 2 }`,
    '',
  ].join('\n'));
  dns = await startCli(['--zones', zones, '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0'], SECRET_ENV);
  // osaka is a fake agent heartbeating "up", so a tokyo failure has somewhere to go
  const osaka = () => postReport(dns.apiPort, 'osaka', [{ address: OSAKA, state: 'up' }]).catch(() => undefined);
  await osaka();
  osakaTimer = setInterval(() => { void osaka(); }, 500);
  deadPort = await freePort();
  agentApiPort = 0;
  servers = [await realServer(), await realServer()];
  const config = path.join(dir, 'site.yaml');
  await writeFile(config, agentYaml(dns.apiPort, servers.map((s) => s.port)));
  agent = await startAgent(config, SECRET_ENV);
});

afterAll(async () => {
  clearInterval(osakaTimer);
  // beforeAll may have failed half way: stop whatever did start
  try {
    await agent?.stop();
    await Promise.all((servers ?? []).map((s) => s.stop()));
  } finally {
    await dns?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

describe('slb-agent + gslb-dns + dig', () => {
  it('check validates the config only (0), and names the errors (non-zero)', async () => {
    const good = spawnSync(process.execPath, [AGENT_MAIN, 'check', '--config', path.join(dir, 'site.yaml')], { env: { ...process.env, ...SECRET_ENV }, encoding: 'utf8', timeout: 15_000 });
    expect(good.status, good.stderr).toBe(0);
    const bad = path.join(dir, 'bad.yaml');
    await writeFile(bad, agentYaml(dns.apiPort, [8080]).replace('quorum: 1', 'quorom: 1'));
    const r = spawnSync(process.execPath, [AGENT_MAIN, 'check', '--config', bad], { env: { ...process.env, ...SECRET_ENV }, encoding: 'utf8', timeout: 15_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('bad.yaml');
    expect(r.stderr).toContain('quorom');
  });

  it('dig shows the VIP once the real servers pass their checks', async () => {
    await waitAnswer([`www.${ZONE}. 20 IN A ${TOKYO}`]);
    const st = await waitStatus((s) => s.vips[0]!.healthy === 2);
    expect(st.vips[0]).toMatchObject({ name: 'web', state: 'up', weight: 100, healthy: 2 });
  });

  it('all real servers stopped: after fall the VIP is down and dig answers the other site; back after a restart', async () => {
    await Promise.all(servers.map((s) => s.stop()));
    const down = await waitAnswer([`www.${ZONE}. 5 IN A ${OSAKA}`]);
    console.log(`real servers stopped -> dig answers the other site after ${down.toFixed(0)} ms (interval 200 ms, fall 2)`);
    const st = await agentStatus();
    expect(st.vips[0]).toMatchObject({ state: 'down', weight: 0, healthy: 0 });
    expect(st.vips[0]!.realServers[0]!.health.state).toBe('down');
    expect(st.vips[0]!.realServers[0]!.health.lastError).toBeTruthy();
    await Promise.all(servers.map((s) => s.start()));
    await waitAnswer([`www.${ZONE}. 20 IN A ${TOKYO}`]);
    expect((await waitStatus((s) => s.vips[0]!.healthy === 2)).vips[0]).toMatchObject({ state: 'up', weight: 100 });
  });

  it('one real server down: still up at half weight', async () => {
    await servers[0]!.stop();
    const st = await waitStatus((s) => s.vips[0]!.healthy === 1);
    expect(st.vips[0]).toMatchObject({ state: 'up', weight: 50, healthy: 1 });
    expect(await answer()).toEqual([`www.${ZONE}. 20 IN A ${TOKYO}`]);
    await servers[0]!.start();
  });

  it('a second DNS instance that is down does not stop reports to the first', async () => {
    const st = await agentStatus();
    const [live, dead] = st.dns;
    expect(live!.sent).toBeGreaterThan(3);
    expect(live!.consecutiveFailures).toBe(0);
    expect(dead!.consecutiveFailures).toBeGreaterThan(0);
    expect(dead!.lastError).toBeTruthy();
    // the live instance sees the heartbeat: the agent's report count keeps growing (waited for, not timed)
    expect((await waitStatus((s) => s.dns[0]!.sent > live!.sent)).dns[0]!.sent).toBeGreaterThan(live!.sent);
  });

  it('stops cleanly on SIGTERM', async () => {
    const code = await agent!.stop();
    expect(code).toBe(0);
    expect(agent!.lines.some((l) => l['msg'] === 'stopped')).toBe(true);
    agent = undefined;
  });
});

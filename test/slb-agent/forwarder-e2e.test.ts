/**
 * The agent forwarding a `proxy` VIP end to end: real TCP backends on 127.0.0.1, real tcp health
 * checks, the real userspace proxy data plane and the agent's API (app.inject). A backend that
 * stops gets no new connections once its check marks it down; a drained backend gets no new ones
 * while its open connection keeps working; /status and /metrics show the forwarder. Then the real
 * slb-agent process: `check` names the forwarder, `--cleanup-on-exit` reaches the status, and a
 * SIGTERM stops the proxy.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAgent } from '../../slb-agent/agent.js';
import type { Agent, AgentStatus } from '../../slb-agent/agent.js';
import { createAgentApi } from '../../slb-agent/api/app.js';
import { parseAgentConfig } from '../../slb-agent/config.js';
import { AGENT_MAIN, echoBackend, freePort, sleep } from '../helpers/agent-site.js';
import type { EchoBackend } from '../helpers/agent-site.js';
import { startNode } from '../helpers/cli.js';

const SECRET = 'tokyo-secret-0123456789abcdef-0123456789';

/** Reads one line from `sock` (bounded); '' when the connection ends or fails first. */
function readLine(sock: net.Socket, ms = 2000): Promise<string> {
  return new Promise((resolve) => {
    let buf = '';
    const done = (v: string): void => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('close', onEnd);
      sock.off('error', onEnd);
      resolve(v);
    };
    const onData = (d: Buffer): void => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) done(buf.slice(0, i));
    };
    const onEnd = (): void => done('');
    const timer = setTimeout(onEnd, ms);
    sock.on('data', onData);
    sock.on('close', onEnd);
    sock.on('error', onEnd);
  });
}

/** Connects to the VIP; returns the greeting backend's name and the open socket. */
async function connect(port: number): Promise<{ name: string; sock: net.Socket }> {
  const sock = net.connect({ host: '127.0.0.1', port });
  sock.on('error', () => undefined);
  return { name: await readLine(sock), sock };
}

/** The backends `n` fresh connections land on (each closed after its greeting). */
async function spread(port: number, n: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = await connect(port);
    names.push(c.name);
    c.sock.destroy();
  }
  return names;
}

/** Polls `cond` (bounded); the assertion after it says what was expected. */
async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!(await cond()) && performance.now() < end) await sleep(10);
}

/** state changes through the agent API need an admin token */
const ADMIN_TOKEN = 'forwarder-e2e-admin-0123456789';
let backends: EchoBackend[];
let vipPort: number;
let agent: Agent;
let app: FastifyInstance;
const open: net.Socket[] = [];

const status = async (): Promise<AgentStatus> => (await app.inject({ method: 'GET', url: '/status' })).json<AgentStatus>();
const web = async () => (await status()).vips.find((v) => v.name === 'web')!;
const rsOf = async (b: EchoBackend) => (await web()).realServers.find((r) => r.port === b.port)!;

beforeAll(async () => {
  backends = await Promise.all(['b1', 'b2', 'b3'].map(echoBackend));
  vipPort = await freePort();
  const config = parseAgentConfig(`
site: tokyo
agent: lb1
secret: env:S
dns: [ "http://127.0.0.1:1" ]
vips:
  - name: web
    address: 127.0.0.1
    port: ${vipPort}
    forwarder: { mode: proxy, scheduler: rr }
    check: { type: tcp, interval: 100ms, timeout: 50ms, rise: 1, fall: 1, jitter: 0 }
    realServers:
${backends.map((b) => `      - { address: 127.0.0.1, port: ${b.port} }`).join('\n')}
`, 'site.yaml', { S: SECRET });
  agent = createAgent({ config, logger: pino({ level: 'silent' }) });
  app = await createAgentApi({ agent, adminToken: ADMIN_TOKEN });
  agent.start();
});

afterAll(async () => {
  for (const s of open) s.destroy();
  await app?.close();
  await agent?.stop();
  await Promise.all((backends ?? []).map((b) => b.stop()));
});

describe('agent forwarding a proxy VIP', () => {
  it('spreads new connections over the healthy backends', async () => {
    await until(async () => {
      const v = await web();
      return v.healthy === 3 && v.forwarder?.lastApply?.ok === true && !(await status()).forwarder!.pending;
    });
    expect((await web()).healthy).toBe(3);
    expect(new Set(await spread(vipPort, 6))).toEqual(new Set(['b1', 'b2', 'b3']));
  });

  it('a stopped backend gets no new connections once its check marks it down', async () => {
    const b3 = backends[2]!;
    await b3.stop();
    await until(async () => !(await rsOf(b3)).serving && !(await status()).forwarder!.pending);
    expect((await rsOf(b3)).health.state).toBe('down');
    const names = await spread(vipPort, 8);
    expect(names.filter((n) => n === 'b1').length).toBeGreaterThan(0);
    expect(names.filter((n) => n === 'b2').length).toBeGreaterThan(0);
    expect(names.every((n) => n === 'b1' || n === 'b2')).toBe(true);
  });

  it('a drained backend gets no new connections; its open connection keeps working', async () => {
    const b1 = backends[0]!;
    // a connection that lands on b1 and stays open
    let kept: net.Socket | undefined;
    for (let i = 0; i < 10 && kept === undefined; i++) {
      const c = await connect(vipPort);
      open.push(c.sock);
      if (c.name === 'b1') kept = c.sock;
    }
    expect(kept).toBeDefined();
    const r = await app.inject({ method: 'POST', url: '/realservers/drain', payload: { vip: 'web', address: '127.0.0.1', port: b1.port }, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(r.json()).toMatchObject({ drained: true, changed: true });
    await until(async () => !(await status()).forwarder!.pending);
    expect(await spread(vipPort, 6)).toEqual(['b2', 'b2', 'b2', 'b2', 'b2', 'b2']);
    kept!.write('still here\n');
    expect(await readLine(kept!)).toBe('still here');
    // the open flow is counted on b1
    expect((await rsOf(b1)).forwarder).toMatchObject({ id: `127.0.0.1:${b1.port}` });
    expect((await rsOf(b1)).forwarder!.active).toBeGreaterThanOrEqual(1);
  });

  it('/status and /metrics show the forwarder', async () => {
    const s = await status();
    const v = s.vips.find((x) => x.name === 'web')!;
    expect(v.forwarder).toMatchObject({ mode: 'proxy', scheduler: 'rr', plane: 'proxy', lastApply: { ok: true } });
    expect(v.forwarder!.lastApplyMs).toBeGreaterThanOrEqual(0);
    expect(v.forwarder!.flows.total).toBeGreaterThanOrEqual(20);
    expect(v.connections).toBe(v.forwarder!.flows.active);
    expect(s.forwarder).toMatchObject({ planes: ['proxy'], applyErrors: 0, consecutiveFailures: 0, cleanupOnExit: false });
    // start, b3 down, b1 drained: at least three applies, each timed from its change
    expect(s.forwarder!.applies).toBeGreaterThanOrEqual(3);
    expect(s.forwarder!.applyLatency.count).toBe(s.forwarder!.applies);

    const m = await app.inject({ method: 'GET', url: '/metrics' });
    const [b1, b2, b3] = backends as [EchoBackend, EchoBackend, EchoBackend];
    const line = (name: string, labels: string): number => {
      const l = m.body.split('\n').find((x) => x.startsWith(`${name}${labels} `));
      return l === undefined ? Number.NaN : Number(l.split(' ')[1]);
    };
    expect(line('slb_forwarder_flows_total', `{vip="web",address="127.0.0.1",port="${b2.port}"}`)).toBeGreaterThanOrEqual(10);
    expect(line('slb_forwarder_flows_total', `{vip="web",address="127.0.0.1",port="${b3.port}"}`)).toBeGreaterThanOrEqual(2);
    expect(line('slb_forwarder_flows_active', `{vip="web",address="127.0.0.1",port="${b1.port}"}`)).toBeGreaterThanOrEqual(1);
    expect(line('slb_forwarder_apply_duration_seconds_count', '')).toBe(s.forwarder!.applies);
    expect(line('slb_forwarder_apply_duration_seconds_bucket', '{le="+Inf"}')).toBe(s.forwarder!.applies);
    expect(line('slb_forwarder_apply_errors_total', '')).toBe(0);
    expect(line('slb_forwarder_apply_ok', '{vip="web"}')).toBe(1);
    expect(m.body).toContain('# TYPE slb_forwarder_apply_duration_seconds histogram');
  });
});

describe('the slb-agent process with a proxy VIP', () => {
  it('check names the forwarder; --cleanup-on-exit shows in the status; SIGTERM stops the proxy', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'slb-fwd-'));
    const b = await echoBackend('solo');
    const port = await freePort();
    const file = path.join(dir, 'site.yaml');
    await writeFile(file, [
      'site: tokyo', 'agent: lb1', 'secret: env:S', 'dns: [ "http://127.0.0.1:1" ]', 'api: 127.0.0.1:0', 'vips:',
      '  - name: web', '    address: 127.0.0.1', `    port: ${port}`, '    forwarder: { mode: proxy, scheduler: rr }',
      '    check: { type: tcp, interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }',
      `    realServers: [{ address: 127.0.0.1, port: ${b.port} }]`, '',
    ].join('\n'));
    const p = startNode(AGENT_MAIN, ['--config', file, '--cleanup-on-exit'], { S: SECRET });
    try {
      const checked = spawnSync(process.execPath, [AGENT_MAIN, 'check', '--config', file], { env: { ...process.env, S: SECRET }, encoding: 'utf8' });
      expect(checked.status).toBe(0);
      expect(checked.stdout).toContain(`vip web: 127.0.0.1:${port}/tcp, 1 real servers, check tcp, forwarder proxy/rr`);

      const api = (await p.waitLog((l) => l['msg'] === 'api listening'))['port'] as number;
      let s: AgentStatus | undefined;
      await until(async () => {
        s = await (await fetch(`http://127.0.0.1:${api}/status`)).json() as AgentStatus;
        return s.vips[0]!.healthy === 1 && s.forwarder?.pending === false;
      });
      expect(s!.forwarder).toMatchObject({ planes: ['proxy'], cleanupOnExit: true, applyErrors: 0 });
      expect((await spread(port, 2))).toEqual(['solo', 'solo']);
      expect(await p.stop()).toBe(0);
      // the proxy is gone with the process
      expect((await connect(port)).name).toBe('');
    } finally {
      p.proc.kill('SIGKILL');
      await b.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/**
 * The agent's life as processes see it: two real gslb-dns instances, the real slb-agent with
 * proxy VIPs on loopback addresses and echo backends, answers through the real dig.
 *   - a proxy VIP whose port is taken (EADDRINUSE) is reported down with the reason, and up once
 *     the port frees;
 *   - SIGHUP with an invalid file logs every `file:line: path: reason` and changes nothing; with
 *     a valid one it adds a real server and removes a VIP, and an open flow through the proxy
 *     keeps working;
 *   - SIGTERM sends a final report: both DNS instances stop answering the proxy VIPs at once
 *     (staleAfter is 30 s, so only the report can do it), while a check-only VIP, which does not
 *     stop with the agent, is still answered.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli } from '../helpers/cli.js';
import type { Cli } from '../helpers/cli.js';
import { dig } from '../helpers/dig.js';
import { SECRET_ENV } from '../helpers/report.js';
import { agentStatus, echoBackend, freePort, greeting, sleep, startAgent, writeZones } from '../helpers/agent-site.js';
import type { AgentProc, EchoBackend } from '../helpers/agent-site.js';

const ZONE = 'life.test';
const WEB = '127.0.0.21';
const BLOCKED = '127.0.0.22';
const API = '192.0.2.5';
const OLD = '192.0.2.6';
const TOKEN = 'admin-token-0123456789abcdef';

let dir: string;
let dns: Cli[] = [];
let agent: AgentProc | undefined;
let backends: EchoBackend[] = [];
let blocker: net.Server | undefined;
let webPort: number;
let blockedPort: number;
let agentApi: number;
let config: string;

function yaml(opts: { web: EchoBackend[]; old: boolean; typo?: boolean }): string {
  const b0 = backends[0]!;
  return [
    'site: tokyo',
    'agent: lb1',
    'secret: env:GSLB_SECRET_TOKYO',
    `dns: [ ${dns.map((d) => `"http://127.0.0.1:${d.apiPort}"`).join(', ')} ]`,
    'report: { interval: 500ms, timeout: 400ms }',
    `api: 127.0.0.1:${agentApi}`,
    'vips:',
    `  - { name: web, address: ${WEB}, port: ${webPort}, forwarder: { mode: proxy }, ${opts.typo === true ? 'quorom: 1, ' : ''}`,
    '      check: { type: tcp, interval: 200ms, timeout: 150ms, rise: 1, fall: 1 },',
    `      realServers: [ ${opts.web.map((b) => `{ address: 127.0.0.1, port: ${b.port} }`).join(', ')} ] }`,
    `  - { name: blocked, address: ${BLOCKED}, port: ${blockedPort}, forwarder: { mode: proxy },`,
    '      check: { type: tcp, interval: 200ms, timeout: 150ms, rise: 1, fall: 1 },',
    `      realServers: [ { address: 127.0.0.1, port: ${b0.port}${opts.typo === true ? ', weigth: 2' : ''} } ] }`,
    `  - { name: api, address: ${API}, port: 80, check: { type: tcp, interval: 200ms, timeout: 150ms, rise: 1, fall: 1 },`,
    `      realServers: [ { address: 127.0.0.1, port: ${b0.port} } ] }`,
    ...(opts.old ? [
      `  - { name: old, address: ${OLD}, port: 80, check: { type: tcp, interval: 200ms, timeout: 150ms, rise: 1, fall: 1 },`,
      `      realServers: [ { address: 127.0.0.1, port: ${b0.port} } ] }`,
    ] : []),
    '',
  ].join('\n');
}

async function answer(d: Cli, name: string): Promise<string[]> {
  return (await dig(d.port, ['+norec', `${name}.${ZONE}`, 'A'])).answer.map((l) => l.split(/\s+/).pop()!);
}

/** Polls until every DNS instance answers `name` with `want` ([] = NODATA); bounded. */
async function waitAnswers(name: string, want: string[], ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  let last: string[][] = [];
  while (performance.now() < end) {
    last = await Promise.all(dns.map((d) => answer(d, name)));
    if (last.every((a) => JSON.stringify(a) === JSON.stringify(want))) return;
    await sleep(50);
  }
  throw new Error(`${name}: answers ${JSON.stringify(last)}, wanted ${JSON.stringify(want)}; agent: ${JSON.stringify(agent?.lines.slice(-8))}`);
}

type Status = Awaited<ReturnType<typeof agentStatus>>;
async function waitStatus(pred: (s: Status) => boolean, ms = 10_000): Promise<Status> {
  const end = performance.now() + ms;
  let st = await agentStatus(agent!.apiPort);
  while (!pred(st) && performance.now() < end) { await sleep(50); st = await agentStatus(agent!.apiPort); }
  return st;
}
const vip = (s: Status, name: string) => s.vips.find((v) => v.name === name);

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'slb-agent-life-'));
  const zones = await writeZones(dir, ZONE, { web: WEB, blocked: BLOCKED, api: API, old: OLD });
  await writeFile(path.join(dir, 'token'), TOKEN);
  dns = await Promise.all([0, 1].map(() => startCli(['--zones', zones, '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0',
    '--admin-token-file', path.join(dir, 'token')], SECRET_ENV)));
  backends = [await echoBackend('b1'), await echoBackend('b2')];
  webPort = await freePort(WEB);
  agentApi = await freePort();
  // the blocked VIP's port is taken before the agent starts
  blocker = net.createServer();
  await new Promise<void>((r) => blocker!.listen({ host: BLOCKED, port: 0, exclusive: true }, r));
  blockedPort = (blocker.address() as net.AddressInfo).port;
  config = path.join(dir, 'site.yaml');
  await writeFile(config, yaml({ web: [backends[0]!], old: true }));
  agent = await startAgent(config, SECRET_ENV);
});

afterAll(async () => {
  try {
    await agent?.stop();
    await new Promise<void>((r) => (blocker?.listening ? blocker.close(() => r()) : r()));
    await Promise.all(backends.map((b) => b.stop()));
  } finally {
    await Promise.all(dns.map((d) => d.stop()));
    await rm(dir, { recursive: true, force: true });
  }
});

describe('slb-agent lifecycle: apply failures, SIGHUP, final report', () => {
  it('a proxy VIP whose port is taken is reported down with the reason; up once the port frees', async () => {
    await waitAnswers('web', [WEB]);
    const st = await waitStatus((s) => vip(s, 'blocked')?.reason !== undefined);
    expect(vip(st, 'blocked')).toMatchObject({ state: 'down', healthy: 1 });
    expect(vip(st, 'blocked')!.reason).toContain('EADDRINUSE');
    expect(vip(st, 'blocked')!.forwarder!.lastApply).toMatchObject({ ok: false });
    // reported down (not merely unknown) to both instances
    for (const d of dns) {
      const s = await (await fetch(`http://127.0.0.1:${d.apiPort}/api/v1/state`, { headers: { authorization: `Bearer ${TOKEN}` } })).json() as { pools: { name: string; members: { status: string }[] }[] };
      expect(s.pools.find((p) => p.name === 'blocked')!.members[0]!.status).toBe('down');
    }
    expect(await answer(dns[0]!, 'blocked')).toEqual([]);
    await new Promise<void>((r) => blocker!.close(() => r()));
    await waitAnswers('blocked', [BLOCKED]);
    expect(vip(await agentStatus(agent!.apiPort), 'blocked')).toMatchObject({ state: 'up' });
    expect(await greeting(BLOCKED, blockedPort)).toBe('b1');
  });

  it('SIGHUP: an invalid file is logged line by line and changes nothing; a valid one applies, open flows keep going', async () => {
    await waitAnswers('old', [OLD]);
    const flow = net.connect({ host: WEB, port: webPort });
    const got: string[] = [];
    flow.on('data', (d: Buffer) => got.push(d.toString()));
    await new Promise<void>((r) => flow.once('connect', () => r()));

    await writeFile(config, yaml({ web: [backends[0]!], old: true, typo: true }));
    agent!.proc.kill('SIGHUP');
    await agent!.waitLog((l) => String(l['msg']).startsWith('reload failed'));
    const errs = agent!.lines.filter((l) => l['level'] === 50 && typeof l['path'] === 'string').map((l) => String(l['msg']));
    expect(errs.some((m) => /site\.yaml:\d+: vips\[0\]: .*quorom/.test(m))).toBe(true);
    expect(errs.some((m) => /site\.yaml:\d+: vips\[1\]\.realServers\[0\].*weigth/.test(m))).toBe(true);
    expect(agent!.proc.exitCode).toBeNull();
    expect(vip(await agentStatus(agent!.apiPort), 'web')!.total).toBe(1);

    await writeFile(config, yaml({ web: [backends[0]!, backends[1]!], old: false }));
    agent!.proc.kill('SIGHUP');
    const done = await agent!.waitLog((l) => l['msg'] === 'config reloaded');
    expect(done).toMatchObject({ vips: { removed: ['old'] } });
    expect((done['realServers'] as { added: string[] }).added).toEqual([`web/127.0.0.1:${backends[1]!.port}`]);
    // the removed VIP is reported down, so DNS does not keep its last state
    await waitAnswers('old', []);
    const st = await waitStatus((s) => vip(s, 'web')!.healthy === 2);
    expect(vip(st, 'web')).toMatchObject({ state: 'up', total: 2, healthy: 2 });
    // the web real server that stayed kept its health: the VIP never left the answers
    expect(agent!.lines.some((l) => l['msg'] === 'vip web down')).toBe(false);
    // the flow opened before both reloads still echoes; new flows reach both backends
    flow.write('ping\n');
    await sleep(100);
    expect(got.join('')).toBe('b1\nping\n');
    flow.destroy();
    const seen = new Set<string>();
    for (let i = 0; i < 8; i++) seen.add(await greeting(WEB, webPort));
    expect(seen).toEqual(new Set(['b1', 'b2']));
  });

  it('SIGTERM: the final report takes the proxy VIPs out of every DNS instance at once; a check-only VIP stays', async () => {
    await waitAnswers('web', [WEB]);
    await waitAnswers('api', [API]);
    const code = await agent!.stop();
    expect(code).toBe(0);
    expect(agent!.lines.find((l) => l['msg'] === 'final report sent')).toMatchObject({ accepted: 2, dns: 2 });
    // no polling: the agent has exited, its final report is in both instances
    for (const d of dns) {
      expect(await answer(d, 'web')).toEqual([]);
      expect(await answer(d, 'blocked')).toEqual([]);
      expect(await answer(d, 'api')).toEqual([API]);
    }
    agent = undefined;
  });
});

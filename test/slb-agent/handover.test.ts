/**
 * Proxy-mode handover with real processes: a new slb-agent started while the old one runs takes
 * the VIP's listeners over (SO_REUSEPORT via the reuseport_sock addon, control socket in the run
 * dir). A client connecting all along is never refused nor reset; a flow opened through the old
 * agent keeps working after the handover and the old agent exits 0 once it ends; no report ever
 * says the VIP is down (a handover is not a stop). A plain SIGTERM afterwards still sends the
 * final report.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoBackend, freePort, sleep, startAgent } from '../helpers/agent-site.js';
import type { AgentProc, EchoBackend } from '../helpers/agent-site.js';
import { startReportSink } from '../helpers/report-sink.js';
import type { ReportSink } from '../helpers/report-sink.js';

const VIP = '127.0.0.42';
const SECRET_ENV = { GSLB_SECRET_TOKYO: 'tokyo-secret-0123456789abcdef-0123456789' };

let dir: string;
let backend: EchoBackend;
let sink: ReportSink;
let vipPort: number;
let config: string;
const agents: AgentProc[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'slb-agent-handover-'));
  backend = await echoBackend('b1');
  sink = await startReportSink();
  vipPort = await freePort(VIP);
  config = path.join(dir, 'site.yaml');
  await writeFile(config, [
    'site: tokyo', 'agent: lb1', 'secret: env:GSLB_SECRET_TOKYO',
    `dns: [ "${sink.url}" ]`, 'report: { interval: 300ms }',
    `api: 127.0.0.1:${await freePort()}`,
    'forwarder: { drainTimeout: 20s }',
    'vips:',
    `  - { name: web, address: ${VIP}, port: ${vipPort}, forwarder: { mode: proxy },`,
    '      check: { type: tcp, interval: 200ms, timeout: 150ms, rise: 1, fall: 1 },',
    `      realServers: [ { address: 127.0.0.1, port: ${backend.port} } ] }`, '',
  ].join('\n'));
});

afterAll(async () => {
  try {
    await Promise.all(agents.map((a) => a.stop()));
    await backend?.stop();
    await sink?.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** One connection to the VIP: 'ok' when greeted, else the error code (or 'closed'/'timeout'). */
function attempt(): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: VIP, port: vipPort });
    let done = false;
    const end = (v: string): void => { if (done) return; done = true; clearTimeout(t); sock.destroy(); resolve(v); };
    const t = setTimeout(() => end('timeout'), 3000);
    sock.on('data', () => end('ok'));
    sock.on('error', (err: NodeJS.ErrnoException) => end(err.code ?? 'error'));
    sock.on('close', () => end('closed'));
  });
}

const exited = (a: AgentProc): Promise<number | null> => new Promise((r) => {
  if (a.proc.exitCode !== null || a.proc.signalCode !== null) r(a.proc.exitCode);
  else a.proc.once('exit', (code) => r(code));
});

describe('proxy handover across agent restarts', () => {
  it('a successor takes the listeners over: no connection refused or reset, open flows drain, no down report', async () => {
    const first = await startAgent(config, SECRET_ENV);
    agents.push(first);
    await first.waitLog((l) => l['msg'] === 'reporting started');
    while ((await attempt()) !== 'ok') await sleep(20);

    // a client connecting back to back during every handover
    const outcomes = new Map<string, number>();
    let running = true;
    const client = (async () => {
      while (running) {
        const o = await attempt();
        outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
        await sleep(5);
      }
    })();

    // a long flow through the first agent
    const flow = net.connect({ host: VIP, port: vipPort });
    const got: string[] = [];
    flow.on('data', (d: Buffer) => got.push(d.toString()));
    await new Promise<void>((r) => flow.once('connect', () => r()));

    let old = first;
    for (let i = 0; i < 3; i++) {
      const next = await startAgent(config, SECRET_ENV);
      agents.push(next);
      await next.waitLog((l) => l['msg'] === 'handover complete');
      expect(next.lines.some((l) => l['msg'] === 'a running agent found: taking over once ready')).toBe(true);
      await old.waitLog((l) => l['msg'] === 'handover: a successor took over; draining open flows');
      if (i === 0) {
        // the first agent still carries the long flow: it drains instead of exiting
        flow.write('still there\n');
        await sleep(200);
        expect(got.join('')).toBe('b1\nstill there\n');
        expect(first.proc.exitCode).toBeNull();
        flow.end();
      }
      expect(await exited(old)).toBe(0);
      old = next;
    }
    running = false;
    await client;

    expect(outcomes.get('ok')).toBeGreaterThan(0);
    expect([...outcomes.keys()]).toEqual(['ok']);
    // a handover is not a stop: no final report, and the VIP was never reported anything but up
    expect(first.lines.some((l) => l['msg'] === 'final report sent')).toBe(false);
    const states = sink.reports.flatMap((r) => r.members.filter((m) => m.address === VIP).map((m) => m.state));
    expect(states.length).toBeGreaterThan(0);
    expect(new Set(states)).toEqual(new Set(['up']));

    // the last agent stops for real: the final report says down
    expect(await old.stop()).toBe(0);
    const last = sink.reports[sink.reports.length - 1]!.members.find((m) => m.address === VIP);
    expect(last).toMatchObject({ state: 'down', reason: 'agent stopped' });
  });
});

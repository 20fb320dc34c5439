/**
 * `npm start` (demo/main.ts) as a real process: on ports the OS gives (so it never collides with
 * a running `npm start` or other tests), it answers from health through the real `dig`, `curl`
 * reaches a backend through that answer, and SIGINT leaves no process and no port behind.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { resolvePorts } from '../../demo/ports.js';
import type { PortUse } from '../../demo/ports.js';
import { dig } from '../helpers/dig.js';
import { ROOT } from '../helpers/server.js';

const run = promisify(execFile);
const LAUNCHER = path.join(ROOT, 'dist/demo/main.js');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface DemoJson {
  launcher: number;
  children: { name: string; kind: string; pid: number }[];
  instances: { name: string; host: string; dnsPort: number; api: string }[];
  sites: { site: string; agentApi: string; vips: { address: string; port: number }[]; backends: { endpoint: string }[] }[];
}

let dirs: string[] = [];
let launched: Launched[] = [];
afterEach(async () => {
  // a failed test must not leave the demo running: SIGTERM stops it in order; then the groups it made
  for (const l of launched) {
    if (l.proc.exitCode === null && l.proc.signalCode === null) {
      l.proc.kill('SIGTERM');
      await Promise.race([l.exit, sleep(30_000)]);
    }
  }
  for (const d of dirs) {
    const demo = await readDemo(d);
    if (demo !== undefined) for (const c of demo.children) { try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ } }
    await rm(d, { recursive: true, force: true });
  }
  for (const l of launched) l.proc.kill('SIGKILL');
  launched = [];
  dirs = [];
});

/** The launcher's demo.json (written whole, renamed into place), once it is there. */
async function readDemo(dir: string): Promise<DemoJson | undefined> {
  const t = await readFile(path.join(dir, 'demo.json'), 'utf8').catch(() => undefined);
  return t === undefined ? undefined : (JSON.parse(t) as DemoJson);
}

interface Launched { proc: ChildProcess; out: () => string; exit: Promise<number | null> }

function launch(args: string[]): Launched {
  const proc = spawn(process.execPath, [LAUNCHER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const exit = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const l = { proc, out: () => out, exit };
  launched.push(l);
  return l;
}

/** Polls `f` every 100 ms until it returns a value (bounded by `tries`). */
async function until<T>(what: string, tries: number, f: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await f();
    if (v !== undefined) return v;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The start time of a process (field 22 of /proc/PID/stat), or undefined when it is gone. */
function startTime(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Every live process whose process group is one of `groups`. */
function membersOf(groups: ReadonlySet<number>): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const pgid = Number(readFileSync(`/proc/${e}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[2]);
      if (groups.has(pgid)) out.push(Number(e));
    } catch { /* exited meanwhile */ }
  }
  return out;
}

describe('npm start (demo/main.ts)', () => {
  it('answers from health, curl reaches a backend through the answer, and SIGINT stops every process and frees every port', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-demo-'));
    dirs.push(dir);
    // 127.0.0.1 and 127.0.0.3: other loopback pairs than a running `npm start`, all ports from the OS
    const l = launch(['--run-dir', dir, '--ns1', '127.0.0.1', '--ns2', '127.0.0.3', '--dns-port', '0', '--api-port', '0',
      '--vip-port', '0', '--backend-port', '0', '--agent-api-port', '0', '--ready-timeout', '120s']);
    const demo = await until('demo.json', 600, async () => {
      if (l.proc.exitCode !== null) throw new Error(`launcher exited ${l.proc.exitCode}: ${l.out()}`);
      return readDemo(dir);
    });
    expect(demo.children.map((c) => c.kind).sort()).toEqual(['agent', 'agent', 'backend', 'backend', 'backend', 'backend', 'dns', 'dns']);
    const [ns1, ns2] = demo.instances;

    // a health-based answer: NOERROR with the pool's ttl (20), not degradedTtl (5) nor SERVFAIL
    const healthAnswer = (i: DemoJson['instances'][number]): Promise<string[]> => until(`a health-based answer from ${i.name}`, 1200, async () => {
      const r = await dig(i.dnsPort, ['+norec', 'www.gslb.example.test', 'A'], i.host).catch(() => undefined);
      const a = r?.status === 'NOERROR' ? r.answer[0]?.split(' ') : undefined;
      return a?.[1] === '20' ? a : undefined;
    });
    const answer = await healthAnswer(ns1!);
    expect(answer.slice(2, 4)).toEqual(['IN', 'A']);
    const address = answer[4]!;
    const site = demo.sites.find((s) => s.vips.some((v) => v.address === address))!;
    expect(site).toBeDefined();
    expect(demo.sites.flatMap((s) => s.vips.map((v) => v.address))).toContain((await healthAnswer(ns2!))[4]);
    const { stdout: body } = await run('curl', ['-sS', '--max-time', '10', `http://${address}:${site.vips[0]!.port}/`]);
    expect(body).toMatch(new RegExp(`^${site.site} backend [12] \\(`));

    // the try-this block names this run's dig, ctl and token
    const token = (await readFile(path.join(dir, 'admin.token'), 'utf8')).trim();
    await until('the try-this block', 300, async () => (l.out().includes('Ctrl-C stops everything') ? true : undefined));
    expect(l.out()).toContain(`dig @${ns1!.host} -p ${ns1!.dnsPort} www.gslb.example.test`);
    expect(l.out()).toContain(`ctl --servers ${ns1!.api},${ns2!.api}`);
    expect(l.out()).toContain(`drain site`);
    expect(l.out()).toContain('explain www.gslb.example.test');
    expect(l.out()).toContain(token);
    expect(l.out()).toContain(`Status page: ${ns1!.api}/ `);
    // the demo's instances read without a token (--status-public): the page shows the state
    const st = await fetch(`${ns1!.api}/api/v1/state`);
    expect(st.status).toBe(200);
    expect(await (await fetch(`${ns1!.api}/api/v1/status-config`)).json()).toMatchObject({ public: true, admin: true });

    const pids = demo.children.map((c) => c.pid);
    const started = new Map(pids.map((p) => [p, startTime(p)]));
    expect([...started.values()].every((t) => t !== undefined)).toBe(true);
    const groups = new Set(pids);
    l.proc.kill('SIGINT');
    const code = await Promise.race([l.exit, sleep(90_000).then(() => 'still running')]);
    expect(code).toBe(0);
    expect(l.out()).toContain('npm start: stopped');
    // gone (or the pid belongs to a newer process), and nothing left in their process groups
    expect(pids.filter((p) => startTime(p) !== undefined && startTime(p) === started.get(p))).toEqual([]);
    expect(membersOf(groups)).toEqual([]);
    const uses: PortUse[] = [
      { what: 'DNS', hosts: [ns1!.host, ns2!.host], port: ns1!.dnsPort, udp: true },
      { what: 'DNS API', hosts: [ns1!.host, ns2!.host], port: Number(new URL(ns1!.api).port), udp: false },
      ...demo.sites.flatMap((s) => [
        ...s.vips.map((v) => ({ what: 'VIP', hosts: [v.address], port: v.port, udp: false })),
        ...s.backends.map((b) => ({ what: 'backend', hosts: [b.endpoint.split(':')[0]!], port: Number(b.endpoint.split(':')[1]), udp: false })),
        { what: 'agent API', hosts: [new URL(s.agentApi).hostname], port: Number(new URL(s.agentApi).port), udp: false },
      ]),
    ];
    expect(await resolvePorts(uses)).toMatchObject({ ok: true });
  }, 240_000);

  it('says which address and port is taken, and starts nothing', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-demo-'));
    dirs.push(dir);
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const l = launch(['--run-dir', dir, '--ns1', '127.0.0.1', '--ns2', '127.0.0.3', '--dns-port', '0', '--api-port', String(port)]);
      expect(await l.exit).toBe(1);
      expect(l.out()).toContain(`127.0.0.1:${port} (DNS API) is in use: is another \`npm start\` running?`);
      await expect(readFile(path.join(dir, 'demo.json'))).rejects.toThrow();
    } finally {
      await new Promise((r) => taken.close(r));
    }
  }, 60_000);
});

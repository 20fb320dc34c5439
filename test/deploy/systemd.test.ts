/**
 * The service units of deploy/systemd: `systemd-analyze verify` accepts them (no warning at
 * all), each runs as its own user with hardening and only the capabilities its program needs,
 * and those capabilities are enough. In a network-namespace lab, run as `nobody` through setpriv
 * with exactly the ambient set of its unit (and nothing else): the real slb-agent programs
 * nftables for a dsr VIP, proxies a VIP on port 80 and gets ARP answers from its pinger;
 * gslb-dns serves port 53 to dig; the standalone pinger gets ARP answers. With no capabilities
 * each of them fails at exactly that (the controls).
 */
import { execFile } from 'node:child_process';
import { chmod, chown, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentStatus, VipFullStatus } from '../../slb-agent/agent.js';
import type { PingerStatus } from '../../slb-agent/pinger/pinger.js';
import { watchNode } from '../helpers/cli.js';
import type { NodeProc } from '../helpers/cli.js';
import { dig, rr } from '../helpers/dig.js';
import { poll } from '../helpers/poll.js';
import { SECRET_ENV } from '../helpers/report.js';
import { ROOT } from '../helpers/server.js';
import { buildKernelLab } from '../slb-agent/forwarder/kernel-lab.js';
import type { KernelLab } from '../slb-agent/forwarder/kernel-lab.js';
import { exchange } from '../slb-agent/forwarder/suite.js';

const run = promisify(execFile);
const UNITS = path.join(ROOT, 'deploy', 'systemd');
const NOBODY = 65534;
const API = '127.0.0.1:9100';
const POLL_MS = 20_000;
const AGENT_BIN = path.join(ROOT, 'bin', 'slb-agent.js');

/** A unit file's settings: key -> values in order (continuation lines joined). */
async function readUnit(name: string): Promise<Map<string, string[]>> {
  const text = (await readFile(path.join(UNITS, name), 'utf8')).replace(/\\\n\s*/g, ' ');
  const settings = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) settings.set(m[1]!, [...(settings.get(m[1]!) ?? []), m[2]!.trim()]);
  }
  return settings;
}

const one = (u: Map<string, string[]>, key: string): string | undefined => u.get(key)?.at(-1);
const caps = (u: Map<string, string[]>, key: string): string[] => (one(u, key) ?? '').split(/\s+/).filter(Boolean).sort();

const EXPECTED_CAPS: Record<string, string[]> = {
  'gslb-dns.service': ['CAP_NET_BIND_SERVICE'],
  'slb-agent.service': ['CAP_NET_ADMIN', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW'],
  'slb-pinger.service': ['CAP_NET_RAW'],
};

describe('deploy/systemd units', () => {
  it('are the three services and the users they run as', async () => {
    expect((await readdir(UNITS)).sort()).toEqual(['gslb-dns.service', 'gslb.sysusers.conf', 'slb-agent.service', 'slb-pinger.service']);
    const users = (await readFile(path.join(UNITS, 'gslb.sysusers.conf'), 'utf8')).split('\n').filter((l) => l.startsWith('u ')).map((l) => l.split(/\s+/)[1]);
    for (const name of Object.keys(EXPECTED_CAPS)) expect(users).toContain(one(await readUnit(name), 'User'));
  });

  it('pass systemd-analyze verify without a single warning', async () => {
    // verify insists that ExecStart exists: point the units at this checkout's programs
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-units-'));
    try {
      await symlink(path.join(ROOT, 'bin', 'gslb-dns.js'), path.join(dir, 'gslb-dns'));
      await symlink(path.join(ROOT, 'bin', 'slb-agent.js'), path.join(dir, 'slb-agent'));
      const files: string[] = [];
      for (const name of Object.keys(EXPECTED_CAPS)) {
        const text = await readFile(path.join(UNITS, name), 'utf8');
        expect(text).toContain('/usr/local/bin/');
        files.push(path.join(dir, name));
        await writeFile(files.at(-1)!, text.replaceAll('/usr/local/bin/', `${dir}/`));
      }
      const { stdout, stderr } = await run('systemd-analyze', ['verify', ...files], { timeout: 60_000 });
      expect(stdout + stderr).toBe('');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.each(Object.keys(EXPECTED_CAPS))('%s: own user, only its capabilities, reload by SIGHUP, hardened, descriptors above 1024', async (name) => {
    const u = await readUnit(name);
    expect(one(u, 'User')).toMatch(/^(gslb-dns|slb-agent|slb-pinger)$/);
    expect(caps(u, 'AmbientCapabilities')).toEqual(EXPECTED_CAPS[name]);
    expect(caps(u, 'CapabilityBoundingSet')).toEqual(EXPECTED_CAPS[name]);
    expect(one(u, 'ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    for (const [key, value] of [['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['PrivateTmp', 'yes'], ['ProtectHome', 'yes'], ['PrivateDevices', 'yes']]) {
      expect(one(u, key!), key).toBe(value);
    }
    expect(Number(one(u, 'LimitNOFILE'))).toBeGreaterThan(1024);
    // no secret on a command line (visible in ps): token files by LoadCredential, site secrets by EnvironmentFile
    for (const m of (one(u, 'ExecStart') ?? '').matchAll(/--[a-z-]*token-file (\S+)/g)) expect(m[1]).toMatch(/^\$\{CREDENTIALS_DIRECTORY\}\//);
    expect(one(u, 'ExecStart')).not.toMatch(/secret/i);
  });

  it('gslb-dns.service: the state directory is the one writable place, and --state-dir points at it', async () => {
    const u = await readUnit('gslb-dns.service');
    expect(one(u, 'StateDirectory')).toBe('gslb-dns');
    expect(one(u, 'ExecStart')).toContain('--state-dir /var/lib/gslb-dns');
    // the default TCP cap (4096) is at most half the soft limit
    expect(Number(one(u, 'LimitNOFILE'))).toBeGreaterThanOrEqual(2 * 4096);
  });
});

describe('the programs as a non-root user with only the capabilities of their units (netns lab)', () => {
  let kl: KernelLab;
  let dir: string;
  let config: string;
  const procs: NodeProc[] = [];

  /** `argv` in the lab namespace `role` as `nobody`, with `capNames` (CAP_X) as its only capabilities. */
  function asNobody(role: string, capNames: string[], argv: string[], env: Record<string, string> = {}): NodeProc {
    const list = ['-all', ...capNames.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`)].join(',');
    const proc = watchNode(kl.lab.spawn(role, [
      'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups',
      `--inh-caps=${list}`, `--ambient-caps=${list}`, `--bounding-set=${list}`, '--no-new-privs',
      process.execPath, ...argv,
    ]), `${argv.slice(0, 2).map((a) => path.basename(a)).join(' ')} (setpriv)`, 10_000);
    procs.push(proc);
    return proc;
  }

  const startAgent = (capNames: string[]): NodeProc => asNobody('lb', capNames, [AGENT_BIN, '--config', config, '--run-dir', dir]);

  /** The effective capabilities and uid of a process started by asNobody (ip netns exec, env and setpriv each exec in place). */
  async function credentials(p: NodeProc): Promise<{ uid: string; caps: string[] }> {
    const text = await readFile(`/proc/${p.proc.pid!}/status`, 'utf8');
    const { stdout } = await run('capsh', [`--decode=${/^CapEff:\s+(\S+)/m.exec(text)?.[1]}`]);
    return { uid: /^Uid:\s+(\d+)/m.exec(text)?.[1] ?? '', caps: (stdout.trim().split('=')[1] ?? '').split(',').filter(Boolean).sort() };
  }

  async function status(): Promise<AgentStatus> {
    const { stdout } = await kl.lab.exec('lb', ['curl', '-sS', '--fail', '--max-time', '2', `http://${API}/status`], { timeoutMs: 5_000 });
    return JSON.parse(stdout) as AgentStatus;
  }

  const vip = (s: AgentStatus, name: string): VipFullStatus => s.vips.find((v) => v.name === name)!;

  beforeAll(async () => {
    kl = await buildKernelLab('dsr');
    dir = await mkdtemp(path.join(os.tmpdir(), 'slb-agent-caps-'));
    // nobody reads the files and owns the run directory (the unit's RuntimeDirectory)
    await chmod(dir, 0o755);
    await chown(dir, NOBODY, NOBODY);
    config = path.join(dir, 'site.yaml');
    await writeFile(path.join(dir, 'secret'), 'lab-secret-0123456789abcdef0123456789\n', { mode: 0o644 });
    const servers = (['rsa', 'rsb', 'rsc'] as const).map((r) => `      - { address: ${kl.rsAddress(r)}, port: 8080 }`);
    await writeFile(config, [
      'site: lab', 'agent: lb1', 'secret: file:secret',
      'dns: [ "http://127.0.0.1:1" ]', // nobody listens: reports fail, which this test does not need
      `api: ${API}`,
      'vips:',
      '  - name: kernel',
      `    address: ${kl.vip}`, '    port: 8080',
      '    forwarder: { mode: dsr, interface: eth0, scheduler: maglev }',
      '    check: { type: tcp, interval: 300ms, timeout: 200ms, rise: 1, fall: 1 }',
      '    realServers:', ...servers,
      '  - name: proxied',
      `    address: ${kl.net.host(2)}`, '    port: 80', // the LB's own address; port 80 needs CAP_NET_BIND_SERVICE
      '    forwarder: { mode: proxy, scheduler: rr }',
      '    check: { type: tcp, interval: 300ms, timeout: 200ms, rise: 1, fall: 1 }',
      '    realServers:', ...servers,
      'pinger:',
      '  interfaces:',
      `    - { name: eth0, peers: [${kl.rsAddress('rsa')}], interval: 500ms, method: arp }`,
      '',
    ].join('\n'), { mode: 0o644 });
  }, 120_000);

  afterAll(async () => {
    for (const p of procs) p.proc.kill('SIGKILL');
    await kl?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('without capabilities it can do none of it (the control)', async () => {
    const agent = startAgent([]);
    const s = await poll(status, (x) => vip(x, 'kernel').forwarder?.lastApply?.ok === false && vip(x, 'proxied').reason !== undefined, 'the applies failed', POLL_MS, 200);
    expect(vip(s, 'kernel').state).toBe('down');
    expect(vip(s, 'proxied').reason).toMatch(/EACCES/);
    await agent.waitLog((l) => l['msg'] === 'pinger failed to start; running without it', POLL_MS);
    await agent.stop();
    expect((await kl.lab.exec('lb', ['nft', 'list', 'tables'])).stdout).not.toContain('slb_agent');
  }, 60_000);

  it('with the unit\'s ambient capabilities as nobody: nftables programmed, port 80 proxied, ARP answered', async () => {
    const unitCaps = caps(await readUnit('slb-agent.service'), 'AmbientCapabilities');
    const agent = startAgent(unitCaps);
    const s = await poll(status, (x) => vip(x, 'kernel').forwarder?.lastApply?.ok === true && vip(x, 'proxied').state === 'up'
      && x.pinger?.interfaces[0]?.peers[0]?.answering === true, 'both VIPs applied and up, the peer answering', POLL_MS, 200);
    expect(vip(s, 'kernel').state).toBe('up');
    // it is who the unit says: uid nobody, exactly those capabilities in effect
    expect(await credentials(agent)).toEqual({ uid: String(NOBODY), caps: unitCaps.map((c) => c.toLowerCase()) });
    expect((await kl.lab.exec('lb', ['nft', 'list', 'tables'])).stdout).toContain('slb_agent');
    // traffic through both VIPs reaches the real servers (from the client in the root namespace)
    expect(new Set(await exchange(kl.vip, 8080, 20)).size).toBeGreaterThan(1);
    expect(new Set(await exchange(kl.net.host(2), 80, 6))).toEqual(new Set(['A', 'B', 'C']));
    const errors = agent.lines.filter((l) => typeof l['level'] === 'number' && l['level'] >= 50);
    expect(errors).toEqual([]);
  }, 90_000);

  it('gslb-dns with the unit\'s capability as nobody serves port 53 (and without it cannot bind)', async () => {
    const zones = path.join(ROOT, 'examples', 'proxy', 'zones');
    const listen = `${kl.net.host(2)}:53`;
    const argv = [path.join(ROOT, 'bin', 'gslb-dns.js'), '--zones', zones, '--listen', listen];
    const denied = asNobody('lb', [], argv, SECRET_ENV);
    await expect(denied.waitLog(() => false, POLL_MS)).rejects.toThrow(/EACCES|permission denied/i);
    const unitCaps = caps(await readUnit('gslb-dns.service'), 'AmbientCapabilities');
    const dns = asNobody('lb', unitCaps, argv, SECRET_ENV);
    await dns.waitLog((l) => l['msg'] === 'listening', POLL_MS);
    expect(await credentials(dns)).toEqual({ uid: String(NOBODY), caps: ['cap_net_bind_service'] });
    // the real dig from the root namespace, to port 53 of the LB namespace
    const reply = await dig(53, ['ns1.gslb.example.com', 'A'], kl.net.host(2));
    expect(reply.answer.map(rr)).toEqual(['ns1.gslb.example.com. 3600 IN A 192.0.2.53']);
    await dns.stop();
  }, 90_000);

  it('the standalone pinger with the unit\'s capability as nobody gets ARP answers (and without it cannot open its socket)', async () => {
    const file = path.join(dir, 'pinger.yaml');
    await writeFile(file, ['pinger:', '  interfaces:', `    - { name: eth0, peers: [${kl.rsAddress('rsa')}], interval: 500ms, method: arp }`, 'api: 127.0.0.1:9102', ''].join('\n'), { mode: 0o644 });
    const argv = [AGENT_BIN, 'pinger', '--config', file];
    const denied = asNobody('rsb', [], argv);
    await denied.waitLog((l) => l['msg'] === 'pinger failed to start', POLL_MS);
    const unitCaps = caps(await readUnit('slb-pinger.service'), 'AmbientCapabilities');
    const pinger = asNobody('rsb', unitCaps, argv);
    const peer = await poll(async () => {
      const { stdout } = await kl.lab.exec('rsb', ['curl', '-sS', '--fail', '--max-time', '2', 'http://127.0.0.1:9102/status'], { timeoutMs: 5_000 });
      return (JSON.parse(stdout) as { pinger: PingerStatus }).pinger.interfaces[0]?.peers[0];
    }, (p) => p?.answering === true, 'the peer answering ARP', POLL_MS, 200);
    expect(peer?.address).toBe(kl.rsAddress('rsa'));
    expect(await credentials(pinger)).toEqual({ uid: String(NOBODY), caps: ['cap_net_raw'] });
    await pinger.stop();
  }, 90_000);
});

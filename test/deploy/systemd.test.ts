/**
 * The service units of deploy/systemd: `systemd-analyze verify` accepts them (no warning at
 * all), each runs as its own user with hardening and only the capabilities its program needs,
 * and those capabilities are enough: the real slb-agent, run as `nobody` through setpriv with
 * exactly the ambient set of slb-agent.service (and nothing else), programs nftables for a dsr
 * VIP, proxies a VIP on port 80 and gets ARP answers from its pinger in a network-namespace
 * lab; with no capabilities the same agent fails at each of those.
 */
import { execFile } from 'node:child_process';
import { chmod, chown, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentStatus, VipFullStatus } from '../../slb-agent/agent.js';
import { watchNode } from '../helpers/cli.js';
import type { NodeProc } from '../helpers/cli.js';
import { poll } from '../helpers/poll.js';
import { ROOT } from '../helpers/server.js';
import { buildKernelLab } from '../slb-agent/forwarder/kernel-lab.js';
import type { KernelLab } from '../slb-agent/forwarder/kernel-lab.js';
import { exchange } from '../slb-agent/forwarder/suite.js';

const run = promisify(execFile);
const UNITS = path.join(ROOT, 'deploy', 'systemd');
const NOBODY = 65534;
const API = '127.0.0.1:9100';
const POLL_MS = 20_000;

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

describe('slb-agent as a non-root user with only the capabilities of slb-agent.service (netns lab)', () => {
  let kl: KernelLab;
  let dir: string;
  let config: string;
  const agents: NodeProc[] = [];

  /** The agent in the LB namespace as `nobody`, with `capNames` (CAP_X) as its only capabilities. */
  function startAgent(capNames: string[]): NodeProc {
    const list = ['-all', ...capNames.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`)].join(',');
    const agent = watchNode(kl.lab.spawn('lb', [
      'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups',
      `--inh-caps=${list}`, `--ambient-caps=${list}`, `--bounding-set=${list}`, '--no-new-privs',
      process.execPath, path.join(ROOT, 'bin', 'slb-agent.js'), '--config', config, '--run-dir', dir,
    ]), 'slb-agent (setpriv)', 10_000);
    agents.push(agent);
    return agent;
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
    for (const a of agents) a.proc.kill('SIGKILL');
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
    // ip netns exec and setpriv each exec the next program in place: the spawned pid is the agent's
    const text = await readFile(`/proc/${agent.proc.pid!}/status`, 'utf8');
    expect(/^Uid:\s+(\d+)/m.exec(text)?.[1]).toBe(String(NOBODY));
    const { stdout: decoded } = await run('capsh', [`--decode=${/^CapEff:\s+(\S+)/m.exec(text)?.[1]}`]);
    expect(decoded.trim().split('=')[1]!.split(',').sort()).toEqual(unitCaps.map((c) => c.toLowerCase()));
    expect((await kl.lab.exec('lb', ['nft', 'list', 'tables'])).stdout).toContain('slb_agent');
    // traffic through both VIPs reaches the real servers (from the client in the root namespace)
    expect(new Set(await exchange(kl.vip, 8080, 20)).size).toBeGreaterThan(1);
    expect(new Set(await exchange(kl.net.host(2), 80, 6))).toEqual(new Set(['A', 'B', 'C']));
    const errors = agent.lines.filter((l) => typeof l['level'] === 'number' && l['level'] >= 50);
    expect(errors).toEqual([]);
  }, 90_000);
});

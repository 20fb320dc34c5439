/**
 * `slb-agent rs-setup` in lab namespaces: each mode sets up and undoes exactly, reruns are
 * idempotent, namespaces do not clash, and a DSR real server serves the VIP without answering ARP
 * for it. Runs the built CLI (`npx tsc -p tsconfig.json` first; `npm test` does).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab } from '../../lab/netns.js';
import type { Lab, LabIface } from '../../lab/netns.js';
import { TUNNEL_INNER_MAC, VXLAN_PORT, rsTunnelDevice, vxlanOverhead } from '../../slb-agent/forwarder/tunnel.js';
import { STATE_DIR, parseRsSetupArgs } from '../../slb-agent/rs-setup.js';
import { UsageError } from '../../shared/cli.js';
import { ROOT } from '../helpers/server.js';

const CLI = path.join(ROOT, 'bin/slb-agent.js');

interface Result { code: number | null; stdout: string; stderr: string }

function runIn(ns: string, argv: string[], wrap: string[] = []): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, ...wrap, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); }, 30_000);
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

describe('slb-agent rs-setup', () => {
  let lab: Lab;
  const eth: Record<string, LabIface> = {};
  const inodes: string[] = [];

  const rs = (role: string, ...args: string[]): Promise<Result> => runIn(lab.ns(role), [process.execPath, CLI, 'rs-setup', ...args]);
  const ok = async (role: string, ...args: string[]): Promise<string> => {
    const r = await rs(role, ...args);
    if (r.code !== 0) throw new Error(`rs-setup ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  const sh = async (role: string, ...argv: string[]): Promise<string> => (await lab.exec(role, argv)).stdout;
  const sysctl = async (role: string, key: string): Promise<string> => (await sh(role, 'cat', `/proc/sys/${key}`)).trim();
  const loAddrs = async (role: string): Promise<string[]> => {
    const j = JSON.parse(await sh(role, 'ip', '-j', 'addr', 'show', 'dev', 'lo')) as { addr_info: { local: string; prefixlen: number }[] }[];
    return j[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`).sort();
  };
  const nftTables = async (role: string): Promise<string> => sh(role, 'nft', 'list', 'tables');
  const stateFiles = async (role: string): Promise<string[]> => {
    const inode = /\d+/.exec(await sh(role, 'readlink', '/proc/self/ns/net'))![0];
    return (await readdir(STATE_DIR).catch(() => [] as string[])).filter((f) => f.startsWith(`${inode}-`));
  };

  beforeAll(async () => {
    lab = await createLab();
    await lab.addBridge('br0');
    for (const [i, role] of ['rs1', 'rs2', 'rs3', 'client'].entries()) {
      await lab.addNamespace(role, { ipv6: true });
      eth[role] = await lab.attach(role, 'br0', { address: `10.77.0.${i + 1}/24` });
      inodes.push(/\d+/.exec(await sh(role, 'readlink', '/proc/self/ns/net'))![0]!);
    }
  });
  afterAll(async () => {
    // a failed test must not leave state files of namespaces that are about to vanish
    const files = await readdir(STATE_DIR).catch(() => [] as string[]);
    await Promise.all(files.filter((f) => inodes.some((i) => f.startsWith(`${i}-`))).map((f) => unlink(path.join(STATE_DIR, f))));
    await lab?.close();
  });

  it('dsr: VIP on lo and ARP sysctls, idempotent, undone exactly', async () => {
    const lo0 = await loAddrs('rs1');
    expect(await sysctl('rs1', 'net/ipv4/conf/all/arp_ignore')).toBe('0');
    const out = await ok('rs1', '--mode', 'dsr', '--vip', '10.200.0.10', '--interface', 'eth0');
    expect(out).toContain('add 10.200.0.10/32 to lo');
    const check = async (): Promise<void> => {
      expect(await loAddrs('rs1')).toEqual([...lo0, '10.200.0.10/32'].sort());
      for (const dev of ['all', 'eth0']) {
        expect(await sysctl('rs1', `net/ipv4/conf/${dev}/arp_ignore`)).toBe('1');
        expect(await sysctl('rs1', `net/ipv4/conf/${dev}/arp_announce`)).toBe('2');
      }
      expect(await stateFiles('rs1')).toHaveLength(1);
    };
    await check();
    await ok('rs1', '--mode', 'dsr', '--vip', '10.200.0.10', '--interface', 'eth0');
    await check();
    // other flags for a VIP that is set up: refuse rather than half-change it
    const again = await rs('rs1', '--mode', 'l3dsr-dscp', '--vip', '10.200.0.10', '--dscp', '3');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already set up as dsr.*--undo first/);

    await ok('rs1', '--undo', '--vip', '10.200.0.10');
    expect(await loAddrs('rs1')).toEqual(lo0);
    for (const dev of ['all', 'eth0']) {
      expect(await sysctl('rs1', `net/ipv4/conf/${dev}/arp_ignore`)).toBe('0');
      expect(await sysctl('rs1', `net/ipv4/conf/${dev}/arp_announce`)).toBe('0');
    }
    expect(await stateFiles('rs1')).toEqual([]);
  });

  it('keeps shared sysctls until the last VIP of the namespace is undone; keeps stricter values', async () => {
    await lab.sysctl('rs1', 'net.ipv4.conf.eth0.arp_ignore', 2);
    await ok('rs1', '--mode', 'dsr', '--vip', '10.200.0.11', '--interface', 'eth0');
    await ok('rs1', '--mode', 'dsr', '--vip', '10.200.0.12');
    expect(await sysctl('rs1', 'net/ipv4/conf/eth0/arp_ignore')).toBe('2');
    await ok('rs1', '--undo', '--vip', '10.200.0.11');
    expect(await sysctl('rs1', 'net/ipv4/conf/all/arp_ignore')).toBe('1');
    expect(await loAddrs('rs1')).toContain('10.200.0.12/32');
    await ok('rs1', '--undo', '--vip', '10.200.0.12');
    expect(await sysctl('rs1', 'net/ipv4/conf/all/arp_ignore')).toBe('0');
    expect(await sysctl('rs1', 'net/ipv4/conf/all/arp_announce')).toBe('0');
    expect(await sysctl('rs1', 'net/ipv4/conf/eth0/arp_ignore')).toBe('2');
    expect(await sysctl('rs1', 'net/ipv4/conf/eth0/arp_announce')).toBe('0');
    await lab.sysctl('rs1', 'net.ipv4.conf.eth0.arp_ignore', 0);
  });

  it('l3dsr-dscp: a raw-priority prerouting rule puts the VIP back (IPv4 and IPv6)', async () => {
    await ok('rs2', '--mode', 'l3dsr-dscp', '--vip', '10.200.0.20', '--dscp', '5');
    await ok('rs2', '--mode', 'l3dsr-dscp', '--vip', '2001:db8::20', '--dscp', '6');
    await ok('rs2', '--mode', 'l3dsr-dscp', '--vip', '2001:db8::20', '--dscp', '6');
    const v4 = await sh('rs2', 'nft', 'list', 'table', 'ip', 'slb_rs_10_200_0_20');
    expect(v4).toContain('type filter hook prerouting priority raw; policy accept;');
    expect(v4).toMatch(/fib daddr type local ip dscp (5|0x05) ip daddr set 10\.200\.0\.20/);
    const v6 = await sh('rs2', 'nft', 'list', 'table', 'ip6', 'slb_rs_2001_db8__20');
    expect(v6).toMatch(/fib daddr type local ip6 dscp (6|0x06) ip6 daddr set 2001:db8::20/);
    expect((v6.match(/daddr set/g) ?? []).length).toBe(1);
    expect(await loAddrs('rs2')).toEqual(expect.arrayContaining(['10.200.0.20/32', '2001:db8::20/128']));

    await ok('rs2', '--undo', '--vip', '10.200.0.20');
    await ok('rs2', '--undo', '--vip', '2001:db8::20');
    expect(await nftTables('rs2')).toBe('');
    expect(await loAddrs('rs2')).not.toEqual(expect.arrayContaining(['10.200.0.20/32']));
    expect((await loAddrs('rs2')).some((a) => a.startsWith('2001:db8::20'))).toBe(false);
    expect(await sysctl('rs2', 'net/ipv4/conf/all/arp_ignore')).toBe('0');
    expect(await stateFiles('rs2')).toEqual([]);
  });

  interface TunnelLink { address: string; flags: string[]; linkinfo: { info_kind: string; info_data: { external?: boolean; id?: number; port: number } } }
  const tunnelLink = async (role: string, dev: string): Promise<TunnelLink> =>
    (JSON.parse(await sh(role, 'ip', '-d', '-j', 'link', 'show', 'dev', dev)) as TunnelLink[])[0]!;
  const devAddrs = async (role: string, dev: string): Promise<string[]> => { // not the IPv6 link-local one
    const j = JSON.parse(await sh(role, 'ip', '-j', 'addr', 'show', 'dev', dev)) as { addr_info: { local: string; prefixlen: number; scope: string }[] }[];
    return j[0]!.addr_info.filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`).sort();
  };

  it('l3dsr-tunnel vxlan: external-mode device with the shared inner MAC and the VIP, loose rp_filter, MSS clamp; undone', async () => {
    const dev = rsTunnelDevice(4);
    await ok('rs3', '--mode', 'l3dsr-tunnel', '--vip', '10.200.0.30', '--interface', 'eth0');
    await ok('rs3', '--mode', 'l3dsr-tunnel', '--vip', '10.200.0.30', '--interface', 'eth0');
    const link = await tunnelLink('rs3', dev);
    expect(link.address).toBe(TUNNEL_INNER_MAC);
    expect(link.flags).toContain('UP');
    expect(link.linkinfo.info_kind).toBe('vxlan');
    // external (metadata) mode: no VNI of its own, it takes every VNI
    expect(link.linkinfo.info_data).toMatchObject({ external: true, port: VXLAN_PORT });
    expect(link.linkinfo.info_data.id ?? 0).toBe(0);
    expect(await devAddrs('rs3', dev)).toEqual(['10.200.0.30/32']);
    expect(await loAddrs('rs3')).toContain('10.200.0.30/32');
    expect(await sysctl('rs3', `net/ipv4/conf/${dev}/rp_filter`)).toBe('2');
    const mss = 1500 - vxlanOverhead(4) - 40;
    const table = await sh('rs3', 'nft', 'list', 'table', 'ip', 'slb_rs_10_200_0_30');
    expect(table).toContain('type filter hook output priority mangle');
    expect(table).toContain(`ip saddr 10.200.0.30 tcp flags syn tcp option maxseg size > ${mss} tcp option maxseg size set ${mss}`);

    // a second VIP shares the device; undoing the first takes its VIP off the kept device; the device goes with the last VIP
    await ok('rs3', '--mode', 'l3dsr-tunnel', '--vip', '10.200.0.31', '--mtu', '9000');
    expect(await sh('rs3', 'nft', 'list', 'table', 'ip', 'slb_rs_10_200_0_31')).toContain(`size set ${9000 - vxlanOverhead(4) - 40}`);
    expect(await devAddrs('rs3', dev)).toEqual(['10.200.0.30/32', '10.200.0.31/32']);
    expect(await ok('rs3', '--undo', '--vip', '10.200.0.30')).toContain(`device ${dev} kept`);
    expect(await devAddrs('rs3', dev)).toEqual(['10.200.0.31/32']);
    expect(await loAddrs('rs3')).not.toContain('10.200.0.30/32');
    await ok('rs3', '--undo', '--vip', '10.200.0.31');
    expect(await sh('rs3', 'ip', '-o', 'link', 'show')).not.toContain(dev);
    expect(await loAddrs('rs3')).not.toContain('10.200.0.31/32');
    expect(await nftTables('rs3')).toBe('');
    expect(await sysctl('rs3', 'net/ipv4/conf/all/arp_ignore')).toBe('0');
    expect(await stateFiles('rs3')).toEqual([]);
  });

  it('l3dsr-tunnel vxlan: refuses a device of that name that is not an external-mode vxlan device', async () => {
    const dev = rsTunnelDevice(4);
    await lab.exec('rs3', ['ip', 'link', 'add', dev, 'address', TUNNEL_INNER_MAC, 'type', 'vxlan', 'id', '777', 'dstport', String(VXLAN_PORT)]);
    try {
      const r = await rs('rs3', '--mode', 'l3dsr-tunnel', '--vip', '10.200.0.33');
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`device ${dev} exists but is not the vxlan device rs-setup expects \\(vxlan, external mode`));
      expect(await loAddrs('rs3')).not.toContain('10.200.0.33/32');
      expect(await stateFiles('rs3')).toEqual([]);
    } finally {
      await lab.exec('rs3', ['ip', 'link', 'del', 'dev', dev]);
    }
  });

  it('l3dsr-tunnel vxlan for an IPv6 VIP: an IPv6-underlay external device, MSS for IPv6 inside IPv6', async () => {
    await ok('rs3', '--mode', 'l3dsr-tunnel', '--vip', '2001:db8::30');
    const dev = rsTunnelDevice(6);
    const link = await tunnelLink('rs3', dev);
    expect(link.address).toBe(TUNNEL_INNER_MAC);
    expect(link.linkinfo.info_kind).toBe('vxlan');
    expect(link.linkinfo.info_data).toMatchObject({ external: true, port: VXLAN_PORT });
    expect(await devAddrs('rs3', dev)).toContain('2001:db8::30/128');
    expect(await sh('rs3', 'ss', '-uanH')).toContain(`[::]:${VXLAN_PORT}`);
    const mss = 1500 - vxlanOverhead(6) - 60;
    expect(await sh('rs3', 'nft', 'list', 'table', 'ip6', 'slb_rs_2001_db8__30')).toContain(`ip6 saddr 2001:db8::30 tcp flags syn tcp option maxseg size > ${mss} tcp option maxseg size set ${mss}`);
    await ok('rs3', '--undo', '--vip', '2001:db8::30');
    expect(await sh('rs3', 'ip', '-o', 'link', 'show')).not.toContain(dev);
    expect((await loAddrs('rs3')).some((a) => a.startsWith('2001:db8::30'))).toBe(false);
    expect(await nftTables('rs3')).toBe('');
    expect(await stateFiles('rs3')).toEqual([]);
  });

  it('ipip and gre on a kernel without them: a clear message naming the kernel support, nothing left behind', async () => {
    for (const [tunnel, cfg] of [['ipip', 'CONFIG_NET_IPIP'], ['gre', 'CONFIG_NET_IPGRE']] as const) {
      const r = await rs('rs3', '--mode', 'l3dsr-tunnel', '--tunnel', tunnel, '--vip', '10.200.0.32');
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`this kernel has no ${tunnel} tunnel support (${cfg}`);
      expect(r.stderr).toContain('use --tunnel vxlan instead');
      expect(await loAddrs('rs3')).not.toContain('10.200.0.32/32');
      expect(await sysctl('rs3', 'net/ipv4/conf/all/arp_ignore')).toBe('0');
      expect(await stateFiles('rs3')).toEqual([]);
    }
  });

  it('setups in two namespaces do not clash', async () => {
    await ok('rs1', '--mode', 'dsr', '--vip', '10.200.0.40');
    await ok('rs2', '--mode', 'dsr', '--vip', '10.200.0.40');
    expect(await stateFiles('rs1')).toHaveLength(1);
    expect(await stateFiles('rs2')).toHaveLength(1);
    await ok('rs1', '--undo', '--vip', '10.200.0.40');
    expect(await loAddrs('rs1')).not.toContain('10.200.0.40/32');
    expect(await sysctl('rs1', 'net/ipv4/conf/all/arp_ignore')).toBe('0');
    expect(await loAddrs('rs2')).toContain('10.200.0.40/32');
    expect(await sysctl('rs2', 'net/ipv4/conf/all/arp_ignore')).toBe('1');
    await ok('rs2', '--undo', '--vip', '10.200.0.40');
    expect(await sysctl('rs2', 'net/ipv4/conf/all/arp_ignore')).toBe('0');
  });

  it('drops a stale record left by a deleted namespace whose inode this one reuses', async () => {
    const inode = /\d+/.exec(await sh('rs1', 'readlink', '/proc/self/ns/net'))![0];
    const stale = { version: 1, vip: '10.200.0.60', netns: `net:[${inode}]`, mode: 'l3dsr-dscp', options: { dscp: 9 }, addedAddress: true, sysctls: {} };
    await mkdir(STATE_DIR, { recursive: true });
    await writeFile(path.join(STATE_DIR, `${inode}-10_200_0_60.json`), JSON.stringify(stale));
    const out = await ok('rs1', '--mode', 'dsr', '--vip', '10.200.0.60');
    expect(out).toContain('dropped a stale record of VIP 10.200.0.60');
    expect(await loAddrs('rs1')).toContain('10.200.0.60/32');
    await ok('rs1', '--undo', '--vip', '10.200.0.60');
    expect(await stateFiles('rs1')).toEqual([]);
  });

  it('undo without state reverts what it can identify and says so', async () => {
    await lab.exec('rs2', ['ip', 'addr', 'add', '10.200.0.50/32', 'dev', 'lo']);
    await lab.exec('rs2', ['nft', 'add', 'table', 'ip', 'slb_rs_10_200_0_50']);
    const out = await ok('rs2', '--undo', '--vip', '10.200.0.50');
    expect(out).toContain('no rs-setup state for VIP 10.200.0.50');
    expect(await loAddrs('rs2')).not.toContain('10.200.0.50/32');
    expect(await nftTables('rs2')).toBe('');
  });

  it('bad flags: a clear message, and from the CLI exit 2 with the usage; without root it says so', async () => {
    for (const [args, msg] of [
      [['--vip', '10.0.0.1'], /--mode is required/],
      [['--mode', 'nat', '--vip', '10.0.0.1'], /--mode must be dsr, l3dsr-dscp or l3dsr-tunnel/],
      [['--mode', 'dsr'], /--vip ADDR is required/],
      [['--mode', 'dsr', '--vip', '10.0.0.300'], /--vip must be an IPv4 or IPv6 address/],
      [['--mode', 'l3dsr-dscp', '--vip', '10.0.0.1'], /needs --dscp 1-63/],
      [['--mode', 'l3dsr-dscp', '--vip', '10.0.0.1', '--dscp', '64'], /--dscp must be an integer from 1 to 63/],
      [['--mode', 'dsr', '--vip', '10.0.0.1', '--dscp', '3'], /--dscp only goes with --mode l3dsr-dscp/],
      [['--mode', 'dsr', '--vip', '10.0.0.1', '--tunnel', 'vxlan'], /--tunnel only goes with --mode l3dsr-tunnel/],
      [['--mode', 'l3dsr-tunnel', '--vip', '10.0.0.1', '--vni', '5'], /Unknown option '--vni'/],
      [['--mode', 'l3dsr-tunnel', '--vip', '10.0.0.1', '--tunnel', 'wireguard'], /--tunnel must be vxlan, ipip or gre/],
      [['--mode', 'l3dsr-tunnel', '--vip', '2001:db8::1', '--mtu', '1000'], /--mtu must be an integer from 1280 to 65535/],
      [['--mode', 'dsr', '--vip', '10.0.0.1', '--bogus'], /Unknown option '--bogus'/],
    ] as const) {
      expect(() => parseRsSetupArgs([...args])).toThrow(UsageError);
      expect(() => parseRsSetupArgs([...args])).toThrow(msg);
    }
    for (const args of [['--mode', 'nat', '--vip', '10.0.0.1'], ['--mode', 'dsr', '--vip', '10.0.0.1', '--bogus']]) {
      const r = await rs('rs1', ...args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(/^slb-agent rs-setup: .+\nusage:\n {2}slb-agent rs-setup --mode/);
    }
    const r = await runIn(lab.ns('rs1'), [process.execPath, CLI, 'rs-setup', '--mode', 'dsr', '--vip', '10.0.0.1'],
      ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('rs-setup must run as root');
  });

  it('dsr end to end: the client is served by the VIP and the real server never answers ARP for it', async () => {
    const vip = '10.200.0.60';
    await ok('rs1', '--mode', 'dsr', '--vip', vip, '--interface', 'eth0');
    const be = await lab.startBackend('rs1', { id: 'rs1', tcp: `${vip}:7000` });
    // what an LB does in dsr mode: the frame for the VIP goes to the real server's MAC
    await lab.exec('client', ['ip', 'neigh', 'replace', vip, 'lladdr', eth.rs1!.mac, 'dev', 'eth0', 'nud', 'permanent']);
    await lab.exec('client', ['ip', 'route', 'add', `${vip}/32`, 'dev', 'eth0']);
    const script = `const s = require('net').connect({ host: '${vip}', port: 7000, allowHalfOpen: true });
      let got = ''; setTimeout(() => { console.log('timeout ' + got); process.exit(1); }, 5000).unref();
      s.on('data', (d) => { got += d; if (got === 'rs1\\nhi') s.end(); });
      s.on('connect', () => s.write('hi')); s.on('end', () => { console.log(JSON.stringify({ got, local: s.localAddress })); });
      s.on('error', (e) => { console.log('error ' + e.message); process.exit(1); });`;
    const served = JSON.parse((await lab.exec('client', [process.execPath, '-e', script])).stdout) as { got: string; local: string };
    expect(served).toEqual({ got: 'rs1\nhibye\n', local: eth.client!.address });

    const arp = await runIn(lab.ns('client'), ['arping', '-i', 'eth0', '-c', '2', '-w', '2', vip]);
    expect(arp.stdout).not.toMatch(/bytes from/);
    expect(arp.code).not.toBe(0);
    // the real server still answers ARP for its own address (the check above is not vacuous)
    const own = await runIn(lab.ns('client'), ['arping', '-i', 'eth0', '-c', '1', '-w', '2', eth.rs1!.address!]);
    expect(own.stdout).toContain(eth.rs1!.mac);
    await be.stop();
    await ok('rs1', '--undo', '--vip', vip);
    expect(existsSync(STATE_DIR) ? await stateFiles('rs1') : []).toEqual([]);
  });
});

import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { request } from 'node:http';
import { connect } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, run } from '../../lab/netns.js';
import type { Lab, LabIface, Subnet } from '../../lab/netns.js';
import { ROOT } from '../helpers/server.js';

const DIST_LAB = path.join(ROOT, 'dist/lab/netns.js');

async function names(): Promise<string> {
  const [ns, links] = await Promise.all([run(['ip', 'netns', 'list']), run(['ip', '-o', 'link', 'show'])]);
  return ns.stdout + links.stdout;
}

function tcpTalk(host: string, port: number, send: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const sock = connect({ host, port, allowHalfOpen: true });
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`tcp: no end within 5 s, got ${JSON.stringify(got)}`)); }, 5_000);
    sock.on('data', (d) => {
      got += d.toString();
      // half-close only after the echo, so the server's `bye` follows it
      if (got === `c\n${send}`) sock.end();
    });
    sock.on('end', () => { clearTimeout(timer); resolve(got); });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
    sock.on('connect', () => { sock.write(send); });
  });
}

function udpTalk(host: string, port: number, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4');
    const timer = setTimeout(() => { sock.close(); reject(new Error('udp: no answer within 5 s')); }, 5_000);
    sock.on('message', (m) => { clearTimeout(timer); sock.close(); resolve(m.toString()); });
    sock.send(payload, port, host);
  });
}

function httpGet(host: string, port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/', timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }); });
    });
    req.on('timeout', () => { req.destroy(new Error('http: timeout')); });
    req.on('error', reject);
    req.end();
  });
}

describe('lab: namespaces on a bridge', () => {
  let lab: Lab;
  let net: Subnet;
  const ifs: Record<string, LabIface> = {};

  beforeAll(async () => {
    lab = await createLab();
    net = await lab.subnet();
    await lab.addBridge('br0', { ageingSec: 20 });
    for (const [i, role] of ['a', 'b', 'c'].entries()) {
      await lab.addNamespace(role);
      ifs[role] = await lab.attach(role, 'br0', { address: net.cidr(i + 2) });
    }
    ifs.host = await lab.attach('host', 'br0', { address: net.cidr(1), mac: '02:00:00:00:00:01' });
  });
  afterAll(async () => { await lab?.close(); });

  it('names namespaces and interfaces as documented', async () => {
    expect(lab.ns('host')).toBe('');
    expect(lab.ns('a')).toBe(`slbt-${lab.id}-a`);
    expect(ifs.a).toMatchObject({ ns: lab.ns('a'), ifname: 'eth0', address: net.host(2) });
    expect(ifs.host!.ifname.length).toBeLessThanOrEqual(15);
    expect(ifs.host!.mac).toBe('02:00:00:00:00:01');
    const { stdout } = await lab.exec('sw-br0', ['ip', '-d', '-j', 'link', 'show', 'dev', 'br0']);
    const info = (JSON.parse(stdout) as { linkinfo: { info_data: Record<string, number> } }[])[0]!.linkinfo.info_data;
    expect(info).toMatchObject({ stp_state: 0, mcast_snooping: 0, ageing_time: 2000 });
    // IPv6 off by default: no link-local address to send neighbour discovery from
    expect((await lab.exec('a', ['ip', '-6', 'addr', 'show'])).stdout).toBe('');
    await expect(lab.exec('a', ['false'])).rejects.toThrow(/false exited 1/);
  });

  it('pings across the bridge and captures the packets', async () => {
    const cap = await lab.capture('b', 'eth0', 'icmp and icmp[icmptype] == icmp-echo');
    await lab.exec('a', ['ping', '-c', '3', '-i', '0.2', '-W', '2', net.host(3)]);
    await lab.exec('a', ['ping', '-c', '1', '-W', '2', net.host(4)]);
    await lab.exec('host', ['ping', '-c', '1', '-W', '2', net.host(3)]);
    const { count, lines } = await cap.stop();
    expect(count).toBe(4);
    expect(lines).toHaveLength(4);
    expect(lines.filter((l) => l.includes(ifs.a!.mac))).toHaveLength(3);
  });

  it('sysctl writes inside the namespace only', async () => {
    await lab.sysctl('a', 'net.ipv4.ip_forward', 1);
    expect((await lab.exec('a', ['cat', '/proc/sys/net/ipv4/ip_forward'])).stdout.trim()).toBe('1');
    expect((await lab.exec('b', ['cat', '/proc/sys/net/ipv4/ip_forward'])).stdout.trim()).toBe('0');
  });

  it('a backend in another namespace serves TCP, UDP and HTTP to the host', async () => {
    const addr = net.host(4);
    const be = await lab.startBackend('c', { id: 'c', tcp: `${addr}:7000`, udp: `${addr}:7001`, http: `${addr}:8080` });
    expect(await tcpTalk(addr, 7000, 'hello')).toBe('c\nhellobye\n');
    expect(await udpTalk(addr, 7001, 'ping')).toBe('c:ping');
    expect(await httpGet(addr, 8080)).toEqual({ status: 200, body: 'c\n' });
    await be.stop();
    expect(be.process.exitCode ?? be.process.signalCode).not.toBeNull();
  });

  it('link joins two namespaces directly', async () => {
    await lab.addNamespace('d');
    const [x, y] = await lab.link('a', 'd', { a: { address: '10.9.0.1/30' }, b: { address: '10.9.0.2/30', ifname: 'uplink' } });
    expect(x.ifname).toBe('eth1');
    expect(y).toMatchObject({ ifname: 'uplink', address: '10.9.0.2' });
    await lab.exec('d', ['ping', '-c', '1', '-W', '2', '10.9.0.1']);
  });
});

describe('lab: cleanup', () => {
  it('close() removes namespaces and host veths, and is idempotent', async () => {
    const lab = await createLab();
    await lab.addBridge('br0');
    await lab.addNamespace('x');
    await lab.attach('x', 'br0');
    const h = await lab.attach('host', 'br0');
    lab.spawn('x', ['sleep', '60']);
    expect(await names()).toContain(lab.ns('x'));
    expect(await names()).toContain(h.ifname);
    await lab.close();
    await lab.close();
    const after = await names();
    expect(after).not.toContain(`-${lab.id}-`);
    expect(after).not.toContain(h.ifname);
  });

  it('createLab removes what a killed process left behind', async () => {
    const script = `const m = await import(${JSON.stringify(DIST_LAB)});
      const lab = await m.createLab(); await lab.addBridge('br0'); await lab.addNamespace('x');
      const h = await lab.attach('host', 'br0'); console.log(JSON.stringify({ ns: lab.ns('x'), sw: lab.ns('sw-br0'), host: h.ifname }));
      process.kill(process.pid, 'SIGKILL');`;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let s = '';
      child.stdout.on('data', (d: Buffer) => { s += d.toString(); });
      child.on('exit', (_code, signal) => { if (signal === 'SIGKILL') resolve(s); else reject(new Error(`child was not killed: ${s}`)); });
    });
    const left = JSON.parse(out) as { ns: string; sw: string; host: string };
    const before = await names();
    for (const n of Object.values(left)) expect(before).toContain(n);
    const lab = await createLab();
    await lab.close();
    const after = await names();
    for (const n of Object.values(left)) expect(after).not.toContain(n);
  });

  it('a SIGTERM-ed process cleans up its labs on the way out', async () => {
    const script = `const m = await import(${JSON.stringify(DIST_LAB)});
      const lab = await m.createLab(); await lab.addBridge('br0');
      const h = await lab.attach('host', 'br0'); console.log(JSON.stringify({ sw: lab.ns('sw-br0'), host: h.ifname }));
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const out = await new Promise<string>((resolve, reject) => {
      let s = '';
      child.stdout.on('data', (d: Buffer) => { s += d.toString(); if (s.includes('\n')) resolve(s); });
      child.on('exit', () => { reject(new Error(`child exited early: ${s}`)); });
    });
    const left = JSON.parse(out) as { sw: string; host: string };
    const exited = new Promise((resolve) => { child.on('exit', (_c, sig) => { resolve(sig); }); });
    child.kill('SIGTERM');
    expect(await exited).toBe('SIGTERM');
    const after = await names();
    for (const n of Object.values(left)) expect(after).not.toContain(n);
  });
});

/**
 * The shared data-plane suite (./suite.ts) run against the userspace proxy on 127.0.0.1, plus
 * what only the proxy does (UDP session expiry, persistence expiry, listeners kept across applies).
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { describe, expect, it } from 'vitest';
import type { DataPlane, RealServerSpec, VipSpec } from '../../../slb-agent/forwarder/data-plane.js';
import { eligibleBackends } from '../../../slb-agent/forwarder/data-plane.js';
import { createProxyDataPlane } from '../../../slb-agent/forwarder/proxy/proxy.js';
import type { ProxyDataPlane } from '../../../slb-agent/forwarder/proxy/proxy.js';
import type { SchedulerKind } from '../../../slb-agent/forwarder/schedulers/index.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { connect, dataPlaneSuite, udpRequest as udpRequestTo, until } from './suite.js';

const udpRequest = (c: dgram.Socket, port: number, payload: string): Promise<string> => udpRequestTo(c, HOST, port, payload);
import type { BackendName, SuiteEnv } from './suite.js';

const HOST = '127.0.0.1';
async function freeTcpPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, HOST, resolve));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, HOST, resolve));
  const { port } = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

interface TcpBackend { readonly id: string; readonly port: number; close(): Promise<void> }

/** Sends `<id>\n` on accept, echoes data, and on the client's FIN sends `bye\n` and ends (checks half-close). */
async function tcpBackend(id: string): Promise<TcpBackend> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    sock.write(`${id}\n`);
    sock.on('data', (d) => sock.write(d));
    sock.on('end', () => sock.end('bye\n'));
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    id,
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

interface UdpBackend { readonly id: string; readonly port: number; close(): Promise<void> }

/** Answers every datagram with `<id>:<payload>`. */
async function udpBackend(id: string): Promise<UdpBackend> {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) => sock.send(`${id}:${msg.toString()}`, rinfo.port, rinfo.address));
  await new Promise<void>((resolve) => sock.bind(0, HOST, resolve));
  return { id, port: sock.address().port, close: () => new Promise<void>((resolve) => sock.close(() => resolve())) };
}

/** Connects, reads the serving backend's id and closes; returns the id. */
async function served(port: number): Promise<string> {
  const c = await connect(HOST, port);
  c.socket.destroy();
  return c.id;
}

function rs(id: string, port: number, opts: Partial<Omit<RealServerSpec, 'id' | 'port'>> = {}): RealServerSpec {
  return { id, address: HOST, port, weight: 1, backup: false, healthy: true, drained: false, ...opts };
}

function vip(port: number, realServers: RealServerSpec[], opts: { scheduler?: SchedulerKind; persistenceMs?: number; protocol?: 'tcp' | 'udp'; name?: string } = {}): VipSpec {
  return {
    name: opts.name ?? 'web', address: HOST, port, protocol: opts.protocol ?? 'tcp', mode: 'proxy',
    scheduler: opts.scheduler ?? 'rr', persistenceMs: opts.persistenceMs ?? 0, realServers,
  };
}

describe('eligibleBackends', () => {
  it('takes healthy, undrained, weighted primaries, and backups only when no primary is eligible', () => {
    const v = vip(1, [rs('a', 1), rs('b', 2, { drained: true }), rs('c', 3, { healthy: false }), rs('d', 4, { weight: 0 }), rs('k', 5, { backup: true })]);
    expect(eligibleBackends(v).map((b) => b.id)).toEqual(['a']);
    const down = vip(1, [rs('a', 1, { healthy: false }), rs('k', 5, { backup: true }), rs('j', 6, { backup: true, drained: true })]);
    expect(eligibleBackends(down).map((b) => b.id)).toEqual(['k']);
    expect(eligibleBackends(vip(1, [rs('k', 5, { backup: true, healthy: false })]))).toEqual([]);
  });
});

/** The shared suite on loopback: backends on ephemeral ports, a fresh pair of VIP ports per case. */
function proxyEnv(): SuiteEnv {
  const tcp = new Map<BackendName, TcpBackend>();
  const udp = new Map<BackendName, UdpBackend>();
  return {
    name: 'proxy data plane',
    host: HOST,
    can: { lc: true, flowsOutliveVip: true, activeIsOpen: true },
    vipFields: { mode: 'proxy' },
    async setup() {
      for (const id of ['A', 'B', 'C'] as const) tcp.set(id, await tcpBackend(id));
      for (const id of ['U1', 'U2'] as const) udp.set(id, await udpBackend(id));
    },
    async teardown() {
      await Promise.all([...tcp.values(), ...udp.values()].map((b) => b.close()));
    },
    make: () => createProxyDataPlane(),
    ports: async () => ({ tcp: [await freeTcpPort(), await freeTcpPort()], udp: await freeUdpPort() }),
    rs(id, backend, _vipPort, opts = {}) {
      const b = tcp.get(backend) ?? udp.get(backend);
      if (b === undefined) throw new Error(`no backend ${backend}`);
      return { id, address: HOST, port: b.port, weight: 1, backup: false, healthy: true, drained: false, ...opts };
    },
  };
}

dataPlaneSuite(proxyEnv());

describe('proxy data plane specifics', () => {
  it('expires idle UDP sessions', async () => {
    const clock = new ManualClock();
    const dp = createProxyDataPlane({ udpIdleMs: 100, clock });
    const u = await udpBackend('U1');
    const port = await freeUdpPort();
    const c = dgram.createSocket('udp4');
    try {
      await dp.apply([vip(port, [rs('U1', u.port)], { protocol: 'udp' })]);
      expect(await udpRequest(c, port, 'a')).toBe('U1:a');
      expect((await dp.stats())[0]?.active).toBe(1);
      clock.advance(60);
      // a packet restarts the idle time
      expect(await udpRequest(c, port, 'a2')).toBe('U1:a2');
      clock.advance(99);
      expect((await dp.stats())[0]?.active).toBe(1);
      clock.advance(1);
      expect((await dp.stats())[0]?.active).toBe(0);
      expect(await udpRequest(c, port, 'b')).toBe('U1:b');
      expect((await dp.stats())[0]).toMatchObject({ active: 1, total: 2 });
    } finally {
      c.close();
      await dp.close();
      await u.close();
    }
  });

  it('forgets a persistence entry after persistenceMs idle', async () => {
    const clock = new ManualClock();
    const dp = createProxyDataPlane({ clock });
    const [a, b] = await Promise.all([tcpBackend('A'), tcpBackend('B')]);
    const port = await freeTcpPort();
    try {
      await dp.apply([vip(port, [rs('A', a.port), rs('B', b.port)], { persistenceMs: 50 })]);
      expect(await served(port)).toBe('A');
      await until(async () => (await dp.stats()).every((s) => s.active === 0), 'flow released');
      // idle for persistenceMs; the entry's clock starts when the flow ends
      clock.advance(50);
      expect(await served(port)).toBe('B');
    } finally {
      await dp.close();
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('rejects an apply() with duplicate VIP names without touching running VIPs', async () => {
    const dp = createProxyDataPlane();
    const b = await tcpBackend('A');
    const port = await freeTcpPort();
    try {
      await dp.apply([vip(port, [rs('A', b.port)])]);
      const before = dp.listener('web');
      await expect(dp.apply([vip(port, [rs('A', b.port)]), vip(port + 1, [rs('A', b.port)])])).rejects.toThrow(/duplicate VIP name/);
      expect(dp.listener('web')).toBe(before);
      expect(await served(port)).toBe('A');
    } finally {
      await dp.close();
      await b.close();
    }
  });
});

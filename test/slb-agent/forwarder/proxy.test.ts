/**
 * The data-plane behaviour suite run against the userspace proxy on 127.0.0.1: real TCP and UDP
 * backends answer with their own id, so every case asserts which real server served a flow.
 * `dataPlaneSuite` only talks to the DataPlane interface (plus the proxy's `listener()` for the
 * no-restart check), so other implementations can run the same cases.
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DataPlane, RealServerSpec, VipSpec } from '../../../slb-agent/forwarder/data-plane.js';
import { eligibleBackends } from '../../../slb-agent/forwarder/data-plane.js';
import { createProxyDataPlane } from '../../../slb-agent/forwarder/proxy/proxy.js';
import type { ProxyDataPlane } from '../../../slb-agent/forwarder/proxy/proxy.js';
import type { SchedulerKind } from '../../../slb-agent/forwarder/schedulers/index.js';

const HOST = '127.0.0.1';
/** every wait in this file is bounded by this, so a broken forwarder fails instead of hanging */
const WAIT_MS = 5_000;

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), WAIT_MS);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

async function until(cond: () => boolean, what: string): Promise<void> {
  await withTimeout((async () => {
    while (!cond()) await new Promise((r) => setTimeout(r, 10));
  })(), what);
}

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

/** A client connection through the VIP; `id` is the real server that answered. */
interface Conn {
  readonly id: string;
  readonly socket: net.Socket;
  line(): Promise<string>;
  /** resolves with everything received after the id line once the proxy ends the stream */
  rest(): Promise<string>;
}

function connect(port: number): Promise<Conn> {
  const socket = net.connect({ host: HOST, port, allowHalfOpen: true });
  let buf = '';
  let ended = false;
  let wake: (() => void) | undefined;
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => { buf += d; wake?.(); });
  socket.on('end', () => { ended = true; wake?.(); });
  socket.on('close', () => { ended = true; wake?.(); });
  const errored = new Promise<never>((_, reject) => socket.once('error', reject));
  errored.catch(() => undefined);
  const wait = (): Promise<void> => new Promise((resolve) => { wake = resolve; });
  const line = async (): Promise<string> => {
    for (;;) {
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        const l = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        return l;
      }
      if (ended) throw new Error('connection ended before a line arrived');
      await Promise.race([wait(), errored]);
    }
  };
  const rest = async (): Promise<string> => {
    while (!ended) await Promise.race([wait(), errored]);
    const r = buf;
    buf = '';
    return r;
  };
  return withTimeout((async () => {
    const id = await line();
    return { id, socket, line: () => withTimeout(line(), 'line'), rest: () => withTimeout(rest(), 'end of stream') };
  })(), `connect to ${port}`);
}

/** Connects, reads the serving backend's id and closes; returns the id. */
async function served(port: number): Promise<string> {
  const c = await connect(port);
  c.socket.destroy();
  return c.id;
}

async function ping(c: Conn, text: string): Promise<string> {
  c.socket.write(`${text}\n`);
  return c.line();
}

function refused(port: number): Promise<string> {
  return withTimeout(new Promise((resolve) => {
    const s = net.connect({ host: HOST, port });
    s.on('connect', () => { s.destroy(); resolve('connected'); });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  }), 'connect attempt');
}

async function udpRequest(client: dgram.Socket, port: number, payload: string): Promise<string> {
  return withTimeout(new Promise<string>((resolve) => {
    client.once('message', (msg) => resolve(msg.toString()));
    client.send(payload, port, HOST);
  }), `udp ${payload}`);
}

function rs(id: string, port: number, opts: Partial<Omit<RealServerSpec, 'id' | 'port'>> = {}): RealServerSpec {
  return { id, address: HOST, port, weight: 1, backup: false, healthy: true, drained: false, ...opts };
}

function vip(port: number, realServers: RealServerSpec[], opts: { scheduler?: SchedulerKind; persistenceMs?: number; protocol?: 'tcp' | 'udp'; name?: string } = {}): VipSpec {
  return {
    name: opts.name ?? 'web', address: HOST, port, protocol: opts.protocol ?? 'tcp',
    scheduler: opts.scheduler ?? 'rr', persistenceMs: opts.persistenceMs ?? 0, realServers,
  };
}

function tally(ids: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const id of ids) out[id] = (out[id] ?? 0) + 1;
  return out;
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

/** The shared data-plane cases; `make` builds a fresh data plane per case. */
function dataPlaneSuite(name: string, make: () => DataPlane & Partial<Pick<ProxyDataPlane, 'listener'>>): void {
  describe(name, () => {
    let dp: DataPlane & Partial<Pick<ProxyDataPlane, 'listener'>>;
    let A: TcpBackend;
    let B: TcpBackend;
    let C: TcpBackend;
    let port: number;
    const open: Conn[] = [];
    const hold = async (p: number): Promise<Conn> => {
      const c = await connect(p);
      open.push(c);
      return c;
    };

    beforeEach(async () => {
      dp = make();
      [A, B, C] = await Promise.all([tcpBackend('A'), tcpBackend('B'), tcpBackend('C')]);
      port = await freeTcpPort();
    });
    afterEach(async () => {
      for (const c of open.splice(0)) c.socket.destroy();
      await dp.close();
      await Promise.all([A.close(), B.close(), C.close()]);
    });

    it('serves a client through the VIP, forwards half-close, and counts the flow', async () => {
      await dp.apply([vip(port, [rs('A', A.port)])]);
      const c = await connect(port);
      expect(c.id).toBe('A');
      expect(await ping(c, 'hello')).toBe('hello');
      // the client's FIN reaches the backend, whose answer after it still comes back
      c.socket.end();
      expect(await c.rest()).toBe('bye\n');
      await until(() => dp.stats().some((s) => s.backend === 'A' && s.active === 0 && s.total === 1), 'flow released');
      expect(dp.stats()).toEqual([{ vip: 'web', backend: 'A', active: 0, total: 1 }]);
    });

    it('refuses a flow when no real server is eligible', async () => {
      await dp.apply([vip(port, [rs('A', A.port, { healthy: false })])]);
      await expect(connect(port)).rejects.toThrow();
    });

    it('wrr 3:1 spreads 400 connections exactly 300/100', async () => {
      await dp.apply([vip(port, [rs('A', A.port, { weight: 3 }), rs('B', B.port, { weight: 1 })], { scheduler: 'wrr' })]);
      const ids: string[] = [];
      for (let i = 0; i < 400; i += 20) {
        ids.push(...await Promise.all(Array.from({ length: 20 }, () => served(port))));
      }
      expect(tally(ids)).toEqual({ A: 300, B: 100 });
      await until(() => dp.stats().every((s) => s.active === 0), 'all flows released');
      expect(Object.fromEntries(dp.stats().map((s) => [s.backend, s.total]))).toEqual({ A: 300, B: 100 });
    });

    it('draining a real server sends it no new flows while its open flow keeps working', async () => {
      await dp.apply([vip(port, [rs('A', A.port), rs('B', B.port)])]);
      const onA = await hold(port);
      expect(onA.id).toBe('A');
      await dp.apply([vip(port, [rs('A', A.port, { drained: true }), rs('B', B.port)])]);
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push(await served(port));
      expect(tally(ids)).toEqual({ B: 10 });
      expect(await ping(onA, 'still here')).toBe('still here');
      expect(dp.stats().find((s) => s.backend === 'A')?.active).toBe(1);
    });

    it('an unhealthy real server gets no new flows; the others share them', async () => {
      await dp.apply([vip(port, [rs('A', A.port), rs('B', B.port), rs('C', C.port)])]);
      await dp.apply([vip(port, [rs('A', A.port), rs('B', B.port, { healthy: false }), rs('C', C.port)])]);
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push(await served(port));
      expect(tally(ids)).toEqual({ A: 5, C: 5 });
    });

    it('backups serve only while no primary is healthy', async () => {
      const spec = (primaryHealthy: boolean): VipSpec => vip(port, [rs('A', A.port, { healthy: primaryHealthy }), rs('K', C.port, { backup: true })]);
      const three = async (): Promise<string[]> => [await served(port), await served(port), await served(port)];
      await dp.apply([spec(true)]);
      expect(await three()).toEqual(['A', 'A', 'A']);
      await dp.apply([spec(false)]);
      // the backup is backend C, which answers with its own id
      expect(await three()).toEqual(['C', 'C', 'C']);
      await dp.apply([spec(true)]);
      expect(await three()).toEqual(['A', 'A', 'A']);
    });

    it('persistence keeps a client on one real server with rr, until that server is drained', async () => {
      await dp.apply([vip(port, [rs('A', A.port), rs('B', B.port)])]);
      const plain: string[] = [];
      for (let i = 0; i < 4; i++) plain.push(await served(port));
      expect(tally(plain)).toEqual({ A: 2, B: 2 });

      await dp.apply([vip(port, [rs('A', A.port), rs('B', B.port)], { persistenceMs: 60_000 })]);
      const sticky: string[] = [];
      for (let i = 0; i < 6; i++) sticky.push(await served(port));
      expect(new Set(sticky).size).toBe(1);
      const first = sticky[0]!;
      const drained = vip(port, [rs('A', A.port, { drained: first === 'A' }), rs('B', B.port, { drained: first === 'B' })], { persistenceMs: 60_000 });
      await dp.apply([drained]);
      const moved: string[] = [];
      for (let i = 0; i < 3; i++) moved.push(await served(port));
      const other = first === 'A' ? 'B' : 'A';
      expect(moved).toEqual([other, other, other]);
    });

    it('lc sends new flows to the real server with fewer open connections', async () => {
      const spec = (aOnly: boolean): VipSpec => vip(port, [rs('A', A.port), rs('B', B.port, { drained: aOnly })], { scheduler: 'lc' });
      await dp.apply([spec(true)]);
      for (let i = 0; i < 3; i++) expect((await hold(port)).id).toBe('A');
      await dp.apply([spec(false)]);
      const next: string[] = [];
      for (let i = 0; i < 4; i++) next.push((await hold(port)).id);
      // B catches up to A's 3 open flows, then the tie goes to the first listed
      expect(next).toEqual(['B', 'B', 'B', 'A']);
      expect(Object.fromEntries(dp.stats().map((s) => [s.backend, s.active]))).toEqual({ A: 4, B: 3 });
    });

    it('removing a VIP stops its listener while its open flow finishes', async () => {
      await dp.apply([vip(port, [rs('A', A.port)])]);
      const c = await hold(port);
      await dp.apply([]);
      expect(await refused(port)).toBe('ECONNREFUSED');
      expect(await ping(c, 'after removal')).toBe('after removal');
      expect(dp.stats()).toEqual([]);
      expect(dp.listener?.('web')).toBeUndefined();
    });

    it('apply() with the same spec again changes nothing: same listener, open flow intact, rr position kept', async () => {
      const spec = vip(port, [rs('A', A.port), rs('B', B.port)]);
      await dp.apply([spec]);
      const before = dp.listener?.('web');
      const c = await hold(port);
      expect(c.id).toBe('A');
      await dp.apply([{ ...spec, realServers: spec.realServers.map((r) => ({ ...r })) }]);
      if (dp.listener !== undefined) expect(dp.listener('web')).toBe(before);
      expect(await ping(c, 'ok')).toBe('ok');
      // a rebuilt rr scheduler would start over at A
      expect(await served(port)).toBe('B');
    });

    it('moves a VIP to a new port: the old one refuses, the new one serves', async () => {
      await dp.apply([vip(port, [rs('A', A.port)])]);
      const port2 = await freeTcpPort();
      await dp.apply([vip(port2, [rs('A', A.port)])]);
      expect(await refused(port)).toBe('ECONNREFUSED');
      expect(await served(port2)).toBe('A');
    });

    describe('udp', () => {
      let U1: UdpBackend;
      let U2: UdpBackend;
      let udpPort: number;
      const clients: dgram.Socket[] = [];
      const client = async (): Promise<dgram.Socket> => {
        const s = dgram.createSocket('udp4');
        await new Promise<void>((resolve) => s.bind(0, HOST, resolve));
        clients.push(s);
        return s;
      };
      beforeEach(async () => {
        [U1, U2] = await Promise.all([udpBackend('U1'), udpBackend('U2')]);
        udpPort = await freeUdpPort();
      });
      afterEach(async () => {
        for (const s of clients.splice(0)) s.close();
        await Promise.all([U1.close(), U2.close()]);
      });

      it('round trip through the VIP, one session per client address and port', async () => {
        await dp.apply([vip(udpPort, [rs('U1', U1.port), rs('U2', U2.port)], { protocol: 'udp', name: 'dns' })]);
        const c1 = await client();
        const c2 = await client();
        expect(await udpRequest(c1, udpPort, 'a')).toBe('U1:a');
        expect(await udpRequest(c1, udpPort, 'b')).toBe('U1:b');
        expect(await udpRequest(c2, udpPort, 'c')).toBe('U2:c');
        expect(Object.fromEntries(dp.stats().map((s) => [s.backend, [s.active, s.total]]))).toEqual({ U1: [1, 1], U2: [1, 1] });
      });

    });
  });
}

dataPlaneSuite('proxy data plane', () => createProxyDataPlane());

describe('proxy data plane specifics', () => {
  it('expires idle UDP sessions', async () => {
    const dp = createProxyDataPlane({ udpIdleMs: 100 });
    const u = await udpBackend('U1');
    const port = await freeUdpPort();
    const c = dgram.createSocket('udp4');
    try {
      await dp.apply([vip(port, [rs('U1', u.port)], { protocol: 'udp' })]);
      expect(await udpRequest(c, port, 'a')).toBe('U1:a');
      expect(dp.stats()[0]?.active).toBe(1);
      await until(() => dp.stats()[0]?.active === 0, 'session expiry');
      expect(await udpRequest(c, port, 'b')).toBe('U1:b');
      expect(dp.stats()[0]).toMatchObject({ active: 1, total: 2 });
    } finally {
      c.close();
      await dp.close();
      await u.close();
    }
  });

  it('forgets a persistence entry after persistenceMs idle', async () => {
    const dp = createProxyDataPlane();
    const [a, b] = await Promise.all([tcpBackend('A'), tcpBackend('B')]);
    const port = await freeTcpPort();
    try {
      await dp.apply([vip(port, [rs('A', a.port), rs('B', b.port)], { persistenceMs: 50 })]);
      expect(await served(port)).toBe('A');
      await until(() => dp.stats().every((s) => s.active === 0), 'flow released');
      // idle well past persistenceMs; the entry's clock starts when the flow ends
      await new Promise((r) => setTimeout(r, 200));
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

/**
 * The data-plane behaviour suite (ARCHITECTURE principle 8): the same cases run against the
 * userspace proxy on loopback and against the nftables plane in network-namespace labs, one run
 * per kernel mode. Real TCP and UDP servers answer with their own id, so every case asserts which
 * real server served a flow. An environment says where clients connect and what its plane can do;
 * cases a plane cannot support by design (lc in DSR, flows outliving their VIP in the kernel) are
 * not generated for it.
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DataPlane, RealServerSpec, VipSpec } from '../../../slb-agent/forwarder/data-plane.js';
import type { SchedulerKind } from '../../../slb-agent/forwarder/schedulers/index.js';

/** every wait in the suite is bounded by this, so a broken forwarder fails instead of hanging */
export const WAIT_MS = 10_000;

export function withTimeout<T>(p: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  await withTimeout((async () => {
    while (!(await cond())) await new Promise((r) => setTimeout(r, 20));
  })(), what);
}

/** A client connection through the VIP; `id` is the real server that answered. */
export interface Conn {
  readonly id: string;
  readonly socket: net.Socket;
  line(): Promise<string>;
  /** resolves with everything received after the id line once the stream ends */
  rest(): Promise<string>;
}

export function connect(host: string, port: number, localPort?: number): Promise<Conn> {
  const socket = net.connect({ host, port, allowHalfOpen: true, ...(localPort === undefined ? {} : { localPort }) });
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
  })(), `connect to ${host}:${port}`).catch((err: unknown) => {
    socket.destroy();
    throw err;
  });
}

export async function ping(c: Conn, text: string): Promise<string> {
  c.socket.write(`${text}\n`);
  return c.line();
}

/** Resolves with 'connected', the error code of a connection attempt, or 'timeout' after 3 s. */
export function attempt(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const timer = setTimeout(() => { s.destroy(); resolve('timeout'); }, 3_000);
    s.on('connect', () => { clearTimeout(timer); s.destroy(); resolve('connected'); });
    s.on('error', (err: NodeJS.ErrnoException) => { clearTimeout(timer); resolve(err.code ?? 'error'); });
  });
}

export async function udpRequest(client: dgram.Socket, host: string, port: number, payload: string): Promise<string> {
  return withTimeout(new Promise<string>((resolve) => {
    client.once('message', (msg) => resolve(msg.toString()));
    client.send(payload, port, host);
  }), `udp ${payload}`);
}

/** Opens `n` connections to host:port one after another, exchanges a line on each, closes; returns the ids. */
export async function exchange(host: string, port: number, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = await connect(host, port);
    if (await ping(c, `x${i}`) !== `x${i}`) throw new Error(`connection ${i} to ${host}:${port}: echo mismatch`);
    ids.push(c.id);
    c.socket.end();
    await c.rest();
  }
  return ids;
}

export function tally(ids: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const id of ids) out[id] = (out[id] ?? 0) + 1;
  return out;
}

/** The real servers every environment runs: TCP A, B, C and UDP U1, U2 (each answers with its id). */
export type BackendName = 'A' | 'B' | 'C' | 'U1' | 'U2';

export interface SuiteEnv {
  readonly name: string;
  /** where clients connect */
  readonly host: string;
  readonly can: {
    /** lc/wlc (the plane sees connections) */
    readonly lc: boolean;
    /** a flow open when its VIP is removed keeps working (the proxy; the kernel stops forwarding) */
    readonly flowsOutliveVip: boolean;
    /** stats().active counts open flows only (the kernel's flow table remembers closed ones) */
    readonly activeIsOpen: boolean;
  };
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** a fresh plane; the suite closes it after each case */
  make(): DataPlane;
  /** two TCP VIP ports and a UDP VIP port for the next case */
  ports(): Promise<{ tcp: [number, number]; udp: number }>;
  /** the spec of `backend` serving a VIP on `vipPort`, known to the plane as `id` */
  rs(id: string, backend: BackendName, vipPort: number, opts?: Partial<RealServerSpec>): RealServerSpec;
  /** VIP fields the environment's mode needs (mode, interface, ...) */
  readonly vipFields: Pick<VipSpec, 'mode'> & Partial<VipSpec>;
}

interface VipOpts { scheduler?: SchedulerKind; persistenceMs?: number; protocol?: 'tcp' | 'udp'; name?: string }

export function dataPlaneSuite(env: SuiteEnv): void {
  describe(env.name, () => {
    let dp: DataPlane;
    let port: number;
    let port2: number;
    let udpPort: number;
    const open: Conn[] = [];
    const clients: dgram.Socket[] = [];
    /** where clients connect (known once the environment is set up) */
    let H = '';
    const vip = (p: number, realServers: RealServerSpec[], o: VipOpts = {}): VipSpec => ({
      name: o.name ?? 'web', address: H, port: p, protocol: o.protocol ?? 'tcp',
      scheduler: o.scheduler ?? 'rr', persistenceMs: o.persistenceMs ?? 0, realServers, ...env.vipFields,
    });
    const rs = (id: string, backend: BackendName, o: Partial<RealServerSpec> = {}, p = port): RealServerSpec => env.rs(id, backend, p, o);
    const served = async (p: number): Promise<string> => {
      const c = await connect(H, p);
      c.socket.destroy();
      return c.id;
    };
    const hold = async (p: number): Promise<Conn> => {
      const c = await connect(H, p);
      open.push(c);
      return c;
    };
    const udpClient = async (): Promise<dgram.Socket> => {
      const s = dgram.createSocket(H.includes(':') ? 'udp6' : 'udp4');
      await new Promise<void>((resolve) => s.bind(0, resolve));
      clients.push(s);
      return s;
    };
    const stats = async (): Promise<Record<string, number>> => Object.fromEntries((await dp.stats()).filter((s) => s.total > 0).map((s) => [s.backend, s.total]));

    beforeAll(() => env.setup(), 120_000);
    afterAll(() => env.teardown(), 60_000);
    beforeEach(async () => {
      H = env.host;
      dp = env.make();
      ({ tcp: [port, port2], udp: udpPort } = await env.ports());
    });
    afterEach(async () => {
      for (const c of open.splice(0)) c.socket.destroy();
      for (const s of clients.splice(0)) s.close();
      await dp.close();
    }, 60_000);

    it('serves a client through the VIP, forwards half-close, and counts the flow', async () => {
      await dp.apply([vip(port, [rs('A', 'A')])]);
      const c = await connect(H, port);
      expect(c.id).toBe('A');
      expect(await ping(c, 'hello')).toBe('hello');
      // the client's FIN reaches the backend, whose answer after it still comes back
      c.socket.end();
      expect(await c.rest()).toBe('bye\n');
      if (env.can.activeIsOpen) await until(async () => (await dp.stats()).some((s) => s.backend === 'A' && s.active === 0), 'flow released');
      expect(await dp.stats()).toEqual([expect.objectContaining({ vip: 'web', backend: 'A', total: 1 })]);
    });

    it('refuses a flow when no real server is eligible', async () => {
      await dp.apply([vip(port, [rs('A', 'A', { healthy: false })])]);
      expect(await attempt(H, port)).not.toBe('connected');
    });

    it('wrr 3:1 spreads 400 connections exactly 300/100', async () => {
      await dp.apply([vip(port, [rs('A', 'A', { weight: 3 }), rs('B', 'B', { weight: 1 })], { scheduler: 'wrr' })]);
      const ids: string[] = [];
      for (let i = 0; i < 400; i += 20) ids.push(...await Promise.all(Array.from({ length: 20 }, () => served(port))));
      expect(tally(ids)).toEqual({ A: 300, B: 100 });
      expect(await stats()).toEqual({ A: 300, B: 100 });
    });

    it('draining a real server sends it no new flows while its open flow keeps working', async () => {
      await dp.apply([vip(port, [rs('A', 'A'), rs('B', 'B')])]);
      const onA = await hold(port);
      expect(onA.id).toBe('A');
      await dp.apply([vip(port, [rs('A', 'A', { drained: true }), rs('B', 'B')])]);
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push(await served(port));
      expect(tally(ids)).toEqual({ B: 10 });
      expect(await ping(onA, 'still here')).toBe('still here');
      expect((await dp.stats()).find((s) => s.backend === 'A')?.active).toBe(1);
    });

    it('an unhealthy real server gets no new flows; the others share them', async () => {
      await dp.apply([vip(port, [rs('A', 'A'), rs('B', 'B'), rs('C', 'C')])]);
      await dp.apply([vip(port, [rs('A', 'A'), rs('B', 'B', { healthy: false }), rs('C', 'C')])]);
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push(await served(port));
      expect(tally(ids)).toEqual({ A: 5, C: 5 });
    });

    it('backups serve only while no primary is healthy', async () => {
      const spec = (primaryHealthy: boolean): VipSpec => vip(port, [rs('A', 'A', { healthy: primaryHealthy }), rs('K', 'C', { backup: true })]);
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
      await dp.apply([vip(port, [rs('A', 'A'), rs('B', 'B')])]);
      const plain: string[] = [];
      for (let i = 0; i < 4; i++) plain.push(await served(port));
      expect(tally(plain)).toEqual({ A: 2, B: 2 });

      await dp.apply([vip(port, [rs('A', 'A'), rs('B', 'B')], { persistenceMs: 60_000 })]);
      const sticky: string[] = [];
      for (let i = 0; i < 6; i++) sticky.push(await served(port));
      expect(new Set(sticky).size).toBe(1);
      const first = sticky[0]!;
      await dp.apply([vip(port, [rs('A', 'A', { drained: first === 'A' }), rs('B', 'B', { drained: first === 'B' })], { persistenceMs: 60_000 })]);
      const moved: string[] = [];
      for (let i = 0; i < 3; i++) moved.push(await served(port));
      const other = first === 'A' ? 'B' : 'A';
      expect(moved).toEqual([other, other, other]);
    });

    it('maglev keeps a flow source on one real server and spreads sources over all', async () => {
      await dp.apply([vip(port, [rs('A', 'A'), rs('B', 'B'), rs('C', 'C')], { scheduler: 'maglev' })]);
      const ids: string[] = [];
      for (let i = 0; i < 60; i += 20) ids.push(...await Promise.all(Array.from({ length: 20 }, () => served(port))));
      expect(Object.keys(tally(ids)).sort()).toEqual(['A', 'B', 'C']);
    });

    if (env.can.lc) {
      it('lc sends new flows to the real server with fewer open connections', async () => {
        const spec = (aOnly: boolean): VipSpec => vip(port, [rs('A', 'A'), rs('B', 'B', { drained: aOnly })], { scheduler: 'lc' });
        await dp.apply([spec(true)]);
        for (let i = 0; i < 3; i++) expect((await hold(port)).id).toBe('A');
        await dp.apply([spec(false)]);
        const next: string[] = [];
        for (let i = 0; i < 4; i++) next.push((await hold(port)).id);
        // B catches up to A's 3 open flows, then the tie goes to the first listed
        expect(next).toEqual(['B', 'B', 'B', 'A']);
        expect(Object.fromEntries((await dp.stats()).map((s) => [s.backend, s.active]))).toEqual({ A: 4, B: 3 });
      });
    }

    it('removing a VIP stops serving it', async () => {
      await dp.apply([vip(port, [rs('A', 'A')])]);
      const c = await hold(port);
      await dp.apply([]);
      expect(await attempt(H, port)).not.toBe('connected');
      if (env.can.flowsOutliveVip) expect(await ping(c, 'after removal')).toBe('after removal');
      expect(await dp.stats()).toEqual([]);
    });

    it('apply() with the same spec again changes nothing: open flow intact, rr position kept', async () => {
      const spec = vip(port, [rs('A', 'A'), rs('B', 'B')]);
      await dp.apply([spec]);
      const c = await hold(port);
      expect(c.id).toBe('A');
      await dp.apply([{ ...spec, realServers: spec.realServers.map((r) => ({ ...r })) }]);
      expect(await ping(c, 'ok')).toBe('ok');
      // a rebuilt rr scheduler would start over at A
      expect(await served(port)).toBe('B');
    });

    it('moves a VIP to a new port: the old one refuses, the new one serves', async () => {
      await dp.apply([vip(port, [rs('A', 'A')])]);
      await dp.apply([vip(port2, [rs('A', 'A', {}, port2)])]);
      expect(await attempt(H, port)).not.toBe('connected');
      expect(await served(port2)).toBe('A');
    });

    it('udp: round trip through the VIP, one flow per client address and port', async () => {
      await dp.apply([vip(udpPort, [rs('U1', 'U1', {}, udpPort), rs('U2', 'U2', {}, udpPort)], { protocol: 'udp', name: 'dns' })]);
      const c1 = await udpClient();
      const c2 = await udpClient();
      expect(await udpRequest(c1, H, udpPort, 'a')).toBe('U1:a');
      expect(await udpRequest(c1, H, udpPort, 'b')).toBe('U1:b');
      expect(await udpRequest(c2, H, udpPort, 'c')).toBe('U2:c');
      expect(Object.fromEntries((await dp.stats()).map((s) => [s.backend, [s.active, s.total]]))).toEqual({ U1: [1, 1], U2: [1, 1] });
    });
  });
}

/**
 * The userspace `proxy` data plane: no root, TCP via net.Server piping both ways, UDP via one
 * session socket per client address and port. `apply()` plans the difference against what runs
 * and then applies it; listeners that did not change are left alone so their flows never notice.
 * With `reusePort` the listeners are SO_REUSEPORT sockets, so a successor agent can listen beside
 * this one and `drain()` hands the traffic over: stop accepting, let open flows finish.
 */
import { addressFamily } from '../../../shared/ip.js';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { sleep, systemClock, unrefTimer } from '../../../shared/clock.js';
import type { Clock, TimerHandle } from '../../../shared/clock.js';
import type { BackendStats, DataPlane, VipSpec } from '../data-plane.js';
import { eligibleBackends, PlaneApplyError } from '../data-plane.js';
import type { Backend, Flow, Scheduler } from '../model.js';
import { createScheduler } from '../schedulers/index.js';
import { createSerial } from '../serial.js';
import type { ReusePortOpen } from './reuseport.js';

/** Options of the proxy data plane; every field has a production default. */
export interface ProxyOptions {
  /** listen on this host instead of each VIP's address (e.g. `0.0.0.0` where the VIP is not on the host) */
  readonly bindHost?: string;
  /** a TCP flow with no traffic either way for this long is reset; default 300 s */
  readonly tcpIdleMs?: number;
  /** a UDP session with no packet either way for this long is dropped, unless the VIP sets flowTimeoutMs; default 30 s */
  readonly udpIdleMs?: number;
  /** open listeners with SO_REUSEPORT (the addon); exclusive node listeners without */
  readonly reusePort?: ReusePortOpen;
  /** UDP idle expiry, persistence idle time and the persistence sweep; the system's by default */
  readonly clock?: Clock;
}

/** The proxy data plane; `listener()` exposes the live socket so callers can see it was not restarted. */
export interface ProxyDataPlane extends DataPlane {
  /** The socket serving VIP `name` now, or undefined when it is not running. */
  listener(name: string): net.Server | dgram.Socket | undefined;
}

interface Counter { active: number; total: number }

/** A persistence entry: the client's backend, kept while it has open flows or was used within persistenceMs. */
interface Sticky { readonly backendId: string; lastUsed: number; open: number }

/** A UDP flow; `lastSeen` (clock.now() of its last packet either way) is checked when its idle timer fires. */
interface UdpSession { lastSeen: number; readonly send: (msg: Buffer) => void; readonly end: () => void }

interface RunningVip {
  spec: VipSpec;
  readonly listenKey: string;
  routeKey: string;
  /** eligible backends by id: a persistence entry is honoured only while its backend is in here */
  eligible: Map<string, Backend>;
  scheduler: Scheduler;
  readonly counters: Map<string, Counter>;
  readonly sticky: Map<string, Sticky>;
  readonly sessions: Map<string, UdpSession>;
  tcp?: net.Server;
  udp?: dgram.Socket;
  retired: boolean;
}

const DEFAULT_TCP_IDLE_MS = 300_000;
const DEFAULT_UDP_IDLE_MS = 30_000;
const STICKY_SWEEP_MS = 5_000;

/** A userspace TCP/UDP forwarder implementing {@link DataPlane}; needs no privileges beyond binding the VIP ports. */
export function createProxyDataPlane(opts: ProxyOptions = {}): ProxyDataPlane {
  const tcpIdleMs = opts.tcpIdleMs ?? DEFAULT_TCP_IDLE_MS;
  const udpIdleMs = opts.udpIdleMs ?? DEFAULT_UDP_IDLE_MS;
  const clock = opts.clock ?? systemClock;
  const running = new Map<string, RunningVip>();
  /** every TCP socket of every flow, including flows of removed VIPs, so close() can end them */
  const sockets = new Set<net.Socket>();
  /** removed VIPs whose TCP listeners still finish their flows */
  const retiredServers = new Set<net.Server>();
  const serial = createSerial();
  let closed = false;

  // Persistence entries are checked lazily on lookup; the sweep only bounds memory.
  const sweep = unrefTimer(clock.setInterval(() => {
    const now = clock.now();
    for (const vip of running.values()) {
      for (const [client, s] of vip.sticky) {
        if (s.open === 0 && now - s.lastUsed >= vip.spec.persistenceMs) vip.sticky.delete(client);
      }
    }
  }, STICKY_SWEEP_MS));

  const listenHost = (spec: VipSpec): string => opts.bindHost ?? spec.address;
  const listenKeyOf = (spec: VipSpec): string => `${spec.protocol}|${listenHost(spec)}|${spec.port}`;
  const routeKeyOf = (spec: VipSpec): string =>
    JSON.stringify([spec.scheduler, spec.persistenceMs, spec.realServers.map((rs) => [rs.id, rs.address, rs.port, rs.weight, rs.backup, rs.healthy, rs.drained])]);

  function buildRouting(vip: RunningVip, spec: VipSpec): { eligible: Map<string, Backend>; scheduler: Scheduler } {
    const backends = eligibleBackends(spec);
    const scheduler = createScheduler(spec.scheduler, backends, {
      connections: (b) => vip.counters.get(b.id)?.active ?? 0,
      shPorts: spec.shPorts === true,
    });
    return { eligible: new Map(backends.map((b) => [b.id, b])), scheduler };
  }

  /** Keep a counter for every configured real server; forget removed ones once their flows ended. */
  function syncCounters(vip: RunningVip): void {
    const ids = new Set(vip.spec.realServers.map((rs) => rs.id));
    for (const id of ids) if (!vip.counters.has(id)) vip.counters.set(id, { active: 0, total: 0 });
    for (const [id, c] of vip.counters) if (!ids.has(id) && c.active === 0) vip.counters.delete(id);
  }

  /** Place a new flow and count it; the returned release() must run exactly once when the flow ends. */
  function openFlow(vip: RunningVip, flow: Flow): { backend: Backend; release: () => void } | undefined {
    const persistenceMs = vip.spec.persistenceMs;
    const now = clock.now();
    let backend: Backend | undefined;
    let sticky: Sticky | undefined;
    if (persistenceMs > 0) {
      const s = vip.sticky.get(flow.srcAddress);
      const kept = s === undefined ? undefined : vip.eligible.get(s.backendId);
      if (s !== undefined && kept !== undefined && (s.open > 0 || now - s.lastUsed < persistenceMs)) {
        backend = kept;
        sticky = s;
      }
    }
    if (backend === undefined) {
      backend = vip.scheduler.pick(flow);
      if (backend === undefined) return undefined;
      if (persistenceMs > 0) {
        sticky = { backendId: backend.id, lastUsed: now, open: 0 };
        vip.sticky.set(flow.srcAddress, sticky);
      }
    }
    let counter = vip.counters.get(backend.id);
    if (counter === undefined) {
      counter = { active: 0, total: 0 };
      vip.counters.set(backend.id, counter);
    }
    counter.active++;
    counter.total++;
    if (sticky !== undefined) {
      sticky.open++;
      sticky.lastUsed = now;
    }
    const c = counter;
    const s = sticky;
    let released = false;
    return {
      backend,
      release: () => {
        if (released) return;
        released = true;
        c.active--;
        if (s !== undefined) {
          s.open--;
          // idle time for persistence counts from the end of the client's last flow
          s.lastUsed = clock.now();
        }
      },
    };
  }

  function onTcpConnection(vip: RunningVip, client: net.Socket): void {
    const srcAddress = client.remoteAddress;
    if (srcAddress === undefined || closed) {
      client.destroy();
      return;
    }
    const placed = openFlow(vip, { srcAddress, srcPort: client.remotePort ?? 0, protocol: 'tcp' });
    if (placed === undefined) {
      // no eligible backend: refuse quickly instead of holding the client open
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect({ host: placed.backend.address, port: placed.backend.port, allowHalfOpen: true });
    sockets.add(client);
    sockets.add(upstream);
    let closedSides = 0;
    const onClose = (sock: net.Socket) => (): void => {
      sockets.delete(sock);
      // the flow ends (and stops counting for lc) only when both sides are gone
      if (++closedSides === 2) placed.release();
    };
    const abort = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', onClose(client));
    upstream.on('close', onClose(upstream));
    client.on('error', abort);
    upstream.on('error', abort);
    client.setTimeout(tcpIdleMs, abort);
    upstream.setTimeout(tcpIdleMs, abort);
    // pipe() ends the other side when one side ends, which forwards a half-close as a FIN
    client.pipe(upstream);
    upstream.pipe(client);
  }

  function onUdpMessage(vip: RunningVip, listener: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const key = `${rinfo.address}|${rinfo.port}`;
    let session = vip.sessions.get(key);
    if (session === undefined) {
      const placed = openFlow(vip, { srcAddress: rinfo.address, srcPort: rinfo.port, protocol: 'udp' });
      if (placed === undefined) return;
      const { backend } = placed;
      const socket = dgram.createSocket(addressFamily(backend.address) === 6 ? 'udp6' : 'udp4');
      // packets that arrive before connect() completes are queued, not lost
      let pending: Buffer[] | undefined = [];
      let ended = false;
      const idleMs = vip.spec.flowTimeoutMs ?? udpIdleMs;
      let timer: TimerHandle;
      const end = (): void => {
        if (ended) return;
        ended = true;
        clock.clearTimeout(timer);
        vip.sessions.delete(key);
        pending = undefined;
        socket.close();
        placed.release();
      };
      // one timer per session, re-armed only when it fires early: a packet just stamps lastSeen
      const expire = (): void => {
        const idle = clock.now() - s.lastSeen;
        if (idle >= idleMs) end();
        else timer = unrefTimer(clock.setTimeout(expire, idleMs - idle));
      };
      timer = unrefTimer(clock.setTimeout(expire, idleMs));
      socket.on('error', end);
      socket.on('message', (reply) => {
        if (vip.retired) return;
        s.lastSeen = clock.now();
        listener.send(reply, rinfo.port, rinfo.address);
      });
      // connect() makes the kernel drop datagrams that do not come from the backend
      socket.connect(backend.port, backend.address, () => {
        const queued = pending ?? [];
        pending = undefined;
        if (ended) return;
        for (const m of queued) socket.send(m);
      });
      const send = (m: Buffer): void => {
        if (pending !== undefined) pending.push(m);
        else if (!ended) socket.send(m);
      };
      const s: UdpSession = { lastSeen: clock.now(), send, end };
      session = s;
      vip.sessions.set(key, session);
    }
    session.lastSeen = clock.now();
    session.send(msg);
  }

  async function start(vip: RunningVip): Promise<void> {
    const host = listenHost(vip.spec);
    // the addon throws EADDRINUSE like listen() when a socket without SO_REUSEPORT holds the port
    const fd = opts.reusePort?.(vip.spec.protocol, host, vip.spec.port);
    if (vip.spec.protocol === 'tcp') {
      const server = net.createServer({ allowHalfOpen: true }, (c) => onTcpConnection(vip, c));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(fd !== undefined ? { fd } : { host, port: vip.spec.port, exclusive: true }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      // accept errors (e.g. EMFILE) must not crash the agent; the listener keeps running
      server.on('error', () => undefined);
      vip.tcp = server;
    } else {
      const socket = dgram.createSocket(addressFamily(host) === 6 ? 'udp6' : 'udp4');
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(fd !== undefined ? { fd } : { address: host, port: vip.spec.port, exclusive: true }, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      socket.on('error', () => undefined);
      socket.on('message', (msg, rinfo) => onUdpMessage(vip, socket, msg, rinfo));
      vip.udp = socket;
    }
  }

  /** Stop accepting; TCP flows finish on their own, UDP sessions end since replies leave through the VIP socket. */
  function retire(vip: RunningVip): void {
    vip.retired = true;
    if (vip.tcp !== undefined) {
      const server = vip.tcp;
      retiredServers.add(server);
      server.close(() => retiredServers.delete(server));
    }
    if (vip.udp !== undefined) {
      for (const s of [...vip.sessions.values()]) s.end();
      vip.udp.close();
    }
  }

  async function applyNow(specs: readonly VipSpec[]): Promise<void> {
    if (closed) throw new Error('proxy data plane is closed');
    // Plan: validate everything and build every scheduler before touching a listener.
    const names = new Set<string>();
    const listenKeys = new Set<string>();
    for (const spec of specs) {
      if (names.has(spec.name)) throw new Error(`duplicate VIP name ${spec.name}`);
      names.add(spec.name);
      if (spec.mode !== 'proxy') throw new Error(`VIP ${spec.name}: mode ${spec.mode} needs the kernel (nftables) data plane; the proxy serves mode proxy`);
      if (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535) throw new Error(`VIP ${spec.name}: port ${spec.port} is not 1-65535`);
      const lk = listenKeyOf(spec);
      if (listenKeys.has(lk)) throw new Error(`VIP ${spec.name}: ${spec.protocol} ${listenHost(spec)}:${spec.port} is used by another VIP`);
      listenKeys.add(lk);
    }
    const toStop: RunningVip[] = [];
    const toStart: RunningVip[] = [];
    const toUpdate: { vip: RunningVip; spec: VipSpec; routing: ReturnType<typeof buildRouting> }[] = [];
    for (const [name, vip] of running) if (!names.has(name)) toStop.push(vip);
    for (const spec of specs) {
      const current = running.get(spec.name);
      if (current !== undefined && current.listenKey === listenKeyOf(spec)) {
        if (current.routeKey !== routeKeyOf(spec)) toUpdate.push({ vip: current, spec, routing: buildRouting(current, spec) });
        else current.spec = spec;
        continue;
      }
      if (current !== undefined) toStop.push(current);
      const fresh: RunningVip = {
        spec, listenKey: listenKeyOf(spec), routeKey: routeKeyOf(spec), eligible: new Map(), scheduler: { pick: () => undefined },
        counters: new Map(), sticky: new Map(), sessions: new Map(), retired: false,
      };
      const routing = buildRouting(fresh, spec);
      fresh.eligible = routing.eligible;
      fresh.scheduler = routing.scheduler;
      syncCounters(fresh);
      toStart.push(fresh);
    }

    // Apply: stops first so a listen address can move between VIP names in one apply.
    for (const vip of toStop) {
      retire(vip);
      running.delete(vip.spec.name);
    }
    for (const { vip, spec, routing } of toUpdate) {
      // new flows only: open flows hold their backend and counter already
      vip.spec = spec;
      vip.routeKey = routeKeyOf(spec);
      vip.eligible = routing.eligible;
      vip.scheduler = routing.scheduler;
      syncCounters(vip);
    }
    const failures: string[] = [];
    const failed = new Map<string, string>();
    await Promise.all(toStart.map(async (vip) => {
      try {
        await start(vip);
        running.set(vip.spec.name, vip);
      } catch (err) {
        // left out of `running`, so the next apply() tries again
        const reason = `cannot listen on ${vip.spec.protocol} ${listenHost(vip.spec)}:${vip.spec.port}: ${(err as Error).message}`;
        failed.set(vip.spec.name, reason);
        failures.push(`VIP ${vip.spec.name} (${vip.spec.protocol} ${listenHost(vip.spec)}:${vip.spec.port}): ${(err as Error).message}`);
      }
    }));
    if (failures.length > 0) throw new PlaneApplyError(`proxy data plane: could not start ${failures.join('; ')}`, failed);
  }

  return {
    apply: (vips) => serial.run(() => applyNow(vips)),
    async stats() {
      const out: BackendStats[] = [];
      for (const vip of running.values()) {
        for (const [backend, c] of vip.counters) out.push({ vip: vip.spec.name, backend, active: c.active, total: c.total });
      }
      return out;
    },
    listener(name) {
      const vip = running.get(name);
      return vip?.tcp ?? vip?.udp;
    },
    async drain(ms) {
      await serial.idle();
      if (closed) return;
      for (const vip of running.values()) retire(vip);
      running.clear();
      const t0 = clock.now();
      while (sockets.size > 0 && clock.now() - t0 < ms) await sleep(clock, 50);
    },
    async close() {
      await serial.idle();
      if (closed) return;
      closed = true;
      clock.clearInterval(sweep);
      const servers: Promise<void>[] = [];
      for (const vip of running.values()) {
        vip.retired = true;
        for (const s of [...vip.sessions.values()]) s.end();
        if (vip.tcp !== undefined) {
          const server = vip.tcp;
          servers.push(new Promise((resolve) => server.close(() => resolve())));
        }
        if (vip.udp !== undefined) {
          const udp = vip.udp;
          servers.push(new Promise((resolve) => udp.close(() => resolve())));
        }
      }
      for (const server of retiredServers) servers.push(new Promise((resolve) => server.close(() => resolve())));
      running.clear();
      // server.close() waits for open flows, so end them first
      for (const sock of sockets) sock.destroy();
      await Promise.all(servers);
    },
  };
}

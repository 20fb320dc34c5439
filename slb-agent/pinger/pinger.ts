/**
 * The MAC-keepalive pinger. In L2 DSR the client's frames only reach the LB, so a switch on the
 * real servers' side ages the client's (and the gateway's) MAC out and floods the replies. Each
 * round, every peer of an interface is made to answer (ARP request, ICMP echo or a UDP datagram to
 * a closed port); its answer crosses the switches and refreshes their MAC tables.
 *
 * Scheduling, per interface: a round lasts `interval` +- `jitter` (random per round) and its n
 * probes are spread evenly over it (probe k at start + k * length / n), so 1,000 peers cost a
 * steady trickle, not a burst. One timer per interface wakes at the next due probe or deadline,
 * at most every MIN_TICK_MS, and sends what is due then (bounded by the round's list). `auto` peers
 * are re-read from the neighbour table at the start of every round. Sockets are opened once in
 * start() and kept; nothing forks.
 */
import type { Logger } from 'pino';
import { systemClock, unrefTimer } from '../../shared/clock.js';
import type { Clock, TimerHandle } from '../../shared/clock.js';
import type { PingerConfig, PingerInterfaceConfig, PingerMethod } from './config.js';
import { addonMissing, loadPingerAddon, openNativeTransport } from './native.js';
import { autoPeers, localAddresses as defaultLocal, readNeighbours } from './neighbours.js';
import type { Neighbour } from './neighbours.js';
import { PeerState } from './peer-state.js';
import type { PeerEvent, PeerStatus, PendingProbe } from './peer-state.js';
import type { Answer, ProbeTransport, TransportFactory } from './transport.js';
import { openUdpTransport } from './udp.js';

/** Probes due within this many ms of each other go out in one timer callback. */
const MIN_TICK_MS = 20;

/** How the pinger is built; everything but config and logger has a production default. */
export interface PingerOptions {
  readonly config: PingerConfig;
  readonly logger: Logger;
  readonly openTransport?: TransportFactory;
  /** timers, monotonic ms (the transports' clock: uv_hrtime) and unix ms; the system's by default */
  readonly clock?: Clock;
  /** uniform [0, 1) */
  readonly random?: () => number;
  readonly neighbours?: () => readonly Neighbour[];
  readonly localAddresses?: () => ReadonlySet<string>;
  /** more addresses `auto` never picks (the agent's VIPs) */
  readonly exclude?: readonly string[];
}

/** One interface in GET /status. */
export interface PingerInterfaceStatus {
  readonly name: string;
  readonly method: PingerMethod;
  readonly intervalMs: number;
  readonly jitter: number;
  readonly timeoutMs: number;
  readonly auto: boolean;
  /** the interface's MAC (arp) */
  readonly mac: string | null;
  /** the ARP sender address (arp) */
  readonly source: string | null;
  readonly rounds: number;
  readonly peers: readonly PeerStatus[];
}

/** The pinger in GET /status. */
export interface PingerStatus {
  readonly running: boolean;
  readonly failAfter: number;
  readonly interfaces: readonly PingerInterfaceStatus[];
}

/** The running pinger. */
export interface Pinger {
  /** opens every interface's socket (rejects, closing what opened, if one fails), logs `pinger: ready`, starts probing */
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): PingerStatus;
}

/** The production transports: the addon for arp and icmp, node:dgram for udp. */
export const defaultOpenTransport: TransportFactory = async ({ ifname, method, source, onAnswer }) => {
  if (method === 'udp') return openUdpTransport(onAnswer);
  return openNativeTransport(method, ifname, source, onAnswer);
};

/** Fails early, before any socket opens, when a configured method needs the missing addon. */
export function checkPingerAddon(config: PingerConfig): void {
  const native = config.interfaces.find((f) => f.method !== 'udp');
  if (!native) return;
  const { binding, reason } = loadPingerAddon();
  if (!binding) throw addonMissing(native.method, reason ?? 'unknown');
}

interface Queued { readonly peer: PeerState; readonly probe: PendingProbe }

class InterfaceRunner {
  readonly peers = new Map<string, PeerState>();
  transport: ProbeTransport | undefined;
  rounds = 0;
  private list: string[] = [];
  private tableMac = new Map<string, string>();
  private idx = 0;
  private roundStart = 0;
  private roundLen = 0;
  private seq = 0;
  private queue: Queued[] = [];
  private head = 0;
  private timer: TimerHandle;
  private stopped = true;

  constructor(readonly cfg: PingerInterfaceConfig, private readonly o: Required<Omit<PingerOptions, 'exclude' | 'config'>> & { failAfter: number; exclude: ReadonlySet<string> }) {}

  private now(): number {
    return this.o.clock.now();
  }

  start(): void {
    this.stopped = false;
    this.newRound(this.now());
    this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  onAnswer(a: Answer): void {
    const p = this.peers.get(a.address);
    if (!p) return;
    this.emit(p, p.onAnswer(a.at, a.mac, a.seq).event);
  }

  private newRound(t: number): void {
    const prevEnd = this.roundStart + this.roundLen;
    // keep the cadence unless the loop fell behind by more than a round
    this.roundStart = this.rounds > 0 && t - prevEnd < this.cfg.intervalMs ? prevEnd : t;
    this.roundLen = this.cfg.intervalMs * (1 + this.cfg.jitter * (2 * this.o.random() - 1));
    this.rounds++;
    this.idx = 0;

    const table = this.o.neighbours();
    this.tableMac = new Map(table.filter((n) => n.dev === this.cfg.name).map((n) => [n.address, n.mac]));
    const list = [...this.cfg.peers];
    const listed = new Set(list);
    if (this.cfg.auto) {
      for (const n of autoPeers(table, this.cfg.name, this.o.exclude, this.o.localAddresses())) {
        if (!listed.has(n.address)) { listed.add(n.address); list.push(n.address); }
      }
    }
    for (const [addr, p] of this.peers) {
      if (!listed.has(addr)) { this.peers.delete(addr); this.transport?.forget(addr); p.pending = undefined; }
    }
    for (const addr of list) {
      let p = this.peers.get(addr);
      if (!p) {
        p = new PeerState(addr, this.o.failAfter);
        p.auto = !this.cfg.peers.includes(addr);
        this.peers.set(addr, p);
      }
      p.mac ??= this.tableMac.get(addr) ?? null;
    }
    this.list = list;
  }

  private send(addr: string): void {
    const p = this.peers.get(addr);
    if (!p || !this.transport) return;
    this.seq = (this.seq + 1) & 0xffff;
    // unicast to the known MAC; after a miss broadcast, in case the peer's MAC changed
    const mac = p.consecutiveFailures === 0 ? this.tableMac.get(addr) ?? p.mac ?? undefined : undefined;
    const sentAt = this.now();
    const probe: PendingProbe = { seq: this.seq, sentAt, deadline: sentAt + this.cfg.timeoutMs };
    const err = this.transport.send(addr, this.seq, mac);
    this.emit(p, p.onSent(probe, err));
    if (err === undefined) this.queue.push({ peer: p, probe });
  }

  private tick(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const t = this.now();
    // deadlines grow with send time (one timeout per interface): the queue is in deadline order
    while (this.head < this.queue.length && this.queue[this.head]!.probe.deadline <= t) {
      const q = this.queue[this.head++]!;
      this.emit(q.peer, q.peer.onExpired(q.probe));
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) { this.queue = this.queue.slice(this.head); this.head = 0; }

    if (this.idx >= this.list.length && t >= this.roundStart + this.roundLen) this.newRound(t);
    const n = this.list.length;
    const step = n > 0 ? this.roundLen / n : 0;
    while (this.idx < n && this.roundStart + this.idx * step <= t) this.send(this.list[this.idx++]!);

    let next = this.idx < n ? this.roundStart + this.idx * step : this.roundStart + this.roundLen;
    const q = this.queue[this.head];
    if (q !== undefined && q.probe.deadline < next) next = q.probe.deadline;
    this.timer = unrefTimer(this.o.clock.setTimeout(() => this.tick(), Math.max(MIN_TICK_MS, next - t)));
  }

  private emit(p: PeerState, ev: PeerEvent): void {
    if (ev === undefined) return;
    const fields = { interface: this.cfg.name, peer: p.address, method: this.cfg.method };
    if (ev === 'down') {
      this.o.logger.warn({ ...fields, failures: p.consecutiveFailures, err: p.lastError }, `pinger: peer ${p.address} on ${this.cfg.name} not answering`);
    } else {
      this.o.logger.info(fields, `pinger: peer ${p.address} on ${this.cfg.name} answering again`);
    }
  }

  status(wall: (mono: number) => number): PingerInterfaceStatus {
    return {
      name: this.cfg.name, method: this.cfg.method, intervalMs: this.cfg.intervalMs, jitter: this.cfg.jitter,
      timeoutMs: this.cfg.timeoutMs, auto: this.cfg.auto, mac: this.transport?.mac ?? null,
      source: this.transport?.source ?? null, rounds: this.rounds,
      peers: [...this.peers.values()].map((p) => p.status(wall)),
    };
  }
}

/** Builds the pinger; nothing opens before start(). */
export function createPinger(opts: PingerOptions): Pinger {
  const { config, logger } = opts;
  const clock = opts.clock ?? systemClock;
  const exclude = new Set([...config.exclude, ...(opts.exclude ?? [])]);
  const openTransport = opts.openTransport ?? defaultOpenTransport;
  const shared = {
    logger, clock, random: opts.random ?? Math.random,
    neighbours: opts.neighbours ?? (() => readNeighbours()),
    localAddresses: opts.localAddresses ?? defaultLocal,
    openTransport, failAfter: config.failAfter, exclude,
  };
  const runners = config.interfaces.map((f) => new InterfaceRunner(f, shared));
  let running = false;

  return {
    async start() {
      if (running) return;
      try {
        for (const r of runners) {
          r.transport = await openTransport({
            ifname: r.cfg.name, method: r.cfg.method, onAnswer: (a) => r.onAnswer(a),
            ...(config.source !== undefined ? { source: config.source } : {}),
          });
        }
      } catch (err) {
        for (const r of runners) { r.transport?.close(); r.transport = undefined; }
        throw err;
      }
      running = true;
      logger.info({ interfaces: runners.map((r) => ({ name: r.cfg.name, method: r.cfg.method, mac: r.transport?.mac, source: r.transport?.source })) }, 'pinger: ready');
      for (const r of runners) r.start();
    },
    async stop() {
      running = false;
      for (const r of runners) { r.stop(); r.transport?.close(); r.transport = undefined; }
    },
    status() {
      const monoNowV = clock.now();
      const wallV = clock.wallNow();
      const wall = (mono: number): number => wallV - (monoNowV - mono);
      return { running, failAfter: config.failAfter, interfaces: runners.map((r) => r.status(wall)) };
    },
  };
}

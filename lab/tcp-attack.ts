/**
 * A bounded TCP exhaustion attack on loopback (idle connections and slowloris), shared by the
 * TCP attack test and `npm run bench:attack-tcp`.
 */
import net from 'node:net';

/** One kind of hostile TCP client: `perSource` connections from each of `sources`, kept open. */
export interface AttackGroup {
  readonly sources: readonly string[];
  readonly perSource: number;
  /** idle: connect and send nothing; slowloris: a 2-byte length, then one byte a second */
  readonly kind: 'idle' | 'slowloris';
}

/** A running attack; `stop` closes every socket and timer it made. */
export interface TcpAttack {
  /** attack connections currently open on our side */
  open(): number;
  /** connections the server closed (refused, evicted, timed out) */
  closedByServer(): number;
  stop(): void;
}

/**
 * Holds the connections of `groups` against 127.0.0.1:port; a connection the server closes is
 * opened again after `reconnectMs` (an attacker keeps up the pressure). Bounded: at most the sum
 * of the groups' connections exist at any time.
 */
export function startTcpAttack(port: number, groups: readonly AttackGroup[], reconnectMs: number): TcpAttack {
  let stopped = false;
  let closedByServer = 0;
  const sockets = new Set<net.Socket>();
  const slow = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const hold = (source: string, kind: AttackGroup['kind']): void => {
    if (stopped) return;
    const s = net.connect({ port, host: '127.0.0.1', localAddress: source });
    sockets.add(s);
    s.on('connect', () => {
      if (kind === 'slowloris') { s.write(Buffer.from([0, 40])); slow.add(s); }
    });
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => {
      sockets.delete(s);
      slow.delete(s);
      if (stopped) return;
      closedByServer++;
      const t = setTimeout(() => { timers.delete(t); hold(source, kind); }, reconnectMs);
      timers.add(t);
    });
  };
  for (const g of groups) for (const src of g.sources) for (let i = 0; i < g.perSource; i++) hold(src, g.kind);
  // one timer for every slowloris: a byte a second each (never a whole 40-byte message in time)
  const drip = setInterval(() => { for (const s of slow) if (s.writable) s.write(Buffer.from([0])); }, 1000);
  return {
    open: () => sockets.size,
    closedByServer: () => closedByServer,
    stop: () => {
      stopped = true;
      clearInterval(drip);
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
    },
  };
}

/** `n` source addresses 127.0.`third`.1 .. 127.0.`third`.n (all on lo). */
export function loopbackSources(third: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `127.0.${third}.${i + 1}`);
}

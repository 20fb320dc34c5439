import net from 'node:net';
import type { Engine, QueryPeer } from './engine.js';
import { addressBytes } from '../../shared/ip.js';
import type { Clock } from '../../shared/clock.js';
import { systemClock } from '../../shared/clock.js';
import { readDescriptorLimit } from '../fd-limit.js';
import { TcpConnectionTable, defaultMaxConnections, sourceKey } from './tcp-limits.js';
import type { TcpLimitStats, TcpLimits } from './tcp-limits.js';

/** Limits of the TCP listener (RFC 7766 §6.2: idle timeout, connection caps; see tcp-limits.ts). */
export interface TcpOptions extends TcpLimits {
  /** replies queued on one connection before we stop reading from it */
  readonly maxPendingBytes: number;
}

export const DEFAULT_TCP_OPTIONS: TcpOptions = {
  idleMs: 10_000, messageMs: 4_000, maxConnections: defaultMaxConnections(readDescriptorLimit()), maxPerSource: 32, maxPendingBytes: 1 << 20,
};

/** A TCP listener serving DNS messages with 2-byte length framing, pipelined. */
export interface TcpListener {
  readonly port: number;
  connections(): number;
  /** what the limits did so far */
  limitStats(): TcpLimitStats;
  close(): Promise<void>;
}

/** Listens for DNS over TCP on host:port and answers through `engine`. */
export function listenTcp(host: string, port: number, engine: () => Engine, options: Partial<TcpOptions> = {},
  clock: Clock = systemClock): Promise<TcpListener> {
  const opts: TcpOptions = { ...DEFAULT_TCP_OPTIONS, ...options };
  const table = new TcpConnectionTable(opts, clock);
  const sockets = new Set<net.Socket>();
  const out = Buffer.alloc(65537);
  const server = net.createServer({ noDelay: true }, (sock) => {
    const peer = peerOf(sock);
    const slot = table.admit(peer ? sourceKey(peer.family, peer.address) : '?', () => sock.destroy());
    if (!slot) {
      sock.destroy();
      return;
    }
    sockets.add(sock);
    let pending: Buffer = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      let p = 0;
      let completed = false;
      while (pending.length - p >= 2) {
        const len = pending.readUInt16BE(p);
        if (pending.length - p - 2 < len) break;
        const n = engine().handle(pending, p + 2, len, out, 2, 65535, true, peer);
        p += 2 + len;
        completed = true;
        if (n === 0) {
          // RFC 7766 §8: a message we cannot answer ends the connection (nothing to resync on)
          if (len < 12) { sock.destroy(); return; }
          continue;
        }
        out.writeUInt16BE(n, 0);
        const ok = sock.write(Buffer.from(out.subarray(0, n + 2)));
        if (!ok && sock.writableLength > opts.maxPendingBytes) {
          // a client that does not read its answers: stop reading until it drains
          sock.pause();
          sock.once('drain', () => sock.resume());
        }
      }
      pending = p === pending.length ? Buffer.alloc(0) : pending.subarray(p);
      // a frame can be at most 64 KiB; more unparsed data than that is not a DNS client
      if (pending.length > 65537) { sock.destroy(); return; }
      // the message deadline runs from the first byte of a message; trickling bytes do not move it
      if (pending.length === 0) slot.idle();
      else if (completed) { slot.idle(); slot.reading(); } else slot.reading();
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => { slot.release(); sockets.delete(sock); });
  });
  // a backstop only: the table keeps the count at maxConnections (closed sockets leave a tick later)
  server.maxConnections = opts.maxConnections + 256;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // a deep accept queue: under a connection flood a full queue drops SYNs, and a legitimate
    // client then waits for its SYN retransmit (1 s, then 3 s); the kernel caps it at somaxconn
    server.listen({ host, port, ipv6Only: host.includes(':'), backlog: 4096 }, () => {
      server.off('error', reject);
      const addr = server.address() as net.AddressInfo;
      resolve({
        port: addr.port,
        connections: () => sockets.size,
        limitStats: () => table.snapshot(),
        close: () => new Promise<void>((res) => {
          table.stop();
          for (const s of sockets) s.destroy();
          server.close(() => res());
        }),
      });
    });
  });
}

/** The client address of a connection as bytes (IPv4-mapped IPv6 counts as IPv4). */
function peerOf(sock: net.Socket): QueryPeer | undefined {
  let a = sock.remoteAddress;
  if (!a) return undefined;
  if (a.startsWith('::ffff:') && !a.includes(':', 7)) a = a.slice(7);
  const bytes = addressBytes(a.replace(/%.*$/, ''));
  return bytes === undefined ? undefined : { family: bytes.length === 4 ? 4 : 6, address: bytes };
}

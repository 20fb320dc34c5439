import net from 'node:net';
import type { Engine, QueryPeer } from './engine.js';
import { parseAddress } from '../../shared/ip.js';

/** Limits of the TCP listener (RFC 7766 §6.2: idle timeout, connection caps). */
export interface TcpOptions {
  /** close a connection with no complete query for this long */
  readonly idleMs: number;
  /** connections beyond this are closed at once */
  readonly maxConnections: number;
  /** replies queued on one connection before we stop reading from it */
  readonly maxPendingBytes: number;
}

export const DEFAULT_TCP_OPTIONS: TcpOptions = { idleMs: 10_000, maxConnections: 1000, maxPendingBytes: 1 << 20 };

/** A TCP listener serving DNS messages with 2-byte length framing, pipelined. */
export interface TcpListener {
  readonly port: number;
  connections(): number;
  close(): Promise<void>;
}

/** Listens for DNS over TCP on host:port and answers through `engine`. */
export function listenTcp(host: string, port: number, engine: () => Engine, opts: TcpOptions = DEFAULT_TCP_OPTIONS): Promise<TcpListener> {
  const sockets = new Set<net.Socket>();
  const out = Buffer.alloc(65537);
  const server = net.createServer({ noDelay: true }, (sock) => {
    if (sockets.size >= opts.maxConnections) {
      sock.destroy();
      return;
    }
    sockets.add(sock);
    const peer = peerOf(sock);
    sock.setTimeout(opts.idleMs, () => sock.destroy());
    let pending: Buffer = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      let p = 0;
      while (pending.length - p >= 2) {
        const len = pending.readUInt16BE(p);
        if (pending.length - p - 2 < len) break;
        const n = engine().handle(pending, p + 2, len, out, 2, 65535, true, peer);
        p += 2 + len;
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
      if (pending.length > 65537) sock.destroy();
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => sockets.delete(sock));
  });
  server.maxConnections = opts.maxConnections + 16;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, ipv6Only: host.includes(':') }, () => {
      server.off('error', reject);
      const addr = server.address() as net.AddressInfo;
      resolve({
        port: addr.port,
        connections: () => sockets.size,
        close: () => new Promise<void>((res) => {
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
  if (a.startsWith('::ffff:') && net.isIPv4(a.slice(7))) a = a.slice(7);
  try {
    const p = parseAddress(a.replace(/%.*$/, ''));
    return { family: p.family, address: p.bytes };
  } catch {
    return undefined;
  }
}

/**
 * The `udp` method, unprivileged and addon-free: a datagram to a closed port draws an ICMP port
 * unreachable from the peer, which Linux reports on a connected UDP socket as ECONNREFUSED.
 * The error needs a connected socket, so there is one per peer, opened at its first probe and kept
 * until the peer leaves the list (never one per probe).
 */
import dgram from 'node:dgram';
import type { Answer, ProbeTransport } from './transport.js';
import { monoNow } from './transport.js';

/** traceroute's first port: conventionally closed, so the peer answers with port unreachable */
export const UDP_PROBE_PORT = 33434;

interface PeerSocket { readonly sock: dgram.Socket; ready: boolean }

/** Opens the udp transport of one interface (sockets per peer are opened lazily). */
export function openUdpTransport(onAnswer: (a: Answer) => void, port = UDP_PROBE_PORT, now: () => number = monoNow): ProbeTransport {
  const socks = new Map<string, PeerSocket>();
  const payload = Buffer.from('slb-agent pinger');
  const open = (address: string): PeerSocket => {
    const sock = dgram.createSocket('udp4');
    const ps: PeerSocket = { sock, ready: false };
    sock.on('error', (err: NodeJS.ErrnoException) => {
      // ECONNREFUSED is the answer; other errors (EHOSTUNREACH after failed ARP) are failures by timeout
      if (err.code === 'ECONNREFUSED') onAnswer({ address, at: now() });
    });
    // receiving must be on for the kernel's queued error to reach us
    sock.on('message', () => { /* an open port answered: not a probe answer, the peer runs a service there */ });
    sock.connect(port, address, () => {
      ps.ready = true;
      sock.send(payload);
    });
    sock.unref();
    return ps;
  };
  return {
    method: 'udp',
    send(address) {
      const ps = socks.get(address);
      if (!ps) { socks.set(address, open(address)); return undefined; } // sends once connected
      if (!ps.ready) return undefined;
      try {
        ps.sock.send(payload);
      } catch (err) {
        return `send failed: ${(err as Error).message}`;
      }
      return undefined;
    },
    forget(address) {
      const ps = socks.get(address);
      socks.delete(address);
      try { ps?.sock.close(); } catch { /* already closed */ }
    },
    close() {
      for (const a of [...socks.keys()]) this.forget(a);
    },
  };
}

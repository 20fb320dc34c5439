import dgram from 'node:dgram';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDnsServer } from '../../dns/server/server.js';
import type { DnsServer, ServerOptions } from '../../dns/server/server.js';
import { loadZoneDir } from '../../dns/zone/load.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const FIXTURE_ZONES = path.join(ROOT, 'test/fixtures/zones');

/** Starts an in-process server on an ephemeral port of 127.0.0.1 (and ::1 when asked). */
export async function startFixture(dir = FIXTURE_ZONES, opts: ServerOptions & { v6?: boolean } = {}): Promise<DnsServer & { port: number }> {
  const zones = await loadZoneDir(dir);
  const addrs = [{ host: '127.0.0.1', port: 0 }];
  if (opts.v6) addrs.push({ host: '::1', port: 0 });
  const s = await startDnsServer(zones, addrs, opts);
  return Object.assign(s, { port: s.bound[0]!.udp });
}

/** Sends one raw datagram and resolves with the reply, or undefined after `timeoutMs`. */
export function udpExchange(port: number, packet: Uint8Array, timeoutMs = 1000, host = '127.0.0.1'): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const timer = setTimeout(() => { sock.close(); resolve(undefined); }, timeoutMs);
    sock.on('message', (m) => { clearTimeout(timer); sock.close(); resolve(m); });
    sock.send(packet, port, host);
  });
}

/** Writes raw bytes on one TCP connection and collects `count` length-framed replies. */
export function tcpExchange(port: number, bytes: Uint8Array, count: number, timeoutMs = 3000): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const replies: Buffer[] = [];
    let buf = Buffer.alloc(0);
    const sock = net.connect(port, '127.0.0.1', () => sock.write(bytes));
    const timer = setTimeout(() => { sock.destroy(); resolve(replies); }, timeoutMs);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const n = buf.readUInt16BE(0);
        replies.push(buf.subarray(2, 2 + n));
        buf = buf.subarray(2 + n);
      }
      if (replies.length >= count) { clearTimeout(timer); sock.destroy(); resolve(replies); }
    });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

/** Frames a message for TCP. */
export function framed(msg: Uint8Array): Buffer {
  const b = Buffer.alloc(2 + msg.length);
  b.writeUInt16BE(msg.length, 0);
  b.set(msg, 2);
  return b;
}

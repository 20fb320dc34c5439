import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TcpListener } from '../../dns/server/tcp.js';
import { dig } from '../helpers/dig.js';
import { header, query } from '../helpers/packet.js';
import { framed, startFixture, tcpExchange } from '../helpers/server.js';

let server: Awaited<ReturnType<typeof startFixture>>;
beforeAll(async () => { server = await startFixture(undefined, { tcp: { idleMs: 300, maxConnections: 3 } }); });
afterAll(async () => { await server.close(); });

function waitClose(s: net.Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    s.on('close', () => { clearTimeout(t); resolve(true); });
  });
}

describe('DNS over TCP', () => {
  it('answers dig over TCP', async () => {
    const r = await dig(server.port, ['+norec', '+tcp', 'www.example.test', 'A']);
    expect(r.answer).toEqual(['www.example.test. 3600 IN A 192.0.2.80']);
  });

  it('answers pipelined queries on one connection, each with its own ID', async () => {
    const bytes = Buffer.concat([1, 2, 3, 4, 5].map((id) => framed(query({ id, name: id % 2 ? 'www.example.test' : 'nope.example.test' }))));
    const replies = await tcpExchange(server.port, bytes, 5);
    expect(replies.map((r) => header(r).id)).toEqual([1, 2, 3, 4, 5]);
    expect(replies.map((r) => header(r).rcode)).toEqual([0, 3, 0, 3, 0]);
  });

  it('reassembles a query split across writes', async () => {
    const msg = framed(query({ id: 77 }));
    const replies = await new Promise<Buffer[]>((resolve) => {
      const s = net.connect(server.port, '127.0.0.1', () => {
        s.write(msg.subarray(0, 1));
        setTimeout(() => s.write(msg.subarray(1, 9)), 20);
        setTimeout(() => s.write(msg.subarray(9)), 40);
      });
      let buf = Buffer.alloc(0);
      s.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) { s.destroy(); resolve([buf.subarray(2)]); }
      });
    });
    expect(header(replies[0]!).id).toBe(77);
  });

  it('closes idle connections', async () => {
    const s = net.connect(server.port, '127.0.0.1');
    expect(await waitClose(s, 20_000)).toBe(true); // idleMs is 300: a deadline for a busy machine, not a bound
  });

  it('caps concurrent connections: a new one evicts the longest-idle, the count never exceeds the cap', async () => {
    // idle close far away, so that only the cap can close anything here
    const capped = await startFixture(undefined, { tcp: { idleMs: 600_000, messageMs: 600_000, maxConnections: 3, maxPerSource: 10 } });
    try {
      const socks: net.Socket[] = [];
      for (let i = 0; i < 3; i++) {
        socks.push(await new Promise<net.Socket>((res) => { const s = net.connect(capped.port, '127.0.0.1', () => res(s)); }));
        await until(() => tcpOf(capped).connections() === i + 1);
      }
      const firstClosed = waitClose(socks[0]!, 20_000);
      const replies = await tcpExchange(capped.port, framed(query({ id: 42 })), 1, 20_000);
      expect(replies.map((r) => header(r).id)).toEqual([42]);
      expect(await firstClosed).toBe(true);
      expect(socks[1]!.destroyed || socks[2]!.destroyed).toBe(false);
      expect(tcpOf(capped).connections()).toBeLessThanOrEqual(3);
      expect(tcpOf(capped).limitStats()).toMatchObject({ evicted: 1, idleClosed: 0 });
      for (const s of socks) s.destroy();
    } finally {
      await capped.close();
    }
  });

  it('refuses a connection over the per-source limit at once, and not one from another source', async () => {
    const capped = await startFixture(undefined, { tcp: { idleMs: 600_000, messageMs: 600_000, maxConnections: 100, maxPerSource: 2 } });
    try {
      const open = (local: string): Promise<net.Socket> => new Promise((res) => {
        const s = net.connect({ port: capped.port, host: '127.0.0.1', localAddress: local }, () => res(s));
      });
      const a = [await open('127.0.0.1'), await open('127.0.0.1')];
      await until(() => tcpOf(capped).connections() === 2);
      const third = await open('127.0.0.1');
      expect(await waitClose(third, 20_000)).toBe(true);
      const other = await open('127.0.0.2');
      await until(() => tcpOf(capped).connections() === 3);
      expect(tcpOf(capped).limitStats()).toMatchObject({ refusedPerSource: 1, evicted: 0 });
      for (const s of [...a, other]) s.destroy();
    } finally {
      await capped.close();
    }
  });
});

/** the fixture's TCP listener */
function tcpOf(s: Awaited<ReturnType<typeof startFixture>>): TcpListener {
  return s.tcpListeners[0]!;
}

/** waits (in real time, generously) for what the server has seen */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 4000 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(cond()).toBe(true);
}

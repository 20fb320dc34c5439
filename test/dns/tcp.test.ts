import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig } from '../helpers/dig.js';
import { header, query } from '../helpers/packet.js';
import { framed, startFixture, tcpExchange } from '../helpers/server.js';

let server: Awaited<ReturnType<typeof startFixture>>;
beforeAll(async () => { server = await startFixture(undefined, { tcp: { idleMs: 300, maxConnections: 3, maxPendingBytes: 1 << 20 } }); });
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

  it('caps concurrent connections', async () => {
    const socks = await Promise.all([0, 1, 2].map(() => new Promise<net.Socket>((res) => {
      const s = net.connect(server.port, '127.0.0.1', () => res(s));
    })));
    await new Promise((r) => setTimeout(r, 50));
    const extra = net.connect(server.port, '127.0.0.1');
    expect(await waitClose(extra, 2000)).toBe(true);
    for (const s of socks) s.destroy();
  });
});

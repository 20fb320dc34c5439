import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig } from '../helpers/dig.js';
import { header, opt, query } from '../helpers/packet.js';
import { startFixture, udpExchange } from '../helpers/server.js';

let server: Awaited<ReturnType<typeof startFixture>>;
beforeAll(async () => { server = await startFixture(); });
afterAll(async () => { await server.close(); });

describe('truncation', () => {
  it('sets TC with no partial RRset when the answer does not fit in 512 bytes', async () => {
    const r = await dig(server.port, ['+norec', '+noedns', '+ignore', 'big.example.test', 'TXT']);
    expect(r.flags.has('tc')).toBe(true);
    expect(r.answer).toEqual([]);
  });

  it('does not fit in the 1232-byte EDNS cap either', async () => {
    const reply = await udpExchange(server.port, query({ name: 'big.example.test', type: 16, additional: [opt([], 4096)] }));
    const h = header(reply!);
    expect(h.tc).toBe(true);
    expect(h.an).toBe(0);
    expect(reply!.length).toBeLessThanOrEqual(1232);
    expect(h.ar).toBe(1); // the OPT is always there
  });

  it('gives the whole answer over TCP', async () => {
    const r = await dig(server.port, ['+norec', '+tcp', 'big.example.test', 'TXT']);
    expect(r.flags.has('tc')).toBe(false);
    expect(r.answer).toHaveLength(40);
  });

  it('dig retries over TCP by itself and gets everything', async () => {
    const r = await dig(server.port, ['+norec', '+noedns', 'big.example.test', 'TXT']);
    expect(r.answer).toHaveLength(40);
  });

  it('a larger --udp-size cap lets a bigger answer through UDP', async () => {
    const big = await (await import('../helpers/server.js')).startFixture(undefined, { engine: { udpCap: 4096, cacheEntries: 1000 } });
    try {
      const r = await dig(big.port, ['+norec', '+bufsize=4096', '+ignore', 'big.example.test', 'TXT']);
      expect(r.flags.has('tc')).toBe(false);
      expect(r.answer).toHaveLength(40);
      expect(r.opt!.udp).toBe(4096);
    } finally {
      await big.close();
    }
  });
});

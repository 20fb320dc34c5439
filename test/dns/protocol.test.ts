import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig } from '../helpers/dig.js';
import { header, query } from '../helpers/packet.js';
import { startFixture, udpExchange } from '../helpers/server.js';

let server: Awaited<ReturnType<typeof startFixture>>;
beforeAll(async () => { server = await startFixture(undefined, { v6: true }); });
afterAll(async () => { await server.close(); });

describe('header and question handling', () => {
  it('echoes the question byte for byte (0x20 mixed case), on the first and the cached answer', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await dig(server.port, ['+norec', 'WwW.ExAmPlE.tEsT', 'A']);
      expect(r.question).toEqual(['WwW.ExAmPlE.tEsT. IN A']);
      expect(r.answer).toEqual(['WwW.ExAmPlE.tEsT. 3600 IN A 192.0.2.80']);
    }
  });

  it('copies RD but never sets RA', async () => {
    const r = await dig(server.port, ['+rec', 'www.example.test', 'A']);
    expect(r.flags.has('rd')).toBe(true);
    expect(r.flags.has('ra')).toBe(false);
    expect(r.flags.has('aa')).toBe(true);
  });

  it('answers NOTIMP to other opcodes', async () => {
    const r = await dig(server.port, ['+opcode=2', 'www.example.test', 'A']);
    expect(r.status).toBe('NOTIMP');
    const notify = await udpExchange(server.port, query({ flags: 4 << 11 }));
    expect(header(notify!).rcode).toBe(4);
    expect(header(notify!).opcode).toBe(4);
  });

  // RD and CD mean something for QUERY only; Knot and gdnsd clear them on other opcodes
  const rdcd: [string, number, boolean][] = [
    ['QUERY copies RD and CD', 0, true],
    ['IQUERY (1) copies neither', 1, false],
    ['STATUS (2) copies neither', 2, false],
    ['NOTIFY (4) copies neither', 4, false],
    ['UPDATE (5) copies neither', 5, false],
  ];
  for (const [what, opcode, copied] of rdcd) {
    it(`${what}`, async () => {
      const reply = await udpExchange(server.port, query({ flags: (opcode << 11) | 0x0100 | 0x0010 }));
      const h = header(reply!);
      expect(h.opcode).toBe(opcode);
      expect(h.rcode).toBe(opcode === 0 ? 0 : 4);
      expect(h.rd).toBe(copied);
      expect((reply![3]! & 0x10) !== 0).toBe(copied);
    });
  }

  it('clears CD on NOTIMP through dig', async () => {
    const r = await dig(server.port, ['+opcode=2', '+cdflag', '+rec', 'www.example.test', 'A']);
    expect(r.status).toBe('NOTIMP');
    expect(r.flags.has('cd')).toBe(false);
    expect(r.flags.has('rd')).toBe(false);
    const q = await dig(server.port, ['+cdflag', '+rec', 'www.example.test', 'A']);
    expect(q.flags.has('cd')).toBe(true);
    expect(q.flags.has('rd')).toBe(true);
  });

  it('answers FORMERR to QDCOUNT 0 and 2', async () => {
    const none = await udpExchange(server.port, query({ qdcount: 0 }));
    expect(header(none!).rcode).toBe(1);
    const two = Buffer.from(query());
    two[5] = 2;
    const r2 = await udpExchange(server.port, two);
    expect(header(r2!).rcode).toBe(1);
  });

  it('drops packets with QR=1 and packets shorter than a header', async () => {
    expect(await udpExchange(server.port, query({ flags: 0x8000 }), 300)).toBeUndefined();
    expect(await udpExchange(server.port, Buffer.from([1, 2, 3]), 300)).toBeUndefined();
    // and is still alive
    expect(header((await udpExchange(server.port, query()))!).rcode).toBe(0);
  });

  it('refuses zone transfers and other classes', async () => {
    const axfr = await udpExchange(server.port, query({ name: 'example.test', type: 252 }));
    expect(header(axfr!).rcode).toBe(5);
    const ch = await dig(server.port, ['+norec', '-c', 'CH', 'version.bind', 'TXT']);
    expect(ch.status).toBe('REFUSED');
  });

  it('serves IPv6 listeners', async () => {
    const v6port = server.bound[1]!.udp;
    const r = await dig(v6port, ['+norec', 'www.example.test', 'AAAA'], '::1');
    expect(r.answer).toEqual(['www.example.test. 3600 IN AAAA 2001:db8::80']);
    const t = await dig(v6port, ['+norec', '+tcp', 'www.example.test', 'AAAA'], '::1');
    expect(t.answer).toEqual(['www.example.test. 3600 IN AAAA 2001:db8::80']);
  });

  it('answers with FORMERR to trailing garbage and to a compressed question', async () => {
    const trailing = Buffer.concat([query(), Buffer.from([1, 2, 3])]);
    expect(header((await udpExchange(server.port, trailing))!).rcode).toBe(1);
    const ptr = Buffer.from([0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1]);
    expect(header((await udpExchange(server.port, ptr))!).rcode).toBe(1);
  });
});

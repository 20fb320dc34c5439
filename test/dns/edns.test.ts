import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig } from '../helpers/dig.js';
import { ecs, header, opt, query } from '../helpers/packet.js';
import { startFixture, udpExchange } from '../helpers/server.js';

let server: Awaited<ReturnType<typeof startFixture>>;
beforeAll(async () => { server = await startFixture(); });
afterAll(async () => { await server.close(); });

/** Offset just past the question of a reply with one question. */
function afterQuestion(b: Buffer): number {
  let p = 12;
  while (b[p] !== 0) p += 1 + b[p]!;
  return p + 5;
}

describe('EDNS0 (RFC 6891)', () => {
  it('replies with OPT only when the query had one', async () => {
    const withOpt = await dig(server.port, ['+norec', 'www.example.test', 'A']);
    expect(withOpt.opt).toBeDefined();
    expect(withOpt.opt!.version).toBe(0);
    const without = await dig(server.port, ['+norec', '+noedns', 'www.example.test', 'A']);
    expect(without.opt).toBeUndefined();
    expect(without.status).toBe('NOERROR');
  });

  it('advertises a UDP size capped at 1232 whatever the client offers', async () => {
    const r = await dig(server.port, ['+norec', '+bufsize=4096', 'www.example.test', 'A']);
    expect(r.opt!.udp).toBe(1232);
  });

  it('answers BADVERS to EDNS version 1, with OPT version 0', async () => {
    const r = await dig(server.port, ['+norec', '+edns=1', '+noednsneg', 'www.example.test', 'A']);
    expect(r.status).toBe('BADVERS');
    expect(r.opt!.version).toBe(0);
    expect(r.answer).toEqual([]);
  });

  it('does not echo ECS in a BADVERS reply', async () => {
    const r = await dig(server.port, ['+norec', '+edns=1', '+noednsneg', '+subnet=192.0.2.0/24', 'www.example.test', 'A']);
    expect(r.status).toBe('BADVERS');
    expect(r.opt!.ecs).toBeUndefined();
    // in bytes: the OPT is the last record and has no options (RDLENGTH 0), extended rcode 1
    const reply = await udpExchange(server.port, query({ additional: [opt([ecs(1, 24, 0, [192, 0, 2])], 1232, 1)] }));
    const h = header(reply!);
    expect([h.rcode, h.an, h.ns, h.ar]).toEqual([0, 0, 0, 1]);
    const optAt = afterQuestion(reply!);
    expect(reply!.length).toBe(optAt + 11);
    expect(reply!.readUInt16BE(optAt + 1)).toBe(41);
    expect(reply![optAt + 5]).toBe(1);
    expect(reply!.readUInt16BE(optAt + 9)).toBe(0);
  });

  it('answers FORMERR to two OPT records', async () => {
    const reply = await udpExchange(server.port, query({ additional: [opt(), opt()] }));
    expect(reply).toBeDefined();
    expect(header(reply!).rcode).toBe(1);
    expect(header(reply!).qr).toBe(true);
  });

  it('ignores unknown EDNS options', async () => {
    const r = await dig(server.port, ['+norec', '+ednsopt=65001:abcd', 'www.example.test', 'A']);
    expect(r.status).toBe('NOERROR');
    expect(r.answer).toEqual(['www.example.test. 3600 IN A 192.0.2.80']);
  });

  it('echoes the DO bit', async () => {
    const reply = await udpExchange(server.port, query({ additional: [opt([], 1232, 0, true)] }));
    const p = afterQuestion(reply!);
    // the only additional record is the OPT, after one A record in the answer (16 bytes compressed)
    const optAt = p + 16;
    expect(reply![optAt + 1]).toBe(0);
    expect(reply!.readUInt16BE(optAt + 1)).toBe(41);
    expect(reply![optAt + 7]! & 0x80).toBe(0x80);
  });

  it('treats an advertised size below 512 as 512', async () => {
    const reply = await udpExchange(server.port, query({ name: 'big.example.test', type: 16, additional: [opt([], 100)] }));
    expect(header(reply!).tc).toBe(true);
    expect(reply!.length).toBeLessThanOrEqual(512);
  });

  it('rejects an OPT whose owner is not the root with FORMERR', async () => {
    const bad = Uint8Array.from([1, 0x61, 0, ...opt().subarray(1)]);
    const reply = await udpExchange(server.port, query({ additional: [bad] }));
    expect(header(reply!).rcode).toBe(1);
  });
});

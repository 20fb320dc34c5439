import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig } from '../helpers/dig.js';
import { ecs, header, opt, query } from '../helpers/packet.js';
import { startFixture, udpExchange } from '../helpers/server.js';

let server: Awaited<ReturnType<typeof startFixture>>;
beforeAll(async () => { server = await startFixture(); });
afterAll(async () => { await server.close(); });

describe('EDNS Client Subnet (RFC 7871)', () => {
  const echoed: [string, string][] = [
    ['192.0.2.0/24', '192.0.2.0/24/0'],
    ['198.51.100.128/25', '198.51.100.128/25/0'],
    ['10.0.0.0/7', '10.0.0.0/7/0'],
    ['0.0.0.0/0', '0.0.0.0/0/0'],
    ['192.0.2.1/32', '192.0.2.1/32/0'],
    ['2001:db8:1200::/56', '2001:db8:1200::/56/0'],
    ['2001:db8::/33', '2001:db8::/33/0'],
    ['2001:db8::1/128', '2001:db8::1/128/0'],
  ];
  for (const [subnet, want] of echoed) {
    it(`echoes ${subnet} with scope 0 for a static answer`, async () => {
      const r = await dig(server.port, ['+norec', `+subnet=${subnet}`, 'www.example.test', 'A']);
      expect(r.status).toBe('NOERROR');
      expect(r.opt!.ecs).toBe(want);
      expect(r.answer).toEqual(['www.example.test. 3600 IN A 192.0.2.80']);
    });
  }

  const malformed: [string, [number, number[]]][] = [
    ['a non-zero scope in a query', ecs(1, 24, 8, [192, 0, 2])],
    ['address longer than the prefix needs', ecs(1, 24, 0, [192, 0, 2, 0])],
    ['address shorter than the prefix needs', ecs(1, 24, 0, [192, 0])],
    ['bits set beyond the prefix', ecs(1, 23, 0, [192, 0, 3])],
    ['IPv4 prefix over 32', ecs(1, 33, 0, [192, 0, 2, 0, 0])],
    ['IPv6 prefix over 128', ecs(2, 129, 0, new Array(17).fill(0))],
    ['an unknown family', ecs(3, 8, 0, [1])],
    ['an option shorter than its fixed part', [8, [0, 1, 24]]],
  ];
  for (const [what, option] of malformed) {
    it(`answers FORMERR to ${what}`, async () => {
      const reply = await udpExchange(server.port, query({ additional: [opt([option])] }));
      expect(reply).toBeDefined();
      expect(header(reply!).rcode).toBe(1);
      expect(header(reply!).an).toBe(0);
    });
  }

  it('answers FORMERR to two client subnet options', async () => {
    const reply = await udpExchange(server.port, query({ additional: [opt([ecs(1, 24, 0, [192, 0, 2]), ecs(1, 24, 0, [192, 0, 2])])] }));
    expect(header(reply!).rcode).toBe(1);
  });

  it('parses an odd IPv6 prefix (/57) that dns2 3.1.1 gets wrong', async () => {
    const addr = [0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x56, 0x80];
    const reply = await udpExchange(server.port, query({ additional: [opt([ecs(2, 57, 0, addr)])] }));
    expect(header(reply!).rcode).toBe(0);
    // the echoed option is the last bytes of the reply: family 2, /57, scope 0, the 8 address bytes
    const tail = [...reply!.subarray(reply!.length - 12)];
    expect(tail).toEqual([0, 2, 57, 0, ...addr]);
  });
});

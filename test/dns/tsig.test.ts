import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../dns/server/engine.js';
import { loadZoneDir } from '../../dns/zone/load.js';
import type { ZoneSet } from '../../dns/zone/zone.js';
import { startCli } from '../helpers/cli.js';
import type { Cli } from '../helpers/cli.js';
import { dig } from '../helpers/dig.js';
import { ecs, header, opt, query, wireName } from '../helpers/packet.js';
import { FIXTURE_ZONES } from '../helpers/server.js';

/**
 * TSIG (RFC 8945) is not supported: the server holds no keys, so a signed query is signed with a
 * key it does not know. §5.2: NOTAUTH with an unsigned TSIG record (§5.3.2) carrying BADKEY.
 */

/** A TSIG record: owner `key`, the RDATA fields as given (MAC of `macLen` bytes, `other` bytes). */
function tsig(o: { key?: number[]; alg?: string; time?: number[]; fudge?: number; macLen?: number; origId?: number; error?: number; other?: number[] } = {}): Uint8Array {
  const alg = wireName(o.alg ?? 'hmac-sha256');
  const mac = new Array<number>(o.macLen ?? 32).fill(0xab);
  const other = o.other ?? [];
  const origId = o.origId ?? 0x1234;
  const rdata = [
    ...alg, ...(o.time ?? [0, 0, 0x6a, 0x0b, 0xc1, 0x5d]), (o.fudge ?? 300) >> 8, (o.fudge ?? 300) & 0xff,
    mac.length >> 8, mac.length & 0xff, ...mac, origId >> 8, origId & 0xff, (o.error ?? 0) >> 8, (o.error ?? 0) & 0xff,
    other.length >> 8, other.length & 0xff, ...other,
  ];
  return Uint8Array.from([...(o.key ?? wireName('somekey')), 0, 250, 0, 255, 0, 0, 0, 0, rdata.length >> 8, rdata.length & 0xff, ...rdata]);
}

/** The TSIG record every BADKEY reply ends with, for the defaults of tsig(). */
function badkey(key = wireName('somekey'), origId = 0x1234, time = [0, 0, 0x6a, 0x0b, 0xc1, 0x5d]): number[] {
  const alg = wireName('hmac-sha256');
  const rdlen = alg.length + 16;
  return [...key, 0, 250, 0, 255, 0, 0, 0, 0, rdlen >> 8, rdlen & 0xff, ...alg, ...time, 1, 44, 0, 0, origId >> 8, origId & 0xff, 0, 17, 0, 0];
}

let zones: ZoneSet;
beforeAll(async () => { zones = await loadZoneDir(FIXTURE_ZONES); });

function both(q: Buffer, tcp = false): Buffer {
  const general = new Engine(zones, { udpCap: 1232, cacheEntries: 0 });
  const fast = new Engine(zones, { udpCap: 1232, cacheEntries: 1000 });
  const a = Buffer.alloc(65535);
  const b = Buffer.alloc(65535);
  const n1 = general.handle(q, 0, q.length, a, 0, a.length, tcp);
  // the same name unsigned first, so that a compiled reply exists that must not be used
  const plain = query({ name: 'www.example.test' });
  fast.handle(plain, 0, plain.length, b, 0, b.length, tcp);
  const n2 = fast.handle(q, 0, q.length, b, 0, b.length, tcp);
  expect(b.subarray(0, n2).toString('hex')).toBe(a.subarray(0, n1).toString('hex'));
  return Buffer.from(a.subarray(0, n1));
}

const QUESTION = [...wireName('www.example.test'), 0, 1, 0, 1];

describe('TSIG-signed queries: NOTAUTH with TSIG BADKEY (RFC 8945 §5.2)', () => {
  const cases: { name: string; q: Buffer; tail: number[]; ar: number }[] = [
    {
      name: 'signed, no EDNS', q: query({ additional: [tsig()] }),
      tail: badkey(), ar: 1,
    },
    {
      name: 'signed with EDNS: OPT, then TSIG last, no ECS', q: query({ additional: [opt(), tsig()] }),
      tail: [0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0, ...badkey()], ar: 2,
    },
    {
      name: 'ECS is still echoed (only BADVERS drops it)', q: query({ additional: [opt([ecs(1, 24, 0, [192, 0, 2])]), tsig()] }),
      tail: [0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 11, 0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2, ...badkey()], ar: 2,
    },
    {
      name: 'original ID, time and key echoed; MAC and other data dropped',
      q: query({ id: 7, additional: [tsig({ key: wireName('K.Example'), origId: 0xbeef, time: [0, 1, 2, 3, 4, 5], macLen: 16, other: [1, 2, 3, 4, 5, 6] })] }),
      tail: badkey(wireName('K.Example'), 0xbeef, [0, 1, 2, 3, 4, 5]), ar: 1,
    },
    {
      name: 'a compressed key name is written out in full',
      // the owner points at "example.test" inside the question (offset 16)
      q: query({ additional: [tsig({ key: [1, 0x6b, 0xc0, 16] })] }),
      tail: badkey([1, 0x6b, ...wireName('example.test')]), ar: 1,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      for (const tcp of [false, true]) {
        const r = both(c.q, tcp);
        const h = header(r);
        expect([h.qr, h.aa, h.rcode, h.qd, h.an, h.ns, h.ar]).toEqual([true, false, 9, 1, 0, 0, c.ar]);
        expect([...r.subarray(12, 12 + QUESTION.length)]).toEqual(QUESTION);
        expect([...r.subarray(12 + QUESTION.length)]).toEqual(c.tail);
      }
    });
  }

  const formerr: [string, Buffer][] = [
    ['TSIG before the OPT', query({ additional: [tsig(), opt()] })],
    ['MAC size past the RDATA', query({ additional: [(() => { const t = tsig({ macLen: 4 }); t[9 + 10 + 13 + 9] = 200; return t; })()] })],
    ['RDATA shorter than its fixed fields', query({ additional: [Uint8Array.from([...wireName('k'), 0, 250, 0, 255, 0, 0, 0, 0, 0, 4, 0, 1, 2, 3])] })],
    ['other data not ending the RDATA', (() => { const b = Buffer.from(query({ additional: [tsig()] })); b[b.length - 1] = 1; return b; })()],
  ];
  for (const [what, q] of formerr) {
    it(`answers FORMERR to ${what}`, () => {
      expect(header(both(q)).rcode).toBe(1);
    });
  }

  it('unsigned and NOTIMP queries are not affected', () => {
    expect(header(both(query())).rcode).toBe(0);
    expect(header(both(query({ flags: 4 << 11, additional: [tsig()] }))).rcode).toBe(4);
  });
});

describe('TSIG through dig -y against gslb-dns', () => {
  let cli: Cli;
  beforeAll(async () => { cli = await startCli(['--zones', FIXTURE_ZONES, '--listen', '127.0.0.1:0']); });
  afterAll(async () => { await cli.stop(); });

  for (const transport of ['+notcp', '+tcp']) {
    it(`reports NOTAUTH and BADKEY (${transport})`, async () => {
      const r = await dig(cli.port, ['+norec', transport, '-y', 'hmac-sha256:somekey:c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0', 'www.example.test', 'A']);
      expect(r.status).toBe('NOTAUTH');
      expect(r.answer).toEqual([]);
      expect(r.raw).toMatch(/TSIG PSEUDOSECTION:\n\s*somekey\.\s+0\s+ANY\s+TSIG\s+hmac-sha256\. \d+ 300 0 \d+ BADKEY 0/);
      expect(r.raw).toContain('tsig indicates error');
    });
  }

  it('answers the same query unsigned', async () => {
    const r = await dig(cli.port, ['+norec', 'www.example.test', 'A']);
    expect(r.answer).toEqual(['www.example.test. 3600 IN A 192.0.2.80']);
  });
});

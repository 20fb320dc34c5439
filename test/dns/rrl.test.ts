import { describe, expect, it } from 'vitest';
import { ERROR_CLASS, ResponseKind, ResponseRateLimiter, RrlAction, createResponseRateLimiter, nameHash, responseClass, responseKind } from '../../dns/server/rrl.js';
import type { RrlOptions } from '../../dns/server/rrl.js';
import { DEFAULT_RRL_OPTIONS } from '../../dns/server/rrl.js';
import { parsePrefix } from '../../shared/ip.js';
import { parseAddress } from '../../shared/ip.js';
import { Engine } from '../../dns/server/engine.js';
import { loadZoneDir } from '../../dns/zone/load.js';
import { FIXTURE_ZONES } from '../helpers/server.js';
import { header, opt, query } from '../helpers/packet.js';
import { ManualClock } from '../helpers/manual-clock.js';

const A = 'www.example.test';
const POS = responseClass(ResponseKind.Positive, 1);

function limiter(o: Partial<RrlOptions> = {}): { rrl: ResponseRateLimiter; clock: ManualClock } {
  const clock = new ManualClock();
  return { rrl: new ResponseRateLimiter({ ...DEFAULT_RRL_OPTIONS, ...o }, clock), clock };
}

/** `n` checks from `addr` of class `cls`, as a string of S(end), T(runcated) and D(rop). */
function run(rrl: ResponseRateLimiter, addr: string, cls: number, n: number): string {
  const a = parseAddress(addr);
  let s = '';
  rrl.tick();
  for (let i = 0; i < n; i++) s += 'STD'[rrl.check(a.family, a.bytes, cls)];
  return s;
}

describe('ResponseRateLimiter (manual clock)', () => {
  it('sends `rate` responses per second (the burst is one second), then slips every `slip`-th', () => {
    const { rrl, clock } = limiter({ rate: 5, slip: 2 });
    expect(run(rrl, '192.0.2.1', POS, 11)).toBe('SSSSSDTDTDT');
    expect(rrl.stats).toEqual({ dropped: 3, slipped: 3 });
    clock.advance(200); // one token back (5 per second)
    expect(run(rrl, '192.0.2.1', POS, 3)).toBe('SDT');
    clock.advance(10_000); // full again, never more than the burst
    expect(run(rrl, '192.0.2.1', POS, 7)).toBe('SSSSSDT');
  });

  it('over the rate a steady flood gets `rate` answers per second', () => {
    const { rrl, clock } = limiter({ rate: 10, slip: 0 });
    run(rrl, '192.0.2.1', POS, 10);
    let sent = 0;
    for (let ms = 0; ms < 5000; ms++) {
      clock.advance(1);
      sent += run(rrl, '192.0.2.1', POS, 10).split('S').length - 1;
    }
    expect(sent).toBeGreaterThanOrEqual(49);
    expect(sent).toBeLessThanOrEqual(50);
  });

  it('slip 0 never slips, slip 1 slips every response over the rate, slip 3 every third', () => {
    expect(run(limiter({ rate: 1, slip: 0 }).rrl, '192.0.2.1', POS, 5)).toBe('SDDDD');
    expect(run(limiter({ rate: 1, slip: 1 }).rrl, '192.0.2.1', POS, 5)).toBe('STTTT');
    expect(run(limiter({ rate: 1, slip: 3 }).rrl, '192.0.2.1', POS, 7)).toBe('SDDTDDT');
  });

  it('counts IPv4 clients per /24 and IPv6 clients per /56 (configurable)', () => {
    const { rrl } = limiter({ rate: 2, slip: 0 });
    expect(run(rrl, '192.0.2.1', POS, 2)).toBe('SS');
    expect(run(rrl, '192.0.2.200', POS, 1)).toBe('D'); // same /24
    expect(run(rrl, '192.0.3.1', POS, 2)).toBe('SS'); // another /24
    expect(run(rrl, '2001:db8:0:ff::1', POS, 2)).toBe('SS');
    expect(run(rrl, '2001:db8:0:ff:ffff::2', POS, 1)).toBe('D'); // same /56
    expect(run(rrl, '2001:db8:0:100::1', POS, 2)).toBe('SS'); // another /56

    const narrow = limiter({ rate: 1, slip: 0, ipv4Prefix: 32, ipv6Prefix: 64 }).rrl;
    expect(run(narrow, '192.0.2.1', POS, 2)).toBe('SD');
    expect(run(narrow, '192.0.2.2', POS, 1)).toBe('S');
    expect(run(narrow, '2001:db8::1', POS, 2)).toBe('SD');
    expect(run(narrow, '2001:db8:0:1::1', POS, 1)).toBe('S');
    // an IPv4 /24 and an IPv6 prefix with the same leading bits are different clients
    const fam = limiter({ rate: 1, slip: 0 }).rrl;
    expect(run(fam, '32.1.13.0', POS, 1)).toBe('S');
    expect(run(fam, '2001:db8::', POS, 1)).toBe('S');
  });

  it('counts each response class apart', () => {
    const { rrl } = limiter({ rate: 1, slip: 0 });
    const classes = [
      responseClass(ResponseKind.Positive, 1), responseClass(ResponseKind.Positive, 2),
      responseClass(ResponseKind.NoData, 1), responseClass(ResponseKind.NxDomain, 1),
      responseClass(ResponseKind.Referral, 1), ERROR_CLASS,
    ];
    for (const c of classes) expect(run(rrl, '192.0.2.1', c, 2)).toBe('SD');
    expect(responseKind(classes[3]!)).toBe(ResponseKind.NxDomain);
    expect(responseKind(ERROR_CLASS)).toBe(ResponseKind.Error);
  });

  it('never limits exempt prefixes', () => {
    const { rrl } = limiter({ rate: 1, slip: 0, exempt: [parsePrefix('198.51.100.0/24'), parsePrefix('2001:db8:1::/48')] });
    expect(run(rrl, '198.51.100.7', POS, 50)).toBe('S'.repeat(50));
    expect(run(rrl, '2001:db8:1:2::3', POS, 50)).toBe('S'.repeat(50));
    expect(run(rrl, '198.51.101.7', POS, 2)).toBe('SD');
    expect(rrl.used()).toBe(1); // exempt sources take no slot
  });

  it('keeps a fixed-size table under a spoofed-source flood, and the flood key stays limited', () => {
    const { rrl } = limiter({ rate: 2, slip: 0, tableSize: 1000 });
    expect(rrl.size).toBe(1024);
    const victim = parseAddress('192.0.2.1');
    run(rrl, '192.0.2.1', POS, 2);
    const b = new Uint8Array(4);
    for (let i = 0; i < 100_000; i++) {
      b[0] = 10; b[1] = (i >> 16) & 0xff; b[2] = (i >> 8) & 0xff; b[3] = i & 0xff;
      rrl.check(4, b, responseClass(ResponseKind.Positive, i));
      // the attacked key keeps being asked (it is the most recent one in its group, never evicted)
      if (i % 100 === 0) expect(rrl.check(4, victim.bytes, POS)).toBe(RrlAction.Drop);
    }
    expect(rrl.used()).toBeLessThanOrEqual(1024);
  });

  it('rate 0 is off', () => {
    expect(createResponseRateLimiter({ ...DEFAULT_RRL_OPTIONS, rate: 0 }, new ManualClock())).toBeUndefined();
    expect(createResponseRateLimiter(DEFAULT_RRL_OPTIONS, new ManualClock())).toBeInstanceOf(ResponseRateLimiter);
  });
});

describe('Engine response classes and the slip reply', () => {
  const classOf = async (name: string, type: number, cacheEntries: number): Promise<number[]> => {
    const engine = new Engine(await loadZoneDir(FIXTURE_ZONES), { udpCap: 1232, cacheEntries });
    const out = new Uint8Array(4096);
    const q = query({ name, type });
    // three times: with the cache on, a name that exists is on the fast path from the second
    // query, a negative reply (admitted on its second query) from the third
    const classes = [0, 1, 2].map(() => { engine.handle(q, 0, q.length, out, 0, out.length, false); return engine.responseClass; });
    if (cacheEntries > 0) expect(engine.stats.fast).toBeGreaterThan(0);
    return classes;
  };

  it.each([0, 1000])('classes answers by question, NXDOMAIN and referrals by zone, errors as one (cache %i)', async (cache) => {
    const www = await classOf(A, 1, cache);
    expect(www.map(responseKind)).toEqual([ResponseKind.Positive, ResponseKind.Positive, ResponseKind.Positive]);
    expect(www[0]).toBe(www[1]);
    expect((await classOf(A, 28, cache))[0]).not.toBe(www[0]);
    const nodata = await classOf(A, 16, cache);
    expect(nodata.map(responseKind)).toEqual([ResponseKind.NoData, ResponseKind.NoData, ResponseKind.NoData]);
    const nx1 = await classOf('nx1.example.test', 1, cache);
    const nx2 = await classOf('random-qwerty.example.test', 28, cache);
    expect(nx1[0]).toBe(responseClass(ResponseKind.NxDomain, nameHash('example.test.')));
    expect(nx2).toEqual(nx1.concat().fill(nx1[0]!));
    expect((await classOf('x.other.invalid', 1, cache))[0]).toBe(ERROR_CLASS);
    // answers synthesized from *.wild count as one class per type, whatever the random label
    const w1 = await classOf('random1.wild.example.test', 1, cache);
    expect(w1.map(responseKind)).toEqual([ResponseKind.Positive, ResponseKind.Positive, ResponseKind.Positive]);
    expect(await classOf('x.random2.wild.example.test', 1, cache)).toEqual(w1);
    expect((await classOf('random3.wild.example.test', 16, cache))[0]).not.toBe(w1[0]);
    expect((await classOf('sub.wild.example.test', 1, cache))[0]).not.toBe(w1[0]);
    const wNodata = await classOf('random4.wild.example.test', 28, cache);
    expect(wNodata.map(responseKind)).toEqual([ResponseKind.NoData, ResponseKind.NoData, ResponseKind.NoData]);
    expect(await classOf('random5.wild.example.test', 28, cache)).toEqual(wNodata);
  });

  it('truncate() leaves the header with TC=1, the question and the OPT', async () => {
    const engine = new Engine(await loadZoneDir(FIXTURE_ZONES), { udpCap: 1232, cacheEntries: 100 });
    const out = new Uint8Array(4096);
    const q = query({ name: 'WwW.example.test', type: 1, id: 77, flags: 0x0100, additional: [opt([], 4096, 0, true)] });
    const n = engine.handle(q, 0, q.length, out, 0, out.length, false);
    expect(header(Buffer.from(out.subarray(0, n))).an).toBe(1);
    const t = Buffer.from(out.subarray(0, engine.truncate(out, 0)));
    expect(header(t)).toMatchObject({ id: 77, qr: true, tc: true, aa: true, rd: true, rcode: 0, qd: 1, an: 0, ns: 0, ar: 1 });
    expect(t.length).toBe(q.length); // the question as sent plus an OPT without options
    expect(t.subarray(12, 12 + 22)).toEqual(q.subarray(12, 12 + 22));
    expect(t.readUInt16BE(t.length - 11 + 1)).toBe(41); // OPT type
    expect(t[t.length - 4]! & 0x80).toBe(0x80); // DO echoed

    const plain = query({ name: 'nx.example.test', type: 1 });
    engine.handle(plain, 0, plain.length, out, 0, out.length, false);
    const t2 = Buffer.from(out.subarray(0, engine.truncate(out, 0)));
    expect(header(t2)).toMatchObject({ tc: true, rcode: 3, qd: 1, an: 0, ns: 0, ar: 0 });
    expect(t2.length).toBe(plain.length);
  });
});

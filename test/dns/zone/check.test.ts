import { describe, it, expect } from 'vitest';
import { typeName } from '../../../dns/wire/types.js';
import { checkZone } from '../../../dns/zone/check.js';
import { parseZoneText } from '../../../dns/zone/parse.js';
import { formatRdata } from '../../../dns/zone/rdata.js';
import { ZoneError, type ZoneRecord } from '../../../dns/zone/record.js';
import { errorOf } from '../../helpers/zone-errors.js';

const FILE = 't.zone';
const ORIGIN = 'example.com.';

/** Lines 1-5; cases append from line 6 on. */
const BASE = `$TTL 300
@ SOA ns1 hostmaster 1 2h 1h 1w 5m
@ NS ns1
@ NS ns.other.example.
ns1 A 192.0.2.1
`;

function check(zone: string, origin = ORIGIN): ZoneRecord[] {
  return checkZone(parseZoneText(zone, { file: FILE, origin }), origin, FILE);
}

function show(records: ZoneRecord[]): string[] {
  return records.map((r) => `${r.line} ${r.owner} ${r.ttl} ${typeName(r.type)} ${formatRdata(r.type, r.rdata)}`);
}

interface ErrorCase {
  name: string;
  zone: string;
  error: string;
}

const errors: ErrorCase[] = [
  { name: 'absolute owner outside the zone', zone: BASE + 'www.example.org. A 192.0.2.9\n', error: 't.zone:6: www.example.org. is out of zone example.com.' },
  { name: 'parent of the apex', zone: BASE + 'com. A 192.0.2.9\n', error: 't.zone:6: com. is out of zone example.com.' },
  { name: 'suffix but not below', zone: BASE + 'badexample.com. A 192.0.2.9\n', error: 't.zone:6: badexample.com. is out of zone example.com.' },
  { name: '$ORIGIN moved out of zone', zone: BASE + '$ORIGIN example.net.\nwww A 192.0.2.9\n', error: 't.zone:7: www.example.net. is out of zone example.com.' },
  { name: 'no SOA', zone: '$TTL 1\n@ NS ns1\nns1 A 192.0.2.1\n', error: 't.zone: no SOA record at the zone apex' },
  { name: 'SOA below the apex', zone: BASE + 'sub SOA ns1 h 1 2 3 4 5\n', error: 't.zone:6: SOA record at sub.example.com. is not at the zone apex example.com.' },
  { name: 'two different SOAs', zone: BASE + '@ SOA ns1 hostmaster 2 2h 1h 1w 5m\n', error: 't.zone:6: multiple SOA records at the zone apex (first at line 2)' },
  { name: 'no apex NS', zone: '$TTL 1\n@ SOA ns1 h 1 2 3 4 5\nns1 A 192.0.2.1\nsub NS ns1\n', error: 't.zone: no NS records at the zone apex' },
  { name: 'A after CNAME', zone: BASE + 'www CNAME ns1\nwww A 192.0.2.9\n', error: 't.zone:7: CNAME and other data at www.example.com.' },
  { name: 'CNAME after TXT', zone: BASE + 'www TXT "x"\n\nwww CNAME ns1\n', error: 't.zone:8: CNAME and other data at www.example.com.' },
  { name: 'CNAME at the apex', zone: BASE + '@ CNAME other.example.\n', error: 't.zone:6: CNAME and other data at example.com.' },
  { name: 'CNAME beside NS (delegation)', zone: BASE + 'sub NS ns.other.example.\nsub CNAME x\n', error: 't.zone:7: CNAME and other data at sub.example.com.' },
  { name: 'two CNAMEs', zone: BASE + 'www CNAME a\nwww CNAME b\n', error: 't.zone:7: multiple CNAME records at www.example.com.' },
  { name: 'two DNAMEs', zone: BASE + 'old DNAME a.example.\nold DNAME b.example.\n', error: 't.zone:7: multiple DNAME records at old.example.com.' },
  { name: 'apex NS target without address', zone: BASE + '@ NS ns2\n', error: 't.zone:6: NS target ns2.example.com. has no address records' },
  { name: 'delegation without glue', zone: BASE + 'sub NS ns.sub\n', error: 't.zone:6: NS target ns.sub.example.com. has no address records' },
  { name: 'NS target with only TXT', zone: BASE + 'sub NS ns.sub\nns.sub TXT "no address"\n', error: 't.zone:6: NS target ns.sub.example.com. has no address records' },
  { name: 'NS target is a CNAME', zone: BASE + '@ NS alias\nalias CNAME ns1\n', error: 't.zone:6: NS target alias.example.com. is a CNAME (it must have A or AAAA records)' },
];

describe('checkZone errors', () => {
  it.each(errors)('$name', ({ zone, error }) => {
    expect(errorOf(() => check(zone))).toBe(error);
  });

  it('reports the file and line fields', () => {
    try {
      check(BASE + 'x CNAME a\nx A 192.0.2.1\n');
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ file: FILE, line: 7, reason: 'CNAME and other data at x.example.com.' });
    }
  });
});

interface OkCase {
  name: string;
  zone: string;
  origin?: string;
}

const ok: OkCase[] = [
  { name: 'the base zone', zone: BASE },
  { name: 'NS target outside the zone needs no glue here', zone: BASE + 'sub NS ns.elsewhere.example.\n' },
  { name: 'delegation with glue', zone: BASE + 'sub NS ns.sub\nns.sub A 192.0.2.7\n' },
  { name: 'glue may be AAAA only', zone: BASE + 'sub NS ns.sub\nns.sub AAAA 2001:db8::7\n' },
  { name: 'glue before the NS', zone: BASE + 'ns.sub A 192.0.2.7\nsub NS ns.sub\n' },
  { name: 'NS target name case does not matter', zone: BASE + '@ NS NS2.Example.Com.\nns2 A 192.0.2.2\n' },
  { name: 'CNAME with DNSSEC records beside it', zone: BASE + 'www CNAME ns1\nwww RRSIG \\# 2 0001\nwww NSEC \\# 2 0001\n' },
  { name: 'CNAME alone at several owners', zone: BASE + 'a CNAME ns1\nb CNAME a\n' },
  { name: 'different TTLs in one RRset are left alone', zone: BASE + 'x 10 A 192.0.2.1\nx 20 A 192.0.2.2\n' },
  { name: 'root zone', zone: '$TTL 1\n. SOA a.root. h.root. 1 2 3 4 5\n. NS a.root.\na.root. A 192.0.2.1\n', origin: '.' },
  { name: 'origin without trailing dot, mixed case', zone: BASE, origin: 'Example.COM' },
];

describe('checkZone accepts', () => {
  it.each(ok)('$name', ({ zone, origin }) => {
    const recs = parseZoneText(zone, { file: FILE, origin: origin ?? ORIGIN });
    expect(checkZone(recs, origin ?? ORIGIN, FILE)).toEqual(recs);
  });
});

describe('checkZone removes duplicate records', () => {
  const cases: Array<{ name: string; extra: string; want: string[] }> = [
    {
      name: 'identical records',
      extra: 'x A 192.0.2.1\nx A 192.0.2.1\nx A 192.0.2.2\n',
      want: ['6 x.example.com. 300 A 192.0.2.1', '8 x.example.com. 300 A 192.0.2.2'],
    },
    {
      name: 'the first TTL wins',
      extra: 'x 10 A 192.0.2.1\nx 20 A 192.0.2.1\n',
      want: ['6 x.example.com. 10 A 192.0.2.1'],
    },
    {
      name: 'names in RDATA compare case-insensitively, the first spelling is kept',
      extra: 'x MX 10 Mail.Example.Net.\nx MX 10 mail.example.net.\nx MX 20 mail.example.net.\n',
      want: ['6 x.example.com. 300 MX 10 Mail.Example.Net.', '8 x.example.com. 300 MX 20 mail.example.net.'],
    },
    {
      name: 'TXT compares byte for byte',
      extra: 'x TXT "A"\nx TXT "a"\nx TXT "A"\n',
      want: ['6 x.example.com. 300 TXT "A"', '7 x.example.com. 300 TXT "a"'],
    },
    {
      name: 'owner case does not matter',
      extra: 'x A 192.0.2.1\nX A 192.0.2.1\n',
      want: ['6 x.example.com. 300 A 192.0.2.1'],
    },
    {
      name: 'same RDATA under a different type is distinct',
      extra: 'x TYPE999 \\# 4 c0000201\nx A 192.0.2.1\n',
      want: ['6 x.example.com. 300 TYPE999 \\# 4 c0000201', '7 x.example.com. 300 A 192.0.2.1'],
    },
  ];
  it.each(cases)('$name', ({ extra, want }) => {
    expect(show(check(BASE + extra)).slice(4)).toEqual(want);
  });

  it('an identical second SOA is a duplicate, not a second SOA', () => {
    expect(check(BASE + '@ SOA ns1 hostmaster 1 2h 1h 1w 5m\n')).toHaveLength(4);
  });

  it('an identical second CNAME is a duplicate, not a second CNAME', () => {
    expect(show(check(BASE + 'w CNAME ns1\nw CNAME NS1\n')).slice(4)).toEqual(['6 w.example.com. 300 CNAME ns1.example.com.']);
  });

  it('large RRsets with duplicates (beyond the linear scan)', () => {
    const lines: string[] = [];
    for (let i = 0; i < 100; i++) lines.push(`big A 10.0.0.${i}`);
    for (let i = 0; i < 100; i += 3) lines.push(`big A 10.0.0.${i}`);
    lines.push('big A 10.0.1.1');
    const out = check(BASE + lines.join('\n') + '\n');
    expect(out).toHaveLength(4 + 101);
    expect(show(out).at(-1)).toBe(`${6 + 100 + 34} big.example.com. 300 A 10.0.1.1`);
  });

  it('returns a new array and leaves the input alone', () => {
    const recs = parseZoneText(BASE + 'x A 192.0.2.1\nx A 192.0.2.1\n', { file: FILE, origin: ORIGIN });
    const out = checkZone(recs, ORIGIN, FILE);
    expect(out).not.toBe(recs);
    expect(recs).toHaveLength(6);
    expect(out).toHaveLength(5);
  });
});

describe('check speed', () => {
  it('checks a 100k-record zone', () => {
    const lines = [BASE];
    for (let i = 0; i < 100_000; i++) lines.push(`host${i} A 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    const recs = parseZoneText(lines.join('\n'), { file: FILE, origin: ORIGIN });
    const t0 = performance.now();
    const out = checkZone(recs, ORIGIN, FILE);
    console.log(`checked ${recs.length} records in ${(performance.now() - t0).toFixed(0)} ms`);
    expect(out).toHaveLength(recs.length);
  });
});

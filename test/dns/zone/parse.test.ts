import { describe, it, expect } from 'vitest';
import { typeName } from '../../../dns/wire/types.js';
import { parseZoneText, type ParseZoneOptions } from '../../../dns/zone/parse.js';
import { formatRdata } from '../../../dns/zone/rdata.js';
import { ZoneError, type ZoneRecord } from '../../../dns/zone/record.js';
import { errorOf } from '../../helpers/zone-errors.js';

const OPTS: ParseZoneOptions = { file: 't.zone', origin: 'example.com' };

/** One record per line as `line owner ttl TYPE rdata`, which keeps expectations readable. */
function show(records: ZoneRecord[]): string[] {
  return records.map((r) => `${r.line} ${r.owner} ${r.ttl} ${typeName(r.type)} ${formatRdata(r.type, r.rdata)}`);
}

function parse(text: string, opts: Partial<ParseZoneOptions> = {}): string[] {
  return show(parseZoneText(text, { ...OPTS, ...opts }));
}

interface Case {
  name: string;
  zone: string;
  opts?: Partial<ParseZoneOptions>;
  want: string[];
}

const cases: Case[] = [
  {
    name: 'a typical zone',
    zone: `$TTL 1h
@ IN SOA ns1 hostmaster ( 2024010101 ; serial
        2h    ; refresh
        1h 1w
        5m )  ; minimum
  IN NS ns1
  IN NS ns.other.example.
ns1 A 192.0.2.1
www 300 IN A 192.0.2.2
www IN 600 AAAA 2001:db8::2
mail.example.com. A 192.0.2.3
@ MX 10 mail
`,
    want: [
      '2 example.com. 3600 SOA ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 604800 300',
      '6 example.com. 3600 NS ns1.example.com.',
      '7 example.com. 3600 NS ns.other.example.',
      '8 ns1.example.com. 3600 A 192.0.2.1',
      '9 www.example.com. 300 A 192.0.2.2',
      '10 www.example.com. 600 AAAA 2001:db8::2',
      '11 mail.example.com. 3600 A 192.0.2.3',
      '12 example.com. 3600 MX 10 mail.example.com.',
    ],
  },
  {
    name: 'class and TTL in either order, both optional',
    zone: '$TTL 60\na 300 IN A 192.0.2.1\nb IN 300 A 192.0.2.2\nc A 192.0.2.3\nd 5 A 192.0.2.4\ne in A 192.0.2.5\nf CLASS1 A 192.0.2.6\n',
    want: [
      '2 a.example.com. 300 A 192.0.2.1',
      '3 b.example.com. 300 A 192.0.2.2',
      '4 c.example.com. 60 A 192.0.2.3',
      '5 d.example.com. 5 A 192.0.2.4',
      '6 e.example.com. 60 A 192.0.2.5',
      '7 f.example.com. 60 A 192.0.2.6',
    ],
  },
  {
    name: 'owner and type names are case-insensitive, RDATA names keep their case',
    zone: 'WWW.Example.COM. 1 in a 192.0.2.1\nMixed 1 Cname Target.Example.NET.\nx 1 Mx 1 Mail\n',
    want: [
      '1 www.example.com. 1 A 192.0.2.1',
      '2 mixed.example.com. 1 CNAME Target.Example.NET.',
      '3 x.example.com. 1 MX 1 Mail.example.com.',
    ],
  },
  {
    name: 'blank owner repeats the previous owner (space or tab)',
    zone: 'a 1 A 192.0.2.1\n  1 AAAA ::1\n\t1 TXT "t"\nb 1 A 192.0.2.2\n 1 A 192.0.2.3\n',
    want: [
      '1 a.example.com. 1 A 192.0.2.1',
      '2 a.example.com. 1 AAAA ::1',
      '3 a.example.com. 1 TXT "t"',
      '4 b.example.com. 1 A 192.0.2.2',
      '5 b.example.com. 1 A 192.0.2.3',
    ],
  },
  {
    name: '$ORIGIN absolute and relative, @ follows it, the previous owner survives it',
    zone: `$TTL 10
$ORIGIN sub
@ A 192.0.2.1
host A 192.0.2.2
$ORIGIN deeper.sub.example.com.
x CNAME host
$ORIGIN Other.Example.
    A 192.0.2.3
@ NS ns
`,
    want: [
      '3 sub.example.com. 10 A 192.0.2.1',
      '4 host.sub.example.com. 10 A 192.0.2.2',
      '6 x.deeper.sub.example.com. 10 CNAME host.deeper.sub.example.com.',
      '8 x.deeper.sub.example.com. 10 A 192.0.2.3',
      '9 other.example. 10 NS ns.Other.Example.',
    ],
  },
  {
    name: 'TTL without $TTL: the last explicit TTL (RFC 1035)',
    zone: 'a 100 A 192.0.2.1\nb A 192.0.2.2\nc 200 A 192.0.2.3\nd A 192.0.2.4\n',
    want: [
      '1 a.example.com. 100 A 192.0.2.1',
      '2 b.example.com. 100 A 192.0.2.2',
      '3 c.example.com. 200 A 192.0.2.3',
      '4 d.example.com. 200 A 192.0.2.4',
    ],
  },
  {
    name: '$TTL wins over earlier explicit TTLs and takes BIND units',
    zone: 'a 100 A 192.0.2.1\n$TTL 1d2h\nb A 192.0.2.2\nc 5 A 192.0.2.3\nd A 192.0.2.4\n$TTL 1W\ne A 192.0.2.5\n',
    want: [
      '1 a.example.com. 100 A 192.0.2.1',
      '3 b.example.com. 93600 A 192.0.2.2',
      '4 c.example.com. 5 A 192.0.2.3',
      '5 d.example.com. 93600 A 192.0.2.4',
      '7 e.example.com. 604800 A 192.0.2.5',
    ],
  },
  {
    name: 'no TTL anywhere: the SOA MINIMUM becomes the default (BIND)',
    zone: '@ SOA ns h 1 2 3 4 1800\n@ NS ns\nns 60 A 192.0.2.1\nx A 192.0.2.2\n',
    want: [
      '1 example.com. 1800 SOA ns.example.com. h.example.com. 1 2 3 4 1800',
      '2 example.com. 1800 NS ns.example.com.',
      '3 ns.example.com. 60 A 192.0.2.1',
      '4 x.example.com. 1800 A 192.0.2.2',
    ],
  },
  {
    name: 'defaultTtl option acts as an initial $TTL',
    zone: 'a A 192.0.2.1\n$TTL 7\nb A 192.0.2.2\n',
    opts: { defaultTtl: 42 },
    want: ['1 a.example.com. 42 A 192.0.2.1', '3 b.example.com. 7 A 192.0.2.2'],
  },
  {
    name: 'comments, blank lines, CRLF, no final newline',
    zone: '; header\r\n\r\n   \r\n$TTL 5 ; five\r\na A 192.0.2.1;tight comment\r\n; x A 192.0.2.9\r\nb A 192.0.2.2',
    want: ['5 a.example.com. 5 A 192.0.2.1', '7 b.example.com. 5 A 192.0.2.2'],
  },
  {
    name: 'semicolons and parentheses inside quotes are text',
    zone: 'a 1 TXT "v=spf1 ; not a comment" "(paren" ; real comment\nb 1 TXT ( "one"\n  "two" ) ; end\n',
    want: [
      '1 a.example.com. 1 TXT "v=spf1 ; not a comment" "(paren"',
      '2 b.example.com. 1 TXT "one" "two"',
    ],
  },
  {
    name: 'escaped quotes and backslashes in quoted strings',
    zone: 'a 1 TXT "say \\"hi\\" \\\\ \\059"\n',
    want: ['1 a.example.com. 1 TXT "say \\"hi\\" \\\\ ;"'],
  },
  {
    name: 'escapes in owner names are canonicalised',
    zone: 'a\\.b 1 A 192.0.2.1\n\\065bc 1 A 192.0.2.2\nsp\\ ace 1 A 192.0.2.3\n\\$x 1 A 192.0.2.4\n',
    want: [
      '1 a\\.b.example.com. 1 A 192.0.2.1',
      '2 abc.example.com. 1 A 192.0.2.2',
      '3 sp\\032ace.example.com. 1 A 192.0.2.3',
      '4 \\$x.example.com. 1 A 192.0.2.4',
    ],
  },
  {
    name: 'wildcards, underscores and the root origin',
    zone: '* 1 A 192.0.2.1\n_sip._udp 1 SRV 0 0 5060 sip\n',
    opts: { origin: '.' },
    want: ['1 *. 1 A 192.0.2.1', '2 _sip._udp. 1 SRV 0 0 5060 sip.'],
  },
  {
    name: 'origin option with a trailing dot and mixed case',
    zone: '@ 1 NS ns\nwww 1 A 192.0.2.1\n',
    opts: { origin: 'Example.ORG.' },
    want: ['1 example.org. 1 NS ns.Example.ORG.', '2 www.example.org. 1 A 192.0.2.1'],
  },
  {
    name: 'parentheses on their own lines; the record keeps its first line',
    zone: '$TTL 1\n@ SOA (\n  ns\n  h\n  1 2 3 4 5\n)\nnext A 192.0.2.1\n',
    want: [
      '2 example.com. 1 SOA ns.example.com. h.example.com. 1 2 3 4 5',
      '7 next.example.com. 1 A 192.0.2.1',
    ],
  },
  {
    name: 'RFC 3597 generic RDATA and TYPEnnn mnemonics',
    zone: 'a 1 TYPE1 192.0.2.1\nb 1 A \\# 4 C0000202\nc 1 TYPE65 \\# 3 ( 01\n 0203 )\nd 1 type4000 \\# 0\n',
    want: [
      '1 a.example.com. 1 A 192.0.2.1',
      '2 b.example.com. 1 A 192.0.2.2',
      '3 c.example.com. 1 HTTPS \\# 3 010203',
      '5 d.example.com. 1 TYPE4000 \\# 0',
    ],
  },
  {
    name: 'every supported type',
    zone: `$TTL 1
a A 192.0.2.1
a AAAA ::ffff:192.0.2.1
a NS ns
a CNAME c
a PTR p.example.
a DNAME d
a MX 5 mx
a TXT "t1" t2
a SPF "v=spf1 -all"
a SRV 1 2 3 srv
a CAA 0 issue "ca.example"
a SOA ns h 1 1h 1m 1d 1w
a HINFO "cpu" "os"
`,
    want: [
      '2 a.example.com. 1 A 192.0.2.1',
      '3 a.example.com. 1 AAAA ::ffff:192.0.2.1',
      '4 a.example.com. 1 NS ns.example.com.',
      '5 a.example.com. 1 CNAME c.example.com.',
      '6 a.example.com. 1 PTR p.example.',
      '7 a.example.com. 1 DNAME d.example.com.',
      '8 a.example.com. 1 MX 5 mx.example.com.',
      '9 a.example.com. 1 TXT "t1" "t2"',
      '10 a.example.com. 1 SPF "v=spf1 -all"',
      '11 a.example.com. 1 SRV 1 2 3 srv.example.com.',
      '12 a.example.com. 1 CAA 0 issue "ca.example"',
      '13 a.example.com. 1 SOA ns.example.com. h.example.com. 1 3600 60 86400 604800',
      '14 a.example.com. 1 HINFO "cpu" "os"',
    ],
  },
  { name: 'empty text', zone: '', want: [] },
  { name: 'only comments', zone: '; nothing\n   ; here\n', want: [] },
];

describe('parseZoneText', () => {
  it.each(cases)('$name', ({ zone, opts, want }) => {
    expect(parse(zone, opts)).toEqual(want);
  });

  it('records carry the file and a canonical owner', () => {
    const [r] = parseZoneText('WWW 1 A 192.0.2.1', { file: 'zones/x.zone', origin: 'Example.COM.' });
    expect(r).toMatchObject({ owner: 'www.example.com.', type: 1, ttl: 1, file: 'zones/x.zone', line: 1 });
  });

  it('round-trips every record through formatRdata', () => {
    const zone = cases.map((c) => c.zone).filter((z) => !z.includes('$')).join('\n');
    const first = parseZoneText(zone, OPTS);
    const again = parseZoneText(
      first.map((r) => `${r.owner} ${r.ttl} IN ${typeName(r.type)} ${formatRdata(r.type, r.rdata)}`).join('\n'), OPTS);
    expect(again.map((r) => [r.owner, r.type, r.ttl, Buffer.from(r.rdata).toString('hex')]))
      .toEqual(first.map((r) => [r.owner, r.type, r.ttl, Buffer.from(r.rdata).toString('hex')]));
  });
});

interface ErrorCase {
  name: string;
  zone: string;
  /** full message: file:line: reason */
  error: string;
}

const label63 = 'x'.repeat(63);
const longName = Array.from({ length: 4 }, () => label63).join('.'); // 4*64 + origin > 255

const errors: ErrorCase[] = [
  { name: '$INCLUDE', zone: '$TTL 1\n\n$INCLUDE other.zone\n', error: 't.zone:3: $INCLUDE is not supported' },
  { name: '$GENERATE', zone: '$TTL 1\n$GENERATE 1-10 host$ A 10.0.0.$\n', error: 't.zone:2: $GENERATE is not supported' },
  { name: 'unknown directive', zone: '$FOO bar\n', error: 't.zone:1: unknown directive "$FOO" (expected $ORIGIN or $TTL)' },
  { name: '$ORIGIN without a name', zone: '$ORIGIN\n', error: 't.zone:1: $ORIGIN needs a domain name' },
  { name: '$ORIGIN with extra', zone: '$ORIGIN a. b.\n', error: 't.zone:1: unexpected "b." after $ORIGIN name' },
  { name: '$ORIGIN bad name', zone: '$ORIGIN a..b.\n', error: 't.zone:1: bad $ORIGIN "a..b.": empty label in "a..b."' },
  { name: '$TTL without a value', zone: '\n$TTL\n', error: 't.zone:2: $TTL needs a TTL (seconds or units like 1h)' },
  { name: '$TTL bad value', zone: '$TTL 1x\n', error: 't.zone:1: bad TTL "1x" (expected seconds or units like 1h30m)' },
  { name: '$TTL with extra', zone: '$TTL 1 2\n', error: 't.zone:1: unexpected "2" after $TTL value' },
  { name: 'unknown type', zone: '$TTL 1\nwww AAA ::1\n', error: 't.zone:2: unknown type "AAA"' },
  { name: 'quoted type', zone: 'www 1 "A" 192.0.2.1\n', error: 't.zone:1: unknown type "A"' },
  { name: 'bad IPv4', zone: '$TTL 1\n\nwww A 1.2.3\n', error: 't.zone:3: bad IPv4 address "1.2.3"' },
  { name: 'bad IPv6', zone: 'www 1 AAAA 1.2.3.4\n', error: 't.zone:1: bad IPv6 address "1.2.3.4"' },
  { name: 'stray closing parenthesis', zone: '$TTL 1\na A 192.0.2.1 )\n', error: 't.zone:2: unbalanced parenthesis (")" without "(")' },
  {
    name: 'unclosed parenthesis reports the line the record starts on',
    zone: '$TTL 1\n@ SOA ns h (\n 1 2 3\n 4 5\nwww A 192.0.2.1\n',
    error: 't.zone:2: unbalanced parenthesis ("(" never closed)',
  },
  {
    name: 'error inside a multi-line record reports its first line',
    zone: '$TTL 1\n@ SOA ns h (\n 1\n 2 3 4\n 5x )\n',
    error: 't.zone:2: bad SOA minimum "5x" (expected seconds or units like 1h30m)',
  },
  { name: 'unterminated quoted string at EOF', zone: '$TTL 1\na TXT "abc', error: 't.zone:2: unterminated quoted string' },
  { name: 'quoted string across a newline', zone: 'a 1 TXT "abc\ndef"\n', error: 't.zone:1: unterminated quoted string' },
  {
    name: 'quoted string across a newline inside parentheses',
    zone: 'a 1 TXT ( "abc\ndef" )\n',
    error: 't.zone:1: unterminated quoted string',
  },
  { name: 'class CH', zone: 'a 1 CH A 192.0.2.1\n', error: 't.zone:1: class CH is not supported (only IN)' },
  { name: 'class HS after TTL', zone: 'a HS 1 A 192.0.2.1\n', error: 't.zone:1: class HS is not supported (only IN)' },
  { name: 'class CHAOS', zone: 'a chaos TXT "x"\n', error: 't.zone:1: class CHAOS is not supported (only IN)' },
  { name: 'CLASS3', zone: 'a 1 CLASS3 A 192.0.2.1\n', error: 't.zone:1: class CLASS3 is not supported (only IN)' },
  { name: 'two classes', zone: 'a 1 IN IN A 192.0.2.1\n', error: 't.zone:1: unknown type "IN"' },
  { name: 'two TTLs', zone: 'a 1 2 A 192.0.2.1\n', error: 't.zone:1: unknown type "2"' },
  { name: 'meta type ANY', zone: 'a 1 IN ANY \\# 0\n', error: 't.zone:1: meta type ANY is not allowed in a zone' },
  { name: 'meta type AXFR', zone: 'a 1 AXFR \\# 0\n', error: 't.zone:1: meta type AXFR is not allowed in a zone' },
  { name: 'meta type OPT', zone: 'a 1 OPT \\# 0\n', error: 't.zone:1: meta type OPT is not allowed in a zone' },
  { name: 'meta type by number', zone: 'a 1 TYPE250 \\# 0\n', error: 't.zone:1: meta type TYPE250 is not allowed in a zone' },
  { name: 'type 0', zone: 'a 1 TYPE0 \\# 0\n', error: 't.zone:1: type 0 is reserved' },
  { name: 'missing type', zone: 'a 1 IN\n', error: 't.zone:1: missing type (expected [TTL] [IN] TYPE RDATA after the owner)' },
  { name: 'owner alone', zone: '$TTL 1\nlonely\n', error: 't.zone:2: missing type (expected [TTL] [IN] TYPE RDATA after the owner)' },
  { name: 'missing RDATA', zone: 'a 1 MX\n', error: 't.zone:1: missing preference in MX RDATA' },
  { name: 'no TTL', zone: 'a A 192.0.2.1\n', error: 't.zone:1: no TTL specified (add $TTL or a TTL on this record)' },
  { name: 'TTL out of range', zone: 'a 2147483648 A 192.0.2.1\n', error: 't.zone:1: TTL "2147483648" out of range (max 2147483647)' },
  { name: 'bad TTL field', zone: 'a 1q A 192.0.2.1\n', error: 't.zone:1: bad TTL "1q" (expected seconds or units like 1h30m)' },
  {
    name: 'first record without an owner',
    zone: '$TTL 1\n  A 192.0.2.1\n',
    error: 't.zone:2: no owner name: the first record starts with whitespace',
  },
  { name: 'quoted owner', zone: '"www" 1 A 192.0.2.1\n', error: 't.zone:1: expected an owner name, got a quoted string' },
  { name: 'empty label in owner', zone: 'a..b 1 A 192.0.2.1\n', error: 't.zone:1: bad owner name "a..b": empty label in "a..b.example.com."' },
  {
    name: 'label longer than 63',
    zone: `${label63}x 1 A 192.0.2.1\n`,
    error: `t.zone:1: bad owner name "${label63}x": label longer than 63 octets in "${label63}x.example.com."`,
  },
  {
    name: 'owner longer than 255 octets',
    zone: `$TTL 1\n${longName} A 192.0.2.1\n`,
    error: `t.zone:2: bad owner name "${longName}": name longer than 255 octets: "${longName}.example.com."`,
  },
  {
    name: 'RDATA name longer than 255 octets',
    zone: `a 1 CNAME ${longName}\n`,
    error: `t.zone:1: bad CNAME target "${longName}": name longer than 255 octets: "${longName}.example.com."`,
  },
  { name: 'dangling backslash in owner', zone: 'a\\\n 1 A 192.0.2.1\n', error: 't.zone:1: bad owner name "a\\": dangling backslash in "a\\"' },
  { name: 'dangling backslash in RDATA name', zone: 'a 1 NS b\\\\\\\n', error: 't.zone:1: bad NS target "b\\\\\\": dangling backslash in "b\\\\\\"' },
  { name: 'errors after good records keep counting lines', zone: '$TTL 1\na A 192.0.2.1\nb TXT ( "x"\n "y" )\n\nc A 300.0.0.1\n', error: 't.zone:6: bad IPv4 address "300.0.0.1"' },
];

describe('parseZoneText errors', () => {
  it.each(errors)('$name', ({ zone, error }) => {
    expect(errorOf(() => parseZoneText(zone, OPTS))).toBe(error);
  });

  it('exposes file, line and reason on the ZoneError', () => {
    try {
      parseZoneText('$TTL 1\nx A 1.2.3\n', { file: 'zones/a.zone', origin: 'a.' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ZoneError);
      expect(e).toMatchObject({ file: 'zones/a.zone', line: 2, reason: 'bad IPv4 address "1.2.3"' });
    }
  });

  it('rejects a bad origin option as a file-level error', () => {
    expect(errorOf(() => parseZoneText('', { file: 'f', origin: 'a..b' }))).toBe('f: bad origin "a..b": empty label in "a..b."');
  });
});

describe('parse speed', () => {
  it('parses a 100k-record zone', () => {
    const lines = ['$TTL 300', '@ IN SOA ns1 hostmaster 1 2h 1h 1w 5m', '@ IN NS ns1', 'ns1 IN A 10.255.255.1'];
    for (let i = 0; i < 100_000; i++) {
      if (i % 20 === 1) lines.push(`host${i} IN AAAA 2001:db8::${(i & 0xffff).toString(16)}`);
      else if (i % 20 === 2) lines.push(`host${i} IN TXT "v=spf1 -all" "id=${i}"`);
      else if (i % 20 === 3) lines.push(`host${i} 600 IN MX 10 mail${i}`);
      else lines.push(`host${i} IN A 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    }
    const text = lines.join('\n');
    const t0 = performance.now();
    const records = parseZoneText(text, OPTS);
    const ms = performance.now() - t0;
    console.log(`parsed ${records.length} records (${(text.length / 1e6).toFixed(1)} MB) in ${ms.toFixed(0)} ms`);
    expect(records).toHaveLength(100_003);
    expect(show([records[records.length - 1]!])).toEqual(['100004 host99999.example.com. 300 A 10.1.134.159']);
  });
});

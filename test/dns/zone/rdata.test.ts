import { describe, it, expect } from 'vitest';
import { RRType, typeNumber } from '../../../dns/wire/types.js';
import {
  canonicalRdata, formatRdata, hasTextForm, parseRdata, parseTtl, RdataError, resolveName,
  type RdataToken,
} from '../../../dns/zone/rdata.js';
import { parseZoneText } from '../../../dns/zone/parse.js';

const ORIGIN = 'example.com.';

/** RDATA of one record written as zone-file text after `@ 300 IN`. */
function rd(type: string, text: string): Uint8Array {
  const recs = parseZoneText(`@ 300 IN ${type} ${text}\n`, { file: 't.zone', origin: ORIGIN });
  expect(recs).toHaveLength(1);
  return recs[0]!.rdata;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  return '(no error)';
}

/** wire form of a name, for readable expectations */
function w(name: string): string {
  if (name === '.') return '00';
  return name.split('.').filter((l) => l !== '').map((l) =>
    l.length.toString(16).padStart(2, '0') + Buffer.from(l, 'latin1').toString('hex')).join('') + '00';
}

const u16 = (n: number): string => n.toString(16).padStart(4, '0');
const u32 = (n: number): string => n.toString(16).padStart(8, '0');
const str = (s: string): string => (Buffer.byteLength(s).toString(16).padStart(2, '0')) + Buffer.from(s).toString('hex');

interface ValidCase {
  type: string;
  text: string;
  hex: string;
  /** formatRdata output when it differs from `text` */
  shown?: string;
}

const valid: ValidCase[] = [
  { type: 'A', text: '192.0.2.1', hex: 'c0000201' },
  { type: 'A', text: '0.0.0.0', hex: '00000000' },
  { type: 'A', text: '255.255.255.255', hex: 'ffffffff' },
  { type: 'AAAA', text: '2001:db8::1', hex: '20010db8000000000000000000000001' },
  { type: 'AAAA', text: '::', hex: '0'.repeat(32) },
  { type: 'AAAA', text: '::1', hex: '0'.repeat(31) + '1' },
  { type: 'AAAA', text: '1:2:3:4:5:6:7:8', hex: '00010002000300040005000600070008' },
  { type: 'AAAA', text: '2001:DB8:0:0:1:0:0:1', hex: '20010db8000000000001000000000001', shown: '2001:db8::1:0:0:1' },
  { type: 'AAAA', text: '2001:0:0:1:0:0:0:1', hex: '20010000000000010000000000000001', shown: '2001:0:0:1::1' },
  { type: 'AAAA', text: '1:0:2:3:4:5:6:7', hex: '00010000000200030004000500060007' },
  { type: 'AAAA', text: '::ffff:192.0.2.1', hex: '00000000000000000000ffffc0000201' },
  { type: 'AAAA', text: '64:ff9b::192.0.2.33', hex: '0064ff9b0000000000000000c0000221', shown: '64:ff9b::c000:221' },
  { type: 'AAAA', text: '1:2:3:4:5:6:1.2.3.4', hex: '00010002000300040005000601020304', shown: '1:2:3:4:5:6:102:304' },
  { type: 'NS', text: 'ns1', hex: w('ns1.example.com.'), shown: 'ns1.example.com.' },
  { type: 'NS', text: 'NS1.Example.NET.', hex: w('NS1.Example.NET.') },
  { type: 'CNAME', text: '@', hex: w('example.com.'), shown: 'example.com.' },
  { type: 'CNAME', text: 'a\\.b', hex: '03612e62' + w('example.com.').slice(0), shown: 'a\\.b.example.com.' },
  { type: 'PTR', text: 'host.example.org.', hex: w('host.example.org.') },
  { type: 'DNAME', text: 'other.example.', hex: w('other.example.') },
  { type: 'DNAME', text: '.', hex: '00' },
  { type: 'MX', text: '10 mail', hex: u16(10) + w('mail.example.com.'), shown: '10 mail.example.com.' },
  { type: 'MX', text: '0 .', hex: '000000' },
  { type: 'MX', text: '65535 mx.example.net.', hex: 'ffff' + w('mx.example.net.') },
  { type: 'TXT', text: '"hello world"', hex: str('hello world') },
  { type: 'TXT', text: 'a b "c d"', hex: str('a') + str('b') + str('c d'), shown: '"a" "b" "c d"' },
  { type: 'TXT', text: '"say \\"hi\\""', hex: str('say "hi"') },
  { type: 'TXT', text: '"a\\\\b"', hex: str('a\\b') },
  { type: 'TXT', text: '"\\065\\066\\067"', hex: str('ABC'), shown: '"ABC"' },
  { type: 'TXT', text: '"\\000\\255"', hex: '0200ff' },
  { type: 'TXT', text: '""', hex: '00' },
  { type: 'TXT', text: '"x;y (z)"', hex: str('x;y (z)') },
  { type: 'TXT', text: 'unquoted\\ space', hex: str('unquoted space'), shown: '"unquoted space"' },
  { type: 'TXT', text: '"a""b"', hex: str('a') + str('b'), shown: '"a" "b"' },
  { type: 'TXT', text: '"\\x"', hex: str('x'), shown: '"x"' },
  { type: 'TXT', text: `"${'x'.repeat(255)}"`, hex: 'ff' + '78'.repeat(255) },
  { type: 'TXT', text: '"é"', hex: '02c3a9', shown: '"\\195\\169"' },
  { type: 'SPF', text: '"v=spf1 -all"', hex: str('v=spf1 -all') },
  { type: 'SRV', text: '10 60 5060 sip', hex: u16(10) + u16(60) + u16(5060) + w('sip.example.com.'), shown: '10 60 5060 sip.example.com.' },
  { type: 'SRV', text: '0 0 0 .', hex: '00000000000000' },
  { type: 'CAA', text: '0 issue "ca.example.net"', hex: '0005' + Buffer.from('issueca.example.net').toString('hex') },
  { type: 'CAA', text: '128 iodef "mailto:security@example.com"', hex: '8005' + Buffer.from('iodefmailto:security@example.com').toString('hex') },
  { type: 'CAA', text: '0 issue ca.example.net', hex: '0005' + Buffer.from('issueca.example.net').toString('hex'), shown: '0 issue "ca.example.net"' },
  { type: 'CAA', text: '0 issue ""', hex: '0005' + Buffer.from('issue').toString('hex') },
  { type: 'CAA', text: '0 tbs "a\\"b"', hex: '0003' + Buffer.from('tbsa"b').toString('hex') },
  {
    type: 'SOA', text: 'ns1 hostmaster 2024010101 1h 15m 1w 1d',
    hex: w('ns1.example.com.') + w('hostmaster.example.com.') + u32(2024010101) + u32(3600) + u32(900) + u32(604800) + u32(86400),
    shown: 'ns1.example.com. hostmaster.example.com. 2024010101 3600 900 604800 86400',
  },
  {
    type: 'SOA', text: 'ns1.example.net. h.example.net. 4294967295 4294967295 0 1W2D 30S',
    hex: w('ns1.example.net.') + w('h.example.net.') + 'ffffffff' + 'ffffffff' + u32(0) + u32(9 * 86400) + u32(30),
    shown: 'ns1.example.net. h.example.net. 4294967295 4294967295 0 777600 30',
  },
  { type: 'HINFO', text: '"PC" "Linux"', hex: str('PC') + str('Linux') },
  { type: 'HINFO', text: 'PC Linux', hex: str('PC') + str('Linux'), shown: '"PC" "Linux"' },
  // RFC 3597 generic form, for known and unknown types
  { type: 'A', text: '\\# 4 c0000201', hex: 'c0000201', shown: '192.0.2.1' },
  { type: 'A', text: '\\# 4 C0 00 02 01', hex: 'c0000201', shown: '192.0.2.1' },
  { type: 'MX', text: '\\# 3 000a 00', hex: '000a00', shown: '10 .' },
  { type: 'TYPE1', text: '192.0.2.9', hex: 'c0000209' },
  { type: 'TYPE65', text: '\\# 3 010203', hex: '010203' },
  { type: 'TYPE1234', text: '\\# 0', hex: '' },
  { type: 'NAPTR', text: '\\# 2 ab cd', hex: 'abcd', shown: '\\# 2 abcd' },
  { type: 'type999', text: '\\# 1 (\n ff )', hex: 'ff', shown: '\\# 1 ff' },
];

describe('rdata: presentation -> wire -> presentation', () => {
  it.each(valid)('$type $text', ({ type, text, hex: want, shown }) => {
    const t = typeNumber(type)!;
    const got = rd(type, text);
    expect(hex(got)).toBe(want);
    const formatted = formatRdata(t, got);
    expect(formatted).toBe(shown ?? text);
    // round trip: the formatted text parses back to the same bytes
    expect(hex(rd(type, formatted))).toBe(want);
  });
});

interface BadCase {
  type: string;
  text: string;
  reason: string;
}

const long64 = 'x'.repeat(64);
const bad: BadCase[] = [
  { type: 'A', text: '1.2.3', reason: 'bad IPv4 address "1.2.3"' },
  { type: 'A', text: '1.2.3.256', reason: 'bad IPv4 address "1.2.3.256"' },
  { type: 'A', text: '1.2.3.4.5', reason: 'bad IPv4 address "1.2.3.4.5"' },
  { type: 'A', text: '01.2.3.4', reason: 'bad IPv4 address "01.2.3.4"' },
  { type: 'A', text: '1..3.4', reason: 'bad IPv4 address "1..3.4"' },
  { type: 'A', text: '1.2.3.4.', reason: 'bad IPv4 address "1.2.3.4."' },
  { type: 'A', text: 'a.b.c.d', reason: 'bad IPv4 address "a.b.c.d"' },
  { type: 'A', text: '"1.2.3.4"', reason: 'bad IPv4 address "1.2.3.4"' },
  { type: 'A', text: '', reason: 'missing IPv4 address in A RDATA' },
  { type: 'A', text: '1.2.3.4 5', reason: 'unexpected "5" after A RDATA' },
  { type: 'AAAA', text: '2001:db8::g', reason: 'bad IPv6 address "2001:db8::g"' },
  { type: 'AAAA', text: '1:2:3:4:5:6:7:8:9', reason: 'bad IPv6 address "1:2:3:4:5:6:7:8:9"' },
  { type: 'AAAA', text: '1::2::3', reason: 'bad IPv6 address "1::2::3"' },
  { type: 'AAAA', text: 'fe80::1%eth0', reason: 'bad IPv6 address "fe80::1%eth0"' },
  { type: 'AAAA', text: '::1.2.3', reason: 'bad IPv6 address "::1.2.3"' },
  { type: 'AAAA', text: '192.0.2.1', reason: 'bad IPv6 address "192.0.2.1"' },
  { type: 'NS', text: 'a..b', reason: 'bad NS target "a..b": empty label in "a..b.example.com."' },
  { type: 'NS', text: `${long64}.`, reason: `bad NS target "${long64}.": label longer than 63 octets in "${long64}."` },
  { type: 'CNAME', text: '"quoted.name."', reason: 'expected a domain name for CNAME target, got a quoted string' },
  { type: 'PTR', text: 'a b', reason: 'unexpected "b" after PTR RDATA' },
  { type: 'MX', text: '70000 mail', reason: 'bad MX preference "70000" (expected an integer 0-65535)' },
  { type: 'MX', text: '-1 mail', reason: 'bad MX preference "-1" (expected an integer 0-65535)' },
  { type: 'MX', text: 'mail 10', reason: 'bad MX preference "mail" (expected an integer 0-65535)' },
  { type: 'MX', text: '10', reason: 'missing exchange name in MX RDATA' },
  { type: 'SRV', text: '1 2 65536 x', reason: 'bad SRV port "65536" (expected an integer 0-65535)' },
  { type: 'SRV', text: '1 2 3', reason: 'missing target name in SRV RDATA' },
  { type: 'CAA', text: '256 issue "x"', reason: 'bad CAA flags "256" (expected an integer 0-255)' },
  { type: 'CAA', text: '0 is-sue "x"', reason: 'bad CAA tag "is-sue" (expected 1-15 letters and digits)' },
  { type: 'CAA', text: '0 abcdefghijklmnop "x"', reason: 'bad CAA tag "abcdefghijklmnop" (expected 1-15 letters and digits)' },
  { type: 'CAA', text: '0 issue', reason: 'missing value in CAA RDATA' },
  { type: 'CAA', text: '0 issue "a" "b"', reason: 'unexpected "b" after CAA RDATA' },
  { type: 'TXT', text: '', reason: 'missing text in TXT RDATA' },
  { type: 'TXT', text: `"${'x'.repeat(256)}"`, reason: 'TXT string longer than 255 bytes (split it into several quoted strings)' },
  { type: 'TXT', text: '"\\256"', reason: 'bad escape in "\\256" (\\DDD above 255)' },
  { type: 'TXT', text: '"\\12x"', reason: 'bad escape in "\\12x" (expected \\DDD)' },
  { type: 'HINFO', text: '"PC"', reason: 'missing OS string in HINFO RDATA' },
  { type: 'SOA', text: 'ns h 4294967296 1 1 1 1', reason: 'bad SOA serial "4294967296" (expected an integer 0-4294967295)' },
  { type: 'SOA', text: 'ns h 1 1x 1 1 1', reason: 'bad SOA refresh "1x" (expected seconds or units like 1h30m)' },
  { type: 'SOA', text: 'ns h 1 1 1 1w1 1', reason: 'bad SOA expire "1w1" (expected seconds or units like 1h30m)' },
  { type: 'SOA', text: 'ns h 1 1 1 1', reason: 'missing minimum in SOA RDATA' },
  { type: 'SOA', text: 'ns h 1 1 1 1 4294967296', reason: 'SOA minimum "4294967296" out of range (max 4294967295)' },
  { type: 'A', text: '\\# 3 c00002', reason: 'malformed \\# RDATA for A: A RDATA must be 4 bytes, not 3' },
  { type: 'MX', text: '\\# 5 000a000000', reason: 'malformed \\# RDATA for MX: 2 trailing bytes in RDATA' },
  { type: 'MX', text: '\\# 4 000a0261', reason: 'malformed \\# RDATA for MX: label runs past the end of its data' },
  { type: 'NS', text: '\\# 2 c00c', reason: 'malformed \\# RDATA for NS: compressed or oversized label in rdata name' },
  { type: 'TXT', text: '\\# 2 0561', reason: 'malformed \\# RDATA for TXT: RDATA too short' },
  { type: 'A', text: '\\# 4 c00002', reason: '\\# RDATA declares 4 bytes but has 3 (expected 8 hex digits)' },
  { type: 'A', text: '\\# 4 c0000201ff', reason: '\\# RDATA has more than the 4 bytes declared' },
  { type: 'TYPE999', text: '\\# 1 f', reason: '\\# RDATA declares 1 bytes but has 0.5 (expected 2 hex digits)' },
  { type: 'TYPE999', text: '\\# 2 zz00', reason: 'bad hex "zz00" in \\# RDATA' },
  { type: 'TYPE999', text: '\\#', reason: 'missing length after \\# (expected \\# <length> <hex>)' },
  { type: 'TYPE999', text: '\\# x', reason: 'bad \\# length "x" (expected an integer 0-65535)' },
  { type: 'TYPE999', text: '\\# 1 "ff"', reason: 'expected hex digits after \\# <length>, got a quoted string' },
  { type: 'NAPTR', text: '10 10 "u" "E2U+sip" "" .', reason: 'type NAPTR is only supported in the RFC 3597 form \\# <length> <hex>' },
  { type: 'TYPE999', text: '1', reason: 'type TYPE999 is only supported in the RFC 3597 form \\# <length> <hex>' },
];

describe('rdata: errors', () => {
  it.each(bad)('$type $text -> $reason', ({ type, text, reason }) => {
    expect(errorOf(() => rd(type, text))).toBe(`t.zone:1: ${reason}`);
  });
});

describe('parseRdata on tokens', () => {
  const toks = (...texts: string[]): RdataToken[] => texts.map((text) => ({ text, quoted: false }));

  it('honours start and end', () => {
    const t = toks('junk', '10', 'mx', 'junk');
    expect(formatRdata(RRType.MX, parseRdata(RRType.MX, t, 'example.org.', 1, 3))).toBe('10 mx.example.org.');
  });

  it('completes names with the origin as written', () => {
    expect(formatRdata(RRType.NS, parseRdata(RRType.NS, toks('ns'), 'Example.ORG.'))).toBe('ns.Example.ORG.');
    expect(formatRdata(RRType.NS, parseRdata(RRType.NS, toks('ns'), '.'))).toBe('ns.');
  });

  it('throws RdataError', () => {
    expect(() => parseRdata(RRType.A, toks('x'), '.')).toThrow(RdataError);
  });

  it('rejects RDATA longer than 65535 bytes', () => {
    const strings = Array.from({ length: 300 }, () => ({ text: 'x'.repeat(255), quoted: true }));
    expect(() => parseRdata(RRType.TXT, strings, '.')).toThrow('RDATA longer than 65535 bytes');
  });
});

describe('formatRdata', () => {
  const cases: Array<[string, number, string, string]> = [
    ['unknown type is generic', 9999, '0102', '\\# 2 0102'],
    ['empty unknown RDATA', 9999, '', '\\# 0'],
    ['malformed A falls back to generic', RRType.A, 'c00002', '\\# 3 c00002'],
    ['malformed NS falls back to generic', RRType.NS, '0361', '\\# 2 0361'],
    ['types without a text form are generic', RRType.NAPTR, 'aabb', '\\# 2 aabb'],
    ['DS (RFC 4034 5.3), digest in upper-case hex', RRType.DS, '49650d02' + 'c7b2', '18789 13 2 C7B2'],
    ['DS without a digest falls back to generic', RRType.DS, '49650d02', '\\# 4 49650d02'],
    ['TXT non-printable bytes', RRType.TXT, '03' + '0a225c', '"\\010\\"\\\\"'],
    ['name case is kept', RRType.CNAME, w('WWW.Example.'), 'WWW.Example.'],
    ['escaped label bytes', RRType.PTR, '03612062' + '00', 'a\\032b.'],
  ];
  it.each(cases)('%s', (_label, type, h, want) => {
    expect(formatRdata(type, Uint8Array.from(Buffer.from(h, 'hex')))).toBe(want);
  });

  it('knows which types have a text form', () => {
    expect(hasTextForm(RRType.CAA)).toBe(true);
    expect(hasTextForm(RRType.NAPTR)).toBe(false);
  });
});

describe('parseTtl', () => {
  const good: Array<[string, number]> = [
    ['0', 0], ['300', 300], ['1s', 1], ['1m', 60], ['1h', 3600], ['1d', 86400], ['1w', 604800],
    ['1H30M', 5400], ['1w2d3h4m5s', 604800 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5], ['2147483647', 2147483647],
  ];
  it.each(good)('%s = %i', (text, want) => {
    expect(parseTtl(text)).toBe(want);
  });

  const badTtl: Array<[string, string]> = [
    ['1x', 'bad TTL "1x" (expected seconds or units like 1h30m)'],
    ['h', 'bad TTL "h" (expected seconds or units like 1h30m)'],
    ['1h30', 'bad TTL "1h30" (expected seconds or units like 1h30m)'],
    ['', 'bad TTL "" (expected seconds or units like 1h30m)'],
    ['12345678901', 'bad TTL "12345678901" (expected seconds or units like 1h30m)'],
    ['2147483648', 'TTL "2147483648" out of range (max 2147483647)'],
    ['100000w', 'TTL "100000w" out of range (max 2147483647)'],
  ];
  it.each(badTtl)('%s', (text, reason) => {
    expect(errorOf(() => parseTtl(text))).toBe(reason);
  });
});

describe('resolveName', () => {
  const cases: Array<[string, string, string]> = [
    ['@', 'example.com.', 'example.com.'],
    ['www', 'example.com.', 'www.example.com.'],
    ['www.example.org.', 'example.com.', 'www.example.org.'],
    ['a\\.', 'example.com.', 'a\\..example.com.'],
    ['a\\\\.', 'example.com.', 'a\\\\.'],
    ['www', '.', 'www.'],
    ['.', 'example.com.', '.'],
  ];
  it.each(cases)('%s in %s', (text, origin, want) => {
    expect(resolveName(text, origin)).toBe(want);
  });
});

describe('canonicalRdata', () => {
  it('lowercases embedded names only', () => {
    const mx = rd('MX', '10 Mail.Example.');
    expect(formatRdata(RRType.MX, canonicalRdata(RRType.MX, mx))).toBe('10 mail.example.');
    expect(formatRdata(RRType.MX, mx)).toBe('10 Mail.Example.');
    const soa = rd('SOA', 'NS.X. Host.X. 1 2 3 4 5');
    expect(formatRdata(RRType.SOA, canonicalRdata(RRType.SOA, soa))).toBe('ns.x. host.x. 1 2 3 4 5');
    const srv = rd('SRV', '1 2 3 SIP.X.');
    expect(formatRdata(RRType.SRV, canonicalRdata(RRType.SRV, srv))).toBe('1 2 3 sip.x.');
    const txt = rd('TXT', '"ABC"');
    expect(canonicalRdata(RRType.TXT, txt)).toEqual(txt);
  });
});

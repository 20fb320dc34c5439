import { describe, expect, it } from 'vitest';
import { addressBytes, addressFamily, formatHostPort, hostPortOrReason, parseAddress, parseHostPort, parsePrefix } from '../../shared/ip.js';
import { isLoopback } from '../../shared/api-auth.js';

describe('parseAddress', () => {
  const good: [string, string, 4 | 6][] = [
    ['192.0.2.1', '192.0.2.1', 4],
    ['2001:0DB8:0:0:0:0:0:1', '2001:db8::1', 6],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1', 6],
  ];
  for (const [text, canonical, family] of good) {
    it(`reads ${text} as ${canonical}`, () => {
      expect(parseAddress(text)).toMatchObject({ canonical, family });
      expect(addressFamily(text)).toBe(family);
      expect(addressBytes(text)?.length).toBe(family === 4 ? 4 : 16);
    });
  }
  for (const text of ['01.2.3.4', '1.2.3', '256.1.1.1', 'fe80::1%eth0', '1::2::3', 'host', '']) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      expect(() => parseAddress(text)).toThrow(`"${text}"`);
      expect(addressFamily(text)).toBe(0);
      expect(addressBytes(text)).toBeUndefined();
    });
  }
});

describe('parsePrefix', () => {
  it('reads a network and a bare address (full length)', () => {
    expect(parsePrefix('198.51.100.0/24')).toMatchObject({ family: 4, length: 24, text: '198.51.100.0/24' });
    expect(parsePrefix('2001:DB8::1')).toMatchObject({ family: 6, length: 128, text: '2001:db8::1/128' });
  });
  it('rejects host bits beyond the length, naming the network it could mean', () => {
    expect(() => parsePrefix('198.51.100.7/24')).toThrow('host bits set in "198.51.100.7/24" (did you mean 198.51.100.0/24?)');
    expect(() => parsePrefix('10.0.0.1/0')).toThrow('did you mean 0.0.0.0/0?');
  });
  it('rejects a bad length', () => {
    expect(() => parsePrefix('10.0.0.0/33')).toThrow('length must be an integer 0..32');
    expect(() => parsePrefix('10.0.0.0/08')).toThrow('"10.0.0.0/08"');
  });
});

describe('parseHostPort', () => {
  it('reads IPv4, bracketed IPv6 (canonical), and port 0', () => {
    expect(parseHostPort('127.0.0.1:5300')).toEqual({ host: '127.0.0.1', port: 5300, family: 4 });
    expect(parseHostPort('[2001:DB8::0001]:53')).toEqual({ host: '2001:db8::1', port: 53, family: 6 });
    expect(parseHostPort('127.0.0.1:0').port).toBe(0);
  });
  it('accepts a host name only when asked to', () => {
    expect(parseHostPort('localhost:9100', { names: true })).toEqual({ host: 'localhost', port: 9100, family: 0 });
    expect(() => parseHostPort('localhost:9100')).toThrow('expected IPv4:PORT or [IPv6]:PORT, got "localhost:9100"');
  });
  for (const text of ['::1:53', '127.0.0.1:65536', '[::1]', '127.0.0.1', '127.0.0.1:65536', '[nope]:53', '1.2.3.04:80', 'a b:1']) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      expect(() => parseHostPort(text, { names: true })).toThrow(JSON.stringify(text));
      expect(typeof hostPortOrReason(text)).toBe('string');
    });
  }
});

describe('formatHostPort and isLoopback', () => {
  it('brackets IPv6 and round-trips through parseHostPort', () => {
    expect(formatHostPort('2001:db8::1', 53)).toBe('[2001:db8::1]:53');
    expect(parseHostPort(formatHostPort('2001:db8::1', 53))).toEqual({ host: '2001:db8::1', port: 53, family: 6 });
    expect(formatHostPort('192.0.2.1', 80)).toBe('192.0.2.1:80');
  });
  it('loopback is 127/8, ::1 and localhost, by the shared parser', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', 'localhost']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.0.2.1', '128.0.0.1', '127.0.0.01', '::2', 'example.test']) expect(isLoopback(h), h).toBe(false);
  });
});

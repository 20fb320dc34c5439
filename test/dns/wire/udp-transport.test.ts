import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  IN_SLOT_SIZE,
  OUT_SLOT_SIZE,
  listenUdp,
  peerAddressText,
  udpNativeStatus,
} from '../../../dns/wire/udp-transport.js';
import type { DatagramHandler, Peer, UdpListener } from '../../../dns/wire/udp-transport.js';

const savedMode = process.env['GSLB_UDP'];
beforeAll(() => { delete process.env['GSLB_UDP']; });
afterAll(() => {
  if (savedMode === undefined) delete process.env['GSLB_UDP'];
  else process.env['GSLB_UDP'] = savedMode;
});

/** Replies `<query>|<family>|<port>|<address>`; "throw" throws, "quiet" gets no reply, "fill" fills outMax. */
const echo: DatagramHandler = (q, qOff, qLen, out, outOff, outMax, peer) => {
  const text = q.toString('latin1', qOff, qOff + qLen);
  if (text === 'throw') throw new Error('handler bug');
  if (text === 'quiet') return 0;
  if (text === 'fill') {
    out.fill(0x61, outOff, outOff + outMax);
    return outMax;
  }
  return out.write(`${text}|${peer.family}|${peer.port}|${peerAddressText(peer)}`, outOff, outMax, 'latin1');
};

interface Client {
  port: number;
  replies: Buffer[];
  send(payload: Buffer | string): void;
  waitFor(count: number, ms?: number): Promise<Buffer[]>;
  close(): void;
}

async function createClient(host: string, target: number): Promise<Client> {
  const sock = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 4 << 20 });
  await new Promise<void>((resolve) => sock.bind(0, host, resolve));
  const replies: Buffer[] = [];
  let wake: (() => void) | undefined;
  sock.on('message', (msg) => { replies.push(msg); wake?.(); });
  return {
    port: sock.address().port,
    replies,
    send: (payload) => sock.send(typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload, target, host),
    async waitFor(count, ms = 3000) {
      const deadline = Date.now() + ms;
      while (replies.length < count && Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, Math.min(50, Math.max(1, deadline - Date.now())));
        });
      }
      wake = undefined;
      return replies;
    },
    close: () => sock.close(),
  };
}

/** Sends one UDP datagram with source port 0 through a raw socket (needs root and python3). */
function sendFromPortZero(host: string, port: number, payload: string): boolean {
  const script = `
import socket, struct, sys
host, port, data = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
v6 = ':' in host
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
if v6:
    s.setsockopt(socket.IPPROTO_IPV6, 7, 6)  # IPV6_CHECKSUM at offset 6: the kernel fills it in
s.sendto(struct.pack('!HHHH', 0, port, 8 + len(data), 0) + data, (host, 0))
`;
  const r = spawnSync('python3', ['-c', script, host, String(port), payload], { timeout: 5000 });
  return r.status === 0;
}

// a datagram from source port 0 needs a raw socket: root and python3, as in CI (never skipped)
const canRaw = typeof process.getuid === 'function' && process.getuid() === 0 &&
  spawnSync('python3', ['-c', ''], { timeout: 5000 }).status === 0;

it('the native UDP batch addon is built and loads', () => {
  expect(udpNativeStatus()).toEqual({ available: true, reason: undefined });
});

describe.each([
  { kind: 'native' as const, preferNative: true },
  { kind: 'dgram' as const, preferNative: false },
])('listenUdp ($kind)', ({ kind, preferNative }) => {
  const open: UdpListener[] = [];
  const clients: Client[] = [];
  const errors: unknown[] = [];

  async function setup(host: string): Promise<{ listener: UdpListener; client: Client }> {
    const listener = await listenUdp(host, 0, echo, { preferNative, onError: (err) => errors.push(err) });
    open.push(listener);
    const client = await createClient(host, listener.port);
    clients.push(client);
    return { listener, client };
  }

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const l of open.splice(0)) await l.close();
    errors.length = 0;
  });

  it('binds an ephemeral port and answers with the peer it saw', async () => {
    const { listener, client } = await setup('127.0.0.1');
    expect(listener.kind).toBe(kind);
    expect(listener.port).toBeGreaterThan(0);
    client.send('hello');
    const [reply] = await client.waitFor(1);
    expect(reply?.toString('latin1')).toBe(`hello|4|${client.port}|127.0.0.1`);
    expect(listener.stats()).toEqual({ received: 1, sent: 1, dropped: 0 });
  });

  it('answers over IPv6 on ::1', async () => {
    const { client } = await setup('::1');
    client.send('six');
    const [reply] = await client.waitFor(1);
    expect(reply?.toString('latin1')).toBe(`six|6|${client.port}|::1`);
  });

  it('answers every packet of a burst', async () => {
    const { listener, client } = await setup('127.0.0.1');
    const count = 1000;
    for (let i = 0; i < count; i++) client.send(`q${i}`);
    const replies = await client.waitFor(count, 10_000);
    const seen = new Set(replies.map((r) => r.toString('latin1').split('|')[0]));
    expect(seen.size).toBe(count);
    for (let i = 0; i < count; i++) expect(seen.has(`q${i}`)).toBe(true);
    expect(listener.stats()).toMatchObject({ received: count, sent: count, dropped: 0 });
  });

  it('lets the handler write a reply of outMax bytes', async () => {
    const { client } = await setup('127.0.0.1');
    client.send('fill');
    const [reply] = await client.waitFor(1);
    expect(reply?.length).toBe(OUT_SLOT_SIZE);
  });

  it('sends nothing when the handler returns 0', async () => {
    const { listener, client } = await setup('127.0.0.1');
    client.send('quiet');
    client.send('after');
    const replies = await client.waitFor(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(replies.map((r) => r.toString('latin1').split('|')[0])).toEqual(['after']);
    expect(listener.stats()).toEqual({ received: 2, sent: 1, dropped: 0 });
  });

  it('survives a handler that throws and answers the next packet', async () => {
    const { listener, client } = await setup('127.0.0.1');
    client.send('throw');
    await new Promise((r) => setTimeout(r, 50));
    client.send('next');
    const replies = await client.waitFor(1);
    expect(replies.map((r) => r.toString('latin1').split('|')[0])).toEqual(['next']);
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toContain('handler bug');
    expect(listener.stats().dropped).toBe(1);
  });

  it('drops an oversized datagram and answers the next one', async () => {
    const { listener, client } = await setup('127.0.0.1');
    client.send(Buffer.alloc(10_000, 0x62));
    client.send(Buffer.alloc(IN_SLOT_SIZE + 1, 0x62));
    await new Promise((r) => setTimeout(r, 50));
    client.send('small');
    const replies = await client.waitFor(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(replies.map((r) => r.toString('latin1').split('|')[0])).toEqual(['small']);
    expect(listener.stats()).toEqual({ received: 3, sent: 1, dropped: 2 });
  });

  it.each(['127.0.0.1', '::1'])('never answers source port 0 (%s)', async (host) => {
    expect(canRaw, 'this test sends from port 0 with a raw socket: run the tests as root with python3').toBe(true);
    const { listener, client } = await setup(host);
    expect(sendFromPortZero(host, listener.port, 'zero')).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    client.send('normal');
    const replies = await client.waitFor(1);
    await new Promise((r) => setTimeout(r, 50));
    expect(replies.map((r) => r.toString('latin1').split('|')[0])).toEqual(['normal']);
    expect(listener.stats()).toEqual({ received: 2, sent: 1, dropped: 1 });
  });

  it('closes twice and stops answering', async () => {
    const { listener, client } = await setup('127.0.0.1');
    client.send('before');
    await client.waitFor(1);
    await listener.close();
    await listener.close();
    client.send('after');
    await new Promise((r) => setTimeout(r, 150));
    expect(client.replies).toHaveLength(1);
    expect(listener.stats()).toMatchObject({ received: 1, sent: 1 });
  });

  it.each([['0.0.0.0', '127.0.0.1'], ['::', '::1']])('on the wildcard %s answers a query to %s from that address', async (wildcard, local) => {
    const listener = await listenUdp(wildcard, 0, echo, { preferNative, onError: (err) => errors.push(err) });
    open.push(listener);
    expect(listener.kind).toBe(kind);
    const sock = dgram.createSocket(local.includes(':') ? 'udp6' : 'udp4');
    const from = await new Promise<string>((resolve) => {
      sock.on('message', (_m, r) => resolve(r.address));
      sock.send('hi', listener.port, local);
    });
    sock.close();
    expect(from).toBe(local);
    expect(listener.stats()).toEqual({ received: 1, sent: 1, dropped: 0 });
    await listener.close();
    expect(listener.stats()).toMatchObject({ received: 1, sent: 1 });
  });
});

describe('transport selection', () => {
  it('GSLB_UDP=dgram forces the dgram fallback', async () => {
    process.env['GSLB_UDP'] = 'dgram';
    try {
      const l = await listenUdp('127.0.0.1', 0, echo);
      expect(l.kind).toBe('dgram');
      await l.close();
    } finally {
      delete process.env['GSLB_UDP'];
    }
  });

  it('reports a busy port as an error', async () => {
    const taken = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => taken.bind(0, '127.0.0.1', resolve));
    try {
      await expect(listenUdp('127.0.0.1', taken.address().port, echo)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    } finally {
      taken.close();
    }
  });
});

describe('peerAddressText', () => {
  const v6 = (hex: string): Peer => ({ family: 6, port: 53, address: Uint8Array.from(Buffer.from(hex, 'hex')) });
  it.each([
    [{ family: 4, port: 53, address: Uint8Array.of(192, 0, 2, 1) } satisfies Peer, '192.0.2.1'],
    [v6('00000000000000000000000000000001'), '::1'],
    [v6('00000000000000000000000000000000'), '::'],
    [v6('20010db8000000000000000000000001'), '2001:db8::1'],
    [v6('20010db8000000010000000000000001'), '2001:db8:0:1::1'],
    [v6('20010db8000100000001000100010001'), '2001:db8:1:0:1:1:1:1'],
    [v6('fe800000000000000000000000000000'), 'fe80::'],
    [v6('00000000000000000000ffffc0000201'), '::ffff:192.0.2.1'],
  ])('%# -> %s', (peer, text) => {
    expect(peerAddressText(peer)).toBe(text);
  });
});

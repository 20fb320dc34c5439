import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TcpConnectionTable, defaultMaxConnections, sourceKey } from '../../dns/server/tcp-limits.js';
import type { TcpCloseReason, TcpLimits, TcpSlot } from '../../dns/server/tcp-limits.js';
import { listenTcp } from '../../dns/server/tcp.js';
import type { TcpListener } from '../../dns/server/tcp.js';
import { Engine, DEFAULT_ENGINE_OPTIONS } from '../../dns/server/engine.js';
import { loadZoneDir } from '../../dns/zone/load.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { header, query } from '../helpers/packet.js';
import { FIXTURE_ZONES, framed } from '../helpers/server.js';

const LIMITS: TcpLimits = { maxConnections: 3, maxPerSource: 2, idleMs: 10_000, messageMs: 3_000 };

function table(limits: Partial<TcpLimits> = {}): { t: TcpConnectionTable; clock: ManualClock; closed: string[]; open: (name: string, source?: string) => TcpSlot | undefined } {
  const clock = new ManualClock();
  const t = new TcpConnectionTable({ ...LIMITS, ...limits }, clock);
  const closed: string[] = [];
  const open = (name: string, source = name): TcpSlot | undefined => t.admit(source, (r: TcpCloseReason) => closed.push(`${name}:${r}`));
  return { t, clock, closed, open };
}

describe('TCP connection table', () => {
  it('evicts the longest-idle connection when full, before any with a message in progress', () => {
    const { t, clock, closed, open } = table();
    const a = open('a')!;
    clock.advance(100);
    open('b');
    clock.advance(100);
    open('c');
    a.reading(); // a is mid-message: b is now the longest idle
    clock.advance(100);
    expect(open('d')).toBeDefined();
    expect(closed).toEqual(['b:evicted']);
    expect(open('e')).toBeDefined();
    expect(closed).toEqual(['b:evicted', 'c:evicted']);
    expect(t.size).toBe(3);
  });

  it('a completed message makes a connection the most recently idle', () => {
    const { clock, closed, open } = table();
    const a = open('a')!;
    clock.advance(100);
    open('b');
    clock.advance(100);
    open('c');
    a.reading();
    a.idle();
    open('d');
    expect(closed).toEqual(['b:evicted']);
  });

  it('evicts a message in progress for longer than the longest idle (slowloris cannot pin the table)', () => {
    const { clock, closed, open } = table();
    const slow1 = open('slow1')!;
    const slow2 = open('slow2')!;
    slow1.reading();
    slow2.reading();
    clock.advance(500);
    open('fresh'); // the table is full of slowloris and one fresh connection
    clock.advance(1);
    open('next');
    expect(closed).toEqual(['slow1:evicted']);
    open('next2');
    expect(closed).toEqual(['slow1:evicted', 'slow2:evicted']);
  });

  it('evicts the oldest reading connection when none is idle', () => {
    const { closed, open } = table();
    for (const n of ['a', 'b', 'c']) open(n)!.reading();
    open('d');
    expect(closed).toEqual(['a:evicted']);
  });

  it('refuses a source at its limit without evicting anyone', () => {
    const { t, closed, open } = table();
    expect(open('x1', 'x')).toBeDefined();
    expect(open('x2', 'x')).toBeDefined();
    expect(open('x3', 'x')).toBeUndefined();
    expect(open('y')).toBeDefined();
    expect(open('x4', 'x')).toBeUndefined();
    expect(closed).toEqual([]);
    expect(t.snapshot()).toMatchObject({ open: 3, refusedPerSource: 2, evicted: 0 });
  });

  it('frees the per-source count when a connection goes', () => {
    const { open } = table();
    const x1 = open('x1', 'x')!;
    open('x2', 'x');
    x1.release();
    x1.release();
    expect(open('x3', 'x')).toBeDefined();
    expect(open('x4', 'x')).toBeUndefined();
  });

  it('drops a message that has not fully arrived within messageMs of its first byte, whatever trickles in', () => {
    const { t, clock, closed, open } = table();
    const s = open('slow')!;
    s.reading();
    for (let i = 0; i < 2; i++) { clock.advance(1000); s.reading(); } // a byte a second
    clock.advance(999);
    t.sweep();
    expect(closed).toEqual([]);
    clock.advance(1);
    t.sweep();
    expect(closed).toEqual(['slow:message-timeout']);
  });

  it('closes a connection idle for idleMs, and a completed message restarts its idle time', () => {
    const { t, clock, closed, open } = table();
    const a = open('a')!;
    open('b');
    clock.advance(9_000);
    a.reading();
    a.idle();
    clock.advance(999);
    t.sweep();
    expect(closed).toEqual([]);
    clock.advance(1);
    t.sweep();
    expect(closed).toEqual(['b:idle']);
    clock.advance(8_999);
    t.sweep();
    expect(closed).toEqual(['b:idle']);
    clock.advance(t.sweepEveryMs + 1); // the periodic sweep, at most one period late
    expect(closed).toEqual(['b:idle', 'a:idle']);
  });

  it('stops its sweep timer', () => {
    const { t, clock } = table();
    expect(clock.pending).toBe(1);
    t.stop();
    expect(clock.pending).toBe(0);
  });

  it('keys IPv4 by address and IPv6 by /64', () => {
    expect(sourceKey(4, Uint8Array.from([127, 0, 3, 4]))).toBe('127.0.3.4');
    const a = Uint8Array.from([0x20, 1, 0xd, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
    const b = Uint8Array.from([0x20, 1, 0xd, 0xb8, 0, 0, 0, 1, 0xff, 0, 0, 0, 0, 0, 0, 2]);
    expect(sourceKey(6, a)).toBe(sourceKey(6, b));
  });

  it('bounds the default total by the open-file limit', () => {
    expect(defaultMaxConnections(undefined)).toBe(1024);
    expect(defaultMaxConnections(1024)).toBe(512);
    expect(defaultMaxConnections(100)).toBe(64);
    expect(defaultMaxConnections(1 << 20)).toBe(4096);
  });
});

describe('TCP listener on a manual clock', () => {
  let listener: TcpListener | undefined;
  afterEach(async () => { await listener?.close(); listener = undefined; });

  async function start(clock: ManualClock): Promise<TcpListener> {
    const engine = new Engine(await loadZoneDir(FIXTURE_ZONES), DEFAULT_ENGINE_OPTIONS);
    listener = await listenTcp('127.0.0.1', 0, () => engine, { ...LIMITS, maxConnections: 10, maxPerSource: 10 }, clock);
    return listener;
  }
  const connect = (port: number): Promise<net.Socket> => new Promise((res, rej) => {
    const s = net.connect(port, '127.0.0.1', () => res(s));
    s.on('error', rej);
  });
  const closed = (s: net.Socket): Promise<void> => new Promise((res) => {
    if (s.destroyed || s.readableEnded) res();
    s.on('close', () => res());
    s.on('end', () => res());
  });
  /** waits (in real time, generously) until the listener has seen what we wrote */
  async function until(cond: () => boolean): Promise<void> {
    for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
    expect(cond()).toBe(true);
  }

  it('drops a slowloris at the message deadline although it keeps sending, and keeps serving others', async () => {
    const clock = new ManualClock();
    const l = await start(clock);
    const slow = await connect(l.port);
    const msg = framed(query({ id: 9 }));
    let got = 0;
    slow.on('data', () => { got++; });
    slow.on('error', () => {});
    slow.write(msg.subarray(0, 2));
    await until(() => l.limitStats().reading === 1); // the deadline starts when the server sees the first byte
    for (let i = 2; i < 5; i++) {
      clock.advance(900);
      slow.write(msg.subarray(i, i + 1));
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(l.connections()).toBe(1);
    clock.advance(300 + 500); // past 3,000 ms after the first byte, plus a sweep period
    await closed(slow);
    expect(got).toBe(0);
    expect(l.limitStats().messageTimeouts).toBe(1);

    const good = await connect(l.port);
    const reply = new Promise<Buffer>((res) => good.on('data', (d) => res(d)));
    good.write(framed(query({ id: 10 })));
    expect(header((await reply).subarray(2)).id).toBe(10);
    good.destroy();
  });

  it('closes a connection after idleMs without a message, and not before', async () => {
    const clock = new ManualClock();
    const l = await start(clock);
    const s = await connect(l.port);
    let isClosed = false;
    s.on('close', () => { isClosed = true; });
    await until(() => l.connections() === 1);
    clock.advance(9_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(isClosed).toBe(false);
    clock.advance(1_000 + 500); // plus a sweep period at most
    await closed(s);
    expect(l.limitStats().idleClosed).toBe(1);
  });
});

/**
 * Robustness: at least 100,000 random, truncated and mutated packets over UDP and TCP against
 * the real gslb-dns process. After every batch the server must answer a liveness query, and
 * its memory must stay bounded. The generator is seeded, so a failure reproduces.
 */
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../dns/server/engine.js';
import { loadZoneDir } from '../../dns/zone/load.js';
import { startCli } from '../helpers/cli.js';
import type { Cli } from '../helpers/cli.js';
import { ecs, header as hdr, opt, query } from '../helpers/packet.js';
import { FIXTURE_ZONES, framed } from '../helpers/server.js';

/** xorshift32: small, seeded, good enough to pick mutations */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s; };
  return { int: (n: number) => next() % n, byte: () => next() & 0xff, next };
}

const VALID = [
  query({ name: 'www.example.test' }),
  query({ name: 'big.example.test', type: 16, additional: [opt()] }),
  query({ name: 'x.wild.example.test', additional: [opt([ecs(1, 24, 0, [192, 0, 2])])] }),
  query({ name: 'host.deleg.example.test', additional: [opt([ecs(2, 56, 0, [0x20, 1, 0xd, 0xb8, 0, 0, 0x12])], 4096, 0, true)] }),
];

/** A pointer chain: every name in the additional section points forward and back, and loops. */
function pointerMaze(r: ReturnType<typeof rng>, size: number): Buffer {
  const b = Buffer.alloc(size);
  Buffer.from(query()).copy(b);
  b.writeUInt16BE(0xffff, 10);
  for (let p = 30; p + 2 <= size; p += 2) {
    const kind = r.int(4);
    const target = kind === 0 ? p : kind === 1 ? Math.min(size - 2, p + 2) : kind === 2 ? r.int(size) : 12;
    b.writeUInt16BE(0xc000 | (target & 0x3fff), p);
  }
  return b;
}

/** One hostile packet; the kinds cover the classes the issue names. */
function packet(r: ReturnType<typeof rng>, maxLen: number): Buffer {
  const kind = r.int(10);
  const base = Buffer.from(VALID[r.int(VALID.length)]!);
  switch (kind) {
    case 0: { // random bytes
      const b = Buffer.alloc(r.int(600));
      for (let i = 0; i < b.length; i++) b[i] = r.byte();
      return b;
    }
    case 1: // truncated valid query
      return base.subarray(0, r.int(base.length));
    case 2: { // bit flips
      for (let i = 0, n = 1 + r.int(6); i < n; i++) base[r.int(base.length)]! ^= 1 << r.int(8);
      return base;
    }
    case 3: { // huge counts
      for (let i = 4; i < 12; i += 2) if (r.int(2)) base.writeUInt16BE(0xffff - r.int(4), i);
      return base;
    }
    case 4: // pointer loops and long forward chains
      return pointerMaze(r, 64 + r.int(Math.min(maxLen, 4000)));
    case 5: { // bad OPT / ECS option data
      const data: number[] = [];
      for (let i = 0, n = r.int(40); i < n; i++) data.push(r.byte());
      const fam = r.int(4);
      return query({ additional: [opt([[r.int(3) ? 8 : r.int(65536), [0, fam, r.int(256), r.int(256), ...data]]], r.int(65536), r.int(3))] });
    }
    case 6: { // big datagram of garbage (up to 64 KB over TCP, as big as UDP allows)
      const b = Buffer.alloc(4000 + r.int(maxLen - 4000));
      base.copy(b);
      for (let i = base.length; i < b.length; i += 7) b[i] = r.byte();
      return b;
    }
    case 7: { // random header on a valid body
      for (let i = 2; i < 12; i++) base[i] = r.byte();
      base[2]! &= 0x7f;
      return base;
    }
    case 8: { // label lengths that lie
      base[12 + r.int(20)] = 0x40 | r.int(0xc0);
      return base;
    }
    default: { // spliced: valid prefix + random tail
      const tail = Buffer.alloc(r.int(300));
      for (let i = 0; i < tail.length; i++) tail[i] = r.byte();
      return Buffer.concat([base.subarray(0, r.int(base.length)), tail]);
    }
  }
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]);
}

let cli: Cli;
beforeAll(async () => { cli = await startCli(['--zones', FIXTURE_ZONES, '--listen', '127.0.0.1:0']); });
afterAll(async () => { await cli?.stop(); });

const LIVE = query({ id: 0xbeef, name: 'www.example.test' });

function udpLive(sock: dgram.Socket, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    let tries = 0;
    const onMsg = (m: Buffer) => {
      if (m.length >= 12 && m.readUInt16BE(0) === 0xbeef && hdr(m).rcode === 0 && hdr(m).an === 1) { done(true); }
    };
    let t: NodeJS.Timeout;
    const done = (v: boolean) => { clearTimeout(t); sock.off('message', onMsg); resolve(v); };
    const send = () => {
      if (tries++ >= 5) { done(false); return; }
      sock.send(LIVE, port, '127.0.0.1');
      t = setTimeout(send, 500);
    };
    sock.on('message', onMsg);
    send();
  });
}

describe('fuzzing the real server', () => {
  it('survives 100,000 hostile UDP datagrams, answering a liveness query after every batch', async () => {
    const r = rng(0x5eed1);
    const sock = dgram.createSocket({ type: 'udp4', sendBufferSize: 1 << 22, recvBufferSize: 1 << 22 });
    sock.on('message', () => {});
    await new Promise<void>((res) => sock.bind(0, '127.0.0.1', res));
    const rss0 = rssKb(cli.proc.pid!);
    let sent = 0;
    for (let batch = 0; batch < 100; batch++) {
      for (let i = 0; i < 1000; i++) {
        const p = packet(r, 65000);
        sent++;
        // a datagram over the UDP limit cannot be sent at all; the TCP test covers 64 KB messages
        if (p.length > 65507) continue;
        await new Promise<void>((res) => sock.send(p, cli.port, '127.0.0.1', () => res()));
      }
      expect(await udpLive(sock, cli.port)).toBe(true);
    }
    sock.close();
    const rss1 = rssKb(cli.proc.pid!);
    console.log(`UDP fuzz: ${sent} datagrams, RSS ${Math.round(rss0 / 1024)} -> ${Math.round(rss1 / 1024)} MB`);
    expect(sent).toBeGreaterThanOrEqual(100_000);
    expect(rss1).toBeLessThan(250 * 1024);
    expect(cli.proc.exitCode).toBeNull();
  }, 300_000);

  it('survives hostile TCP streams, including 64 KB messages and lying length prefixes', async () => {
    const r = rng(0x7c9);
    let sent = 0;
    for (let conn = 0; conn < 100; conn++) {
      const parts: Buffer[] = [];
      for (let i = 0; i < 200; i++) {
        const p = packet(r, 65535).subarray(0, 65535);
        parts.push(r.int(20) === 0 ? Buffer.concat([Buffer.from([r.byte(), r.byte()]), p]) : framed(p));
        sent++;
      }
      // every stream ends with a liveness query; a lying prefix earlier may legitimately swallow it
      parts.push(framed(LIVE));
      await new Promise<void>((resolve) => {
        const s = net.connect(cli.port, '127.0.0.1', () => s.end(Buffer.concat(parts)));
        s.on('data', () => {});
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        setTimeout(() => { s.destroy(); resolve(); }, 5000);
      });
      const live = await new Promise<boolean>((resolve) => {
        const s = net.connect(cli.port, '127.0.0.1', () => s.write(framed(LIVE)));
        let buf = Buffer.alloc(0);
        s.on('data', (d) => {
          buf = Buffer.concat([buf, d]);
          if (buf.length >= 14) { s.destroy(); resolve(buf.readUInt16BE(2) === 0xbeef); }
        });
        s.on('error', () => resolve(false));
        setTimeout(() => { s.destroy(); resolve(false); }, 3000);
      });
      expect(live).toBe(true);
    }
    console.log(`TCP fuzz: ${sent} messages on 100 connections, RSS ${Math.round(rssKb(cli.proc.pid!) / 1024)} MB`);
    expect(rssKb(cli.proc.pid!)).toBeLessThan(250 * 1024);
  }, 300_000);

  it('never throws in-process, and reports its slowest packet', async () => {
    const engine = new Engine(await loadZoneDir(FIXTURE_ZONES), { udpCap: 1232, cacheEntries: 1000 });
    const r = rng(0xabc);
    const out = Buffer.alloc(65535);
    let worst = 0;
    for (let i = 0; i < 50_000; i++) {
      const p = packet(r, 65535);
      const t0 = process.hrtime.bigint();
      const n = engine.handle(p, 0, p.length, out, 0, out.length, i % 2 === 0);
      const dt = Number(process.hrtime.bigint() - t0) / 1e6;
      if (dt > worst) worst = dt;
      expect(n).toBeGreaterThanOrEqual(0);
      if (n > 0) expect(hdr(out.subarray(0, n)).qr).toBe(true);
    }
    // printed, not asserted: wall-clock figures are for benchmarks
    console.log(`in-process fuzz: 50,000 packets, slowest ${worst.toFixed(3)} ms, ${engine.stats.errors} handler errors`);
    expect(engine.stats.errors).toBe(0);
  }, 120_000);
});

import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli } from '../helpers/cli.js';
import type { Cli } from '../helpers/cli.js';
import { query } from '../helpers/packet.js';

const ZONE = `$ORIGIN flood.test.
$TTL 60
@ IN SOA ns hm 1 3600 600 86400 60
  IN NS ns
ns IN A 192.0.2.1
www IN A 192.0.2.10
api IN A 192.0.2.11
*.wild IN A 192.0.2.99
`;
/** The names that exist, asked before, during and after the flood. */
const EXISTING = ['www.flood.test', 'api.flood.test', 'ns.flood.test'];
/**
 * Distinct random names: NXDOMAIN, wildcard answers and wildcard NODATA (MX). Every other one is
 * asked twice in a row, which passes the negative budget's admission (the attacker's best case:
 * the flood then churns that budget); the others once.
 */
const FLOOD_NAMES = 150_000;
const FLOOD_QUERIES = FLOOD_NAMES * 1.5;
/** Queries in flight at most (one per lane; a lane waits for its reply or LANE_TIMEOUT_MS). */
const LANES = 256;
const LANE_TIMEOUT_MS = 500;
/**
 * VmRSS bound of the contract (600k names at 10k q/s under 200 MB). Start-up is ~60-90 MB;
 * with one budget for every reply, as before, 100k such names already took the process to ~270 MB
 * (bench:attack-cache), so the bound tells the two apart at this scale.
 */
const RSS_BOUND_KIB = 200 * 1024;

let dir: string;
let cli: Cli;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-cache-flood-'));
  await writeFile(path.join(dir, 'flood.test.zone'), ZONE);
  // every flag of the server under test, in one place
  // RRL off: the flood comes from one address, and this test is about the cache, not the rate limit
  const SERVER_ARGS = ['--zones', dir, '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0', '--rrl-rate', '0'];
  cli = await startCli(SERVER_ARGS);
});
afterAll(async () => {
  await cli?.stop();
  await rm(dir, { recursive: true, force: true });
});

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}

async function cacheCounters(apiPort: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text();
  const m = new Map<string, number>();
  for (const [, k, v] of text.matchAll(/^(gslb_dns_cache_\w+\{budget="\w+"\}) (\S+)$/gm)) m.set(k!, Number(v));
  return m;
}

/** Asks each name that exists once and resolves with how many were answered NOERROR with data. */
function askExisting(sock: dgram.Socket, port: number): Promise<number> {
  return new Promise((resolve) => {
    let ok = 0;
    let left = EXISTING.length;
    const onMsg = (m: Buffer): void => {
      if (m.readUInt16BE(0) >= 0x8000 && (m[3]! & 0x0f) === 0 && m.readUInt16BE(6) > 0) ok++;
      if (--left === 0) done();
    };
    const done = (): void => { clearTimeout(t); sock.off('message', onMsg); resolve(ok); };
    const t = setTimeout(done, 2000);
    sock.on('message', onMsg);
    EXISTING.forEach((name, i) => sock.send(query({ id: 0x8000 + i, name }), port, '127.0.0.1'));
  });
}

/** Sends FLOOD_QUERIES random-name queries, at most LANES in flight; calls `every` each 5,000. */
function flood(port: number, every: () => Promise<void>): Promise<{ answered: number }> {
  const sock = dgram.createSocket('udp4');
  const sentAt = new Float64Array(LANES);
  let next = 0;
  let answered = 0;
  const salt = Math.random().toString(36).slice(2, 8);
  let inFlight = 0;
  let pausedFor: Promise<void> | undefined;
  return new Promise((resolve) => {
    const send = (lane: number): void => {
      if (next >= FLOOD_QUERIES || pausedFor) { sentAt[lane] = 0; return; }
      const k = next++;
      // in threes: name 2j, name 2j again, name 2j+1
      const i = 2 * Math.floor(k / 3) + (k % 3 === 2 ? 1 : 0);
      const label = `r${i.toString(36)}${salt}`;
      const [name, type] = i % 3 === 0 ? [`${label}.flood.test`, 1] : i % 3 === 1 ? [`${label}.wild.flood.test`, 1] : [`${label}.wild.flood.test`, 15];
      sentAt[lane] = performance.now();
      inFlight++;
      sock.send(query({ id: lane, name, type }), port, '127.0.0.1');
      if (next % 5000 === 0) {
        pausedFor = every().then(() => { pausedFor = undefined; for (let l = 0; l < LANES; l++) if (sentAt[l] === 0) send(l); });
      }
    };
    const finish = (): void => {
      if (next < FLOOD_QUERIES || inFlight > 0) return;
      clearInterval(sweep);
      sock.close();
      resolve({ answered });
    };
    sock.on('message', (m) => {
      const lane = m.readUInt16BE(0);
      if (lane >= LANES || sentAt[lane] === 0) return;
      answered++;
      inFlight--;
      send(lane);
      finish();
    });
    // lanes whose reply was lost move on (a bounded wait, not a timing assertion)
    const sweep = setInterval(() => {
      const now = performance.now();
      for (let l = 0; l < LANES; l++) {
        if (sentAt[l] !== 0 && now - sentAt[l]! > LANE_TIMEOUT_MS) { inFlight--; send(l); }
      }
      finish();
    }, 100);
    sock.bind(0, '127.0.0.1', () => { for (let l = 0; l < LANES; l++) send(l); });
  });
}

describe('reply cache under a random-subdomain flood (real process)', () => {
  it('keeps VmRSS under the bound and the names that exist on the fast path', async () => {
    const pid = cli.proc.pid!;
    const legit = dgram.createSocket('udp4');
    await new Promise<void>((r) => legit.bind(0, '127.0.0.1', r));
    try {
      expect(await askExisting(legit, cli.port)).toBe(EXISTING.length); // compiles them
      const before = await cacheCounters(cli.apiPort);
      expect(before.get('gslb_dns_cache_entries{budget="positive"}')).toBe(EXISTING.length);
      let peak = rssKiB(pid);
      let asked = 0;
      let answered = 0;
      const { answered: floodAnswered } = await flood(cli.port, async () => {
        peak = Math.max(peak, rssKiB(pid));
        asked += EXISTING.length;
        answered += await askExisting(legit, cli.port);
      });
      peak = Math.max(peak, rssKiB(pid));
      const after = await cacheCounters(cli.apiPort);
      expect(floodAnswered).toBeGreaterThan(FLOOD_QUERIES / 2);
      expect(peak).toBeLessThan(RSS_BOUND_KIB);
      // every existing name answered during the flood came from its cache entry: no positive miss
      expect(answered).toBeGreaterThan(asked / 2);
      expect(after.get('gslb_dns_cache_misses_total{budget="positive"}')).toBe(before.get('gslb_dns_cache_misses_total{budget="positive"}'));
      expect(after.get('gslb_dns_cache_hits_total{budget="positive"}')! - before.get('gslb_dns_cache_hits_total{budget="positive"}')!).toBeGreaterThanOrEqual(answered);
      expect(after.get('gslb_dns_cache_entries{budget="positive"}')).toBe(EXISTING.length);
      // the names asked twice fill the negative budget (10,000 by default, 16,384 slots) and no more
      expect(after.get('gslb_dns_cache_entries{budget="negative"}')).toBeGreaterThan(0);
      expect(after.get('gslb_dns_cache_entries{budget="negative"}')).toBeLessThanOrEqual(16_384);
      expect(after.get('gslb_dns_cache_misses_total{budget="negative"}')! - before.get('gslb_dns_cache_misses_total{budget="negative"}')!).toBeGreaterThan(FLOOD_QUERIES / 2);
    } finally {
      legit.close();
    }
  }, 120_000);
});

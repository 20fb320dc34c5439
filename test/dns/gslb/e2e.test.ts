/**
 * GSLB end to end: the real gslb-dns process, signed reports over real HTTP, answers through the
 * real dig. Two fake agents (tokyo, osaka) heartbeat like slb-agent does; tests change what
 * they report and watch the answers.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctl } from '../../../dns/ctl.js';
import { startCli } from '../../helpers/cli.js';
import type { Cli } from '../../helpers/cli.js';
import { dig } from '../../helpers/dig.js';
import { nextSeq, postReport, SECRET_ENV } from '../../helpers/report.js';
import type { MemberReport } from '../../helpers/report.js';
import { ROOT } from '../../helpers/server.js';

const ZONES = path.join(ROOT, 'test/fixtures/gslb');
const TOKEN = 'test-admin-token-0123456789';
const SOA = 'gslb.test. 60 IN SOA ns1.gslb.test. hostmaster.gslb.test. 1 3600 600 86400 60';

const TOKYO = ['192.0.2.1', '2001:db8::1', '192.0.2.11', '192.0.2.21', '192.0.2.31', '192.0.2.41', '192.0.2.51'];
const OSAKA = ['192.0.2.2', '2001:db8::2', '192.0.2.12', '192.0.2.22', '192.0.2.99', '192.0.2.52', '192.0.2.53'];

/** What each fake agent currently reports, per member address. */
const desired: Record<'tokyo' | 'osaka', Map<string, MemberReport['state']>> = {
  tokyo: new Map(TOKYO.map((a) => [a, 'up'])),
  osaka: new Map(OSAKA.map((a) => [a, 'up'])),
};
const paused = { tokyo: false, osaka: false };

let dir: string;
let a: Cli;
let b: Cli;
let heartbeat: NodeJS.Timeout | undefined;

async function report(cli: Cli, site: 'tokyo' | 'osaka'): Promise<void> {
  const members = [...desired[site]].map(([address, state]) => ({ address, state }));
  const r = await postReport(cli.apiPort, site, members);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
}

/** Sends both sites' state to both instances now (what an agent does on a change). */
async function sync(): Promise<void> {
  for (const site of ['tokyo', 'osaka'] as const) {
    if (paused[site]) continue;
    await report(a, site);
    await report(b, site);
  }
}

function set(site: 'tokyo' | 'osaka', address: string, state: MemberReport['state']): void {
  desired[site].set(address, state);
}

async function answer(cli: Cli, name: string, type = 'A', extra: string[] = []) {
  return dig(cli.port, ['+norec', ...extra, `${name}.gslb.test`, type]);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-e2e-'));
  await writeFile(path.join(dir, 'token'), TOKEN);
  const args = (n: string) => ['--zones', ZONES, '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0', '--admin-token-file', path.join(dir, 'token'),
    '--state-dir', path.join(dir, n), '--instance', n];
  [a, b] = await Promise.all([startCli(args('a'), SECRET_ENV), startCli(args('b'), SECRET_ENV)]);
});

afterAll(async () => {
  clearInterval(heartbeat);
  await Promise.all([a?.stop(), b?.stop()]);
  await rm(dir, { recursive: true, force: true });
});

describe('GSLB answers from site health', () => {
  it('answers per allDown before the first report, never pretending all is up', async () => {
    // web: allDown all -> the failover order over every member, with the degraded TTL
    expect((await answer(a, 'www')).answer).toEqual(['www.gslb.test. 5 IN A 192.0.2.1']);
    // nod: allDown nodata -> NODATA with the SOA
    const nod = await answer(a, 'nod');
    expect(nod.status).toBe('NOERROR');
    expect(nod.answer).toEqual([]);
    expect(nod.authority).toEqual([SOA]);
    // shop: allDown pool:sorry -> the sorry pool (itself allDown all)
    expect((await answer(a, 'shop')).answer).toEqual(['shop.gslb.test. 5 IN A 192.0.2.99']);
  });

  it('follows reports: up, then a member down moves traffic at once', async () => {
    await sync();
    heartbeat = setInterval(() => { void sync().catch(() => {}); }, 500);
    expect((await answer(a, 'www')).answer).toEqual(['www.gslb.test. 20 IN A 192.0.2.1']);
    expect((await answer(a, 'www', 'AAAA')).answer).toEqual(['www.gslb.test. 20 IN AAAA 2001:db8::1']);
    set('tokyo', '192.0.2.1', 'down');
    const t0 = performance.now();
    await sync();
    // no polling: the very next query already sees the change
    const r = await answer(a, 'www');
    console.log(`report-to-answer: ${(performance.now() - t0).toFixed(1)} ms including two HTTP posts per site and one dig`);
    expect(r.answer).toEqual(['www.gslb.test. 5 IN A 192.0.2.2']);
    expect((await answer(a, 'www', 'AAAA')).answer).toEqual(['www.gslb.test. 5 IN AAAA 2001:db8::1']);
    set('tokyo', '192.0.2.1', 'up');
    await sync();
    expect((await answer(a, 'www')).answer).toEqual(['www.gslb.test. 20 IN A 192.0.2.1']);
  });

  it('serves other types at a GSLB name from the zone, NODATA when there are none, and CNAMEs into pools', async () => {
    expect((await answer(a, 'www', 'TXT')).answer).toEqual(['www.gslb.test. 300 IN TXT "served by the web pool"']);
    const mx = await answer(a, 'www', 'MX');
    expect(mx.answer).toEqual([]);
    expect(mx.authority).toEqual([SOA]);
    expect((await answer(a, 'alias')).answer).toEqual(['alias.gslb.test. 300 IN CNAME www.gslb.test.', 'www.gslb.test. 20 IN A 192.0.2.1']);
  });

  it('allDown first-tier, nodata and pool:<name>', async () => {
    set('tokyo', '192.0.2.21', 'down');
    set('osaka', '192.0.2.22', 'down');
    set('tokyo', '192.0.2.31', 'down');
    set('tokyo', '192.0.2.41', 'down');
    await sync();
    expect((await answer(a, 'first')).answer).toEqual(['first.gslb.test. 5 IN A 192.0.2.21']);
    expect((await answer(a, 'nod')).authority).toEqual([SOA]);
    expect((await answer(a, 'shop')).answer).toEqual(['shop.gslb.test. 5 IN A 192.0.2.99']);
    set('osaka', '192.0.2.22', 'up');
    await sync();
    expect((await answer(a, 'first')).answer).toEqual(['first.gslb.test. 5 IN A 192.0.2.22']);
    for (const m of ['192.0.2.21', '192.0.2.31', '192.0.2.41']) set('tokyo', m, 'up');
    await sync();
    expect((await answer(a, 'shop')).answer).toEqual(['shop.gslb.test. 20 IN A 192.0.2.41']);
  });

  it('topology: the matched site wins and the ECS scope is the matched prefix', async () => {
    const tokyo = await answer(a, 'geo', 'A', ['+subnet=198.51.100.77/32']);
    expect(tokyo.answer).toEqual(['geo.gslb.test. 20 IN A 192.0.2.11']);
    expect(tokyo.opt!.ecs).toBe('198.51.100.77/32/24');
    const osaka = await answer(a, 'geo', 'A', ['+subnet=203.0.113.0/24']);
    expect(osaka.answer).toEqual(['geo.gslb.test. 20 IN A 192.0.2.12']);
    expect(osaka.opt!.ecs).toBe('203.0.113.0/24/24');
    const v6 = await answer(a, 'geo', 'A', ['+subnet=2001:db8:100:1200::/56']);
    expect(v6.answer).toEqual(['geo.gslb.test. 20 IN A 192.0.2.11']);
    expect(v6.opt!.ecs).toBe('2001:db8:100:1200::/56/48');
    // no site matches: the fallback holds only for the client's own subnet
    const other = await answer(a, 'geo', 'A', ['+subnet=10.1.0.0/16']);
    expect(other.answer).toHaveLength(1);
    expect(other.opt!.ecs).toBe('10.1.0.0/16/16');
    // without ECS the source address (127.0.0.1) decides: no site matches, no ECS in the reply
    expect((await answer(a, 'geo')).opt!.ecs).toBeUndefined();
    set('tokyo', '192.0.2.11', 'down');
    await sync();
    expect((await answer(a, 'geo', 'A', ['+subnet=198.51.100.0/24'])).answer).toEqual(['geo.gslb.test. 5 IN A 192.0.2.12']);
    set('tokyo', '192.0.2.11', 'up');
    await sync();
  });

  it('hashed: a client subnet keeps its member, scope /24', async () => {
    const first = await answer(a, 'hash', 'A', ['+subnet=192.0.2.0/24']);
    expect(first.opt!.ecs).toBe('192.0.2.0/24/24');
    for (let i = 0; i < 3; i++) {
      expect((await answer(a, 'hash', 'A', ['+subnet=192.0.2.0/24'])).answer).toEqual(first.answer);
    }
  });

  it('refuses bad reports and applies nothing of them', async () => {
    const before = (await answer(a, 'www')).answer;
    const down = [{ address: '192.0.2.1', state: 'down' as const }];
    expect((await postReport(a.apiPort, 'tokyo', down, { secret: 'wrong-secret' })).status).toBe(401);
    expect((await postReport(a.apiPort, 'tokyo', down, { timestamp: Date.now() - 31_000 })).status).toBe(401);
    expect((await postReport(a.apiPort, 'tokyo', down, { timestamp: Date.now() + 31_000 })).status).toBe(401);
    expect((await postReport(a.apiPort, 'tokyo', down, { seq: 1 })).status).toBe(409);
    expect((await postReport(a.apiPort, 'tokyo', [{ address: '192.0.2.2', state: 'down' }])).status).toBe(422);
    expect((await postReport(a.apiPort, 'osaka', down, { secret: SECRET_ENV.GSLB_SECRET_TOKYO })).status).toBe(401);
    expect((await answer(a, 'www')).answer).toEqual(before);
    expect(nextSeq()).toBeGreaterThan(1);
  });

  it('two instances fed by the same agents give the same answers', async () => {
    for (const name of ['www', 'geo', 'hash', 'first', 'sorry']) {
      for (const subnet of ['198.51.100.0/24', '203.0.113.0/24', '192.0.2.0/24', '10.9.0.0/16']) {
        const ra = await answer(a, name, 'A', [`+subnet=${subnet}`]);
        const rb = await answer(b, name, 'A', [`+subnet=${subnet}`]);
        expect(rb.answer, `${name} ${subnet}`).toEqual(ra.answer);
        expect(rb.opt!.ecs).toBe(ra.opt!.ecs);
      }
    }
  });

  it('ctl drains a site on every instance, and they agree on the override digest', async () => {
    const servers = `http://127.0.0.1:${a.apiPort},http://127.0.0.1:${b.apiPort}`;
    process.env['GSLB_ADMIN_TOKEN'] = TOKEN;
    try {
      expect(await ctl(['--servers', servers, 'drain', 'site', 'tokyo'])).toBe(0);
      for (const cli of [a, b]) expect((await answer(cli, 'www')).answer).toEqual(['www.gslb.test. 5 IN A 192.0.2.2']);
      const states = await Promise.all([a, b].map(async (cli) => (await (await fetch(`http://127.0.0.1:${cli.apiPort}/api/v1/state`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      })).json()) as { overridesDigest: string }));
      expect(states[0]!.overridesDigest).toBe(states[1]!.overridesDigest);
      expect(await ctl(['--servers', servers, 'undrain', 'site', 'tokyo'])).toBe(0);
      for (const cli of [a, b]) expect((await answer(cli, 'www')).answer).toEqual(['www.gslb.test. 20 IN A 192.0.2.1']);
    } finally {
      delete process.env['GSLB_ADMIN_TOKEN'];
    }
  });

  it('a site without a valid report for staleAfter counts as down', async () => {
    set('tokyo', '192.0.2.1', 'down');
    await sync();
    expect((await answer(a, 'www')).answer).toEqual(['www.gslb.test. 5 IN A 192.0.2.2']);
    paused.osaka = true;
    const ev = await a.waitLog((l) => typeof l['msg'] === 'string' && (l['msg'] as string).startsWith('health: site-stale osaka'), 8000);
    expect(ev['level']).toBe(30);
    // osaka stale, tokyo's tier-1 member down: nothing serves, allDown all answers tier 1 first
    expect((await answer(a, 'www')).answer).toEqual(['www.gslb.test. 5 IN A 192.0.2.1']);
    paused.osaka = false;
    await sync();
    expect((await answer(a, 'www')).answer).toEqual(['www.gslb.test. 5 IN A 192.0.2.2']);
    set('tokyo', '192.0.2.1', 'up');
    await sync();
  });
});

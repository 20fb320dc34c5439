/**
 * A restart while a site's VIP is dead, on the real process with the real dig: with --state-dir
 * the instance restores what it knew and answers no dead address; without it, pools with nothing
 * known wait (SERVFAIL, startup: servfail) instead of failing open; /readyz; replayed reports from
 * before the restart are refused; the fail-open gauge and its log lines; a corrupt health.json.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli } from '../../helpers/cli.js';
import type { Cli } from '../../helpers/cli.js';
import { dig } from '../../helpers/dig.js';
import { SECRET_ENV, SECRETS } from '../../helpers/report.js';
import { signReport } from '../../../shared/protocol/signature.js';

const TOKEN = 'restart-health-token-0123456789';
const ZONE = `$ORIGIN restart.test.
$TTL 300
@       IN SOA ns1 hostmaster 1 3600 600 86400 60
        IN NS  ns1
ns1     IN A   192.0.2.53
`;
// staleAfter 30 s: the startup window and the restore horizon outlast any test step
const POOLS = `sites:
  tokyo: { secret: env:GSLB_SECRET_TOKYO, staleAfter: 30s }
  osaka: { secret: env:GSLB_SECRET_OSAKA, staleAfter: 30s }
pools:
  web:
    names: [www]
    policy: failover
    allDown: all
    members:
      - { site: tokyo, address: 192.0.2.1, tier: 1 }
      - { site: osaka, address: 192.0.2.2, tier: 2 }
  old:
    names: [old]
    policy: failover
    allDown: all
    startup: allDown
    members:
      - { site: tokyo, address: 192.0.2.11, tier: 1 }
      - { site: osaka, address: 192.0.2.12, tier: 2 }
`;
const DEAD = new Set(['192.0.2.1', '192.0.2.11']);

let dir: string;
const clis: Cli[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-restart-health-'));
  await mkdir(path.join(dir, 'zones'), { recursive: true });
  await writeFile(path.join(dir, 'zones', 'restart.test.zone'), ZONE);
  await writeFile(path.join(dir, 'zones', 'restart.test.gslb.yaml'), POOLS);
  await writeFile(path.join(dir, 'token'), TOKEN);
});

afterAll(async () => {
  await Promise.all(clis.map((c) => c.stop()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function start(stateDir?: string): Promise<Cli> {
  const args = ['--zones', path.join(dir, 'zones'), '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0',
    '--admin-token-file', path.join(dir, 'token'), ...(stateDir ? ['--state-dir', stateDir] : [])];
  const cli = await startCli(args, SECRET_ENV);
  clis.push(cli);
  return cli;
}

/** A signed report as an agent sends it, kept as bytes so it can be sent again later (a replay). */
interface Signed { body: string; headers: Record<string, string>; seq: number }
let seq = Date.now() * 1000;
function sign(site: 'tokyo' | 'osaka', members: [string, 'up' | 'down'][], opts: { seq?: number } = {}): Signed {
  const s = opts.seq ?? ++seq;
  const body = JSON.stringify({ site, agent: `${site}-lb1`, seq: s, sentAt: new Date().toISOString(),
    members: members.map(([address, state]) => ({ address, state, weight: 100 })) });
  const ts = String(Date.now());
  return { body, seq: s, headers: { 'content-type': 'application/json', 'x-gslb-timestamp': ts, 'x-gslb-signature': signReport(SECRETS[site], ts, body) } };
}

async function post(cli: Cli, r: Signed): Promise<{ status: number; error?: string }> {
  const res = await fetch(`http://127.0.0.1:${cli.apiPort}/api/v1/reports`, { method: 'POST', headers: r.headers, body: r.body });
  return { status: res.status, ...(res.status !== 200 ? { error: ((await res.json()) as { error: string }).error } : {}) };
}

/** tokyo's VIPs are dead, osaka's are up. */
const tokyoDead = (): Signed => sign('tokyo', [['192.0.2.1', 'down'], ['192.0.2.11', 'down']]);
const osakaUp = (): Signed => sign('osaka', [['192.0.2.2', 'up'], ['192.0.2.12', 'up']]);

/** `n` answers to `name`: the address, or the rcode when there is none. */
async function answers(cli: Cli, name: string, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await dig(cli.port, ['+norec', `${name}.restart.test`, 'A']);
    out.push(r.answer.length ? r.answer.map((l) => l.split(' ').at(-1)!).join(',') : r.status);
  }
  return out;
}

async function api(cli: Cli, p: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${cli.apiPort}${p}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return { status: res.status, body: await res.text() };
}

async function metric(cli: Cli, sample: string): Promise<number | undefined> {
  const line = (await api(cli, '/metrics')).body.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

/** Polls until `pred` holds (what a test waits for is an event, never a duration); fails after `ms`. */
async function until(what: string, pred: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('restart while a site is dead', () => {
  it('with --state-dir: the restored health serves at once, no dead answer, ready at once; replays refused', async () => {
    const stateDir = path.join(dir, 'state-a');
    const first = await start(stateDir);
    const dead = tokyoDead();
    expect(await post(first, dead)).toEqual({ status: 200 });
    expect(await post(first, osakaUp())).toEqual({ status: 200 });
    expect(await answers(first, 'www', 1)).toEqual(['192.0.2.2']);
    // the saver writes within a second of the change; then the process dies without a goodbye
    const file = path.join(stateDir, 'health.json');
    await until('health.json with both sites', async () => {
      const text = await readFile(file, 'utf8').catch(() => '');
      return text.includes('"osaka"') && text.includes('"tokyo"');
    });
    first.proc.kill('SIGKILL');
    await first.stop();

    const second = await start(stateDir);
    const got = await answers(second, 'www', 20);
    expect(got.filter((a) => DEAD.has(a))).toEqual([]);
    expect(got).toEqual(Array(20).fill('192.0.2.2'));
    expect(await answers(second, 'old', 5)).toEqual(Array(5).fill('192.0.2.12'));
    expect((await api(second, '/readyz')).status).toBe(200);
    const state = JSON.parse((await api(second, '/api/v1/state')).body) as {
      sites: { name: string; restored: boolean }[]; pools: { name: string; members: { address: string; status: string; restored: boolean }[] }[];
    };
    expect(state.sites.map((s) => [s.name, s.restored])).toEqual([['tokyo', true], ['osaka', true]]);
    expect(state.pools[0]!.members.map((m) => [m.address, m.status, m.restored])).toEqual([['192.0.2.1', 'down', true], ['192.0.2.2', 'up', true]]);

    // the report captured before the restart: signed before this instance started
    const replay = await post(second, dead);
    expect(replay.status).toBe(409);
    expect(replay.error).toContain('signed before this instance started');
    // signed afresh but with a seq the previous instance had accepted: the persisted seq refuses it
    const stale = await post(second, sign('tokyo', [['192.0.2.1', 'up']], { seq: dead.seq }));
    expect(stale.status).toBe(409);
    expect(stale.error).toContain(`not greater than the last accepted ${dead.seq}`);
    expect(await answers(second, 'www', 1)).toEqual(['192.0.2.2']);
    expect(await metric(second, 'gslb_reports_total{result="rejected",reason="before-start"}')).toBe(1);
    expect(await metric(second, 'gslb_reports_total{result="rejected",reason="replay"}')).toBe(1);
    await second.stop();
  });

  it('without --state-dir: SERVFAIL while nothing is known (startup: servfail), not ready; allDown pools warn once on entering and leaving', async () => {
    const captured = tokyoDead();
    const cli = await start();
    expect(await answers(cli, 'www', 10)).toEqual(Array(10).fill('SERVFAIL'));
    // the old behaviour, kept by `startup: allDown`: fails open to the dead tier-1 VIP
    expect(await answers(cli, 'old', 3)).toEqual(Array(3).fill('192.0.2.11'));
    const notReady = await api(cli, '/readyz');
    expect(notReady.status).toBe(503);
    expect(JSON.parse(notReady.body)).toEqual({ ready: false, waiting: [
      'site tokyo: no report since the start yet (stale after 30000 ms)',
      'site osaka: no report since the start yet (stale after 30000 ms)',
    ] });
    expect(await metric(cli, 'gslb_pool_startup_pending{pool="web"}')).toBe(1);
    expect(await metric(cli, 'gslb_pool_fail_open{pool="web"}')).toBe(0);
    expect(await metric(cli, 'gslb_pool_fail_open{pool="old"}')).toBe(1);

    // a report signed before this instance started is refused without any state dir
    const replay = await post(cli, captured);
    expect(replay.status).toBe(409);
    expect(replay.error).toContain('signed before this instance started');

    expect(await post(cli, tokyoDead())).toEqual({ status: 200 });
    expect(await post(cli, osakaUp())).toEqual({ status: 200 });
    expect(await answers(cli, 'www', 5)).toEqual(Array(5).fill('192.0.2.2'));
    expect(await answers(cli, 'old', 5)).toEqual(Array(5).fill('192.0.2.12'));
    expect((await api(cli, '/readyz')).status).toBe(200);
    expect(await metric(cli, 'gslb_pool_fail_open{pool="old"}')).toBe(0);
    expect(await metric(cli, 'gslb_pool_startup_pending{pool="web"}')).toBe(0);
    const warns = cli.lines.filter((l) => l['level'] === 40 && l['pool'] !== undefined).map((l) => l['msg']);
    expect(warns).toEqual(['pool old answers by allDown (all): no member serves', 'pool old no longer answers by allDown: a member serves again']);
    await cli.stop();
  });

  it('a corrupt health.json is ignored with a warning naming the file and what is wrong', async () => {
    const stateDir = path.join(dir, 'state-corrupt');
    await mkdir(stateDir, { recursive: true });
    await writeFile(path.join(stateDir, 'health.json'), '{"version":1,"sites":');
    const cli = await start(stateDir);
    const warn = await cli.waitLog((l) => typeof l['msg'] === 'string' && (l['msg'] as string).startsWith('health file ignored'));
    expect(warn['level']).toBe(40);
    expect(warn['file']).toBe(path.join(stateDir, 'health.json'));
    expect(warn['error']).toContain('not valid JSON');
    expect(await answers(cli, 'www', 2)).toEqual(['SERVFAIL', 'SERVFAIL']);
    // the next save replaces it
    expect(await post(cli, tokyoDead())).toEqual({ status: 200 });
    await until('health.json rewritten', async () => (await readFile(path.join(stateDir, 'health.json'), 'utf8')).includes('"tokyo"'));
    await cli.stop();
  });
});

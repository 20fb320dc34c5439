/**
 * Shared operator overrides with a real 3-member etcd cluster on loopback, two real gslb-dns
 * processes (`--overrides etcd://...`) and the real dig: an action through either instance is
 * in force on both; an instance that was down comes back with the current set before it answers;
 * one etcd member down changes nothing; all down keeps answers and refuses writes, until etcd is back.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctl } from '../../../dns/ctl.js';
import { runCli, startCli } from '../../helpers/cli.js';
import type { Cli } from '../../helpers/cli.js';
import { dig } from '../../helpers/dig.js';
import { startEtcdCluster } from '../../helpers/etcd.js';
import type { EtcdCluster } from '../../helpers/etcd.js';
import { postReport, SECRET_ENV } from '../../helpers/report.js';
import { ROOT } from '../../helpers/server.js';

const ZONES = path.join(ROOT, 'test/fixtures/gslb');
const TOKEN = 'etcd-test-admin-token-0123456789';
const OPS_TOKEN = 'etcd-test-ops-token-abcdefghijkl';
const TOKYO = ['192.0.2.1', '2001:db8::1', '192.0.2.11', '192.0.2.21', '192.0.2.31', '192.0.2.41', '192.0.2.51'];
const OSAKA = ['192.0.2.2', '2001:db8::2', '192.0.2.12', '192.0.2.22', '192.0.2.99', '192.0.2.52', '192.0.2.53'];

interface StateBody {
  overrides: { action: string; site: string; address?: string; actor?: string; reason?: string; at: string }[];
  overridesDigest: string;
  overridesStore: { kind: string; reachable: boolean; lastError: string | null; since: string; source: string; revision?: number };
}

let dir: string;
let cluster: EtcdCluster;
const instances: (Cli | undefined)[] = [undefined, undefined];
let heartbeat: NodeJS.Timeout | undefined;

function args(i: number, extra: string[] = []): string[] {
  return ['--zones', ZONES, '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0', '--instance', `dns-${i + 1}`,
    '--admin-token-file', path.join(dir, 'tokens'), '--state-dir', path.join(dir, `state-${i + 1}`),
    '--overrides', `etcd://${cluster.endpoints}/gslb-test/overrides`, ...extra];
}

async function start(i: number, extra: string[] = []): Promise<Cli> {
  const cli = await startCli(args(i, extra), SECRET_ENV);
  instances[i] = cli;
  return cli;
}

async function stop(i: number): Promise<void> {
  await instances[i]?.stop();
  instances[i] = undefined;
}

function cli(i: number): Cli {
  const c = instances[i];
  if (!c) throw new Error(`instance ${i + 1} is not running`);
  return c;
}

async function state(c: Cli): Promise<StateBody> {
  const res = await fetch(`http://127.0.0.1:${c.apiPort}/api/v1/state`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as StateBody;
}

async function admin(c: Cli, action: string, body: Record<string, unknown>, token = TOKEN): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${c.apiPort}/api/v1/admin/${action}`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function summary(s: StateBody): string[] {
  return s.overrides.map((o) => `${o.action} ${o.site}${o.address ? ` ${o.address}` : ''}`);
}

/** Polls until `check` passes (it throws while it does not), within the test's timeout. */
async function eventually<T>(check: () => Promise<T>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function first(c: Cli): Promise<string[]> {
  const r = await dig(c.port, ['+norec', '+short', 'first.gslb.test', 'A']);
  return r.raw.trim().split('\n').filter(Boolean);
}

async function reportAll(): Promise<void> {
  for (const c of instances) {
    if (!c) continue;
    await postReport(c.apiPort, 'tokyo', TOKYO.map((address) => ({ address, state: 'up' as const }))).catch(() => {});
    await postReport(c.apiPort, 'osaka', OSAKA.map((address) => ({ address, state: 'up' as const }))).catch(() => {});
  }
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-etcd-e2e-'));
  await writeFile(path.join(dir, 'tokens'), `# operators\nalice:${TOKEN}\nops-bot:${OPS_TOKEN}\n`);
  cluster = await startEtcdCluster(3);
  await start(0);
  await start(1);
  // the fake agents heartbeat every running instance
  heartbeat = setInterval(() => void reportAll(), 400);
  await reportAll();
}, 120_000);

afterAll(async () => {
  clearInterval(heartbeat);
  await Promise.all([stop(0), stop(1)]);
  await cluster?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('overrides in etcd', () => {
  it('an action through one instance is in force on the other (convergence printed)', async () => {
    await eventually(async () => expect(await first(cli(1))).toEqual(['192.0.2.21']));
    const t0 = performance.now();
    const r = await admin(cli(0), 'drain', { site: 'tokyo', address: '192.0.2.21', reason: 'convergence check' });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const s = await eventually(async () => {
      const st = await state(cli(1));
      expect(summary(st)).toEqual(['drain tokyo 192.0.2.21']);
      return st;
    });
    const ms = performance.now() - t0;
    process.stdout.write(`etcd convergence: admin action on instance 1 -> applied by instance 2 (state API) in ${ms.toFixed(1)} ms\n`);
    expect(s.overrides[0]).toMatchObject({ actor: 'alice', reason: 'convergence check' });
    expect(s.overridesStore).toMatchObject({ kind: 'etcd', reachable: true, source: 'store' });
    expect(await first(cli(1))).toEqual(['192.0.2.22']);
    expect((await state(cli(0))).overridesDigest).toBe(s.overridesDigest);

    const u = await admin(cli(1), 'undrain', { site: 'tokyo', address: '192.0.2.21' }, OPS_TOKEN);
    expect(u.status, JSON.stringify(u.body)).toBe(200);
    await eventually(async () => expect(summary(await state(cli(0)))).toEqual([]));
    await eventually(async () => expect(await first(cli(0))).toEqual(['192.0.2.21']));
  }, 60_000);

  it('ctl drain while instance 2 is down: instance 2 comes back drained, and ctl state agrees', async () => {
    const servers = () => instances.map((c) => (c ? `http://127.0.0.1:${c.apiPort}` : 'http://127.0.0.1:1')).join(',');
    const downUrl = `http://127.0.0.1:${cli(1).apiPort}`;
    await stop(1);
    let out = '';
    const code = await ctl(['--servers', `http://127.0.0.1:${cli(0).apiPort},${downUrl}`, 'drain', 'site', 'tokyo', '--reason', 'maintenance'], {
      stdout: (t) => { out += t; }, stderr: (t) => { out += t; }, env: { GSLB_ADMIN_TOKEN: TOKEN },
    });
    // the instance that was down could not be told, but the shared store was
    expect(code, out).toBe(1);
    expect(out).toMatch(/200 changed/);

    const back = await start(1);
    // read from etcd before the DNS listeners opened, and in force before any report reached it
    const read = back.lines.findIndex((l) => l['msg'] === 'operator overrides read from etcd');
    expect(read).toBeGreaterThanOrEqual(0);
    expect(read).toBeLessThan(back.lines.findIndex((l) => l['msg'] === 'listening'));
    const s = await state(back);
    expect(summary(s)).toEqual(['drain tokyo']);
    expect(s.overrides[0]).toMatchObject({ actor: 'alice', reason: 'maintenance' });
    await eventually(async () => expect(await first(back)).toEqual(['192.0.2.22']));
    let out2 = '';
    const code2 = await ctl(['--servers', servers(), 'state'], { stdout: (t) => { out2 += t; }, stderr: (t) => { out2 += t; }, env: { GSLB_ADMIN_TOKEN: TOKEN } });
    expect(code2, out2).toBe(0);
    expect(out2).toMatch(/all 2 instances agree/);
    expect(out2).toMatch(/overridesDigest=[0-9a-f]{64} store=etcd$/m);
    expect((await admin(back, 'undrain', { site: 'tokyo' })).status).toBe(200);
    await eventually(async () => expect(summary(await state(cli(0)))).toEqual([]));
  }, 60_000);

  it('one etcd member killed: writes still succeed and reach both instances', async () => {
    await cluster.kill(0);
    try {
      const r = await admin(cli(0), 'force-down', { site: 'osaka', address: '192.0.2.22', reason: 'one member down' });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      await eventually(async () => expect(summary(await state(cli(1)))).toEqual(['force-down osaka 192.0.2.22']));
      const u = await admin(cli(1), 'release', { site: 'osaka', address: '192.0.2.22' });
      expect(u.status, JSON.stringify(u.body)).toBe(200);
      await eventually(async () => expect(summary(await state(cli(0)))).toEqual([]));
    } finally {
      await cluster.restart(0);
    }
  }, 60_000);

  it('all etcd members killed: answers unchanged, writes refused, a restart starts from the cache; all recover', async () => {
    expect((await admin(cli(0), 'drain', { site: 'tokyo', address: '192.0.2.21', reason: 'before the outage' })).status).toBe(200);
    await eventually(async () => expect(await first(cli(1))).toEqual(['192.0.2.22']));
    for (let i = 0; i < 3; i++) await cluster.kill(i);

    for (const c of [cli(0), cli(1)]) {
      const s = await eventually(async () => {
        const st = await state(c);
        expect(st.overridesStore.reachable).toBe(false);
        return st;
      });
      expect(summary(s)).toEqual(['drain tokyo 192.0.2.21']);
      expect(s.overridesStore.lastError).toBeTruthy();
      expect(await first(c)).toEqual(['192.0.2.22']);
      const metrics = await (await fetch(`http://127.0.0.1:${c.apiPort}/metrics`)).text();
      expect(metrics).toMatch(/^gslb_overrides_store_up 0$/m);
      expect(metrics).toMatch(/^gslb_overrides_store_info\{kind="etcd"\} 1$/m);
    }
    let out = '';
    await ctl(['--servers', `http://127.0.0.1:${cli(0).apiPort}`, 'state'], { stdout: (t) => { out += t; }, stderr: (t) => { out += t; }, env: { GSLB_ADMIN_TOKEN: TOKEN } });
    expect(out).toMatch(/store=etcd \(UNREACHABLE: .+\)$/m);
    const refused = await admin(cli(0), 'undrain', { site: 'tokyo', address: '192.0.2.21' });
    expect(refused.status).toBe(503);
    expect(String(refused.body['error'])).toMatch(/^overrides store unreachable: /);
    expect(summary(await state(cli(0)))).toEqual(['drain tokyo 192.0.2.21']);

    // a restart while etcd is down starts with the cached set, and says so
    await stop(1);
    const back = await start(1, ['--overrides-wait', '1s']);
    const cached = await state(back);
    expect(summary(cached)).toEqual(['drain tokyo 192.0.2.21']);
    expect(cached.overridesStore).toMatchObject({ reachable: false, source: 'cache' });
    await eventually(async () => expect(await first(back)).toEqual(['192.0.2.22']));

    await cluster.restartAll();
    const back0 = performance.now();
    for (const c of [cli(0), cli(1)]) {
      await eventually(async () => expect((await state(c)).overridesStore).toMatchObject({ reachable: true, source: 'store' }), 30_000);
    }
    process.stdout.write(`etcd recovery: both instances reachable again ${(performance.now() - back0).toFixed(0)} ms after the cluster was healthy\n`);
    const w = await eventually(async () => {
      const r = await admin(cli(1), 'undrain', { site: 'tokyo', address: '192.0.2.21' });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r;
    });
    expect(w.body['changed']).toBe(true);
    await eventually(async () => expect(summary(await state(cli(0)))).toEqual([]));
    await eventually(async () => expect(await first(cli(0))).toEqual(['192.0.2.21']));
  }, 120_000);
});

describe('command line', () => {
  it.each([
    [['--overrides', 'http://127.0.0.1:2379/x'], /--overrides: expected etcd:\/\/HOST:PORT\[,HOST:PORT\.\.\.\]\/PREFIX/],
    [['--overrides', 'etcd://127.0.0.1:2379/x', '--overrides-wait', 'soon'], /--overrides-wait: expected a duration/],
  ])('refuses %j with exit 2', async (extra, message) => {
    const r = await runCli(['--zones', ZONES, '--listen', '127.0.0.1:0', ...extra]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('refuses a token file with a short or duplicate token, naming file:line', async () => {
    const file = path.join(dir, 'bad-tokens');
    await writeFile(file, `alice:${TOKEN}\nbob:${TOKEN}\n`);
    const r = await runCli(['--zones', ZONES, '--listen', '127.0.0.1:0', '--admin-token-file', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--admin-token-file: ${file}:2: the token of "bob" is also on line 1`);
  });
});

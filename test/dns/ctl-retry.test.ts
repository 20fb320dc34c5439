/**
 * `ctl --retry-for`, `--reason` and `--force` against real HTTP instances; the retry pauses run on
 * an injected clock, so the test never waits for the backoff.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { ctl } from '../../dns/ctl.js';
import type { CtlIo } from '../../dns/ctl.js';
import { createApiApp } from '../../dns/http/app.js';
import type { GslbState } from '../../dns/gslb/state.js';
import { GslbState as State } from '../../dns/gslb/state.js';
import type { PoolConfig } from '../../dns/gslb/model.js';
import { createClock, createGslbConfig, makeReport } from '../helpers/gslb-state-fixture.js';
import { freePort } from '../helpers/etcd.js';

const TOKEN = 'ctl-retry-token-0123456789';
const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

async function instance(port = 0, minServing?: number): Promise<{ url: string; state: GslbState }> {
  const c = createGslbConfig();
  const www = { ...c.pools.get('www')!, ...(minServing !== undefined ? { guard: { minServing } } : {}) } satisfies PoolConfig;
  const state = new State({ sites: c.sites, pools: new Map([['www', www]]), byName: new Map(www.names.map((n) => [n, www])) }, createClock().now);
  state.applyReport(makeReport('tokyo', 1));
  state.applyReport(makeReport('osaka', 1));
  const app = await createApiApp({
    state, adminToken: TOKEN, stateDir: undefined, instance: `dns-${port}`, logger: pino({ level: 'silent' }),
    dnsMetrics: () => ({ requests: [], responses: [], answers: [], fastPath: 0 }),
  });
  apps.push(app);
  await app.listen({ host: '127.0.0.1', port });
  const addr = app.server.address();
  return { url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : port}`, state };
}

async function run(argv: string[], extra: Partial<CtlIo> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await ctl(argv, { stdout: (t) => { out += t; }, stderr: (t) => { err += t; }, env: { GSLB_ADMIN_TOKEN: TOKEN }, ...extra });
  return { code, out, err };
}

/** A virtual clock whose sleep advances time at once and runs `onSleep` after each pause. */
function virtualTime(onSleep: (n: number) => Promise<void> = async () => {}): { io: Partial<CtlIo>; sleeps: number[] } {
  let t = 1_000_000;
  const sleeps: number[] = [];
  return {
    sleeps,
    io: {
      now: () => t,
      sleep: async (ms) => { sleeps.push(ms); t += ms; await onSleep(sleeps.length); },
    },
  };
}

describe('ctl --retry-for', () => {
  it('retries an instance that was down until it answers, and says what it did', async () => {
    const up = await instance();
    const port = await freePort();
    let late: { url: string; state: GslbState } | undefined;
    const { io, sleeps } = virtualTime(async (n) => { if (n === 2) late = await instance(port); });
    const down = `http://127.0.0.1:${port}`;
    const r = await run(['--servers', `${up.url},${down}`, '--retry-for', '10s', 'drain', 'site', 'osaka', '--reason', 'network work'], io);
    expect(r.code, r.out).toBe(0);
    expect(sleeps).toEqual([250, 500]);
    expect(r.out).toMatch(new RegExp(`^${up.url}\\s+200 changed overridesDigest=[0-9a-f]{64}$`, 'm'));
    expect(r.out).toMatch(new RegExp(`^${down}\\s+200 changed overridesDigest=[0-9a-f]{64} \\(unreachable at first: .*ECONNREFUSED.*; answered at attempt 3, after 750 ms\\)$`, 'm'));
    expect(r.out).toContain('drain site osaka: ok on all 2 instances');
    for (const i of [up, late!]) expect(i.state.listOverrides()).toMatchObject([{ action: 'drain', site: 'osaka', actor: 'admin', reason: 'network work' }]);
  });

  it('gives up at the deadline with a backoff (250 ms doubling, the last pause cut to the deadline)', async () => {
    const up = await instance();
    const down = `http://127.0.0.1:${await freePort()}`;
    const { io, sleeps } = virtualTime();
    const r = await run(['--servers', `${up.url},${down}`, '--retry-for', '2s', 'force-down', 'member', 'tokyo', '192.0.2.1'], io);
    expect(r.code).toBe(1);
    expect(sleeps).toEqual([250, 500, 1000, 250]);
    expect(r.out).toMatch(new RegExp(`^${down}\\s+error: .*ECONNREFUSED.* \\(gave up after 5 attempts over --retry-for 2.0 s\\)$`, 'm'));
    expect(r.out).toContain('force-down member tokyo 192.0.2.1: FAILED on 1 of 2 instances');
  });

  it('does not retry HTTP refusals, nor without --retry-for', async () => {
    const up = await instance(0, 3);
    const { io, sleeps } = virtualTime();
    const r = await run(['--servers', up.url, '--retry-for', '5s', 'drain', 'site', 'tokyo'], io);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/409 error: refused by guard: pool www needs 3 serving members/);
    const none = await run(['--servers', `http://127.0.0.1:${await freePort()}`, 'drain', 'site', 'tokyo'], io);
    expect(none.code).toBe(1);
    expect(sleeps).toEqual([]);
  });
});

describe('ctl --force --reason', () => {
  it('passes the guard when forced with a reason, and says so', async () => {
    const up = await instance(0, 3);
    const r = await run(['--servers', up.url, '--force', '--reason', 'replacing the switch', 'drain', 'site', 'tokyo']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/200 changed FORCED past guard overridesDigest=/);
    expect(up.state.listOverrides()).toMatchObject([{ action: 'drain', site: 'tokyo', reason: 'replacing the switch' }]);
  });

  it('prints the warning of an action that leaves a pool with nothing serving', async () => {
    const up = await instance();
    expect((await run(['--servers', up.url, 'drain', 'site', 'tokyo'])).code).toBe(0);
    const r = await run(['--servers', up.url, 'drain', 'site', 'osaka']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^\s+warning: pool www is left with no serving member: it answers per allDown \(all: .*\)$/m);
  });

  it.each([
    ['--force without --reason', ['--force', 'drain', 'site', 'tokyo']],
    ['an empty --reason', ['--reason', ' ', 'drain', 'site', 'tokyo']],
    ['a bad --retry-for', ['--retry-for', 'soon', 'drain', 'site', 'tokyo']],
    ['--retry-for with state', ['--retry-for', '5s', 'state']],
  ])('usage error: %s', async (_name, argv) => {
    const r = await run(['--servers', 'http://127.0.0.1:1', ...argv]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^gslb-dns ctl: .+\nusage:/);
  });
});

describe('ctl --token-file', () => {
  it('accepts one name:token line (the server format) and refuses several', async () => {
    const up = await instance();
    const dir = await mkdtemp(path.join(tmpdir(), 'gslb-ctl-token-'));
    try {
      await writeFile(path.join(dir, 'one'), `# mine\nalice:${TOKEN}\n`);
      await writeFile(path.join(dir, 'two'), `alice:${TOKEN}\nbob:${TOKEN}x\n`);
      const r = await run(['--servers', up.url, '--token-file', path.join(dir, 'one'), 'state'], { env: {} });
      expect(r.code, r.out).toBe(0);
      const two = await run(['--servers', up.url, '--token-file', path.join(dir, 'two'), 'state'], { env: {} });
      expect(two.code).toBe(2);
      expect(two.err).toMatch(/holds 2 lines; ctl needs one token/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

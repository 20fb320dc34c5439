import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { ctl } from '../../dns/ctl.js';
import type { CtlIo } from '../../dns/ctl.js';
import { createApiApp } from '../../dns/http/app.js';
import { overridesDigest } from '../../dns/gslb/overrides-store.js';
import type { GslbState } from '../../dns/gslb/state.js';
import { createClock, createFixtureState, T0 } from '../helpers/gslb-state-fixture.js';

const TOKEN = 'ctl-test-token-0123456789';

interface Instance {
  app: FastifyInstance;
  state: GslbState;
  url: string;
}

async function startInstance(name: string, clockStart: number, stateDir?: string): Promise<Instance> {
  const clock = createClock(clockStart);
  const { state } = createFixtureState(clock);
  const app = await createApiApp({
    state, adminToken: TOKEN, stateDir, instance: name, logger: pino({ level: 'silent' }), now: clock.now,
    dnsMetrics: () => ({ requests: [], responses: [], answers: [], fastPath: 0 }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return { app, state, url: `http://127.0.0.1:${port}` };
}

/** Runs ctl with captured output and an environment of its own. */
async function run(argv: string[], env: Record<string, string | undefined> = { GSLB_ADMIN_TOKEN: TOKEN }, extra: Partial<CtlIo> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await ctl(argv, { stdout: (t) => { out += t; }, stderr: (t) => { err += t; }, env, ...extra });
  return { code, out, err };
}

let a: Instance;
let b: Instance;
let dir: string;
let tokenFile: string;
/** a port nothing listens on */
let deadUrl: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'gslb-ctl-'));
  tokenFile = path.join(dir, 'token');
  await writeFile(tokenFile, `${TOKEN}\n`);
  a = await startInstance('dns-a', T0, path.join(dir, 'a'));
  b = await startInstance('dns-b', T0 + 60_000, path.join(dir, 'b'));
  const dead = await startInstance('dns-dead', T0);
  deadUrl = dead.url;
  await dead.app.close();
});

afterAll(async () => {
  await a.app.close();
  await b.app.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  a.state.restoreOverrides([]);
  b.state.restoreOverrides([]);
});

describe('gslb-dns ctl', () => {
  it('drains a site on every instance; the digests agree', async () => {
    const r = await run(['--servers', `${a.url},${b.url}`, 'drain', 'site', 'tokyo']);
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(new RegExp(`^${a.url}\\s+200 changed overridesDigest=[0-9a-f]{64}$`));
    expect(lines[1]).toMatch(new RegExp(`^${b.url}\\s+200 changed overridesDigest=[0-9a-f]{64}$`));
    expect(lines[2]).toBe('drain site tokyo: ok on all 2 instances');
    for (const i of [a, b]) expect(i.state.listOverrides()).toMatchObject([{ action: 'drain', site: 'tokyo' }]);
    // different clocks, same digest
    expect(a.state.listOverrides()[0]!.at).not.toBe(b.state.listOverrides()[0]!.at);

    const st = await run(['--servers', a.url, '--servers', b.url, '--token-file', tokenFile, 'state'], {});
    expect(st.code).toBe(0);
    const digest = overridesDigest(a.state.listOverrides());
    expect(st.out).toContain(`${a.url}  instance=dns-a epoch=${a.state.view.epoch} overrides=1 overridesDigest=${digest}`);
    expect(st.out).toContain(`${b.url}  instance=dns-b epoch=${b.state.view.epoch} overrides=1 overridesDigest=${digest}`);
    expect(st.out).toContain('overridesDigest: all 2 instances agree');

    const again = await run(['--servers', `${a.url},${b.url}`, 'drain', 'site', 'tokyo']);
    expect(again.code).toBe(0);
    expect(again.out).toContain('200 unchanged');
  });

  it('forces a member down and releases it', async () => {
    const servers = `${a.url},${b.url}`;
    expect((await run(['--servers', servers, 'force-down', 'member', 'osaka', '198.51.100.1'])).code).toBe(0);
    for (const i of [a, b]) expect(i.state.listOverrides()).toMatchObject([{ action: 'force-down', site: 'osaka', address: '198.51.100.1' }]);
    const r = await run(['--servers', servers, 'release', 'member', 'osaka', '198.51.100.1']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('release member osaka 198.51.100.1: ok on all 2 instances');
    for (const i of [a, b]) expect(i.state.listOverrides()).toEqual([]);
  });

  it('reports the states of instances that disagree', async () => {
    a.state.admin('drain', { site: 'osaka' });
    const st = await run(['--servers', `${a.url},${b.url}`, 'state']);
    expect(st.code).toBe(1);
    expect(st.out).toContain('the instances DISAGREE');
  });

  it('exits 1 and prints the error when an instance is down, still applying the others', async () => {
    const r = await run(['--servers', `${a.url},${deadUrl}`, 'drain', 'site', 'osaka']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(new RegExp(`^${a.url}\\s+200 changed`, 'm'));
    expect(r.out).toMatch(new RegExp(`^${deadUrl}\\s+error: .*ECONNREFUSED`, 'm'));
    expect(r.out).toContain('drain site osaka: FAILED on 1 of 2 instances');
    expect(a.state.listOverrides()).toMatchObject([{ action: 'drain', site: 'osaka' }]);

    const st = await run(['--servers', `${a.url},${deadUrl}`, 'state']);
    expect(st.code).toBe(1);
    expect(st.out).toMatch(new RegExp(`^${deadUrl}\\s+error: .*ECONNREFUSED`, 'm'));
    expect(st.out).toContain('1 did not answer');
  });

  it('exits 1 with the HTTP status and error of a refusing instance', async () => {
    const r = await run(['--servers', a.url, 'drain', 'member', 'tokyo', '203.0.113.9']);
    expect(r.code).toBe(1);
    expect(r.out).toContain('404 error: no member 203.0.113.9 in site tokyo');
    const wrong = await run(['--servers', a.url, 'drain', 'site', 'tokyo'], { GSLB_ADMIN_TOKEN: 'nope' });
    expect(wrong.code).toBe(1);
    expect(wrong.out).toContain('401 error: unauthorized');
    expect(a.state.listOverrides()).toEqual([]);
  });

  it('gives up on an instance that does not answer within the timeout', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => { sockets.push(s); });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      const r = await run(['--servers', `${url},${a.url}`, 'undrain', 'site', 'tokyo'], { GSLB_ADMIN_TOKEN: TOKEN }, { timeoutMs: 300 });
      expect(r.code).toBe(1);
      expect(r.out).toMatch(new RegExp(`^${url}\\s+error: timed out after 300 ms$`, 'm'));
      expect(r.out).toMatch(new RegExp(`^${a.url}\\s+200 unchanged`, 'm'));
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it.each([
    ['no arguments', []],
    ['no servers', ['drain', 'site', 'tokyo']],
    ['no command', ['--servers', 'http://127.0.0.1:1']],
    ['unknown command', ['--servers', 'http://127.0.0.1:1', 'explode', 'site', 'tokyo']],
    ['unknown target kind', ['--servers', 'http://127.0.0.1:1', 'drain', 'pool', 'www']],
    ['member without address', ['--servers', 'http://127.0.0.1:1', 'drain', 'member', 'tokyo']],
    ['site with extra words', ['--servers', 'http://127.0.0.1:1', 'drain', 'site', 'tokyo', 'osaka']],
    ['state with extra words', ['--servers', 'http://127.0.0.1:1', 'state', 'now']],
    ['unknown option', ['--servers', 'http://127.0.0.1:1', '--force', 'state']],
    ['not a URL', ['--servers', 'ftp://127.0.0.1:1', 'state']],
    ['missing token file', ['--servers', 'http://127.0.0.1:1', '--token-file', '/nonexistent/token', 'state']],
  ])('usage error (%s) -> 2', async (_name, argv) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^gslb-dns ctl: .+\nusage:/);
    expect(r.out).toBe('');
  });

  it('needs a token from --token-file or GSLB_ADMIN_TOKEN', async () => {
    const r = await run(['--servers', a.url, 'state'], {});
    expect(r.code).toBe(2);
    expect(r.err).toContain('no admin token');
  });

  it('prints the usage for --help', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^usage:/);
  });
});

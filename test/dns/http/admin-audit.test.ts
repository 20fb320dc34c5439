/**
 * Guardrails and audit of the admin API: named tokens (the actor), reasons, pool guards (409
 * unless forced with a reason), who/why/when in GET /api/v1/state, one log line per action,
 * and the overrides store's state (503 when it cannot be written, metrics).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { createApiApp } from '../../../dns/http/app.js';
import type { ApiOptions } from '../../../dns/http/app.js';
import { createAdminAuth, parseAdminTokens } from '../../../shared/api-auth.js';
import type { OverrideStore } from '../../../dns/gslb/overrides-store.js';
import type { GslbConfig, PoolConfig } from '../../../dns/gslb/model.js';
import { GslbState } from '../../../dns/gslb/state.js';
import { createClock, createGslbConfig, makeReport, T0 } from '../../helpers/gslb-state-fixture.js';

const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdefgh';
const TOKENS = `# admin tokens\n\nalice:${ALICE}\nbob:${BOB}\n`;

describe('token file', () => {
  it('reads name:token lines, skipping blanks and comments', () => {
    expect(parseAdminTokens(TOKENS, 'tokens')).toEqual([{ name: 'alice', token: ALICE }, { name: 'bob', token: BOB }]);
  });

  it('reads a single bare token as "admin"', () => {
    expect(parseAdminTokens(`${ALICE}\n`)).toEqual([{ name: 'admin', token: ALICE }]);
  });

  it.each([
    ['', /tokens: admin token is empty/],
    ['# only a comment\n', /tokens: admin token is empty/],
    ['short', /tokens:1: the token must be at least 16 characters/],
    [`alice:${ALICE}\n${BOB}\n`, /tokens:2: expected name:token/],
    [`alice:${ALICE}\nbob:short\n`, /tokens:2: the token of "bob" must be at least 16/],
    [`alice:${ALICE}\n\nalice:${BOB}\n`, /tokens:3: name "alice" is also on line 1/],
    [`alice:${ALICE}\nbob:${ALICE}\n`, /tokens:2: the token of "bob" is also on line 1/],
  ])('refuses %j', (text, message) => {
    expect(() => parseAdminTokens(text, 'tokens')).toThrow(message);
  });

  it('names the actor of each token; wrong tokens are refused', () => {
    const auth = createAdminAuth(TOKENS);
    expect(auth(`Bearer ${ALICE}`)).toEqual({ ok: true, actor: 'alice' });
    expect(auth(`bearer  ${BOB} `)).toEqual({ ok: true, actor: 'bob' });
    expect(auth(`Bearer ${ALICE}x`)).toMatchObject({ ok: false, status: 401 });
    expect(auth(undefined)).toMatchObject({ ok: false, status: 401 });
  });
});

function guardedConfig(minServing: number): GslbConfig {
  const c = createGslbConfig();
  const www = { ...c.pools.get('www')!, guard: { minServing } } satisfies PoolConfig;
  return { sites: c.sites, pools: new Map([['www', www]]), byName: new Map(www.names.map((n) => [n, www])) };
}

interface Ctx {
  app: FastifyInstance;
  state: GslbState;
  logs: Record<string, unknown>[];
}

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

async function setup(over: Partial<ApiOptions> = {}, minServing = 2): Promise<Ctx> {
  const clock = createClock();
  const state = new GslbState(guardedConfig(minServing), clock.now);
  state.applyReport(makeReport('tokyo', 1));
  state.applyReport(makeReport('osaka', 1));
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => { logs.push(JSON.parse(s) as Record<string, unknown>); } });
  const app = await createApiApp({
    state, adminToken: TOKENS, stateDir: undefined, instance: 'dns-a', logger, now: clock.now,
    dnsMetrics: () => ({ requests: [], responses: [], answers: [], fastPath: 0 }), ...over,
  });
  apps.push(app);
  return { app, state, logs };
}

function admin(ctx: Ctx, action: string, body: unknown, token = ALICE): Promise<LightMyRequestResponse> {
  return ctx.app.inject({
    method: 'POST', url: `/api/v1/admin/${action}`,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, payload: JSON.stringify(body),
  });
}

async function stateBody(ctx: Ctx): Promise<Record<string, unknown>> {
  const res = await ctx.app.inject({ method: 'GET', url: '/api/v1/state', headers: { authorization: `Bearer ${BOB}` } });
  expect(res.statusCode).toBe(200);
  return res.json();
}

describe('admin actions: who, why, guard', () => {
  it('records actor, reason and time; one log line per action', async () => {
    const ctx = await setup();
    const res = await admin(ctx, 'drain', { site: 'tokyo', address: '192.0.2.1', reason: 'kernel update' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ ok: true, changed: true, forced: false });
    const st = await stateBody(ctx);
    expect(st['overrides']).toEqual([{ action: 'drain', site: 'tokyo', address: '192.0.2.1', at: new Date(T0).toISOString(), actor: 'alice', reason: 'kernel update' }]);
    expect(st['overridesStore']).toMatchObject({ kind: 'memory', reachable: true, lastError: null, source: 'store' });
    const lines = ctx.logs.filter((l) => l['msg'] === 'admin action');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ actor: 'alice', reason: 'kernel update', action: 'drain', site: 'tokyo', address: '192.0.2.1', forced: false, changed: true });
    // the event ring says who, too
    expect(JSON.stringify(st['events'])).toContain('alice; reason: kernel update');
  });

  it('answers 409 naming the pool when the guard would be breached; nothing changes', async () => {
    const ctx = await setup();
    const res = await admin(ctx, 'drain', { site: 'tokyo', reason: 'rack move' }, BOB);
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ breaches: [{ pool: 'www', minServing: 2, servingNow: 3, servingAfter: 1 }] });
    expect(res.json<{ error: string }>().error).toMatch(/pool www needs 2 serving members/);
    expect(ctx.state.listOverrides()).toEqual([]);
    expect(ctx.logs.filter((l) => l['msg'] === 'admin action refused')[0]).toMatchObject({ actor: 'bob', status: 409, site: 'tokyo' });
  });

  it('"force": true needs a reason (400), and with one passes the guard, logged as forced', async () => {
    const ctx = await setup();
    const no = await admin(ctx, 'drain', { site: 'tokyo', force: true });
    expect(no.statusCode).toBe(400);
    expect(no.json<{ error: string }>().error).toMatch(/"force": true needs a "reason"/);
    const blank = await admin(ctx, 'drain', { site: 'tokyo', force: true, reason: '  ' });
    expect(blank.statusCode).toBe(400);
    const yes = await admin(ctx, 'drain', { site: 'tokyo', force: true, reason: 'whole site on fire' });
    expect(yes.statusCode).toBe(200);
    expect(yes.json()).toMatchObject({ ok: true, changed: true, forced: true });
    expect(ctx.logs.filter((l) => l['msg'] === 'admin action').at(-1)).toMatchObject({ forced: true, reason: 'whole site on fire', actor: 'alice' });
    expect(ctx.state.listOverrides()[0]).toMatchObject({ actor: 'alice', reason: 'whole site on fire' });
  });

  it('warns in the answer and the log when an action leaves a pool with nothing serving', async () => {
    const ctx = await setup({}, 1);
    expect((await admin(ctx, 'drain', { site: 'tokyo' })).json()).toMatchObject({ ok: true, changed: true, warnings: [] });
    const res = await admin(ctx, 'drain', { site: 'osaka', force: true, reason: 'last one out' });
    expect(res.json()).toMatchObject({ ok: true, changed: true, forced: true, warnings: [expect.stringMatching(/^pool www is left with no serving member/)] });
    expect(ctx.logs.filter((l) => l['msg'] === 'admin action').at(-1)).toMatchObject({ warnings: [expect.stringMatching(/pool www/)] });
  });

  it('refuses unknown body keys and over-long reasons', async () => {
    const ctx = await setup();
    expect((await admin(ctx, 'drain', { site: 'tokyo', why: 'x' })).statusCode).toBe(400);
    expect((await admin(ctx, 'drain', { site: 'tokyo', reason: 'x'.repeat(501) })).statusCode).toBe(400);
    expect((await admin(ctx, 'drain', { site: 'tokyo', force: 'yes', reason: 'x' })).statusCode).toBe(400);
  });

  it('answers 503 and applies nothing when the overrides store cannot be written', async () => {
    const down: OverrideStore = {
      kind: 'etcd',
      start: async () => {},
      ready: () => true,
      apply: async () => ({ ok: false, status: 503, reason: 'overrides store unreachable: etcd http://127.0.0.1:1: connect ECONNREFUSED; nothing was changed' }),
      status: () => ({ kind: 'etcd', reachable: false, lastError: 'connect ECONNREFUSED', since: new Date(T0).toISOString(), source: 'store' }),
      close: async () => {},
    };
    const ctx = await setup({ overridesStore: down });
    const res = await admin(ctx, 'drain', { site: 'tokyo', address: '192.0.2.1' });
    expect(res.statusCode).toBe(503);
    expect(res.json<{ error: string }>().error).toMatch(/^overrides store unreachable: /);
    expect(ctx.state.listOverrides()).toEqual([]);
    expect((await stateBody(ctx))['overridesStore']).toMatchObject({ kind: 'etcd', reachable: false, lastError: 'connect ECONNREFUSED' });
    const metrics = (await ctx.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/^gslb_overrides_store_up 0$/m);
    expect(metrics).toMatch(/^gslb_overrides_store_info\{kind="etcd"\} 1$/m);
  });

  it('file store: a save that fails is 500 (applied in memory, logged), and is retried by the next action', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'gslb-audit-'));
    try {
      const blocker = path.join(dir, 'not-a-dir');
      await writeFile(blocker, 'x');
      const ctx = await setup({ stateDir: path.join(blocker, 'state') });
      const res = await admin(ctx, 'drain', { site: 'tokyo', address: '192.0.2.1' });
      expect(res.statusCode).toBe(500);
      expect(res.json<{ error: string }>().error).toMatch(/override applied in memory but not saved to /);
      expect(ctx.state.listOverrides()).toHaveLength(1);
      expect(ctx.logs.find((l) => l['msg'] === 'saving overrides failed')).toMatchObject({ actor: 'alice', status: 500 });
      expect((await stateBody(ctx))['overridesStore']).toMatchObject({ kind: 'file', lastError: expect.stringMatching(/ENOTDIR|EEXIST/) });
      // the next action (even a no-op) tries the save again
      expect((await admin(ctx, 'drain', { site: 'tokyo', address: '192.0.2.1' })).statusCode).toBe(500);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('metrics say the default store is up', async () => {
    const ctx = await setup();
    const metrics = (await ctx.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/^gslb_overrides_store_up 1$/m);
    expect(metrics).toMatch(/^gslb_overrides_store_info\{kind="memory"\} 1$/m);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { createApiApp } from '../../../dns/http/app.js';
import type { Explanation } from '../../../dns/gslb/explain.js';
import type { GslbConfig, PoolConfig, SiteConfig } from '../../../dns/gslb/model.js';
import { parsePrefix } from '../../../shared/ip.js';
import { GslbState } from '../../../dns/gslb/state.js';
import { createClock, createGslbConfig, makeReport } from '../../helpers/gslb-state-fixture.js';
import type { Clock } from '../../helpers/gslb-state-fixture.js';

const TOKEN = 'explain-test-token-0123456789';
const NAME = 'www.gslb.example.test';
const apps: FastifyInstance[] = [];

afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

interface Ctx {
  app: FastifyInstance;
  state: GslbState;
  clock: Clock;
}

/** The fixture config, or the same with topology over tokyo 10.1.0.0/16 and osaka 10.2.0.0/16. */
function config(topology = false): GslbConfig {
  const base = createGslbConfig();
  if (!topology) return base;
  const subnets: Record<string, string> = { tokyo: '10.1.0.0/16', osaka: '10.2.0.0/16' };
  const sites = new Map<string, SiteConfig>([...base.sites].map(([n, s]) => [n, { ...s, subnets: subnets[n] ? [parsePrefix(subnets[n])] : [] }]));
  const pool: PoolConfig = { ...base.pools.get('www')!, policy: 'topology' };
  return { sites, pools: new Map([['www', pool]]), byName: new Map(pool.names.map((n) => [n, pool])) };
}

async function setup(opts: { topology?: boolean; adminToken?: string | undefined } = {}): Promise<Ctx> {
  const clock = createClock();
  const state = new GslbState(config(opts.topology), clock.now);
  const app = await createApiApp({
    state, adminToken: 'adminToken' in opts ? opts.adminToken : TOKEN, stateDir: undefined, instance: 'dns-a',
    logger: pino({ level: 'silent' }), now: clock.now, dnsMetrics: () => ({ requests: [], responses: [], answers: [], fastPath: 0 }),
  });
  apps.push(app);
  return { app, state, clock };
}

function allUp(ctx: Ctx): void {
  expect(ctx.state.applyReport(makeReport('tokyo', 1)).ok).toBe(true);
  expect(ctx.state.applyReport(makeReport('osaka', 1)).ok).toBe(true);
}

async function get(ctx: Ctx, query: string, token: string | null = TOKEN): Promise<{ status: number; body: Explanation & { error?: string } }> {
  const res = await ctx.app.inject({ method: 'GET', url: `/api/v1/explain?${query}`, headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  return { status: res.statusCode, body: res.json() };
}

function reasons(e: Explanation): Record<string, string> {
  return Object.fromEntries(e.candidates.map((c) => [c.address, c.reason]));
}

describe('GET /api/v1/explain', () => {
  it('a healthy pool: every member eligible, the answer from them, the normal TTL', async () => {
    const ctx = await setup();
    allUp(ctx);
    const { status, body } = await get(ctx, `name=${NAME}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      name: `${NAME}.`, type: 'A', subnet: null, pool: 'www', policy: 'weighted', answeredBy: 'www',
      mode: 'normal', failOpen: false, allDown: 'all', rcode: 'NOERROR', ttl: 30, scope: 0, instance: 'dns-a',
    });
    expect(body.answers).toHaveLength(2);
    expect(body.candidates.map((c) => [c.site, c.address, c.eligible, c.reason])).toEqual([
      ['tokyo', '192.0.2.1', true, 'eligible'],
      ['tokyo', '192.0.2.2', true, 'eligible'],
      ['osaka', '198.51.100.1', true, 'eligible'],
    ]);
    expect(body.candidates.filter((c) => c.selected).map((c) => c.address).sort()).toEqual([...body.answers].sort());
  });

  it('a member down: not eligible, reason down, degraded TTL', async () => {
    const ctx = await setup();
    allUp(ctx);
    ctx.state.applyReport(makeReport('osaka', 2, [{ address: '198.51.100.1', state: 'down', weight: 0 }]));
    const { body } = await get(ctx, `name=${NAME}&type=a`);
    expect(body).toMatchObject({ mode: 'degraded', failOpen: false, ttl: 10 });
    expect([...body.answers].sort()).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(reasons(body)).toEqual({ '192.0.2.1': 'eligible', '192.0.2.2': 'eligible', '198.51.100.1': 'down' });
  });

  it('a drained site: the operator override with its actor and reason', async () => {
    const ctx = await setup();
    allUp(ctx);
    expect(ctx.state.admin('drain', { site: 'tokyo' }, { actor: 'alice', reason: 'maintenance' }).ok).toBe(true);
    const { body } = await get(ctx, `name=${NAME}`);
    expect(body.answers).toEqual(['198.51.100.1']);
    const tokyo = body.candidates.find((c) => c.address === '192.0.2.1')!;
    expect(tokyo).toMatchObject({ eligible: false, selected: false, reason: 'drained by operator', override: { action: 'drain', scope: 'site', actor: 'alice', reason: 'maintenance' } });
  });

  it('fail-open: every member down, allDown all answers with health ignored', async () => {
    const ctx = await setup();
    const down = (a: string): { address: string; state: 'down'; weight: number } => ({ address: a, state: 'down', weight: 0 });
    ctx.state.applyReport(makeReport('tokyo', 1, [down('192.0.2.1'), down('192.0.2.2')]));
    ctx.state.applyReport(makeReport('osaka', 1, [down('198.51.100.1')]));
    const { body } = await get(ctx, `name=${NAME}`);
    expect(body).toMatchObject({ mode: 'failOpen', failOpen: true, allDown: 'all', ttl: 10, rcode: 'NOERROR' });
    expect(body.answers).toHaveLength(2);
    expect(body.candidates.every((c) => c.eligible && c.reason === 'eligible (fail-open: health ignored; down)')).toBe(true);
  });

  it('startup: members not reported yet, SERVFAIL', async () => {
    const ctx = await setup();
    const { body } = await get(ctx, `name=${NAME}`);
    expect(body).toMatchObject({ mode: 'startup', rcode: 'SERVFAIL', answers: [], failOpen: false });
    expect(new Set(Object.values(reasons(body)))).toEqual(new Set(['no report or probe yet']));
  });

  it('AAAA of an IPv4-only pool: other family, NODATA by allDown', async () => {
    const ctx = await setup();
    allUp(ctx);
    const { body } = await get(ctx, `name=${NAME}&type=AAAA`);
    expect(body).toMatchObject({ type: 'AAAA', answers: [] });
    expect(new Set(Object.values(reasons(body)))).toEqual(new Set(['other family (IPv4)']));
  });

  it('topology: the client subnet picks the site; the others are not in its topology', async () => {
    const ctx = await setup({ topology: true });
    allUp(ctx);
    const { body } = await get(ctx, `name=${NAME}&subnet=10.2.3.0/24`);
    expect(body).toMatchObject({ policy: 'topology', subnet: '10.2.3.0/24', answers: ['198.51.100.1'], scope: 16 });
    expect(reasons(body)).toEqual({
      '192.0.2.1': "not in the client's topology (site osaka matches the client subnet)",
      '192.0.2.2': "not in the client's topology (site osaka matches the client subnet)",
      '198.51.100.1': 'eligible',
    });
    // no subnet: no site matches, failover over all candidates
    const none = await get(ctx, `name=${NAME}`);
    expect(none.body.answers).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(none.body.scope).toBe(0);
  });

  it('a name that is not a GSLB name is 404; bad parameters are 400 naming the parameter', async () => {
    const ctx = await setup();
    const nx = await get(ctx, 'name=static.gslb.example.test');
    expect(nx.status).toBe(404);
    expect(nx.body.error).toMatch(/^static\.gslb\.example\.test\. is not a GSLB name/);
    for (const [q, param] of [['', 'name'], [`name=${NAME}&type=MX`, 'type'], [`name=${NAME}&subnet=10.0.0.0/99`, 'subnet'],
      [`name=${NAME}&subnet=nope`, 'subnet'], [`name=${NAME}&name=x`, 'name']] as const) {
      const r = await get(ctx, q);
      expect(r.status, q).toBe(400);
      expect(r.body.error, q).toMatch(new RegExp(`^${param}: `));
    }
  });

  it('needs the same authorization as GET /api/v1/state', async () => {
    const ctx = await setup();
    const none = await ctx.app.inject({ method: 'GET', url: `/api/v1/explain?name=${NAME}` });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect((await get(ctx, `name=${NAME}`, 'wrong-token-0123456789')).status).toBe(401);
    const off = await setup({ adminToken: undefined });
    const r = await get(off, `name=${NAME}`);
    expect(r.status).toBe(403);
    expect(r.body.error).toBe('reading disabled: start with --read-token-file, --admin-token-file or --status-public');
  });
});

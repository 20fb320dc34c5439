import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { createApiApp } from '../../../dns/http/app.js';
import type { ApiOptions, DnsMetricsSnapshot } from '../../../dns/http/app.js';
import { loadOverrides, overridesDigest, saveOverrides } from '../../../dns/gslb/overrides-store.js';
import type { GslbState } from '../../../dns/gslb/state.js';
import { MAX_CLOCK_SKEW_MS, MAX_REPORT_BYTES } from '../../../shared/protocol/report.js';
import type { Report } from '../../../shared/protocol/report.js';
import {
  createClock, createFixtureState, makeReport, SECRETS, signedHeaders, T0,
} from '../../helpers/gslb-state-fixture.js';
import type { Clock } from '../../helpers/gslb-state-fixture.js';

const TOKEN = 'correct-horse-battery-staple';

const DNS: DnsMetricsSnapshot = {
  requests: [{ proto: 'udp', family: 'ipv4', type: 'A', value: 8 }, { proto: 'tcp', family: 'ipv6', type: 'other', value: 2 }],
  responses: [{ proto: 'udp', rcode: 'NOERROR', value: 7 }, { proto: 'tcp', rcode: 'NXDOMAIN', value: 2 }],
  duration: [{ proto: 'udp', counts: [1, 2, 3, 4, 5, 6, 7, 7, 7, 7, 7, 7, 7], sum: 0.5, count: 8 }],
  answers: [
    { pool: 'www', site: 'tokyo', address: '192.0.2.1', count: 4 },
    { pool: 'we"ird\\po\nol', site: 'osaka', address: '198.51.100.1', count: 1 },
  ],
  fastPath: 5,
  cache: { positive: { hits: 4, misses: 3, entries: 3 }, negative: { hits: 1, misses: 2, entries: 1, bytes: 356 } },
};

interface Ctx {
  app: FastifyInstance;
  state: GslbState;
  clock: Clock;
  logs: Record<string, unknown>[];
}

const apps: FastifyInstance[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'gslb-api-'));
  dirs.push(d);
  return d;
}

async function setup(over: Partial<ApiOptions> = {}, clock: Clock = createClock()): Promise<Ctx> {
  const { state } = createFixtureState(clock);
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => { logs.push(JSON.parse(s) as Record<string, unknown>); } });
  const app = await createApiApp({
    state, adminToken: TOKEN, stateDir: undefined, instance: 'dns-a', dnsMetrics: () => DNS, logger, now: clock.now, ...over,
  });
  apps.push(app);
  return { app, state, clock, logs };
}

function postReport(ctx: Ctx, report: Report | string, opts: { secret?: Buffer; ts?: number; headers?: Record<string, string | undefined> } = {}): Promise<LightMyRequestResponse> {
  const body = typeof report === 'string' ? report : JSON.stringify(report);
  const secret = opts.secret ?? (typeof report === 'string' ? SECRETS.tokyo : SECRETS[report.site as 'tokyo' | 'osaka'] ?? SECRETS.tokyo);
  const headers: Record<string, string> = { ...signedHeaders(body, secret, opts.ts ?? ctx.clock.now()) };
  for (const [k, v] of Object.entries(opts.headers ?? {})) {
    if (v === undefined) delete headers[k];
    else headers[k] = v;
  }
  return ctx.app.inject({ method: 'POST', url: '/api/v1/reports', headers, payload: body });
}

function admin(ctx: Ctx, action: string, body: unknown, token: string | null = TOKEN): Promise<LightMyRequestResponse> {
  return ctx.app.inject({
    method: 'POST',
    url: `/api/v1/admin/${action}`,
    headers: { 'content-type': 'application/json', ...(token !== null ? { authorization: `Bearer ${token}` } : {}) },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function getState(ctx: Ctx): Promise<Record<string, unknown> & { epoch: number; overridesDigest: string }> {
  const res = await ctx.app.inject({ method: 'GET', url: '/api/v1/state', headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.statusCode).toBe(200);
  return res.json();
}

/** The samples of a scrape, keyed by `name{labels}` exactly as written. */
async function scrape(ctx: Ctx): Promise<{ text: string; samples: Map<string, number> }> {
  const res = await ctx.app.inject({ method: 'GET', url: '/metrics' });
  expect(res.statusCode).toBe(200);
  const samples = new Map<string, number>();
  for (const line of res.body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    samples.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return { text: res.body, samples };
}

function memberOf(snapshot: unknown, address: string): Record<string, unknown> {
  const pools = (snapshot as { pools: { members: Record<string, unknown>[] }[] }).pools;
  const m = pools[0]!.members.find((x) => x['address'] === address);
  if (!m) throw new Error(`no member ${address}`);
  return m;
}

describe('POST /api/v1/reports: accepted', () => {
  it('applies a signed report, bumps the epoch, and a repeat with a new seq changes nothing', async () => {
    const ctx = await setup();
    const epoch0 = ctx.state.view.epoch;
    const res = await postReport(ctx, makeReport('tokyo', 1));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ accepted: true, changed: true, epoch: epoch0 + 1 });
    expect(ctx.state.view.epoch).toBe(epoch0 + 1);
    expect(ctx.state.view.pools.get('www')!.members.map((m) => m.up)).toEqual([true, true, false]);

    const again = await postReport(ctx, makeReport('tokyo', 2));
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual({ accepted: true, changed: false, epoch: epoch0 + 1 });
    expect(ctx.state.view.epoch).toBe(epoch0 + 1);

    const { samples } = await scrape(ctx);
    expect(samples.get('gslb_reports_total{result="accepted"}')).toBe(2);
  });

  it('accepts a timestamp exactly at the skew limit and a content type with parameters', async () => {
    const ctx = await setup();
    // a timestamp before the start is refused (before-start): let the instance run longer than the limit first
    ctx.clock.advance(MAX_CLOCK_SKEW_MS);
    expect((await postReport(ctx, makeReport('osaka', 1), { ts: ctx.clock.now() - MAX_CLOCK_SKEW_MS })).statusCode).toBe(200);
    const res = await postReport(ctx, makeReport('osaka', 2), { ts: ctx.clock.now() + MAX_CLOCK_SKEW_MS, headers: { 'content-type': 'application/json; charset=utf-8' } });
    expect(res.statusCode).toBe(200);
  });

  it('takes the site from X-GSLB-Site (new agents) or the body (old agents), whatever the key order', async () => {
    const ctx = await setup();
    expect((await postReport(ctx, makeReport('tokyo', 1), { headers: { 'x-gslb-site': 'tokyo' } })).statusCode).toBe(200);
    const r = makeReport('osaka', 1);
    const reordered = JSON.stringify({ members: r.members, agent: r.agent, seq: r.seq, sentAt: r.sentAt, site: r.site }, null, 1);
    expect((await postReport(ctx, reordered, { secret: SECRETS.osaka })).statusCode).toBe(200);
  });

  it('verifies the signature over the raw bytes, whitespace included', async () => {
    const ctx = await setup();
    const body = JSON.stringify(makeReport('tokyo', 1), null, 2);
    expect((await postReport(ctx, body)).statusCode).toBe(200);
  });
});

interface RejectCase {
  name: string;
  status: number;
  /** the gslb_reports_total reason label */
  reason: string;
  /** a fragment of the `error` body */
  error: string;
  send: (ctx: Ctx) => Promise<LightMyRequestResponse>;
}

const rejectCases: RejectCase[] = [
  {
    name: 'bad signature', status: 401, reason: 'bad-signature', error: 'bad signature',
    send: (ctx) => postReport(ctx, makeReport('tokyo', 10), { headers: { 'x-gslb-signature': `sha256=${'0'.repeat(64)}` } }),
  },
  {
    name: 'signed with the wrong secret', status: 401, reason: 'bad-signature', error: 'bad signature',
    send: (ctx) => postReport(ctx, makeReport('tokyo', 10), { secret: SECRETS.osaka }),
  },
  {
    name: 'body changed after signing', status: 401, reason: 'bad-signature', error: 'bad signature',
    send: (ctx) => {
      const body = JSON.stringify(makeReport('tokyo', 10));
      const headers = signedHeaders(body, SECRETS.tokyo, ctx.clock.now());
      return ctx.app.inject({ method: 'POST', url: '/api/v1/reports', headers, payload: body.replace('"up"', '"down"') });
    },
  },
  {
    name: 'missing timestamp header', status: 401, reason: 'missing-timestamp', error: 'missing timestamp',
    send: (ctx) => postReport(ctx, makeReport('tokyo', 10), { headers: { 'x-gslb-timestamp': undefined } }),
  },
  {
    name: 'timestamp not unix ms', status: 401, reason: 'bad-timestamp', error: 'bad timestamp',
    send: (ctx) => postReport(ctx, makeReport('tokyo', 10), { headers: { 'x-gslb-timestamp': '2024-01-01T00:00:00Z' } }),
  },
  {
    name: 'missing signature header', status: 401, reason: 'missing-signature', error: 'missing signature',
    send: (ctx) => postReport(ctx, makeReport('tokyo', 10), { headers: { 'x-gslb-signature': undefined } }),
  },
  {
    name: 'clock skew ahead > 30 s', status: 401, reason: 'clock-skew', error: 'clock skew',
    send: (ctx) => postReport(ctx, makeReport('tokyo', 10), { ts: ctx.clock.now() + MAX_CLOCK_SKEW_MS + 1 }),
  },
  {
    name: 'clock skew behind > 30 s', status: 401, reason: 'clock-skew', error: 'clock skew',
    send: (ctx) => postReport(ctx, makeReport('tokyo', 10), { ts: ctx.clock.now() - MAX_CLOCK_SKEW_MS - 1 }),
  },
  {
    // a report captured before a restart: authentic, within the skew limit, but older than this instance
    name: 'signed before this instance started', status: 409, reason: 'before-start', error: 'signed before this instance started',
    send: (ctx) => postReport(ctx, makeReport('tokyo', 10), { ts: ctx.state.startedAt - 1 }),
  },
  {
    name: 'replayed seq', status: 409, reason: 'replay', error: 'replay',
    send: (ctx) => postReport(ctx, makeReport('tokyo', 1, [{ address: '192.0.2.1', state: 'down', weight: 0 }])),
  },
  {
    name: 'foreign member', status: 422, reason: 'foreign-member', error: 'not configured in site tokyo',
    send: (ctx) => postReport(ctx, makeReport('tokyo', 10, [
      { address: '192.0.2.1', state: 'down', weight: 0 },
      { address: '198.51.100.1', state: 'up', weight: 100 },
    ])),
  },
  {
    name: 'unknown site', status: 404, reason: 'unknown-site', error: 'unknown site "kyoto"',
    send: (ctx) => postReport(ctx, { ...makeReport('tokyo', 10), site: 'kyoto' }),
  },
  {
    name: 'probe-only site', status: 401, reason: 'no-secret', error: 'site has no secret: it is probed, not reported',
    send: (ctx) => postReport(ctx, { ...makeReport('tokyo', 10), site: 'nagoya', members: [] }),
  },
  {
    name: 'schema violation', status: 400, reason: 'schema', error: '/members/0/state',
    send: (ctx) => postReport(ctx, JSON.stringify({ ...makeReport('tokyo', 10), members: [{ address: '192.0.2.1', state: 'sideways', weight: 0 }] })),
  },
  {
    name: 'unknown key', status: 400, reason: 'schema', error: '/extra',
    send: (ctx) => postReport(ctx, JSON.stringify({ ...makeReport('tokyo', 10), extra: true })),
  },
  {
    name: 'no site', status: 400, reason: 'schema', error: '/site',
    send: (ctx) => postReport(ctx, JSON.stringify([1, 2, 3])),
  },
  {
    name: 'bad JSON', status: 400, reason: 'bad-json', error: 'bad JSON',
    send: (ctx) => postReport(ctx, '{"site": "tokyo", '),
  },
  {
    name: 'empty body', status: 400, reason: 'bad-json', error: 'bad JSON',
    send: (ctx) => postReport(ctx, ''),
  },
  {
    name: 'X-GSLB-Site names another site than the body', status: 400, reason: 'site-mismatch', error: 'site mismatch',
    send: (ctx) => postReport(ctx, makeReport('osaka', 10), { secret: SECRETS.tokyo, headers: { 'x-gslb-site': 'tokyo' } }),
  },
  {
    // the first "site" picks the secret, JSON.parse keeps the last: signed for tokyo, never applied as osaka
    name: 'duplicate site key', status: 400, reason: 'site-mismatch', error: 'site mismatch',
    send: (ctx) => postReport(ctx, `${JSON.stringify({ ...makeReport('tokyo', 10), members: [] }).slice(0, -1)},"site":"osaka"}`),
  },
  {
    name: 'X-GSLB-Site too long to echo', status: 404, reason: 'unknown-site', error: `unknown site "${'k'.repeat(128)}..."`,
    send: (ctx) => postReport(ctx, makeReport('tokyo', 10), { headers: { 'x-gslb-site': 'k'.repeat(5000) } }),
  },
  {
    name: 'signed, site in the header only', status: 400, reason: 'schema', error: '/site',
    send: (ctx) => postReport(ctx, '[1,2,3]', { headers: { 'x-gslb-site': 'tokyo' } }),
  },
  {
    name: 'deeply nested, unsigned', status: 401, reason: 'bad-signature', error: 'bad signature',
    send: (ctx) => postReport(ctx, `{"site":"tokyo","x":${'['.repeat(400_000)}${']'.repeat(400_000)}}`, { headers: { 'x-gslb-signature': `sha256=${'0'.repeat(64)}` } }),
  },
  {
    name: 'nested deeper than a report, signed', status: 400, reason: 'too-deep', error: 'nested deeper',
    send: (ctx) => postReport(ctx, `{"site":"tokyo","x":${'['.repeat(100)}${']'.repeat(100)}}`),
  },
  {
    name: 'body over the limit', status: 413, reason: 'too-large', error: 'too large',
    send: (ctx) => {
      const r = makeReport('tokyo', 10);
      const body = JSON.stringify({ ...r, agent: r.agent + ' '.repeat(MAX_REPORT_BYTES) });
      return postReport(ctx, body);
    },
  },
  {
    name: 'not JSON', status: 415, reason: 'media-type', error: 'Unsupported Media Type',
    send: (ctx) => postReport(ctx, makeReport('tokyo', 10), { headers: { 'content-type': 'text/plain' } }),
  },
];

describe('POST /api/v1/reports: rejected', () => {
  it.each(rejectCases)('$name -> $status, state unchanged, counted', async (c) => {
    const ctx = await setup();
    expect((await postReport(ctx, makeReport('tokyo', 1))).statusCode).toBe(200);
    const before = JSON.stringify(ctx.state.snapshot());
    const epoch = ctx.state.view.epoch;

    const res = await c.send(ctx);
    expect(res.statusCode).toBe(c.status);
    const body = res.json<{ error: string }>();
    expect(Object.keys(body)).toEqual(['error']);
    expect(body.error).toContain(c.error);

    expect(ctx.state.view.epoch).toBe(epoch);
    expect(JSON.stringify(ctx.state.snapshot())).toBe(before);
    const { samples } = await scrape(ctx);
    expect(samples.get(`gslb_reports_total{result="rejected",reason="${c.reason}"}`)).toBe(1);
    expect(samples.get('gslb_reports_total{result="accepted"}')).toBe(1);
    const warn = ctx.logs.find((l) => l['msg'] === 'report rejected');
    expect(warn).toMatchObject({ level: 40, status: c.status });
    expect(String(warn!['reason'])).toContain(c.error);
  });

  it('logs the site of a refused report, and the agent once the body is authentic', async () => {
    const ctx = await setup();
    await postReport(ctx, makeReport('osaka', 1), { secret: SECRETS.tokyo });
    // an unsigned body is never parsed: its agent field is not read
    const forged = ctx.logs.find((l) => l['msg'] === 'report rejected');
    expect(forged).toMatchObject({ site: 'osaka', reason: 'bad signature' });
    expect(forged).not.toHaveProperty('agent');
    await postReport(ctx, JSON.stringify({ ...makeReport('tokyo', 1), extra: 1 }));
    expect(ctx.logs.filter((l) => l['msg'] === 'report rejected')[1]).toMatchObject({ site: 'tokyo', agent: 'tokyo-agent-1' });
  });
});

describe('admin API auth', () => {
  it('answers 403 on every admin route when no token is configured', async () => {
    const ctx = await setup({ adminToken: undefined });
    const st = await ctx.app.inject({ method: 'GET', url: '/api/v1/state', headers: { authorization: `Bearer ${TOKEN}` } });
    // reading is refused too: no admin, read token or --status-public
    expect(st.statusCode).toBe(403);
    expect(st.json()).toEqual({ error: 'reading disabled: start with --read-token-file, --admin-token-file or --status-public' });
    expect((await admin(ctx, 'drain', { site: 'tokyo' })).statusCode).toBe(403);
    const drain = await ctx.app.inject({ method: 'POST', url: '/api/v1/admin/drain', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, payload: { site: 'tokyo' } });
    expect(drain.json()).toEqual({ error: 'admin API disabled: start with --admin-token-file' });
    expect(ctx.state.listOverrides()).toEqual([]);
  });

  it('requires the right bearer token', async () => {
    const ctx = await setup();
    const none = await ctx.app.inject({ method: 'GET', url: '/api/v1/state' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect(none.json<{ error: string }>().error).toMatch(/^unauthorized/);
    const wrong = await ctx.app.inject({ method: 'GET', url: '/api/v1/state', headers: { authorization: 'Bearer nope' } });
    expect(wrong.statusCode).toBe(401);
    const basic = await ctx.app.inject({ method: 'GET', url: '/api/v1/state', headers: { authorization: `Basic ${TOKEN}` } });
    expect(basic.statusCode).toBe(401);
    expect((await admin(ctx, 'drain', { site: 'tokyo' }, 'nope')).statusCode).toBe(401);
    expect((await admin(ctx, 'drain', { site: 'tokyo' }, null)).statusCode).toBe(401);
    expect(ctx.state.listOverrides()).toEqual([]);

    const st = await getState(ctx);
    expect(st).toMatchObject({ instance: 'dns-a', epoch: ctx.state.view.epoch, overrides: [] });
    expect(st.overridesDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(st.overridesDigest).toBe(overridesDigest([]));
  });

  it('refuses an empty token rather than opening the admin API', async () => {
    await expect(setup({ adminToken: ' \n' })).rejects.toThrow(/empty/);
  });

  it('accepts a token read from a file with a trailing newline', async () => {
    const ctx = await setup({ adminToken: `${TOKEN}\n` });
    await getState(ctx);
  });
});

describe('admin actions', () => {
  it('drain / undrain / force-down / release for a site and a member, persisted', async () => {
    const dir = path.join(await tempDir(), 'nested', 'state');
    const ctx = await setup({ stateDir: dir });
    await postReport(ctx, makeReport('tokyo', 1));
    await postReport(ctx, makeReport('osaka', 1));
    expect(ctx.state.view.pools.get('www')!.members.map((m) => m.up)).toEqual([true, true, true]);
    const file = path.join(dir, 'overrides.json');
    const saved = async () => (JSON.parse(await readFile(file, 'utf8')) as { overrides: unknown[] }).overrides;

    let epoch = ctx.state.view.epoch;
    let res = await admin(ctx, 'drain', { site: 'tokyo' });
    expect(res.statusCode).toBe(200);
    const drained = res.json<{ ok: boolean; changed: boolean; overridesDigest: string }>();
    expect(drained).toMatchObject({ ok: true, changed: true });
    expect(ctx.state.view.epoch).toBe(epoch + 1);
    expect(ctx.state.view.pools.get('www')!.members.map((m) => m.up)).toEqual([false, false, true]);
    expect(memberOf(ctx.state.snapshot(), '192.0.2.1')['why']).toBe('drained by operator');
    expect(await saved()).toEqual([{ action: 'drain', site: 'tokyo', at: new Date(T0).toISOString(), actor: 'admin' }]);
    expect((await getState(ctx)).overridesDigest).toBe(drained.overridesDigest);

    res = await admin(ctx, 'drain', { site: 'tokyo' });
    expect(res.json()).toMatchObject({ ok: true, changed: false, overridesDigest: drained.overridesDigest });

    epoch = ctx.state.view.epoch;
    res = await admin(ctx, 'force-down', { site: 'osaka', address: '198.51.100.1' });
    expect(res.json()).toMatchObject({ ok: true, changed: true });
    expect(ctx.state.view.epoch).toBe(epoch + 1);
    expect(memberOf(ctx.state.snapshot(), '198.51.100.1')['why']).toBe('forced down by operator');
    expect(await saved()).toHaveLength(2);

    // undrain does not lift a force-down; release does
    res = await admin(ctx, 'undrain', { site: 'osaka', address: '198.51.100.1' });
    expect(res.json()).toMatchObject({ ok: true, changed: false });
    res = await admin(ctx, 'undrain', { site: 'tokyo' });
    expect(res.json()).toMatchObject({ ok: true, changed: true });
    expect(await saved()).toEqual([{ action: 'force-down', site: 'osaka', address: '198.51.100.1', at: new Date(T0).toISOString(), actor: 'admin' }]);
    res = await admin(ctx, 'release', { site: 'osaka', address: '198.51.100.1' });
    expect(res.json()).toMatchObject({ ok: true, changed: true, overridesDigest: overridesDigest([]) });
    expect(await saved()).toEqual([]);
    expect(ctx.state.view.pools.get('www')!.members.map((m) => m.up)).toEqual([true, true, true]);
  });

  it('survives a restart: a new state restored from the state dir has the same digest', async () => {
    const dir = await tempDir();
    const ctx = await setup({ stateDir: dir });
    expect((await admin(ctx, 'drain', { site: 'tokyo' })).statusCode).toBe(200);
    expect((await admin(ctx, 'force-down', { site: 'osaka', address: '198.51.100.1' })).statusCode).toBe(200);
    const digest = (await getState(ctx)).overridesDigest;

    const later = createClock(T0 + 3_600_000);
    const restarted = await setup({ stateDir: dir }, later);
    const dropped = restarted.state.restoreOverrides(await loadOverrides(dir));
    expect(dropped).toEqual([]);
    expect(restarted.state.listOverrides()).toEqual(ctx.state.listOverrides());
    expect((await getState(restarted)).overridesDigest).toBe(digest);
    expect(memberOf(restarted.state.snapshot(), '192.0.2.2')['why']).toBe('drained by operator');
  });

  it('digest depends on the overrides, not on when or in which order they were made', async () => {
    const a = await setup();
    const b = await setup({ instance: 'dns-b' }, createClock(T0 + 86_400_000));
    await admin(a, 'drain', { site: 'tokyo' });
    await admin(a, 'force-down', { site: 'osaka', address: '198.51.100.1' });
    await admin(b, 'force-down', { site: 'osaka', address: '198.51.100.1' });
    b.clock.advance(5000);
    await admin(b, 'drain', { site: 'tokyo' });
    expect(a.state.listOverrides()[0]!.at).not.toBe(b.state.listOverrides()[0]!.at);
    const [sa, sb] = [await getState(a), await getState(b)];
    expect(sa.overridesDigest).toBe(sb.overridesDigest);
    await admin(b, 'release', { site: 'tokyo' });
    expect((await getState(b)).overridesDigest).not.toBe(sa.overridesDigest);
  });

  it.each([
    ['unknown site', 'drain', { site: 'kyoto' }, 404, 'unknown site "kyoto"'],
    ['unknown member', 'force-down', { site: 'tokyo', address: '203.0.113.9' }, 404, 'no member 203.0.113.9 in site tokyo'],
    ['member of another site', 'drain', { site: 'tokyo', address: '198.51.100.1' }, 404, 'no member'],
    ['unknown key', 'drain', { site: 'tokyo', adress: '192.0.2.1' }, 400, '/adress'],
    ['missing site', 'drain', { address: '192.0.2.1' }, 400, '/site'],
    ['site not a string', 'release', { site: 7 }, 400, '/site'],
    ['bad JSON', 'drain', '{"site":', 400, 'bad JSON'],
  ] as const)('%s -> %i', async (_name, action, body, status, error) => {
    const dir = await tempDir();
    const ctx = await setup({ stateDir: dir });
    const epoch = ctx.state.view.epoch;
    const res = await admin(ctx, action, body);
    expect(res.statusCode).toBe(status);
    expect(res.json<{ error: string }>().error).toContain(error);
    expect(ctx.state.listOverrides()).toEqual([]);
    expect(ctx.state.view.epoch).toBe(epoch);
    expect(await loadOverrides(dir)).toEqual([]);
  });

  it('answers 404 for an unknown action', async () => {
    const ctx = await setup();
    expect((await admin(ctx, 'explode', { site: 'tokyo' })).statusCode).toBe(404);
  });
});

describe('overrides store', () => {
  it('reads nothing from a missing file and round-trips a saved list', async () => {
    const dir = await tempDir();
    expect(await loadOverrides(dir)).toEqual([]);
    const list = [
      { action: 'drain' as const, site: 'tokyo', at: '2024-01-01T00:00:00.000Z' },
      { action: 'force-down' as const, site: 'osaka', address: '198.51.100.1', at: '2024-01-01T00:00:01.000Z' },
    ];
    await saveOverrides(dir, list);
    expect(await loadOverrides(dir)).toEqual(list);
  });

  it.each([
    ['not JSON', '{"version":1,', /not valid JSON/],
    ['wrong shape', '[]', /expected \{"version":1/],
    ['bad action', '{"version":1,"overrides":[{"action":"nuke","site":"tokyo","at":"x"}]}', /\/overrides\/0\/action/],
    ['unknown key', '{"version":1,"overrides":[{"action":"drain","site":"tokyo","at":"x","why":"?"}]}', /\/overrides\/0\/why/],
  ])('throws on a corrupt file (%s), naming the file', async (_name, text, what) => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'overrides.json'), text);
    const err = await loadOverrides(dir).then(() => undefined, (e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toContain(path.join(dir, 'overrides.json'));
    expect(err!.message).toMatch(what);
  });
});

describe('GET /metrics', () => {
  it('writes Prometheus text format 0.0.4 with HELP/TYPE lines and escaped labels', async () => {
    const ctx = await setup();
    await postReport(ctx, makeReport('tokyo', 1, [
      { address: '192.0.2.1', state: 'up', weight: 100 },
      { address: '192.0.2.2', state: 'down', weight: 0 },
    ]));
    await postReport(ctx, makeReport('tokyo', 1));
    const res = await ctx.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const { text, samples } = await scrape(ctx);

    for (const [name, type] of [
      ['gslb_dns_requests_total', 'counter'], ['gslb_dns_responses_total', 'counter'], ['gslb_dns_request_duration_seconds', 'histogram'],
      ['gslb_dns_answers_total', 'counter'], ['gslb_reports_total', 'counter'], ['gslb_report_apply_latency_seconds', 'histogram'],
      ['gslb_site_report_age_seconds', 'gauge'], ['gslb_dns_build_info', 'gauge'], ['process_cpu_seconds_total', 'counter'],
      ['gslb_member_up', 'gauge'], ['gslb_member_status', 'gauge'], ['gslb_health_epoch', 'gauge'], ['gslb_dns_fast_path_total', 'counter'],
      ['gslb_dns_cache_hits_total', 'counter'], ['gslb_dns_cache_misses_total', 'counter'], ['gslb_dns_cache_entries', 'gauge'],
    ] as const) {
      expect(text).toMatch(new RegExp(`^# HELP ${name} \\S.*$`, 'm'));
      expect(text).toContain(`\n# TYPE ${name} ${type}\n`);
    }
    const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\["\\n])*",?)*\})? (-?[0-9.e+-]+|NaN|Nan|[+-]Inf)$/;
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
      expect(line).toMatch(sample);
    }
    expect(text.endsWith('\n')).toBe(true);

    expect(samples.get('gslb_dns_requests_total{proto="udp",family="ipv4",type="A"}')).toBe(8);
    expect(samples.get('gslb_dns_requests_total{proto="tcp",family="ipv6",type="other"}')).toBe(2);
    expect(samples.get('gslb_dns_responses_total{proto="udp",rcode="NOERROR"}')).toBe(7);
    expect(samples.get('gslb_dns_responses_total{proto="tcp",rcode="NXDOMAIN"}')).toBe(2);
    expect(samples.get('gslb_dns_request_duration_seconds_bucket{proto="udp",le="0.000005"}')).toBe(1);
    expect(samples.get('gslb_dns_request_duration_seconds_bucket{proto="udp",le="+Inf"}')).toBe(8);
    expect(samples.get('gslb_dns_request_duration_seconds_count{proto="udp"}')).toBe(8);
    expect(samples.get('gslb_dns_request_duration_seconds_sum{proto="udp"}')).toBe(0.5);
    expect(samples.get(`gslb_dns_build_info{version="0.1.0",nodejs="${process.version}"}`)).toBe(1);
    expect(samples.get('process_cpu_seconds_total')).toBeGreaterThan(0);
    // one accepted report, signed at the instance's clock: observed with latency 0
    expect(samples.get('gslb_report_apply_latency_seconds_count')).toBe(1);
    expect(samples.get('gslb_report_apply_latency_seconds_bucket{le="0.001"}')).toBe(1);
    expect(samples.get('gslb_site_report_age_seconds{site="tokyo"}')).toBe(0);
    expect(samples.has('gslb_site_report_age_seconds{site="nagoya"}')).toBe(false);
    expect(samples.get('gslb_dns_fast_path_total')).toBe(5);
    expect(samples.get('gslb_dns_cache_hits_total{budget="positive"}')).toBe(4);
    expect(samples.get('gslb_dns_cache_misses_total{budget="negative"}')).toBe(2);
    expect(samples.get('gslb_dns_cache_entries{budget="negative"}')).toBe(1);
    expect(samples.get('gslb_dns_cache_bytes{budget="negative"}')).toBe(356);
    expect(samples.get('gslb_dns_answers_total{pool="www",site="tokyo",address="192.0.2.1"}')).toBe(4);
    expect(samples.get('gslb_dns_answers_total{pool="we\\"ird\\\\po\\nol",site="osaka",address="198.51.100.1"}')).toBe(1);
    expect(samples.get('gslb_member_up{site="tokyo",address="192.0.2.1"}')).toBe(1);
    expect(samples.get('gslb_member_up{site="tokyo",address="192.0.2.2"}')).toBe(0);
    expect(samples.get('gslb_member_up{site="osaka",address="198.51.100.1"}')).toBe(0);
    expect(samples.get('gslb_member_status{site="tokyo",address="192.0.2.2",status="down"}')).toBe(1);
    expect(samples.get('gslb_member_status{site="tokyo",address="192.0.2.2",status="up"}')).toBe(0);
    expect(samples.get('gslb_member_status{site="osaka",address="198.51.100.1",status="unknown"}')).toBe(1);
    expect(samples.get('gslb_health_epoch')).toBe(ctx.state.view.epoch);
    expect(samples.get('gslb_reports_total{result="accepted"}')).toBe(1);
    expect(samples.get('gslb_reports_total{result="rejected",reason="replay"}')).toBe(1);
  });

  it('needs no token', async () => {
    const ctx = await setup({ adminToken: undefined });
    expect((await ctx.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
  });

  it('observes the report apply latency from the signed timestamp, clamped at 0 when the agent clock is ahead', async () => {
    const ctx = await setup();
    ctx.clock.advance(5_000);
    await postReport(ctx, makeReport('tokyo', 1), { ts: ctx.clock.now() - 1_500 });
    await postReport(ctx, makeReport('tokyo', 2), { ts: ctx.clock.now() + 2_000 });
    const { samples } = await scrape(ctx);
    expect(samples.get('gslb_report_apply_latency_seconds_count')).toBe(2);
    expect(samples.get('gslb_report_apply_latency_seconds_sum')).toBe(1.5);
    expect(samples.get('gslb_report_apply_latency_seconds_bucket{le="0.001"}')).toBe(1);
    expect(samples.get('gslb_report_apply_latency_seconds_bucket{le="2.5"}')).toBe(2);
  });

  it('lists the request-duration family without samples when it is off', async () => {
    const { duration: _, ...off } = DNS;
    const ctx = await setup({ dnsMetrics: () => off });
    const { text } = await scrape(ctx);
    expect(text).toContain('\n# TYPE gslb_dns_request_duration_seconds histogram\n');
    expect(text).not.toContain('gslb_dns_request_duration_seconds_bucket');
  });
});

describe('GET /metrics: pools answering by allDown', () => {
  it('gslb_pool_fail_open and gslb_pool_startup_pending follow what the selector would answer', async () => {
    const ctx = await setup();
    const gauges = async () => {
      const { text, samples } = await scrape(ctx);
      expect(text).toContain('\n# TYPE gslb_pool_fail_open gauge\n');
      expect(text).toContain('\n# TYPE gslb_pool_startup_pending gauge\n');
      return [samples.get('gslb_pool_fail_open{pool="www"}'), samples.get('gslb_pool_startup_pending{pool="www"}')];
    };
    // nothing known yet: the pool waits (startup: servfail), which is not fail-open
    expect(await gauges()).toEqual([0, 1]);
    await postReport(ctx, makeReport('tokyo', 1, [{ address: '192.0.2.1', state: 'up', weight: 100 }]));
    // two answers of three members: the second would be osaka's, which has not reported yet
    expect(await gauges()).toEqual([0, 1]);
    await postReport(ctx, makeReport('osaka', 1, [{ address: '198.51.100.1', state: 'up', weight: 100 }]));
    expect(await gauges()).toEqual([0, 0]);
    await postReport(ctx, makeReport('tokyo', 2, [{ address: '192.0.2.1', state: 'down', weight: 0 }, { address: '192.0.2.2', state: 'down', weight: 0 }]));
    await postReport(ctx, makeReport('osaka', 2, [{ address: '198.51.100.1', state: 'down', weight: 0 }]));
    expect(await gauges()).toEqual([1, 0]);
  });
});

describe('GET /readyz', () => {
  it('answers 503 with what it waits for until every agent-fed site reported and the overrides are loaded', async () => {
    let overrides = false;
    const ctx = await setup({ overridesReady: () => overrides });
    const ready = async () => {
      const res = await ctx.app.inject({ method: 'GET', url: '/readyz' });
      return { status: res.statusCode, body: res.json<{ ready: boolean; waiting: string[] }>() };
    };
    expect(await ready()).toEqual({ status: 503, body: { ready: false, waiting: [
      'site tokyo: no report since the start yet (stale after 10000 ms)',
      'site osaka: no report since the start yet (stale after 10000 ms)',
      'overrides: not loaded yet',
    ] } });
    await postReport(ctx, makeReport('tokyo', 1));
    overrides = true;
    // the probe-only site nagoya never blocks
    expect(await ready()).toEqual({ status: 503, body: { ready: false, waiting: ['site osaka: no report since the start yet (stale after 10000 ms)'] } });
    await postReport(ctx, makeReport('osaka', 1));
    expect(await ready()).toEqual({ status: 200, body: { ready: true, waiting: [] } });
    // liveness does not wait for anything
    expect((await ctx.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it('a site that went stale without reporting no longer blocks', async () => {
    const ctx = await setup();
    await postReport(ctx, makeReport('tokyo', 1));
    ctx.clock.advance(10_001);
    ctx.state.tick();
    expect((await ctx.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });
});

describe('GET /healthz', () => {
  it('answers ok', async () => {
    const ctx = await setup({ adminToken: undefined });
    const res = await ctx.app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true });
  });

  it('answers JSON 404 for unknown paths', async () => {
    const ctx = await setup();
    const res = await ctx.app.inject({ method: 'GET', url: '/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.json<{ error: string }>().error).toContain('not found');
  });
});

import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { createApiApp } from '../../../dns/http/app.js';
import type { ApiOptions } from '../../../dns/http/app.js';
import { createReadAuth } from '../../../shared/api-auth.js';
import { renderIndex, statusDir } from '../../../dns/http/status-routes.js';
import { importMap } from '../../../shared/ui/vendor.js';
import { createClock, createFixtureState, makeReport, SECRETS, signedHeaders } from '../../helpers/gslb-state-fixture.js';
import type { GslbState } from '../../../dns/gslb/state.js';
import { parseExposition } from '../../helpers/exposition.js';

const ADMIN = 'admin-token-0123456789';
const READ = 'read-token-0123456789ab';
const OTHER_READ = 'viewer:viewer-token-0123456789';

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

async function setup(over: Partial<ApiOptions> = {}): Promise<{ app: FastifyInstance; state: GslbState; logs: Record<string, unknown>[] }> {
  const clock = createClock();
  const { state } = createFixtureState(clock);
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => { logs.push(JSON.parse(s) as Record<string, unknown>); } });
  const app = await createApiApp({
    state, adminToken: ADMIN, readToken: READ, stateDir: undefined, instance: 'dns-a', logger, now: clock.now,
    dnsMetrics: () => ({ requests: [], responses: [], answers: [], fastPath: 0, cache: { positive: { hits: 0, misses: 0, entries: 0 }, negative: { hits: 0, misses: 0, entries: 0, bytes: 0 } } }),
    ...over,
  });
  apps.push(app);
  return { app, state, logs };
}

const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });
const READ_ROUTES = ['/api/v1/state', '/api/v1/explain?name=www.gslb.example.test'];

describe('read guard', () => {
  it('refuses reading without a token when not public, and counts and logs the refusal', async () => {
    const { app, logs } = await setup();
    for (const url of [...READ_ROUTES, '/api/v1/events']) {
      const r = await app.inject({ method: 'GET', url });
      expect(r.statusCode, url).toBe(401);
      expect(r.headers['www-authenticate']).toBe('Bearer');
      expect((await app.inject({ method: 'GET', url, headers: bearer('wrong-token-0123456789') })).statusCode, url).toBe(401);
    }
    // the rejected-request log summarizes refusals; the first of a kind is logged at once
    expect(logs.some((l) => l['msg'] === 'read request refused')).toBe(true);
    const m = parseExposition((await app.inject({ method: 'GET', url: '/metrics' })).body);
    expect(m.types.get('gslb_read_refused_total')).toBe('counter');
    expect(m.value('gslb_read_refused_total', { status: '401' })).toBe(6);
    expect(m.value('gslb_admin_refused_total', { status: '401' })).toBeUndefined();
  });

  it('lets a read token read state, explain and events, but never act', async () => {
    const { app, state } = await setup();
    for (const url of READ_ROUTES) expect((await app.inject({ method: 'GET', url, headers: bearer(READ) })).statusCode, url).toBe(200);
    for (const action of ['drain', 'undrain', 'force-down', 'release']) {
      const r = await app.inject({ method: 'POST', url: `/api/v1/admin/${action}`, headers: { ...bearer(READ), 'content-type': 'application/json' }, payload: { site: 'tokyo' } });
      expect(r.statusCode, action).toBe(401);
    }
    expect(state.listOverrides()).toEqual([]);
  });

  it('lets an admin token read too, and a named read-token file work', async () => {
    const { app } = await setup({ readToken: OTHER_READ });
    for (const url of READ_ROUTES) {
      expect((await app.inject({ method: 'GET', url, headers: bearer(ADMIN) })).statusCode, url).toBe(200);
      expect((await app.inject({ method: 'GET', url, headers: bearer('viewer-token-0123456789') })).statusCode, url).toBe(200);
      expect((await app.inject({ method: 'GET', url, headers: bearer(READ) })).statusCode, url).toBe(401);
    }
  });

  it('reads without a token with --status-public, while admin actions still need the admin token', async () => {
    const { app, state } = await setup({ readToken: undefined, statusPublic: true });
    for (const url of READ_ROUTES) expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(200);
    const r = await app.inject({ method: 'POST', url: '/api/v1/admin/drain', headers: { 'content-type': 'application/json' }, payload: { site: 'tokyo' } });
    expect(r.statusCode).toBe(401);
    expect(state.listOverrides()).toEqual([]);
  });

  it('answers 403 when nothing allows reading', async () => {
    const { app } = await setup({ adminToken: undefined, readToken: undefined });
    const r = await app.inject({ method: 'GET', url: '/api/v1/state', headers: bearer(READ) });
    expect(r.statusCode).toBe(403);
    expect(r.json()).toEqual({ error: 'reading disabled: start with --read-token-file, --admin-token-file or --status-public' });
    expect(parseExposition((await app.inject({ method: 'GET', url: '/metrics' })).body).value('gslb_read_refused_total', { status: '403' })).toBe(1);
  });

  it('compares every token (read and admin) and refuses an empty read token file', () => {
    const auth = createReadAuth({ adminToken: ADMIN, readToken: READ, public: false });
    expect(auth(`Bearer ${READ}`)).toEqual({ ok: true, actor: 'admin' });
    expect(auth(`Bearer ${ADMIN}`)).toEqual({ ok: true, actor: 'admin' });
    expect(auth(undefined)).toMatchObject({ ok: false, status: 401 });
    expect(() => createReadAuth({ adminToken: undefined, readToken: '  \n', public: false })).toThrow(/read token is empty/);
  });
});

describe('status page shell', () => {
  it('serves the page without a token, with the import map, its CSP hash and nosniff', async () => {
    const { app } = await setup();
    const r = await app.inject({ method: 'GET', url: '/' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    const map = importMap('/ui/vendor');
    expect(r.body).toContain(`<script type="importmap">${map}</script>`);
    expect(r.body).toContain('<script type="module" src="/ui/status/app.js"></script>');
    const csp = String(r.headers['content-security-policy']);
    const hash = createHash('sha256').update(map).digest('base64');
    expect(csp).toContain(`script-src 'self' 'sha256-${hash}'`);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    // no inline handlers or scripts other than the import map
    expect(r.body).not.toMatch(/\son[a-z]+=/i);
    expect(r.body.match(/<script/g)).toHaveLength(2);
  });

  it('serves the app, its style and the vendor modules with script and style types, and nothing else', async () => {
    const { app } = await setup();
    const types: Record<string, RegExp> = {
      '/ui/status/app.js': /^(text|application)\/javascript/,
      '/ui/status/style.css': /^text\/css/,
      '/ui/vendor/preact.mjs': /^(text|application)\/javascript/,
      '/ui/vendor/hooks.mjs': /^(text|application)\/javascript/,
      '/ui/vendor/htm.mjs': /^(text|application)\/javascript/,
    };
    for (const [url, type] of Object.entries(types)) {
      const r = await app.inject({ method: 'GET', url });
      expect(r.statusCode, url).toBe(200);
      expect(String(r.headers['content-type']), url).toMatch(type);
      expect(r.headers['x-content-type-options'], url).toBe('nosniff');
      expect(r.body.length, url).toBeGreaterThan(100);
    }
    expect((await app.inject({ method: 'GET', url: '/ui/vendor/preact.js' })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/ui/vendor/..%2f..%2fpackage.json' })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/ui/status/index.html' })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/ui/status/../../auth.ts' })).statusCode).toBe(404);
  });

  it('says whether reading is public, without a token', async () => {
    const closed = await setup();
    expect((await closed.app.inject({ method: 'GET', url: '/api/v1/status-config' })).json()).toEqual({ public: false, instance: 'dns-a', admin: true });
    const open = await setup({ statusPublic: true, adminToken: undefined });
    expect((await open.app.inject({ method: 'GET', url: '/api/v1/status-config' })).json()).toEqual({ public: true, instance: 'dns-a', admin: false });
  });

  it('finds the browser files from the compiled module too (dist/dns/http -> dns/http/status)', () => {
    const src = statusDir();
    expect(statusDir(src.replace(/\/dns\/http\/status$/, '/dist/dns/http'))).toBe(src);
    expect(() => renderIndex('<html></html>')).toThrow(/placeholder/);
  });
});

describe('no secrets in what is read', () => {
  it('has no site secret nor token in the state, and none in the event stream snapshot', async () => {
    const { app } = await setup({ statusPublic: true });
    const body = JSON.stringify(makeReport('tokyo', 1));
    const rep = await app.inject({ method: 'POST', url: '/api/v1/reports', headers: { ...signedHeaders(body, SECRETS.tokyo, createClock().now()), 'x-gslb-site': 'tokyo' }, payload: body });
    expect(rep.statusCode).toBe(200);
    await app.inject({ method: 'POST', url: '/api/v1/admin/drain', headers: { ...bearer(ADMIN), 'content-type': 'application/json' }, payload: { site: 'osaka', reason: 'maintenance' } });
    const state = (await app.inject({ method: 'GET', url: '/api/v1/state' })).body;
    const page = (await app.inject({ method: 'GET', url: '/' })).body + (await app.inject({ method: 'GET', url: '/api/v1/status-config' })).body;
    for (const text of [state, page]) {
      for (const secret of [SECRETS.tokyo.toString(), SECRETS.osaka.toString(), ADMIN, READ, 'GSLB_SECRET']) expect(text).not.toContain(secret);
    }
    expect(JSON.parse(state)).toMatchObject({ overrides: [{ action: 'drain', site: 'osaka', actor: 'admin', reason: 'maintenance' }] });
  });
});

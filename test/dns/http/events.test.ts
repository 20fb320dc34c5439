import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { createApiApp } from '../../../dns/http/app.js';
import type { ApiOptions } from '../../../dns/http/app.js';
import type { GslbState, StateChange } from '../../../dns/gslb/state.js';
import { createClock, createFixtureState, makeReport, MEMBERS, SECRETS, signedHeaders } from '../../helpers/gslb-state-fixture.js';
import type { Clock } from '../../helpers/gslb-state-fixture.js';
import { ManualClock } from '../../helpers/manual-clock.js';

const ADMIN = 'admin-token-0123456789';
const READ = 'read-token-0123456789ab';
/** A bound on waiting for an event, not a claim about speed. */
const WAIT_MS = 10_000;

interface Sse {
  readonly status: number;
  readonly text: () => string;
  readonly events: { name: string; data: Record<string, unknown> }[];
  /** the first event (from the start) named `name` matching `pred` that was not taken yet */
  next(name: string, pred?: (d: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  readonly closed: Promise<void>;
  pause(): void;
  close(): void;
}

/** Opens GET /api/v1/events and parses its frames. */
function openStream(port: number, token: string | undefined): Promise<Sse> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/api/v1/events', headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let raw = '';
      let buf = '';
      const events: { name: string; data: Record<string, unknown> }[] = [];
      const taken = new Set<number>();
      const waiters = new Set<() => void>();
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        raw += chunk;
        buf += chunk;
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const name = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (name !== undefined && data !== undefined) events.push({ name, data: JSON.parse(data) as Record<string, unknown> });
        }
        for (const w of [...waiters]) w();
      });
      const closed = new Promise<void>((r) => { res.on('close', () => r()); });
      resolve({
        status: res.statusCode ?? 0, text: () => raw, events, closed,
        pause: () => res.pause(),
        close: () => req.destroy(),
        next: (name, pred = () => true) => new Promise((ok, fail) => {
          const check = (): void => {
            const i = events.findIndex((e, j) => !taken.has(j) && e.name === name && pred(e.data));
            if (i < 0) return;
            taken.add(i);
            waiters.delete(check);
            clearTimeout(timer);
            ok(events[i]!.data);
          };
          const timer = setTimeout(() => { waiters.delete(check); fail(new Error(`no ${name} event within ${WAIT_MS} ms; got ${events.map((e) => e.name).join(',')}`)); }, WAIT_MS);
          waiters.add(check);
          check();
        }),
      });
    });
    req.on('error', reject);
  });
}

const apps: FastifyInstance[] = [];
const streams: Sse[] = [];
afterEach(async () => {
  for (const s of streams.splice(0)) s.close();
  for (const a of apps.splice(0)) await a.close();
});

async function listen(over: Partial<ApiOptions> = {}, clock: Clock = createClock()): Promise<{ app: FastifyInstance; state: GslbState; port: number; clock: Clock }> {
  const { state } = createFixtureState(clock);
  const app = await createApiApp({
    state, adminToken: ADMIN, readToken: READ, stateDir: undefined, instance: 'dns-a', logger: pino({ level: 'silent' }), now: clock.now,
    dnsMetrics: () => ({ requests: [], responses: [], answers: [], fastPath: 0, cache: { positive: { hits: 0, misses: 0, entries: 0 }, negative: { hits: 0, misses: 0, entries: 0, bytes: 0 } } }),
    ...over,
  });
  apps.push(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  return { app, state, clock, port: typeof addr === 'object' && addr ? addr.port : 0 };
}

async function stream(port: number, token = READ): Promise<Sse> {
  const s = await openStream(port, token);
  streams.push(s);
  return s;
}

async function post(port: number, path: string, body: string, headers: Record<string, string>): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers, body });
  await r.arrayBuffer();
  return r.status;
}

describe('GET /api/v1/events', () => {
  it('sends the state first, then a site event for a signed report, overrides and pools for a drain, and no secret', async () => {
    const { port, state, clock } = await listen();
    const s = await stream(port);
    expect(s.status).toBe(200);
    const snap = await s.next('snapshot');
    expect(snap).toMatchObject({ instance: 'dns-a', epoch: state.view.epoch, overrides: [], serverTime: clock.now() });
    expect((snap['sites'] as { name: string }[]).map((x) => x.name)).toEqual(['tokyo', 'osaka', 'nagoya']);

    const body = JSON.stringify(makeReport('tokyo', 41));
    expect(await post(port, '/api/v1/reports', body, { ...signedHeaders(body, SECRETS.tokyo, clock.now()), 'x-gslb-site': 'tokyo' })).toBe(200);
    const site = await s.next('site');
    expect(site).toEqual({
      serverTime: clock.now(),
      site: expect.objectContaining({ name: 'tokyo', stale: false, agent: 'tokyo-agent-1', lastSeq: { 'tokyo-agent-1': 41 }, lastReportAt: clock.now() }),
    });
    // the members came up: a new epoch with them serving
    const up = await s.next('pools', (d) => JSON.stringify(d).includes('"serving":true'));
    expect(up['epoch']).toBe(state.view.epoch);

    const drain = JSON.stringify({ site: 'tokyo', address: MEMBERS[0].address, reason: 'disk swap' });
    expect(await post(port, '/api/v1/admin/drain', drain, { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' })).toBe(200);
    expect(await s.next('overrides')).toMatchObject({ overrides: [{ action: 'drain', site: 'tokyo', address: MEMBERS[0].address, actor: 'admin', reason: 'disk swap' }] });
    const pools = await s.next('pools', (d) => JSON.stringify(d).includes('drained by operator'));
    expect(pools).toMatchObject({ epoch: state.view.epoch, failOpen: [{ pool: 'www', failOpen: false }] });
    expect(await s.next('event', (d) => (d['event'] as { type: string }).type === 'admin-drain')).toMatchObject({ event: { site: 'tokyo', address: MEMBERS[0].address } });

    for (const secret of [SECRETS.tokyo.toString(), SECRETS.osaka.toString(), ADMIN, READ]) expect(s.text()).not.toContain(secret);
  });

  it('refuses a stream without a read token, and lets an admin token read', async () => {
    const { port } = await listen();
    expect((await stream(port, '')).status).toBe(401);
    const s = await stream(port, ADMIN);
    expect(s.status).toBe(200);
    await s.next('snapshot');
  });

  it('bounds the streams (503 beyond), frees a place when one closes, and ends all and unsubscribes on close', async () => {
    const { app, port, state } = await listen({ events: { maxClients: 2 } });
    const a = await stream(port);
    const b = await stream(port);
    await Promise.all([a.next('snapshot'), b.next('snapshot')]);
    expect(state.subscribers).toBe(2);
    const c = await stream(port);
    expect(c.status).toBe(503);
    a.close();
    await a.closed;
    // the server sees the close; a new stream then gets the free place
    let d = await stream(port);
    for (let i = 0; d.status === 503 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 50));
      d = await stream(port);
    }
    expect(d.status).toBe(200);
    await d.next('snapshot');
    await app.close();
    await Promise.all([b.closed, d.closed]);
    expect(state.subscribers).toBe(0);
  });

  it('keeps streams to a quarter of the connection cap, so a report still gets through', async () => {
    const { port, clock } = await listen({ limits: { maxConnections: 8, maxPerSource: 8 } });
    const open = [await stream(port), await stream(port)];
    await Promise.all(open.map((s) => s.next('snapshot')));
    expect((await stream(port)).status).toBe(503);
    const body = JSON.stringify(makeReport('tokyo', 3));
    expect(await post(port, '/api/v1/reports', body, { ...signedHeaders(body, SECRETS.tokyo, clock.now()), 'x-gslb-site': 'tokyo' })).toBe(200);
    await Promise.all(open.map((s) => s.next('site')));
  });

  it('writes a heartbeat comment on the injected timers', async () => {
    const timers = new ManualClock();
    const { port } = await listen({ events: { timers, heartbeatMs: 4000 } });
    const s = await stream(port);
    await s.next('snapshot');
    expect(s.text()).not.toContain(': heartbeat');
    timers.advance(4000);
    for (let i = 0; !s.text().includes(': heartbeat') && i < 200; i++) await new Promise((r) => setTimeout(r, 50));
    expect(s.text()).toContain(': heartbeat\n\n');
  });

  it('outlives the request timeout (it covers receiving the request, not a long response)', async () => {
    const { port, state, clock } = await listen({ timeouts: { requestMs: 200, headersMs: 200, idleMs: 10_000 }, events: { heartbeatMs: 100 } });
    const s = await stream(port);
    await s.next('snapshot');
    // well past the request timeout and its checking interval (a bound, not a measurement)
    await new Promise((r) => setTimeout(r, 1200));
    const body = JSON.stringify(makeReport('osaka', 7));
    expect(await post(port, '/api/v1/reports', body, { ...signedHeaders(body, SECRETS.osaka, clock.now()), 'x-gslb-site': 'osaka' })).toBe(200);
    expect(await s.next('site')).toMatchObject({ site: { name: 'osaka' } });
    expect(state.subscribers).toBe(1);
  });

  it('drops a client that does not read once its buffer passes the limit', async () => {
    const { port, state } = await listen({ events: { maxBufferedBytes: 16 * 1024 } });
    const s = await stream(port);
    await s.next('snapshot');
    s.pause();
    // each drain/release writes overrides, pools and event frames; the kernel buffers fill, then ours
    for (let i = 0; i < 50_000 && state.subscribers > 0; i++) {
      state.admin(i % 2 === 0 ? 'drain' : 'release', { site: 'tokyo' }, { reason: `r${i}`.padEnd(200, '.') });
    }
    expect(state.subscribers).toBe(0);
    await s.closed;
  });
});

describe('GslbState.subscribe', () => {
  it('tells site, pools, event and overrides changes in order, isolates a throwing listener, and unsubscribes', () => {
    const { state } = createFixtureState();
    const seen: StateChange['kind'][] = [];
    const offBad = state.subscribe(() => { throw new Error('listener bug'); });
    const off = state.subscribe((c) => seen.push(c.kind));
    expect(state.applyReport(makeReport('tokyo', 1))).toMatchObject({ ok: true });
    expect(seen).toEqual(['event', 'event', 'pools', 'site']);
    seen.length = 0;
    expect(state.admin('drain', { site: 'tokyo' })).toMatchObject({ ok: true, changed: true });
    expect(seen).toEqual(['event', 'pools', 'overrides']);
    expect(state.listenerErrors).toBeGreaterThan(0);
    offBad();
    off();
    expect(state.subscribers).toBe(0);
    state.admin('release', { site: 'tokyo' });
    expect(seen).toEqual(['event', 'pools', 'overrides']);
  });
});

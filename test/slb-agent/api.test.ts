/**
 * The agent's local API through app.inject(): status, drain/undrain (schema-validated), metrics,
 * healthz. The agent is built from a real config with fake checkers and fed results by hand.
 */
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createAgent } from '../../slb-agent/agent.js';
import type { Agent } from '../../slb-agent/agent.js';
import { createAgentApi } from '../../slb-agent/api/app.js';
import { parseAgentConfig } from '../../slb-agent/config.js';
import { parseExposition } from '../helpers/exposition.js';

const YAML = `
site: tokyo
agent: lb1
secret: env:GSLB_SECRET_TOKYO
dns: [ "http://127.0.0.1:1" ]
report: { interval: 1s }
api: 127.0.0.1:9100
vips:
  - name: web
    address: 192.0.2.1
    port: 80
    capacity: 1000
    check: { type: http, path: /healthz, interval: 500ms, timeout: 300ms, rise: 1, fall: 1 }
    realServers:
      - { address: 127.0.0.11, port: 8080, weight: 1 }
      - { address: 127.0.0.12, port: 8080, weight: 1 }
      - { address: 127.0.0.13, port: 8080, weight: 1, backup: true }
`;

let agent: Agent;
let app: FastifyInstance;
const ADMIN = 'agent-admin-token-0123456789';
const READ = 'agent-read-token-0123456789';
const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

beforeEach(async () => {
  const config = parseAgentConfig(YAML, 'site.yaml', { GSLB_SECRET_TOKYO: 'tokyo-secret-0123456789abcdef-0123456789' });
  agent = createAgent({ config, logger: pino({ level: 'silent' }), createChecker: () => async () => ({ ok: true, latencyMs: 1 }) });
  app = await createAgentApi({ agent, adminToken: `${ADMIN}\n` });
  agent.applyResult('web/127.0.0.11:8080', { ok: true, latencyMs: 2.5 });
  agent.applyResult('web/127.0.0.12:8080', { ok: true, latencyMs: 3 });
  agent.applyResult('web/127.0.0.13:8080', { ok: false, latencyMs: 300, error: 'timeout after 300 ms' });
});

afterEach(async () => {
  await app.close();
  await agent.stop();
});

const drain = (action: 'drain' | 'undrain', payload: unknown) => app.inject({ method: 'POST', url: `/realservers/${action}`, payload: payload as object, headers: bearer(ADMIN) });

describe('agent API tokens', () => {
  const rs = { vip: 'web', address: '127.0.0.11', port: 8080 };
  const post = (a: FastifyInstance, headers: Record<string, string>) => a.inject({ method: 'POST', url: '/realservers/drain', payload: rs, headers });

  it('a state change needs the admin token: none 401, wrong 401, a read token 401, the admin token 200', async () => {
    const a = await createAgentApi({ agent, adminToken: ADMIN, readToken: READ });
    try {
      const none = await post(a, {});
      expect(none.statusCode).toBe(401);
      expect(none.headers['www-authenticate']).toBe('Bearer');
      expect((await post(a, bearer('wrong-token-0123456789'))).statusCode).toBe(401);
      expect((await post(a, bearer(READ))).statusCode).toBe(401);
      // refused before the body is looked at: no schema details for a caller without a token
      expect((await a.inject({ method: 'POST', url: '/vips/drain', payload: { nope: 1 } })).statusCode).toBe(401);
      expect(agent.vips()[0]!.healthy).toBe(2);
      expect((await post(a, bearer(ADMIN))).statusCode).toBe(200);
      expect(agent.vips()[0]!.healthy).toBe(1);
    } finally {
      await a.close();
    }
  });

  it('without --admin-token-file every state change is refused with 403 naming the flag', async () => {
    const a = await createAgentApi({ agent });
    try {
      for (const url of ['/realservers/drain', '/realservers/undrain']) {
        const r = await a.inject({ method: 'POST', url, payload: rs, headers: bearer(ADMIN) });
        expect(r.statusCode).toBe(403);
        expect(r.json().error).toContain('--admin-token-file');
      }
      expect((await a.inject({ method: 'POST', url: '/vips/drain', payload: { vip: 'web' } })).statusCode).toBe(403);
      expect(agent.members()[0]!.state).toBe('up');
      // reading stays open without a read token
      expect((await a.inject({ method: 'GET', url: '/status' })).statusCode).toBe(200);
    } finally {
      await a.close();
    }
  });

  it('with a read token, /status needs it (or the admin token); /healthz and /metrics stay open', async () => {
    const a = await createAgentApi({ agent, adminToken: ADMIN, readToken: READ });
    try {
      expect((await a.inject({ method: 'GET', url: '/status' })).statusCode).toBe(401);
      expect((await a.inject({ method: 'GET', url: '/status', headers: bearer(READ) })).statusCode).toBe(200);
      expect((await a.inject({ method: 'GET', url: '/status', headers: bearer(ADMIN) })).statusCode).toBe(200);
      expect((await a.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      expect((await a.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
    } finally {
      await a.close();
    }
  });
});

describe('agent API', () => {
  it('GET /healthz', async () => {
    const r = await app.inject({ method: 'GET', url: '/healthz' });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ ok: true });
  });

  it('GET /status shows VIPs, real servers with results, errors and latency, and delivery per DNS instance', async () => {
    const r = await app.inject({ method: 'GET', url: '/status' });
    expect(r.statusCode).toBe(200);
    const s = r.json();
    expect(s).toMatchObject({ site: 'tokyo', agent: 'lb1' });
    expect(s.vips[0]).toMatchObject({ name: 'web', address: '192.0.2.1', state: 'up', weight: 100, healthy: 2, total: 3, capacity: 1000, connections: 0, on: 'primary' });
    expect(s.vips[0].realServers[0]).toMatchObject({
      key: 'web/127.0.0.11:8080', address: '127.0.0.11', port: 8080, drained: false, serving: true, passes: 1, fails: 0,
      health: { state: 'up', successes: 1, failures: 0, lastLatencyMs: 2.5 }, check: { type: 'http', intervalMs: 500, timeoutMs: 300, rise: 1, fall: 1 },
    });
    expect(s.vips[0].realServers[2].health).toMatchObject({ state: 'down', lastError: 'timeout after 300 ms', lastLatencyMs: 300 });
    expect(s.dns).toEqual([{ url: 'http://127.0.0.1:1/api/v1/reports', sent: 0, failed: 0, consecutiveFailures: 0, inFlight: false }]);
  });

  it('drain takes a real server out of the VIP weight; undrain brings it back', async () => {
    const r = await drain('drain', { vip: 'web', address: '127.0.0.11', port: 8080 });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ vip: 'web', address: '127.0.0.11', port: 8080, drained: true, changed: true });
    expect(agent.vips()[0]).toMatchObject({ state: 'up', weight: 50, healthy: 1 });
    expect(agent.members()).toEqual([{ address: '192.0.2.1', state: 'up', weight: 50, connections: 0, capacity: 1000, healthy: 1, total: 3 }]);
    expect((await drain('drain', { vip: 'web', address: '127.0.0.11', port: 8080 })).json()).toMatchObject({ changed: false });
    // every primary drained, the backup down: the VIP is drained, not down
    await drain('drain', { vip: 'web', address: '127.0.0.12', port: 8080 });
    expect(agent.vips()[0]).toMatchObject({ state: 'drain', weight: 0, healthy: 0 });
    const st = (await app.inject({ method: 'GET', url: '/status' })).json();
    expect(st.vips[0].realServers[0]).toMatchObject({ drained: true, serving: false, health: { state: 'up' } });
    await drain('undrain', { vip: 'web', address: '127.0.0.11', port: 8080 });
    await drain('undrain', { vip: 'web', address: '127.0.0.12', port: 8080 });
    expect(agent.vips()[0]).toMatchObject({ state: 'up', weight: 100, healthy: 2 });
  });

  it('VIP-level drain reports the VIP as drain', async () => {
    const r = await app.inject({ method: 'POST', url: '/vips/drain', payload: { vip: 'web' }, headers: bearer(ADMIN) });
    expect(r.statusCode).toBe(200);
    expect(agent.members()[0]).toMatchObject({ state: 'drain', weight: 100 });
    await app.inject({ method: 'POST', url: '/vips/undrain', payload: { vip: 'web' }, headers: bearer(ADMIN) });
    expect(agent.members()[0]!.state).toBe('up');
    expect((await app.inject({ method: 'POST', url: '/vips/drain', payload: { vip: 'nope' }, headers: bearer(ADMIN) })).statusCode).toBe(404);
  });

  it('rejects bodies that do not match the schema (400) and unknown targets (404)', async () => {
    const bad: unknown[] = [
      {},
      { vip: 'web', address: '127.0.0.11' },
      { vip: 'web', address: '127.0.0.11', port: '8080' },
      { vip: 'web', address: '127.0.0.11', port: 8080, extra: 1 },
      { vip: 'web', adress: '127.0.0.11', port: 8080 },
      { vip: 'web', address: '127.0.0.11', port: 70000 },
    ];
    for (const b of bad) expect((await drain('drain', b)).statusCode, JSON.stringify(b)).toBe(400);
    const notJson = await app.inject({ method: 'POST', url: '/realservers/drain', payload: 'vip=web', headers: { 'content-type': 'text/plain', ...bearer(ADMIN) } });
    expect(notJson.statusCode).toBe(400);
    const unknownVip = await drain('drain', { vip: 'db', address: '127.0.0.11', port: 8080 });
    expect(unknownVip.statusCode).toBe(404);
    expect(unknownVip.json().error).toContain('db');
    expect((await drain('drain', { vip: 'web', address: '127.0.0.11', port: 9999 })).statusCode).toBe(404);
    expect(agent.vips()[0]!.weight).toBe(100);
  });

  it('GET /metrics: checks, durations, states as labels, weight ratio and reports per DNS instance, with the process metrics', async () => {
    await drain('drain', { vip: 'web', address: '127.0.0.12', port: 8080 });
    const r = await app.inject({ method: 'GET', url: '/metrics' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const m = parseExposition(r.body);
    const rs = (address: string) => ({ vip: 'web', address, port: '8080' });
    expect(m.types.get('slb_agent_check_results_total')).toBe('counter');
    expect(m.value('slb_agent_check_results_total', { ...rs('127.0.0.11'), result: 'pass' })).toBe(1);
    expect(m.value('slb_agent_check_results_total', { ...rs('127.0.0.13'), result: 'fail' })).toBe(1);
    // one observation per check result fed after the API was built: 2.5 ms, 3 ms, 300 ms
    expect(m.types.get('slb_agent_check_duration_seconds')).toBe('histogram');
    expect(m.value('slb_agent_check_duration_seconds_count', rs('127.0.0.11'))).toBe(1);
    expect(m.value('slb_agent_check_duration_seconds_sum', rs('127.0.0.11'))).toBe(0.0025);
    expect(m.value('slb_agent_check_duration_seconds_bucket', { ...rs('127.0.0.13'), le: '0.25' })).toBe(0);
    expect(m.value('slb_agent_check_duration_seconds_bucket', { ...rs('127.0.0.13'), le: '0.5' })).toBe(1);
    expect(m.value('slb_agent_realserver_status', { ...rs('127.0.0.13'), state: 'down' })).toBe(1);
    expect(m.value('slb_agent_realserver_status', { ...rs('127.0.0.13'), state: 'up' })).toBe(0);
    expect(m.value('slb_agent_realserver_status', { ...rs('127.0.0.12'), state: 'drain' })).toBe(1);
    expect(m.value('slb_agent_realserver_status', { ...rs('127.0.0.11'), state: 'up' })).toBe(1);
    expect(m.value('slb_agent_realserver_serving', rs('127.0.0.12'))).toBe(0);
    expect(m.value('slb_agent_vip_state', { vip: 'web', address: '192.0.2.1', state: 'up' })).toBe(1);
    expect(m.value('slb_agent_vip_state', { vip: 'web', address: '192.0.2.1', state: 'down' })).toBe(0);
    expect(m.value('slb_agent_vip_weight_ratio', { vip: 'web', address: '192.0.2.1' })).toBe(0.5);
    expect(m.value('slb_agent_reports_total', { dns: 'http://127.0.0.1:1/api/v1/reports', result: 'accepted' })).toBe(0);
    expect(m.value('slb_agent_reports_total', { dns: 'http://127.0.0.1:1/api/v1/reports', result: 'failed' })).toBe(0);
    expect(m.value('slb_agent_build_info', { nodejs: process.version })).toBe(1);
    expect(m.value('process_cpu_seconds_total')).toBeGreaterThan(0);
    // without forwarded VIPs or a pinger, their families are listed without samples
    for (const f of ['slb_forwarder_flows_total', 'slb_forwarder_apply_duration_seconds', 'slb_pinger_peers_answering']) {
      expect(m.types.has(f), f).toBe(true);
      expect(m.samples.some((x) => x.name.startsWith(f))).toBe(false);
    }
  });

  it('GET /metrics: a real server a reload removed loses its check duration series', async () => {
    const scrape = async () => parseExposition((await app.inject({ method: 'GET', url: '/metrics' })).body);
    expect((await scrape()).value('slb_agent_check_duration_seconds_count', { vip: 'web', address: '127.0.0.13', port: '8080' })).toBe(1);
    const next = parseAgentConfig(YAML.replace(/^.*127\.0\.0\.13.*\n/m, ''), 'site.yaml', { GSLB_SECRET_TOKYO: 'tokyo-secret-0123456789abcdef-0123456789' });
    expect(agent.reload(next).ok).toBe(true);
    const m = await scrape();
    expect(m.find('slb_agent_check_duration_seconds_count', { address: '127.0.0.13' })).toEqual([]);
    expect(m.value('slb_agent_check_duration_seconds_count', { vip: 'web', address: '127.0.0.11', port: '8080' })).toBe(1);
  });
});

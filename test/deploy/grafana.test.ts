/**
 * deploy/grafana/gslb.json names only metrics the processes export: every PromQL expression of
 * the dashboard (panels and template variables) is reduced to its metric names, and each must be
 * a family of the real registries, scraped from gslb-dns's, the agent's and the standalone
 * pinger's /metrics as the apps are built in their own tests.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createApiApp } from '../../dns/http/app.js';
import { createAgent } from '../../slb-agent/agent.js';
import type { Agent } from '../../slb-agent/agent.js';
import { createAgentApi } from '../../slb-agent/api/app.js';
import { parseAgentConfig } from '../../slb-agent/config.js';
import { createPingerApi } from '../../slb-agent/pinger/api.js';
import { parseExposition } from '../helpers/exposition.js';
import { createClock, createFixtureState, makeReport, SECRETS, signedHeaders } from '../helpers/gslb-state-fixture.js';
import { ROOT } from '../helpers/server.js';

const DASHBOARD = path.join(ROOT, 'deploy/grafana/gslb.json');

/** PromQL words that are not metric names. */
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/**
 * The metric names in a PromQL expression: strings, label matchers `{...}`, ranges `[...]` and
 * grouping clauses `by (...)` are dropped; of the identifiers left, functions (followed by `(`)
 * and keywords are not names.
 */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = m[0];
    const after = stripped.slice(m.index + word.length);
    if (/^\s*\(/.test(after) || KEYWORDS.has(word.toLowerCase())) continue;
    // a number's exponent (1e9) is not a name
    if (m.index > 0 && /[0-9.]/.test(stripped[m.index - 1]!)) continue;
    names.add(word);
  }
  return [...names];
}

/** Every PromQL expression of a dashboard: panel targets (rows' nested panels too) and query variables. */
export function dashboardExpressions(dashboard: unknown): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) { v.forEach(walk); return; }
    if (v === null || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    if (typeof o['expr'] === 'string') out.push(o['expr']);
    if (typeof o['definition'] === 'string' && o['type'] === 'query') out.push(o['definition'].replace(/^label_values\(([^,)]+).*$/, '$1'));
    for (const x of Object.values(o)) walk(x);
  };
  walk(dashboard);
  return out;
}

/** The names of `exprs` that no family exports; `_bucket`/`_sum`/`_count` count for a histogram (or summary) family. */
export function unknownNames(exprs: readonly string[], families: ReadonlyMap<string, string>): string[] {
  const missing = new Set<string>();
  for (const e of exprs) {
    for (const n of metricNames(e)) {
      if (families.has(n)) continue;
      const base = /^(.*)_(bucket|sum|count)$/.exec(n)?.[1];
      const t = base === undefined ? undefined : families.get(base);
      if (t === 'histogram' || (t === 'summary' && !n.endsWith('_bucket'))) continue;
      missing.add(n);
    }
  }
  return [...missing];
}

const AGENT_YAML = `
site: tokyo
agent: lb1
secret: env:S
dns: [ "http://127.0.0.1:1" ]
report: { interval: 1s }
api: 127.0.0.1:9100
vips:
  - name: web
    address: 192.0.2.1
    port: 80
    check: { type: tcp, interval: 500ms, timeout: 300ms, rise: 1, fall: 1 }
    realServers:
      - { address: 127.0.0.11, port: 8080 }
`;

const apps: FastifyInstance[] = [];
let agent: Agent;
/** family -> type, over the three registries */
const families = new Map<string, string>();

async function scrape(app: FastifyInstance): Promise<void> {
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  expect(res.statusCode).toBe(200);
  for (const [name, type] of parseExposition(res.body).types) families.set(name, type);
}

beforeAll(async () => {
  const clock = createClock();
  const { state } = createFixtureState(clock);
  const dns = await createApiApp({
    state, adminToken: undefined, stateDir: undefined, instance: 'dns-a', logger: pino({ level: 'silent' }), now: clock.now,
    dnsMetrics: () => ({
      requests: [{ proto: 'udp', family: 'ipv4', type: 'A', value: 1 }], responses: [{ proto: 'udp', rcode: 'NOERROR', value: 1 }],
      duration: [{ proto: 'udp', counts: new Array(13).fill(1), sum: 0.00001, count: 1 }],
      answers: [{ pool: 'www', site: 'tokyo', address: '192.0.2.1', count: 1 }], fastPath: 1,
      rrl: { dropped: 0, slipped: 0 },
      cache: { positive: { hits: 1, misses: 1, entries: 1 }, negative: { hits: 0, misses: 0, entries: 0, bytes: 0 } },
    }),
  });
  apps.push(dns);
  const body = JSON.stringify(makeReport('tokyo', 1));
  await dns.inject({ method: 'POST', url: '/api/v1/reports', headers: signedHeaders(body, SECRETS.tokyo, clock.now()), payload: body });

  agent = createAgent({
    config: parseAgentConfig(AGENT_YAML, 'site.yaml', { S: 'tokyo-secret-0123456789abcdef-0123456789' }), logger: pino({ level: 'silent' }),
    createChecker: () => async () => ({ ok: true, latencyMs: 1 }),
  });
  const agentApi = await createAgentApi({ agent });
  apps.push(agentApi);
  agent.applyResult('web/127.0.0.11:8080', { ok: true, latencyMs: 2 });

  const pingerApi = await createPingerApi({
    start: async () => {}, stop: async () => {},
    status: () => ({ running: true, failAfter: 3, interfaces: [] }),
  });
  apps.push(pingerApi);
  for (const app of apps) await scrape(app);
});

afterAll(async () => {
  for (const a of apps) await a.close();
  await agent?.stop();
});

describe('metricNames', () => {
  it('keeps metric names and drops functions, keywords, label matchers, ranges, grouping labels and numbers', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (le, proto) (rate(gslb_dns_request_duration_seconds_bucket{job=~"$j",x="a{b}"}[$__rate_interval])))'))
      .toEqual(['gslb_dns_request_duration_seconds_bucket']);
    expect(metricNames('sum(rate(a_total[5m])) / (sum without (x) (b_total offset 1h) + on(instance) group_left(version) c_info) * 1e9 > bool 0'))
      .toEqual(['a_total', 'b_total', 'c_info']);
    expect(metricNames('max by (site, address, status) (gslb_member_status) == 1')).toEqual(['gslb_member_status']);
  });

  it('flags a name no process exports (and accepts histogram suffixes only on histograms)', () => {
    const fams = new Map([['x_seconds', 'histogram'], ['y_total', 'counter']]);
    expect(unknownNames(['rate(x_seconds_bucket[1m]) + x_seconds_sum + y_total'], fams)).toEqual([]);
    expect(unknownNames(['rate(gslb_dns_queries_total[1m])', 'y_total_count', 'no_such_metric'], fams))
      .toEqual(['gslb_dns_queries_total', 'y_total_count', 'no_such_metric']);
    // against the real registries too: an old name is caught
    expect(unknownNames(['sum(rate(gslb_dns_queries_total[5m]))', 'slb_agent_vip_weight_percent'], families))
      .toEqual(['gslb_dns_queries_total', 'slb_agent_vip_weight_percent']);
  });
});

describe('deploy/grafana/gslb.json', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Record<string, unknown>;

  it('is a Grafana dashboard with a Prometheus data source variable', () => {
    expect(dashboard['schemaVersion']).toBeGreaterThanOrEqual(36);
    const vars = (dashboard['templating'] as { list: { name: string; type: string; query?: unknown }[] }).list;
    expect(vars.find((v) => v.type === 'datasource')).toMatchObject({ name: 'DS_PROMETHEUS', query: 'prometheus' });
  });

  it('names only metrics that gslb-dns, slb-agent and the pinger export', () => {
    const exprs = dashboardExpressions(dashboard);
    expect(exprs.length).toBeGreaterThan(20);
    // the registries were scraped: their families are known
    for (const f of ['gslb_dns_requests_total', 'slb_agent_check_results_total', 'slb_pinger_peers_answering', 'process_cpu_seconds_total']) expect(families.has(f), f).toBe(true);
    expect(unknownNames(exprs, families)).toEqual([]);
  });

  it('covers the families the issue asks a panel for', () => {
    const used = new Set(dashboardExpressions(dashboard).flatMap(metricNames));
    for (const n of [
      'gslb_dns_answers_total', 'gslb_dns_responses_total', 'gslb_dns_request_duration_seconds_bucket', 'gslb_pool_fail_open',
      'gslb_member_status', 'gslb_site_report_age_seconds', 'gslb_reports_total', 'gslb_report_apply_latency_seconds_bucket',
      'slb_agent_check_results_total', 'slb_agent_check_duration_seconds_bucket', 'slb_agent_vip_state', 'slb_agent_vip_weight_ratio',
      'slb_forwarder_flows_total', 'slb_forwarder_apply_errors_total', 'slb_pinger_peers_answering', 'slb_pinger_rtt_smoothed_seconds',
    ]) expect(used.has(n), n).toBe(true);
  });
});

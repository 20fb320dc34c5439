/**
 * The agent's local HTTP API (fastify):
 *
 *   | route                         | what                                                            |
 *   |-------------------------------|-----------------------------------------------------------------|
 *   | GET  /status                  | VIPs, real servers (state, streaks, last result, error, latency), report delivery per DNS instance, forwarder (mode, last apply, flows), pinger (per peer) |
 *   | GET  /, /ui/*                 | the read-only status page (status-page.ts)                       |
 *   | POST /realservers/drain       | `{vip, address, port}`: no new flows; drops out of the VIP weight |
 *   | POST /realservers/undrain     | the same body: back in                                           |
 *   | POST /vips/drain, /vips/undrain | `{vip}`: the VIP is reported `drain` (gslb-dns stops new answers) |
 *   | GET  /metrics                 | Prometheus text                                                  |
 *   | GET  /healthz                 | liveness                                                         |
 *
 * Bodies are validated against TypeBox schemas (unknown keys and wrong types are 400, no
 * coercion); an unknown VIP or real server is 404. Drains live in memory: a restarted agent
 * starts undrained. /status and /metrics read the forwarder's flow counters first (bounded).
 */
import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { statusPage } from './status-page.js';
import { Type } from '@sinclair/typebox';
import type { Static } from '@sinclair/typebox';
import type { Agent, AgentStatus } from '../agent.js';
import { renderPingerMetrics } from '../pinger/metrics.js';

/** Body of POST /realservers/{drain,undrain}. */
export const RealServerRefSchema = Type.Object({
  vip: Type.String({ minLength: 1, maxLength: 63 }),
  address: Type.String({ minLength: 2, maxLength: 64 }),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
}, { additionalProperties: false });

/** Body of POST /vips/{drain,undrain}. */
export const VipRefSchema = Type.Object({
  vip: Type.String({ minLength: 1, maxLength: 63 }),
}, { additionalProperties: false });

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** What the API needs. */
export interface AgentApiOptions {
  readonly agent: Agent;
  readonly logger?: FastifyBaseLogger;
}

const STATE_VALUE = { down: 0, up: 1, drain: 2 } as const;

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(l: Record<string, string | number>): string {
  return `{${Object.entries(l).map(([k, v]) => `${k}="${esc(String(v))}"`).join(',')}}`;
}

/** Renders the agent's status as Prometheus text exposition format. */
export function renderAgentMetrics(s: AgentStatus): string {
  const out: string[] = [];
  const family = (name: string, type: 'gauge' | 'counter', help: string, rows: [Record<string, string | number>, number][]): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [l, v] of rows) out.push(`${name}${labels(l)} ${Number.isFinite(v) ? v : 0}`);
  };
  const rs = s.vips.flatMap((v) => v.realServers.map((r) => ({ vip: v.name, r })));
  const rl = (vip: string, r: (typeof rs)[number]['r']) => ({ vip, address: r.address, port: r.port });
  family('slb_agent_check_results_total', 'counter', 'Health check results per real server.',
    rs.flatMap(({ vip, r }) => [[{ ...rl(vip, r), result: 'pass' }, r.passes], [{ ...rl(vip, r), result: 'fail' }, r.fails]]));
  family('slb_agent_check_latency_seconds', 'gauge', 'Latency of the last health check per real server.',
    rs.filter(({ r }) => r.health.lastLatencyMs !== undefined).map(({ vip, r }) => [rl(vip, r), (r.health.lastLatencyMs ?? 0) / 1000]));
  family('slb_agent_realserver_up', 'gauge', 'Real server health after rise/fall (1 up, 0 down).',
    rs.map(({ vip, r }) => [rl(vip, r), r.health.state === 'up' ? 1 : 0]));
  family('slb_agent_realserver_serving', 'gauge', 'Real server takes new flows (healthy, not drained).',
    rs.map(({ vip, r }) => [rl(vip, r), r.serving ? 1 : 0]));
  family('slb_agent_realserver_drained', 'gauge', 'Real server drained by the operator.',
    rs.map(({ vip, r }) => [rl(vip, r), r.drained ? 1 : 0]));
  family('slb_agent_vip_state', 'gauge', 'VIP state as reported (0 down, 1 up, 2 drain).',
    s.vips.map((v) => [{ vip: v.name, address: v.address }, STATE_VALUE[v.state]]));
  family('slb_agent_vip_weight_percent', 'gauge', 'VIP weight as reported, percent.',
    s.vips.map((v) => [{ vip: v.name, address: v.address }, v.weight]));
  family('slb_agent_vip_healthy_realservers', 'gauge', 'Real servers of the VIP that serve.',
    s.vips.map((v) => [{ vip: v.name, address: v.address }, v.healthy]));
  family('slb_agent_reports_sent_total', 'counter', 'Reports accepted by each DNS instance.',
    s.dns.map((d) => [{ dns: d.url }, d.sent]));
  family('slb_agent_reports_failed_total', 'counter', 'Report attempts that failed per DNS instance.',
    s.dns.map((d) => [{ dns: d.url }, d.failed]));
  family('slb_agent_report_consecutive_failures', 'gauge', 'Consecutive failed attempts per DNS instance.',
    s.dns.map((d) => [{ dns: d.url }, d.consecutiveFailures]));
  const fw = s.forwarder;
  if (fw !== undefined) {
    const flows = s.vips.flatMap((v) => v.realServers.flatMap((r) => (r.forwarder ? [{ l: { vip: v.name, backend: r.forwarder.id }, f: r.forwarder }] : [])));
    family('slb_forwarder_flows_total', 'counter', 'Flows the data plane placed on each backend.', flows.map(({ l, f }) => [l, f.total]));
    family('slb_forwarder_flows_active', 'gauge', 'Flows open now per backend.', flows.map(({ l, f }) => [l, f.active]));
    family('slb_forwarder_apply_ok', 'gauge', 'The last data plane apply of the VIP succeeded (1) or failed (0).',
      s.vips.flatMap((v) => (v.forwarder?.lastApply ? [[{ vip: v.name }, v.forwarder.lastApply.ok ? 1 : 0] as [Record<string, string>, number]] : [])));
    const h = fw.applyLatency;
    out.push('# HELP slb_forwarder_apply_seconds Time from a health or drain change to the data plane having applied it.',
      '# TYPE slb_forwarder_apply_seconds histogram',
      ...h.buckets.map((b) => `slb_forwarder_apply_seconds_bucket{le="${b.le}"} ${b.count}`),
      `slb_forwarder_apply_seconds_bucket{le="+Inf"} ${h.count}`,
      `slb_forwarder_apply_seconds_sum ${h.sum}`,
      `slb_forwarder_apply_seconds_count ${h.count}`,
      '# HELP slb_forwarder_apply_errors_total Data plane applies that failed (one per plane and attempt).',
      '# TYPE slb_forwarder_apply_errors_total counter',
      `slb_forwarder_apply_errors_total ${fw.applyErrors}`);
  }
  if (s.pinger !== undefined) out.push(renderPingerMetrics(s.pinger));
  return `${out.join('\n')}\n`;
}

/** Builds the API app (not listening); test it with `app.inject()`. */
export async function createAgentApi(opts: AgentApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    logController: new LogController({ disableRequestLogging: true }),
    // reject, never silently strip or coerce: `"port": "8080"` or `"adress"` is a 400
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
  const { agent } = opts;

  app.get('/healthz', async () => ({ ok: true }));
  app.get('/status', async () => {
    await agent.refreshStats();
    return agent.status();
  });
  app.get('/metrics', async (_req, reply) => {
    await agent.refreshStats();
    void reply.header('content-type', METRICS_CONTENT_TYPE);
    return renderAgentMetrics(agent.status());
  });

  for (const action of ['drain', 'undrain'] as const) {
    app.post<{ Body: Static<typeof RealServerRefSchema> }>(`/realservers/${action}`, { schema: { body: RealServerRefSchema } }, async (req, reply) => {
      const r = agent.drainRealServer(req.body, action === 'drain');
      if (!r.ok) return reply.code(404).send({ error: r.reason });
      return { ...req.body, drained: action === 'drain', changed: r.changed };
    });
    app.post<{ Body: Static<typeof VipRefSchema> }>(`/vips/${action}`, { schema: { body: VipRefSchema } }, async (req, reply) => {
      const r = agent.drainVip(req.body.vip, action === 'drain');
      if (!r.ok) return reply.code(404).send({ error: r.reason });
      return { vip: req.body.vip, drained: action === 'drain', changed: r.changed };
    });
  }
  await app.register(statusPage);
  await app.ready();
  return app;
}

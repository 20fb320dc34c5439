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
import type { Agent } from '../agent.js';
import { METRICS_CONTENT_TYPE } from '../../shared/metrics.js';
import { createAgentMetrics } from './metrics.js';

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

/** What the API needs. */
export interface AgentApiOptions {
  readonly agent: Agent;
  readonly logger?: FastifyBaseLogger;
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
  const metrics = createAgentMetrics(agent);
  app.addHook('onClose', async () => metrics.close());
  app.get('/metrics', async (_req, reply) => {
    await agent.refreshStats();
    return reply.type(METRICS_CONTENT_TYPE).send(await metrics.render());
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

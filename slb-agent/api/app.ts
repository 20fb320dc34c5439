/**
 * The agent's local HTTP API (fastify). Every state change (the POST routes) needs
 * `Authorization: Bearer <admin token>` (--admin-token-file); without that flag every one is
 * refused with 403. GET /status needs a read or admin token when --read-token-file is given, and
 * is open otherwise (main.ts warns when the API then listens beyond loopback). /healthz and
 * /metrics stay open, as gslb-dns's do.
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
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createAdminAuth, createReadAuth } from '../../shared/api-auth.js';
import type { AdminAuthResult } from '../../shared/api-auth.js';
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
  /** the admin token file's text (shared/api-auth.ts format); undefined: state changes are refused */
  readonly adminToken?: string | undefined;
  /** the read token file's text; undefined: GET /status is open */
  readonly readToken?: string | undefined;
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
  const guard = (check: (authorization: string | undefined) => AdminAuthResult) => async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const r = check(req.headers.authorization);
    if (r.ok) return undefined;
    if (r.status === 401) void reply.header('www-authenticate', 'Bearer');
    return reply.code(r.status).send({ error: r.reason });
  };
  const adminGuard = guard(createAdminAuth(opts.adminToken));
  const readGuard = guard(createReadAuth({ adminToken: opts.adminToken, readToken: opts.readToken, public: opts.readToken === undefined }));

  app.get('/healthz', async () => ({ ok: true }));
  app.get('/status', { onRequest: readGuard }, async () => {
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
    app.post<{ Body: Static<typeof RealServerRefSchema> }>(`/realservers/${action}`, { onRequest: adminGuard, schema: { body: RealServerRefSchema } }, async (req, reply) => {
      const r = agent.drainRealServer(req.body, action === 'drain');
      if (!r.ok) return reply.code(404).send({ error: r.reason });
      return { ...req.body, drained: action === 'drain', changed: r.changed };
    });
    app.post<{ Body: Static<typeof VipRefSchema> }>(`/vips/${action}`, { onRequest: adminGuard, schema: { body: VipRefSchema } }, async (req, reply) => {
      const r = agent.drainVip(req.body.vip, action === 'drain');
      if (!r.ok) return reply.code(404).send({ error: r.reason });
      return { vip: req.body.vip, drained: action === 'drain', changed: r.changed };
    });
  }
  await app.register(statusPage);
  await app.ready();
  return app;
}

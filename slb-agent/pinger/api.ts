/** The standalone pinger's HTTP API: GET /status (JSON), /metrics (Prometheus), /healthz. */
import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { METRICS_CONTENT_TYPE } from '../../shared/metrics.js';
import { createPingerMetrics } from './metrics.js';
import type { Pinger } from './pinger.js';

/** Builds the API app (not listening); test it with `app.inject()`. */
export async function createPingerApi(pinger: Pinger, logger?: FastifyBaseLogger): Promise<FastifyInstance> {
  const app = Fastify({
    ...(logger ? { loggerInstance: logger } : { logger: false }),
    logController: new LogController({ disableRequestLogging: true }),
  });
  const metrics = createPingerMetrics(() => pinger.status());
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/status', async () => ({ pinger: pinger.status() }));
  app.get('/metrics', async (_req, reply) => reply.type(METRICS_CONTENT_TYPE).send(await metrics.metrics()));
  await app.ready();
  return app;
}

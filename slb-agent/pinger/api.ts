/** The standalone pinger's HTTP API: GET /status (JSON), /metrics (Prometheus), /healthz. */
import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { renderPingerMetrics } from './metrics.js';
import type { Pinger } from './pinger.js';

/** Builds the API app (not listening); test it with `app.inject()`. */
export async function createPingerApi(pinger: Pinger, logger?: FastifyBaseLogger): Promise<FastifyInstance> {
  const app = Fastify({
    ...(logger ? { loggerInstance: logger } : { logger: false }),
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/status', async () => ({ pinger: pinger.status() }));
  app.get('/metrics', async (_req, reply) => {
    void reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8');
    return `${renderPingerMetrics(pinger.status())}\n`;
  });
  await app.ready();
  return app;
}

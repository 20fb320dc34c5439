/**
 * GET /api/v1/events: the state as server-sent events, for the status page. The first event is
 * the whole state (`snapshot`, as GET /api/v1/state); afterwards only what changed, written the
 * moment the state says so (GslbState.subscribe; no timer on this path):
 *
 *   | state change       | event       | data                                              |
 *   |--------------------|-------------|---------------------------------------------------|
 *   | (on connect/reset) | snapshot    | the state document                                |
 *   | site               | site        | { serverTime, site }  (one site)                  |
 *   | pools (new epoch)  | pools       | { serverTime, epoch, pools, failOpen }            |
 *   | overrides          | overrides   | { serverTime, overrides, overridesDigest }        |
 *   | event              | event       | { serverTime, event }                             |
 *
 * A comment line every heartbeatMs (on the injected timers) keeps the stream under the API's idle
 * timeout; node's requestTimeout covers receiving the request only, so it never cuts a stream.
 * Clients are bounded (503 beyond maxClients: app.ts allows 64, at most a quarter of the API's
 * connection cap, so that streams cannot take the connections agents
 * report on) and a client that does not read (its socket buffer past maxBufferedBytes) is dropped.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { GslbState, StateChange } from '../gslb/state.js';
import type { Timers } from '../../shared/clock.js';
import { systemClock } from '../../shared/clock.js';

export const EVENTS_PATH = '/api/v1/events';
export const SSE_DEFAULTS = { maxClients: 64, heartbeatMs: 5_000, maxBufferedBytes: 1 << 20 } as const;

/** How the event stream is built and bounded. */
export interface EventStreamOptions {
  readonly state: GslbState;
  /** the document of GET /api/v1/state (the first event) */
  readonly document: () => object;
  /** the pools part of that document (the pools event) */
  readonly pools: () => object;
  /** the overrides part (the overrides event) */
  readonly overrides: () => object;
  readonly guard: (req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>;
  readonly timers?: Timers;
  readonly maxClients?: number;
  readonly heartbeatMs?: number;
  readonly maxBufferedBytes?: number;
}

/** Live counts of the stream, for tests and the log. */
export interface EventStreamStats {
  readonly clients: number;
  readonly refused: number;
  readonly slowDropped: number;
}

/** One SSE frame; `data` is JSON, which never holds a raw newline. */
function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The frame for a state change; undefined for a change not shown (a site no longer configured). */
function frameOf(c: StateChange, opts: EventStreamOptions): string | undefined {
  const serverTime = opts.state.time();
  switch (c.kind) {
    case 'site': {
      const site = opts.state.siteSnapshot(c.site, serverTime);
      return site === undefined ? undefined : frame('site', { serverTime, site });
    }
    case 'pools': return frame('pools', { serverTime, epoch: c.epoch, ...opts.pools() });
    case 'overrides': return frame('overrides', { serverTime, ...opts.overrides() });
    case 'event': return frame('event', { serverTime, event: c.event });
    case 'reset': return frame('snapshot', opts.document());
  }
}

/** Registers the route; its clients are closed when the app closes. */
export function registerEventStream(app: FastifyInstance, opts: EventStreamOptions): { stats(): EventStreamStats } {
  const timers = opts.timers ?? systemClock;
  const maxClients = opts.maxClients ?? SSE_DEFAULTS.maxClients;
  const heartbeatMs = opts.heartbeatMs ?? SSE_DEFAULTS.heartbeatMs;
  const maxBuffered = opts.maxBufferedBytes ?? SSE_DEFAULTS.maxBufferedBytes;
  const clients = new Set<() => void>();
  let refused = 0;
  let slowDropped = 0;

  app.get(EVENTS_PATH, { preHandler: opts.guard }, async (req, reply) => {
    if (clients.size >= maxClients) {
      refused++;
      return reply.code(503).header('retry-after', '5').send({ error: `too many event streams (limit ${maxClients})` });
    }
    reply.hijack();
    const res: ServerResponse = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      // proxies (nginx) must pass each event on as it is written
      'x-accel-buffering': 'no',
    });
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      unsubscribe();
      timers.clearInterval(heartbeat);
      clients.delete(close);
      res.destroy();
    };
    const write = (text: string): void => {
      if (closed) return;
      res.write(text);
      if (res.writableLength > maxBuffered) {
        slowDropped++;
        req.log.warn({ source: req.ip, buffered: res.writableLength }, 'event stream dropped: the client does not read');
        close();
      }
    };
    const unsubscribe = opts.state.subscribe((c) => {
      const text = frameOf(c, opts);
      if (text !== undefined) write(text);
    });
    const heartbeat = timers.setInterval(() => write(': heartbeat\n\n'), heartbeatMs);
    clients.add(close);
    res.on('close', close);
    res.on('error', close);
    // the client retries after 2 s when the stream breaks
    write(`retry: 2000\n\n${frame('snapshot', opts.document())}`);
  });

  app.addHook('preClose', async () => {
    for (const close of [...clients]) close();
  });

  return { stats: () => ({ clients: clients.size, refused, slowDropped }) };
}

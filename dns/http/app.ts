/**
 * The HTTP API of gslb-dns: signed site reports in, operator overrides, state, metrics, probes.
 *
 * A report passes these gates in order; the first that fails answers and nothing is applied:
 *
 *   | gate                         | failure                         | status | counted as        |
 *   |------------------------------|---------------------------------|--------|-------------------|
 *   | body size / media type       | over MAX_REPORT_BYTES / not JSON| 413/415| too-large/media-type |
 *   | body present                 | empty                           | 400    | bad-json          |
 *   | site: X-GSLB-Site, else the  | neither                         | 400    | schema            |
 *   |   top-level "site" (raw scan)|                                 |        |                   |
 *   | site configured              | unknown site                    | 404    | unknown-site      |
 *   | site has a secret            | probe-only site                 | 401    | no-secret         |
 *   | X-GSLB-Timestamp             | missing / not unix ms / skew    | 401    | missing-timestamp / bad-timestamp / clock-skew |
 *   | X-GSLB-Signature (raw body)  | missing / wrong                 | 401    | missing-signature / bad-signature |
 *   | timestamp >= state.startedAt | signed before this start        | 409    | before-start      |
 *   | nesting <= MAX_REPORT_DEPTH  | deeper                          | 400    | too-deep          |
 *   | JSON.parse                   | bad JSON                        | 400    | bad-json          |
 *   | body's site = the site above | another site                    | 400    | site-mismatch     |
 *   | ReportSchema                 | first failing path              | 400    | schema            |
 *   | state.applyReport            | replay / foreign member / site  | 409/422/404 | (counted by the state) |
 *
 * Nothing of an unsigned body is parsed: the signature is checked on the raw bytes first, so a
 * flood of forged or deeply nested bodies costs one HMAC (or one bounded scan) each.
 */
import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { Static, TSchema } from '@sinclair/typebox';
import type { TypeCheck } from '@sinclair/typebox/compiler';
import type { AdminAction, GslbState } from '../gslb/state.js';
import { createFileOverrideStore, MAX_REASON_LENGTH, overridesDigest } from '../gslb/overrides-store.js';
import type { OverrideStore } from '../gslb/overrides-store.js';
import {
  MAX_CLOCK_SKEW_MS, MAX_REPORT_BYTES, ReportSchema, SIGNATURE_HEADER, SITE_HEADER, TIMESTAMP_HEADER,
} from '../../shared/protocol/report.js';
import { verifyReportSignature } from '../../shared/protocol/signature.js';
import type { Timers } from '../../shared/clock.js';
import { createAdminAuth, createReadAuth } from '../../shared/api-auth.js';
import type { AdminAuthResult } from '../../shared/api-auth.js';
import { registerEventStream, SSE_DEFAULTS } from './events.js';
import type { EventStreamOptions } from './events.js';
import { registerStatusPage } from './status-routes.js';
import { createRejectLog } from './reject-log.js';
import { defaultConnectionLimits, limitConnections, readDescriptorLimit } from './connection-limit.js';
import type { ConnectionLimits } from './connection-limit.js';
import { jsonDepthExceeds, MAX_REPORT_DEPTH, scanReportSite } from './report-body.js';
import { METRICS_CONTENT_TYPE, createDnsMetrics } from './metrics.js';
import { poolFailOpen } from '../gslb/fail-open.js';
import { explain, ExplainError, parseExplainQuery } from '../gslb/explain.js';
import type { DnsMetricsSnapshot } from './metrics.js';

export type { DnsMetricsSnapshot } from './metrics.js';

/** What the API needs from the server that hosts it. */
export interface ApiOptions {
  state: GslbState;
  /** the admin token file's text (one bare token, or `name:token` lines; see auth.ts); undefined disables the admin routes (403) */
  adminToken: string | undefined;
  /** where overrides.json is kept; undefined keeps overrides in memory only (when no overridesStore is given) */
  stateDir: string | undefined;
  /** where admin actions go; by default the per-instance file store of stateDir, already loaded */
  overridesStore?: OverrideStore;
  /** this instance's id, echoed by GET /api/v1/state */
  instance: string;
  dnsMetrics: () => DnsMetricsSnapshot;
  logger: Logger;
  /** the clock for the skew check (unix ms); Date.now by default */
  now?: () => number;
  /** whether the current operator overrides are loaded (GET /readyz waits for it); always true by default */
  overridesReady?: () => boolean;
  /** connection caps (see connection-limit.ts); defaults from this process's descriptor limit */
  limits?: ConnectionLimits;
  /** timers of the rejected-request log summary; the system's by default */
  timers?: Timers;
  /** socket timeouts; API_TIMEOUTS by default */
  timeouts?: Partial<ApiTimeouts>;
  /** the read token file's text (the admin file's format): its tokens read the state, never act */
  readToken?: string | undefined;
  /** reading (status page data, state, explain, events) needs no token */
  statusPublic?: boolean;
  /** the event stream's timers and bounds (see events.ts) */
  events?: Pick<EventStreamOptions, 'timers' | 'maxClients' | 'heartbeatMs' | 'maxBufferedBytes'>;
}

/** How long the API waits on a client, in ms; a socket past any of these is closed. */
export interface ApiTimeouts {
  /** from the connection (or the previous request) to the end of the request headers */
  readonly headersMs: number;
  /** from the connection to the end of the request body */
  readonly requestMs: number;
  /** an open socket with no traffic at all */
  readonly idleMs: number;
  /** an idle keep-alive socket after a response (agents report every second) */
  readonly keepAliveMs: number;
}

export const API_TIMEOUTS: ApiTimeouts = { headersMs: 5_000, requestMs: 10_000, idleMs: 15_000, keepAliveMs: 5_000 };

export const REPORTS_PATH = '/api/v1/reports';
export const STATE_PATH = '/api/v1/state';
export const EXPLAIN_PATH = '/api/v1/explain';
export const READY_PATH = '/readyz';
export const ADMIN_PATH_PREFIX = '/api/v1/admin/';
export const ADMIN_ACTIONS: readonly AdminAction[] = ['drain', 'undrain', 'force-down', 'release'];

/**
 * The body of the admin action routes: a site, or one member of it; why (recorded with the
 * override); `force` to pass a pool guard, which needs a reason.
 */
export const AdminTargetSchema = Type.Object({
  site: Type.String({ minLength: 1, maxLength: 128 }),
  address: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  reason: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_REASON_LENGTH })),
  force: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });

const checkReport = TypeCompiler.Compile(ReportSchema);
const checkAdminTarget = TypeCompiler.Compile(AdminTargetSchema);

class HttpError extends Error {
  constructor(readonly status: number, readonly key: string, message: string) {
    super(message);
  }
}

/** Deepest nesting of an admin body (a flat object). */
const MAX_ADMIN_DEPTH = 4;

function requireBody(body: unknown): Buffer {
  if (!Buffer.isBuffer(body) || body.length === 0) throw new HttpError(400, 'bad-json', 'bad JSON: empty body (expected application/json)');
  return body;
}

function parseJson(raw: unknown, maxDepth: number): unknown {
  const body = requireBody(raw);
  if (jsonDepthExceeds(body, maxDepth)) throw new HttpError(400, 'too-deep', `bad JSON: nested deeper than ${maxDepth} levels`);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, 'bad-json', `bad JSON: ${(err as Error).message}`);
  }
}

function validate<T extends TSchema>(check: TypeCheck<T>, value: unknown): asserts value is Static<T> {
  if (check.Check(value)) return;
  const e = check.Errors(value).First();
  throw new HttpError(400, 'schema', `schema: ${e ? `${e.path || '/'}: ${e.message}` : 'invalid body'}`);
}

function stringField(v: unknown, key: string): string | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const x = (v as Record<string, unknown>)[key];
  return typeof x === 'string' ? x : undefined;
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** Who sent a report, as far as the gates got: for the rejection log. */
interface ReportSender { site?: string | undefined; agent?: string | undefined }

/**
 * The report gates of the table at the top, up to the schema (applying is the state's): the
 * signed timestamp and the validated body, or an HttpError; `who` learns the site and agent as
 * they are known, for the log of a refusal.
 */
function verifyReport(req: FastifyRequest, state: GslbState, now: () => number, who: ReportSender): { ts: number; value: Static<typeof ReportSchema> } {
  const raw = requireBody(req.body);
  // the site picks the secret: from the header, else (older agents) a bounded scan of the raw bytes
  const site = header(req, SITE_HEADER) ?? scanReportSite(raw);
  if (site === undefined || site === '') {
    throw new HttpError(400, 'schema', `schema: /site: Expected string (send the ${SITE_HEADER} header or a top-level "site" string)`);
  }
  who.site = site.length > 128 ? `${site.slice(0, 128)}...` : site;
  const cfg = state.gslb.sites.get(site);
  if (!cfg) throw new HttpError(404, 'unknown-site', `unknown site "${who.site}"`);
  if (cfg.secrets.length === 0) throw new HttpError(401, 'no-secret', 'site has no secret: it is probed, not reported');
  const ts = header(req, TIMESTAMP_HEADER);
  if (ts === undefined || ts === '') throw new HttpError(401, 'missing-timestamp', 'missing timestamp: the X-GSLB-Timestamp header (unix ms) is required');
  if (!/^\d{1,15}$/.test(ts)) throw new HttpError(401, 'bad-timestamp', 'bad timestamp: X-GSLB-Timestamp must be unix milliseconds');
  const skew = Number(ts) - now();
  if (Math.abs(skew) > MAX_CLOCK_SKEW_MS) {
    throw new HttpError(401, 'clock-skew', `clock skew: X-GSLB-Timestamp is ${skew > 0 ? 'ahead of' : 'behind'} this server's clock by ${Math.abs(skew)} ms (limit ${MAX_CLOCK_SKEW_MS} ms)`);
  }
  const sig = header(req, SIGNATURE_HEADER);
  if (sig === undefined || sig === '') throw new HttpError(401, 'missing-signature', 'missing signature: the X-GSLB-Signature header is required');
  // during a key rotation the site's list holds the old and the new key; any one verifies
  if (!cfg.secrets.some((key) => verifyReportSignature(key, ts, raw, sig))) throw new HttpError(401, 'bad-signature', 'bad signature');
  // a report signed before this instance started was meant for (or captured from) the previous
  // one: agents sign every heartbeat afresh, so a live agent is heard again within its interval
  if (Number(ts) < state.startedAt) {
    throw new HttpError(409, 'before-start', `signed before this instance started: X-GSLB-Timestamp is ${state.startedAt - Number(ts)} ms before the start (replay?)`);
  }
  const value = parseJson(raw, MAX_REPORT_DEPTH);
  who.agent = stringField(value, 'agent');
  const bodySite = stringField(value, 'site');
  if (bodySite === undefined) throw new HttpError(400, 'schema', 'schema: /site: Expected string');
  if (bodySite !== site) throw new HttpError(400, 'site-mismatch', `site mismatch: the body says "${bodySite}", the signature is for "${site}"`);
  validate(checkReport, value);
  return { ts: Number(ts), value };
}

/** What the admin action routes act on and with. */
interface AdminDeps {
  readonly state: GslbState;
  readonly store: OverrideStore;
  readonly auth: (authorization: string | undefined) => AdminAuthResult;
  readonly log: Logger;
  readonly guard: (req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>;
}

/** POST /api/v1/admin/{drain,undrain,force-down,release}: validated, applied through the store, logged with the actor. */
function registerAdminActions(app: FastifyInstance, { state, store, auth, log, guard }: AdminDeps): void {
  for (const action of ADMIN_ACTIONS) {
    app.post(`${ADMIN_PATH_PREFIX}${action}`, { preHandler: guard }, async (req, reply) => {
      let value: unknown;
      try {
        value = parseJson(req.body, MAX_ADMIN_DEPTH);
        validate(checkAdminTarget, value);
        if (value.force === true && (value.reason === undefined || value.reason.trim() === '')) {
          throw new HttpError(400, 'schema', '"force": true needs a "reason" (why the guard may be overridden)');
        }
      } catch (err) {
        if (err instanceof HttpError) return reply.code(err.status).send({ error: err.message });
        throw err;
      }
      const target = value.address === undefined ? { site: value.site } : { site: value.site, address: value.address };
      const authz = auth(header(req, 'authorization'));
      const actor = authz.ok ? authz.actor : 'unknown';
      const reason = value.reason?.trim();
      const r = await store.apply(action, target, { actor, ...(reason !== undefined ? { reason } : {}), ...(value.force === true ? { force: true } : {}) });
      const line = { actor, reason, action, site: target.site, address: target.address, force: value.force === true, store: store.kind, ip: req.ip };
      if (!r.ok) {
        if (r.status === 500) log.error({ ...line, status: r.status, error: r.reason }, 'saving overrides failed');
        else log.warn({ ...line, status: r.status, error: r.reason }, 'admin action refused');
        return reply.code(r.status).send({ error: r.reason, ...('breaches' in r && r.breaches !== undefined ? { breaches: r.breaches } : {}) });
      }
      const forced = r.forced === true;
      const warnings = r.warnings ?? [];
      log.info({ ...line, forced, changed: r.changed, ...(warnings.length ? { warnings } : {}) }, 'admin action');
      return reply.send({ ok: true, changed: r.changed, forced, warnings, overridesDigest: overridesDigest(state.listOverrides()) });
    });
  }
}

/** Builds the API (routes registered, `ready()` done, not listening). */
export async function createApiApp(opts: ApiOptions): Promise<FastifyInstance> {
  const { state } = opts;
  const now = opts.now ?? Date.now;
  const log = opts.logger;
  const auth = createAdminAuth(opts.adminToken);
  const readAuth = createReadAuth({ adminToken: opts.adminToken, readToken: opts.readToken, public: opts.statusPublic === true });
  const store = opts.overridesStore ?? createFileOverrideStore({ state, stateDir: opts.stateDir, started: true });

  const t = { ...API_TIMEOUTS, ...opts.timeouts };
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    bodyLimit: MAX_REPORT_BYTES,
    // a stalled client is cut off: headers, then the whole request, each have a deadline (checked
    // every second, not node's default 30 s), an idle socket and an idle keep-alive too
    http: { headersTimeout: t.headersMs, requestTimeout: t.requestMs, connectionsCheckingInterval: Math.min(1_000, t.headersMs) },
    requestTimeout: t.requestMs,
    connectionTimeout: t.idleMs,
    keepAliveTimeout: t.keepAliveMs,
    // reports arrive every second from every agent: log refusals and admin actions, not each request
    logController: new LogController({ disableRequestLogging: true }),
  });

  app.server.headersTimeout = t.headersMs;
  const limits = opts.limits ?? defaultConnectionLimits(readDescriptorLimit());
  const connections = limitConnections(app.server, limits);

  // JSON only, kept as raw bytes: the report signature covers them exactly; anything else is 415
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: MAX_REPORT_BYTES }, (_req, body, done) => {
    done(null, body);
  });

  const rejectLog = createRejectLog(log, opts.timers !== undefined ? { timers: opts.timers } : {});
  app.addHook('onClose', async () => rejectLog.close());
  const adminRefused = new Map<string, number>();
  /** refused reads (state, explain, events) by status, counted as admin refusals are */
  const readRefused = new Map<string, number>();
  const metrics = createDnsMetrics({
    dns: opts.dnsMetrics, state, overridesStore: () => store.status(), connections: () => connections.stats(), adminRefused, readRefused, now,
  });

  function rejectReport(req: FastifyRequest, reply: FastifyReply, status: number, key: string | undefined, reason: string, who: { site?: string | undefined; agent?: string | undefined }): FastifyReply {
    if (key !== undefined) state.countRejected(key);
    rejectLog.reject({ msg: 'report rejected', key: key ?? `status-${status}`, source: req.ip, fields: { site: who.site, agent: who.agent, status, reason } });
    return reply.code(status).send({ error: reason });
  }

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (req.routeOptions.url === REPORTS_PATH && status < 500) {
      const key = err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'too-large' : err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'media-type' : 'bad-request';
      const reason = key === 'too-large' ? `body too large: the limit is ${MAX_REPORT_BYTES} bytes` : err.message;
      return rejectReport(req, reply, status, key, reason, {});
    }
    if (status >= 500) log.error({ err, url: req.url }, 'request failed');
    return reply.code(status).send({ error: status >= 500 ? 'internal error' : err.message });
  });

  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `not found: ${req.method} ${req.url.split('?')[0]}` }));

  app.post(REPORTS_PATH, async (req, reply) => {
    const who: ReportSender = {};
    try {
      const { ts, value } = verifyReport(req, state, now, who);
      const outcome = state.applyReport(value);
      if (!outcome.ok) return rejectReport(req, reply, outcome.status, undefined, outcome.reason, who);
      metrics.reportApplied(ts);
      log.debug({ site: who.site, agent: who.agent, seq: value.seq, changed: outcome.changed }, 'report accepted');
      return reply.code(200).send({ accepted: true, changed: outcome.changed, epoch: state.view.epoch });
    } catch (err) {
      if (err instanceof HttpError) return rejectReport(req, reply, err.status, err.key, err.message, who);
      throw err;
    }
  });

  async function adminGuard(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const r = auth(header(req, 'authorization'));
    if (r.ok) return undefined;
    adminRefused.set(String(r.status), (adminRefused.get(String(r.status)) ?? 0) + 1);
    rejectLog.reject({ msg: 'admin request refused', key: `${r.status}`, source: req.ip, fields: { url: req.url, reason: r.reason } });
    if (r.status === 401) void reply.header('www-authenticate', 'Bearer');
    return reply.code(r.status).send({ error: r.reason });
  }

  // reading: a read or an admin token, or none with --status-public; a read token never acts
  async function readGuard(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const r = readAuth(header(req, 'authorization'));
    if (r.ok) return undefined;
    readRefused.set(String(r.status), (readRefused.get(String(r.status)) ?? 0) + 1);
    rejectLog.reject({ msg: 'read request refused', key: `read-${r.status}`, source: req.ip, fields: { url: req.url.split('?')[0], reason: r.reason } });
    if (r.status === 401) void reply.header('www-authenticate', 'Bearer');
    return reply.code(r.status).send({ error: r.reason });
  }

  const overridesDoc = (): { overrides: unknown; overridesDigest: string } => {
    const overrides = state.listOverrides();
    return { overrides, overridesDigest: overridesDigest(overrides) };
  };
  const poolsDoc = (): { pools: object[]; failOpen: unknown } => ({ pools: state.poolsSnapshot(), failOpen: poolFailOpen(state.gslb, state.view) });
  // GET /api/v1/state and the event stream's first event; no site secret or token is in any part
  const stateDoc = (): object => {
    const snap = state.snapshot() as Record<string, unknown>;
    return { ...snap, failOpen: poolFailOpen(state.gslb, state.view), overridesDigest: overridesDigest(state.listOverrides()), overridesStore: store.status(), instance: opts.instance };
  };

  app.get(STATE_PATH, { preHandler: readGuard }, async (_req, reply) => reply.send(stateDoc()));

  // event streams hold their connection: at most a quarter of the API's, so agents' reports always find room
  const maxStreams = Math.max(1, Math.min(SSE_DEFAULTS.maxClients, Math.floor(limits.maxConnections / 4)));
  registerEventStream(app, { state, document: stateDoc, pools: poolsDoc, overrides: overridesDoc, guard: readGuard, maxClients: maxStreams, ...opts.events });
  await registerStatusPage(app, { instance: opts.instance, public: opts.statusPublic === true, admin: opts.adminToken !== undefined });

  // what this instance answers now for a name, type and client subnet, and why; guarded as the state is
  app.get(EXPLAIN_PATH, { preHandler: readGuard }, async (req, reply) => {
    const query = req.query as Record<string, unknown>;
    try {
      const q = parseExplainQuery({ name: query['name'], type: query['type'], subnet: query['subnet'] });
      return reply.send({ ...explain(state.gslb, state.view, q, (site, address) => state.memberWhy(site, address)), instance: opts.instance });
    } catch (err) {
      if (err instanceof ExplainError) return reply.code(err.status).send({ error: err.message });
      throw err;
    }
  });

  registerAdminActions(app, { state, store, auth, log, guard: adminGuard });

  app.get('/metrics', async (_req, reply) => reply.type(METRICS_CONTENT_TYPE).send(await metrics.render()));

  app.get('/healthz', async (_req, reply) => reply.send({ ok: true }));

  // readiness, unlike /healthz (liveness): 503 with what is awaited until answers rest on what the sites said
  const overridesReady = opts.overridesReady ?? (() => true);
  app.get(READY_PATH, async (_req, reply) => {
    const waiting = state.readiness();
    if (!overridesReady()) waiting.push('overrides: not loaded yet');
    return reply.code(waiting.length === 0 ? 200 : 503).send({ ready: waiting.length === 0, waiting });
  });

  await app.ready();
  return app;
}

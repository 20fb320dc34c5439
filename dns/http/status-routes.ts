/**
 * The status page of gslb-dns: its shell (HTML, script, style: no data, no token needed), the
 * browser modules it imports (preact, htm from node_modules; shared/ui/vendor.ts), and the tiny
 * public GET /api/v1/status-config telling the page whether reading needs a token. The data comes
 * from the read-guarded state, explain and events routes.
 *
 *   | route                     | what                                     | guard |
 *   |---------------------------|------------------------------------------|-------|
 *   | GET /                     | index.html with the import map inlined   | none  |
 *   | GET /ui/status/<file>     | app.js, style.css (dns/http/status/)     | none  |
 *   | GET /ui/vendor/<file>     | preact.mjs, hooks.mjs, htm.mjs           | none  |
 *   | GET /api/v1/status-config | { public, instance, admin }              | none  |
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { importMap, vendorModules } from '../../shared/ui/vendor.js';

export const STATUS_CONFIG_PATH = '/api/v1/status-config';
export const STATUS_ASSETS_PREFIX = '/ui/status/';
export const VENDOR_PREFIX = '/ui/vendor';
const IMPORT_MAP_MARK = '<!--importmap-->';

/** What the page may know before it has a token. */
export interface StatusPageOptions {
  readonly instance: string;
  /** reading needs no token (--status-public) */
  readonly public: boolean;
  /** admin actions are possible (an admin token file is configured) */
  readonly admin: boolean;
}

/**
 * The directory of the page's browser files. tsc does not copy them to dist/, so from
 * dist/dns/http/ this walks up to the package root and takes dns/http/status/ of the source tree;
 * from the source (tests) it is the sibling directory.
 */
export function statusDir(from = path.dirname(fileURLToPath(import.meta.url))): string {
  const sibling = path.join(from, 'status');
  if (existsSync(path.join(sibling, 'index.html'))) return sibling;
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'dns', 'http', 'status');
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(candidate, 'index.html'))) return candidate;
    if (path.dirname(dir) === dir) throw new Error(`status page files not found from ${from} (expected dns/http/status/index.html in the package)`);
  }
}

/** The index page with its import map inlined, and the CSP that allows exactly that inline script. */
export function renderIndex(template: string): { html: string; csp: string } {
  const map = importMap(VENDOR_PREFIX);
  if (!template.includes(IMPORT_MAP_MARK)) throw new Error(`index.html: no ${IMPORT_MAP_MARK} placeholder`);
  const html = template.replace(IMPORT_MAP_MARK, `<script type="importmap">${map}</script>`);
  // the browser hashes the script's text exactly as written between the tags
  const hash = createHash('sha256').update(map, 'utf8').digest('base64');
  const csp = [
    "default-src 'none'", `script-src 'self' 'sha256-${hash}'`, "style-src 'self'", "connect-src 'self'", "img-src 'self' data:",
    "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
  ].join('; ');
  return { html, csp };
}

/** Registers the page, its files and the status config on `app` (call before `ready()`). */
export async function registerStatusPage(app: FastifyInstance, opts: StatusPageOptions): Promise<void> {
  const dir = statusDir();
  const { html, csp } = renderIndex(readFileSync(path.join(dir, 'index.html'), 'utf8'));
  const vendor = new Map(vendorModules().map((m) => [m.file, m]));

  // nothing of the UI may be sniffed into another type, framed, or leak the URL it came from
  app.addHook('onSend', async (req, reply) => {
    if (req.url === '/' || req.url.startsWith('/ui/')) {
      void reply.header('x-content-type-options', 'nosniff');
      void reply.header('content-security-policy', csp);
      void reply.header('referrer-policy', 'no-referrer');
      void reply.header('x-frame-options', 'DENY');
    }
  });

  await app.register(fastifyStatic, {
    root: dir, prefix: STATUS_ASSETS_PREFIX, index: false, wildcard: false, cacheControl: true, maxAge: 0,
    allowedPath: (p) => p !== '/index.html',
  });

  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(html));

  app.get<{ Params: { file: string } }>(`${VENDOR_PREFIX}/:file`, async (req, reply) => {
    const m = vendor.get(req.params.file);
    if (m === undefined) return reply.code(404).send({ error: `not found: ${req.url}` });
    return reply.type('text/javascript; charset=utf-8').sendFile(path.basename(m.path), path.dirname(m.path));
  });

  app.get(STATUS_CONFIG_PATH, async (_req, reply) => reply.header('cache-control', 'no-store').send({ public: opts.public, instance: opts.instance, admin: opts.admin }));
}

/**
 * The agent's status page, a fastify plugin registered by app.ts:
 *
 *   | route              | what                                                                  |
 *   |--------------------|-----------------------------------------------------------------------|
 *   | GET /              | the page: index.html with the import map inlined (hash in the CSP)    |
 *   | GET /ui/*          | its browser files (app.js, style.css) from slb-agent/api/status/      |
 *   | GET /ui/vendor/*   | preact, preact/hooks and htm as ES modules, from node_modules         |
 *
 * The page only reads GET /status (with a read token when the agent has --read-token-file) and
 * offers no buttons, on purpose: drains need the admin token, which stays with the operator's
 * curl rather than in a page anyone who reaches the port can load. Every response of these routes carries a
 * Content-Security-Policy (scripts from this origin only, plus the hash of the inline import map)
 * and `X-Content-Type-Options: nosniff`.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { importMap, vendorModules } from '../../shared/ui/vendor.js';

/** Where the page's own files and the vendor modules are served. */
export const UI_PREFIX = '/ui';
export const VENDOR_PREFIX = `${UI_PREFIX}/vendor`;

const PAGE_DIR = path.join('slb-agent', 'api', 'status');
const IMPORT_MAP_SLOT = '<!-- import map -->';

/**
 * The directory of the page's browser files. tsc copies no static files into dist/, so from
 * either the source module or its compiled twin this walks up to the first directory holding
 * `slb-agent/api/status/index.html` (the package root in both cases).
 */
export function statusPageDir(moduleUrl: string = import.meta.url): string {
  let dir = path.dirname(fileURLToPath(moduleUrl));
  for (;;) {
    const candidate = path.join(dir, PAGE_DIR);
    if (existsSync(path.join(candidate, 'index.html'))) return candidate;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`status page: ${PAGE_DIR}/index.html not found above ${fileURLToPath(moduleUrl)}`);
    dir = up;
  }
}

/** The CSP of the page: only same-origin scripts, styles and fetches, plus the inline scripts of `inline` by hash. */
export function pageCsp(inline: readonly string[]): string {
  const hashes = inline.map((s) => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`);
  return [
    "default-src 'none'", `script-src 'self' ${hashes.join(' ')}`.trimEnd(), "style-src 'self'", "connect-src 'self'",
    "img-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
  ].join('; ');
}

/** The page's HTML (the template with its import map) and the CSP that admits that map. */
export function renderPage(template: string): { readonly html: string; readonly csp: string } {
  if (!template.includes(IMPORT_MAP_SLOT)) throw new Error(`status page: index.html lacks the ${IMPORT_MAP_SLOT} slot`);
  const map = importMap(VENDOR_PREFIX);
  return { html: template.replace(IMPORT_MAP_SLOT, () => `<script type="importmap">${map}</script>`), csp: pageCsp([map]) };
}

/** The page's routes as a fastify plugin; register it (encapsulated) so its headers reach no other route. */
export async function statusPage(app: FastifyInstance): Promise<void> {
  const root = statusPageDir();
  // read once at start: the page is small and the CSP hash must match what is sent
  const { html, csp } = renderPage(readFileSync(path.join(root, 'index.html'), 'utf8'));
  const vendor = new Map(vendorModules().map((m) => [m.file, m]));

  app.addHook('onSend', async (_req, reply, payload) => {
    void reply.header('content-security-policy', csp).header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer');
    return payload;
  });
  // the template is only served rendered, at /
  await app.register(fastifyStatic, { root, prefix: `${UI_PREFIX}/`, index: false, list: false, allowedPath: (p) => p !== '/index.html' });
  app.get('/', async (_req, reply) => reply.header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(html));
  app.get<{ Params: { file: string } }>(`${VENDOR_PREFIX}/:file`, async (req, reply) => {
    const m = vendor.get(req.params.file);
    if (m === undefined) return reply.callNotFound();
    // send's mime table types .mjs as JavaScript, which module scripts require under nosniff
    return reply.sendFile(path.basename(m.path), path.dirname(m.path));
  });
}

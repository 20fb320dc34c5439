/**
 * The agent's status page routes through app.inject(): the page with its import map and CSP, the
 * vendor modules and the page's own files, the 404s around them; where the compiled module finds
 * the page's files; and the real slb-agent process (built dist/) serving the page.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAgent } from '../../slb-agent/agent.js';
import { createAgentApi } from '../../slb-agent/api/app.js';
import { pageCsp, renderPage, statusPageDir } from '../../slb-agent/api/status-page.js';
import { parseAgentConfig } from '../../slb-agent/config.js';
import { importMap, vendorModules } from '../../shared/ui/vendor.js';
import { startAgent } from '../helpers/agent-site.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SECRET = 'tokyo-secret-0123456789abcdef-0123456789';
const YAML = (api: string): string => `
site: tokyo
agent: lb1
secret: env:GSLB_SECRET_TOKYO
dns: [ "http://127.0.0.1:1" ]
api: ${api}
vips:
  - name: web
    address: 192.0.2.1
    port: 80
    check: { type: tcp, interval: 1s, timeout: 300ms }
    realServers:
      - { address: 127.0.0.11, port: 8080 }
`;

const sha256 = (s: string): string => createHash('sha256').update(s).digest('base64');

let app: FastifyInstance;

beforeAll(async () => {
  const config = parseAgentConfig(YAML('127.0.0.1:0'), 'site.yaml', { GSLB_SECRET_TOKYO: SECRET });
  const agent = createAgent({ config, logger: pino({ level: 'silent' }), createChecker: () => async () => ({ ok: true, latencyMs: 1 }) });
  app = await createAgentApi({ agent });
});

afterAll(async () => {
  await app?.close();
});

describe('agent status page (app.inject)', () => {
  it('GET / is the page with its import map, admitted by the CSP hash', async () => {
    const r = await app.inject({ method: 'GET', url: '/' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    const map = importMap('/ui/vendor');
    expect(r.body).toContain(`<script type="importmap">${map}</script>`);
    expect(r.body).toContain('<script type="module" src="/ui/app.js"></script>');
    expect(r.body).not.toContain('<!-- import map -->');
    const csp = String(r.headers['content-security-policy']);
    expect(csp).toContain(`script-src 'self' 'sha256-${sha256(map)}'`);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    // no inline handlers, no other inline scripts
    expect(r.body).not.toMatch(/\son[a-z]+=/i);
    expect(r.body.match(/<script/g)).toHaveLength(2);
  });

  it('serves each vendor module as JavaScript, with the same headers', async () => {
    for (const m of vendorModules()) {
      const r = await app.inject({ method: 'GET', url: `/ui/vendor/${m.file}` });
      expect(r.statusCode, m.file).toBe(200);
      expect(r.headers['content-type'], m.file).toMatch(/^(text|application)\/javascript/); // both are JavaScript to a module loader
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      expect(r.body, m.file).toMatch(/\bexport\b/);
    }
  });

  it('serves the page script and style', async () => {
    const js = await app.inject({ method: 'GET', url: '/ui/app.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toMatch(/javascript/);
    expect(js.body).toContain("from 'preact'");
    const css = await app.inject({ method: 'GET', url: '/ui/style.css' });
    expect(css.statusCode).toBe(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
    expect(css.headers['content-security-policy']).toContain("style-src 'self'");
  });

  it('unknown paths stay JSON 404s; the raw template is not served', async () => {
    for (const url of ['/nope', '/ui/nope.js', '/ui/vendor/nope.mjs', '/ui/index.html', '/ui/%2e%2e/package.json', '/ui/vendor/%2e%2e%2fpreact.mjs']) {
      const r = await app.inject({ method: 'GET', url });
      expect(r.statusCode, url).toBe(404);
      expect(r.headers['content-type'], url).toMatch(/^application\/json/);
    }
  });

  it('the API routes keep their own headers (the page scope does not leak)', async () => {
    const r = await app.inject({ method: 'GET', url: '/status' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-security-policy']).toBeUndefined();
    expect(r.json()).toMatchObject({ site: 'tokyo', agent: 'lb1' });
  });
});

describe('status page files', () => {
  it('are found from the source module and from its compiled twin in dist/', () => {
    const dir = path.join(ROOT, 'slb-agent/api/status');
    expect(statusPageDir(pathToFileURL(path.join(ROOT, 'slb-agent/api/status-page.ts')).href)).toBe(dir);
    expect(statusPageDir(pathToFileURL(path.join(ROOT, 'dist/slb-agent/api/status-page.js')).href)).toBe(dir);
    expect(() => statusPageDir(pathToFileURL('/nonexistent/x/status-page.js').href)).toThrow(/not found/);
  });

  it('a template without the import map slot is refused; an empty inline list leaves only self', () => {
    expect(() => renderPage('<html></html>')).toThrow(/slot/);
    expect(pageCsp([])).toContain("script-src 'self';");
  });
});

describe('the slb-agent process (dist/)', () => {
  it('serves the page and its files', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'agent-page-'));
    const file = path.join(dir, 'site.yaml');
    await writeFile(file, YAML('127.0.0.1:0'));
    const p = await startAgent(file, { GSLB_SECRET_TOKYO: SECRET });
    try {
      const base = `http://127.0.0.1:${p.apiPort}`;
      const page = await fetch(`${base}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<script type="importmap">');
      expect(page.headers.get('content-security-policy')).toContain("script-src 'self' 'sha256-");
      for (const url of ['/ui/app.js', '/ui/style.css', '/ui/vendor/preact.mjs']) {
        const r = await fetch(`${base}${url}`);
        expect(r.status, url).toBe(200);
        await r.arrayBuffer();
      }
    } finally {
      await p.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/**
 * The npm package as an operator gets it: `npm pack`, `npm install -g` of the tarball into a
 * temporary prefix (offline: the tarball bundles its dependencies), then the installed programs
 * (not the checkout's) check and serve the package's example zones, answering the real `dig`.
 * The tarball is listed too: it holds what the programs read at run time and none of the
 * tests, benchmarks or secrets.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { watchNode } from './helpers/cli.js';
import type { NodeProc } from './helpers/cli.js';
import { dig, rr } from './helpers/dig.js';
import { postReport, SECRET_ENV } from './helpers/report.js';
import { ROOT } from './helpers/server.js';

const run = promisify(execFile);
const VERSION = (JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** a bound for one npm pack or install (the install compiles the addons) */
const NPM_LIMIT_MS = 240_000;

/** npm, run in the checkout; `--ignore-scripts` on pack: dist/ is built by pretest, and a tsc run here would rewrite it under the other test files. */
async function npm(args: string[], cwd = ROOT): Promise<string> {
  const { stdout } = await run('npm', args, { cwd, timeout: NPM_LIMIT_MS, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** The files `npm pack` would put in the tarball. */
async function packedFiles(): Promise<string[]> {
  const out = JSON.parse(await npm(['pack', '--dry-run', '--json', '--ignore-scripts'])) as [{ files: { path: string }[] }];
  return out[0].files.map((f) => f.path);
}

/**
 * Packs the checkout and installs the tarball globally into a fresh prefix, offline: the
 * dependencies travel in the tarball. Returns the programs' directory, the package's and what
 * npm printed on stderr.
 */
async function installPackage(tmp: string, name: string, extra: string[] = []): Promise<{ bin: string; pkg: string; stderr: string }> {
  const prefix = path.join(tmp, name);
  const [tarball] = (await npm(['pack', '--ignore-scripts', '--pack-destination', tmp])).trim().split('\n').slice(-1);
  const { stderr } = await run('npm', ['install', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', ...extra, path.join(tmp, tarball!)], {
    cwd: tmp, timeout: NPM_LIMIT_MS, maxBuffer: 64 * 1024 * 1024,
  });
  return { bin: path.join(prefix, 'bin'), pkg: path.join(prefix, 'lib', 'node_modules', 'gslb'), stderr };
}

/** An installed program run to completion (the shebang's node from PATH, like an operator's shell). */
async function runInstalled(bin: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(bin, args, { env: { ...process.env, ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** The installed gslb-dns serving the proxy example's zones on ephemeral ports. */
async function serveExample(bin: string, pkg: string): Promise<NodeProc & { port: number; apiPort: number }> {
  const zones = path.join(pkg, 'examples', 'proxy', 'zones');
  const proc = spawn(path.join(bin, 'gslb-dns'), ['--zones', zones, '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...SECRET_ENV },
  });
  const p = watchNode(proc, 'gslb-dns (installed)');
  try {
    const listening = await p.waitLog((l) => l['msg'] === 'listening', 30_000);
    const api = await p.waitLog((l) => l['msg'] === 'api listening', 30_000);
    return Object.assign(p, { port: listening['udp'] as number, apiPort: api['port'] as number });
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
}

describe('npm pack: the tarball', () => {
  it('holds the programs, what they read at run time, the examples and docs; no tests, benchmarks or secrets', async () => {
    const files = await packedFiles();
    for (const f of [
      'bin/gslb-dns.js', 'bin/slb-agent.js', 'dist/dns/main.js', 'dist/slb-agent/main.js', 'dist/drill/main.js',
      'dist/dns/zone/load-worker.js', 'dns/http/status/index.html', 'dns/http/status/app.js', 'dns/http/status/style.css',
      'slb-agent/api/status/index.html', 'slb-agent/api/status/app.js', 'slb-agent/api/status/style.css',
      'binding.gyp', 'scripts/build-addons.js', 'dns/wire/native/udp_batch.c', 'slb-agent/pinger/native/pinger_sock.c',
      'slb-agent/forwarder/proxy/native/reuseport_sock.c', 'examples/proxy/zones/gslb.example.com.zone',
      'deploy/grafana/gslb.json', 'deploy/systemd/gslb-dns.service', 'deploy/systemd/slb-agent.service',
      'deploy/systemd/slb-pinger.service', 'deploy/systemd/gslb.sysusers.conf', 'docs/operations.md',
    ]) expect(files, f).toContain(f);
    // our own files: the dependencies (bundled, below) ship what their authors published
    const own = files.filter((f) => !f.startsWith('node_modules/'));
    const unwanted = own.filter((f) =>
      /^(test|bench|lab|demo|zones|drill\/lab|dist\/(test|bench|lab|demo|drill\/lab))\//.test(f) ||
      /(^|\/)secrets?(\/|$)|\.(token|key|pem|map)$|^(run|build)\//.test(f));
    expect(unwanted).toEqual([]);
    expect(files.filter((f) => /\.(token|key|pem)$|(^|\/)secrets?\//.test(f))).toEqual([]);
    // the runtime dependencies are bundled at the lockfile's versions; no development dependency is
    const bundled = new Set(files.flatMap((f) => [...f.matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)\//g)].map((m) => m[1]!)));
    for (const dep of ['fastify', 'pino', 'preact', 'htm', 'cookie', 'etcd3']) expect(bundled, dep).toContain(dep);
    for (const dev of ['dns2', 'vitest', 'typescript', 'playwright-core', '@types/dns-packet']) expect(bundled, dev).not.toContain(dev);
  }, NPM_LIMIT_MS);
});

describe('npm install -g of the tarball', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'gslb-pkg-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('installs with its addons built; the installed programs check and serve the example zones', async () => {
    const { bin, pkg, stderr } = await installPackage(tmp, 'with-scripts');
    // the bundled tree is the lockfile's, overrides included: nothing needs Node 22
    expect(stderr).not.toContain('EBADENGINE');
    const cookie = (await packedFiles()).find((f) => f.endsWith('node_modules/cookie/package.json'));
    expect(JSON.parse(await readFile(path.join(pkg, cookie!), 'utf8'))).toMatchObject({ version: expect.stringMatching(/^1\./) });
    for (const addon of ['udp_batch', 'pinger_sock', 'reuseport_sock']) {
      expect(existsSync(path.join(pkg, 'build', 'Release', `${addon}.node`)), addon).toBe(true);
    }
    expect((await runInstalled(path.join(bin, 'gslb-dns'), ['--version'])).stdout.trim()).toBe(VERSION);
    expect((await runInstalled(path.join(bin, 'slb-agent'), ['--version'])).stdout.trim()).toBe(VERSION);

    const check = await runInstalled(path.join(bin, 'gslb-dns'), ['check', '--zones', path.join(pkg, 'examples', 'proxy', 'zones')], SECRET_ENV);
    expect(check).toMatchObject({ code: 0 });
    expect(check.stdout).toContain('pool web: weighted, 2 members');
    // the examples name their secrets only by env: (none ship): without them check says which
    const noSecrets = await runInstalled(path.join(bin, 'gslb-dns'), ['check', '--zones', path.join(pkg, 'examples', 'proxy', 'zones')], { GSLB_SECRET_TOKYO: '' });
    expect(noSecrets.code).toBe(1);
    expect(noSecrets.stderr).toContain('GSLB_SECRET_TOKYO');
    const agentCheck = await runInstalled(path.join(bin, 'slb-agent'), ['check', '--config', path.join(pkg, 'examples', 'dsr', 'tokyo.agent.yaml')], SECRET_ENV);
    expect(agentCheck).toMatchObject({ code: 0 });

    const dns = await serveExample(bin, pkg);
    try {
      expect(dns.lines.find((l) => l['msg'] === 'listening')).toMatchObject({ udpTransport: 'native' });
      const ns1 = await dig(dns.port, ['ns1.gslb.example.com', 'A']);
      expect(ns1.status).toBe('NOERROR');
      expect(ns1.flags.has('aa')).toBe(true);
      expect(ns1.answer.map(rr)).toEqual(['ns1.gslb.example.com. 3600 IN A 192.0.2.53']);
      // a signed report from site tokyo (as its agent would send it) puts its VIP in the answer
      expect((await postReport(dns.apiPort, 'tokyo', [{ address: '192.0.2.10', state: 'up' }])).status).toBe(200);
      expect((await postReport(dns.apiPort, 'osaka', [{ address: '198.51.100.10', state: 'down' }])).status).toBe(200);
      const www = await dig(dns.port, ['app.gslb.example.com', 'A']);
      expect(www.answer.map(rr)).toEqual(['app.gslb.example.com. 3600 IN CNAME www.gslb.example.com.', 'www.gslb.example.com. 5 IN A 192.0.2.10']);
      // the status page's files come from the package (dns/http/status and preact from its node_modules)
      const page = await fetch(`http://127.0.0.1:${dns.apiPort}/`);
      expect(page.status).toBe(200);
      const html = await page.text();
      const vendor = /"preact":"([^"]+)"/.exec(html)?.[1];
      expect(vendor).toBeDefined();
      expect((await fetch(`http://127.0.0.1:${dns.apiPort}${vendor!}`)).status).toBe(200);
    } finally {
      await dns.stop();
    }
    // the agent's status page files resolve from the installed package as well
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e',
      `const m = await import(${JSON.stringify(path.join(pkg, 'dist/slb-agent/api/status-page.js'))}); console.log(m.statusPageDir());`]);
    expect(stdout.trim()).toBe(path.join(pkg, 'slb-agent', 'api', 'status'));
  }, NPM_LIMIT_MS * 2);

  it('without install scripts the addons are not built and gslb-dns says it falls back, then serves', async () => {
    const { bin, pkg } = await installPackage(tmp, 'ignore-scripts', ['--ignore-scripts']);
    expect(existsSync(path.join(pkg, 'build'))).toBe(false);
    const dns = await serveExample(bin, pkg);
    try {
      expect(dns.lines.find((l) => l['msg'] === 'listening')).toMatchObject({ udpTransport: 'dgram' });
      expect(dns.lines.some((l) => String(l['msg']).startsWith('UDP batch addon unavailable'))).toBe(true);
      expect((await dig(dns.port, ['ns2.gslb.example.com', 'A'])).answer.map(rr)).toEqual(['ns2.gslb.example.com. 3600 IN A 198.51.100.53']);
    } finally {
      await dns.stop();
    }
  }, NPM_LIMIT_MS * 2);
});

/**
 * Every file in examples/ stays valid as the programs see it: each zones directory passes
 * `gslb-dns check`, each agent file `slb-agent check`, each pinger file loads; the secrets are
 * named only by env: or file: (none ship with the examples).
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../slb-agent/config.js';
import { loadPingerFile } from '../slb-agent/pinger/file.js';
import { runNodeBin } from './helpers/cli.js';
import { SECRET_ENV } from './helpers/report.js';
import { ROOT } from './helpers/server.js';

const EXAMPLES = path.join(ROOT, 'examples');
const files = (await readdir(EXAMPLES, { recursive: true, withFileTypes: true }))
  .filter((e) => e.isFile()).map((e) => path.relative(EXAMPLES, path.join(e.parentPath, e.name))).sort();
const zoneDirs = [...new Set(files.filter((f) => /\.(zone|gslb\.yaml)$/.test(f)).map((f) => path.dirname(f)))];
const agentFiles = files.filter((f) => f.endsWith('.agent.yaml'));
const pingerFiles = files.filter((f) => f.endsWith('pinger.yaml'));

describe('examples/', () => {
  it('holds a two-site proxy and a two-site dsr deployment, and nothing the checks below skip', () => {
    expect(zoneDirs).toEqual(['dsr/zones', 'proxy/zones']);
    expect(agentFiles).toEqual(['dsr/osaka.agent.yaml', 'dsr/tokyo.agent.yaml', 'proxy/osaka.agent.yaml', 'proxy/tokyo.agent.yaml']);
    const covered = new Set([...agentFiles, ...pingerFiles, ...files.filter((f) => zoneDirs.includes(path.dirname(f)))]);
    expect(files.filter((f) => !covered.has(f))).toEqual([]);
  });

  it.each(zoneDirs)('%s passes gslb-dns check', async (dir) => {
    const r = await runNodeBin('gslb-dns', ['check', '--zones', path.join(EXAMPLES, dir)], SECRET_ENV);
    expect(r.stderr).toBe('');
    expect(r).toMatchObject({ code: 0 });
    expect(r.stdout).toMatch(/^OK$/m);
  });

  it.each(agentFiles)('%s passes slb-agent check', async (file) => {
    const r = await runNodeBin('slb-agent', ['check', '--config', path.join(EXAMPLES, file)], SECRET_ENV);
    expect(r.stderr).toBe('');
    expect(r).toMatchObject({ code: 0 });
    expect(r.stdout).toContain(`OK: site ${path.basename(file).split('.')[0]}`);
  });

  it.each(files.filter((f) => f.endsWith('.yaml')))('%s names its secrets by env: only', async (file) => {
    const secrets = [...(await readFile(path.join(EXAMPLES, file), 'utf8')).matchAll(/^\s*secret:\s*(\S+)/gm)].map((m) => m[1]!);
    if (/(agent|gslb)\.yaml$/.test(file)) expect(secrets.length).toBeGreaterThan(0);
    for (const s of secrets) expect(s).toMatch(/^env:GSLB_SECRET_[A-Z]+$/);
  });

  it('dsr/tokyo.agent.yaml: dsr VIPs with maglev and persistence, and the pinger, as the agent loads them', async () => {
    const config = await loadAgentConfig(path.join(EXAMPLES, 'dsr/tokyo.agent.yaml'), SECRET_ENV);
    expect(config.vips[0]!.forwarder).toMatchObject({ mode: 'dsr', interface: 'eth0', scheduler: 'maglev', persistenceMs: 300_000 });
    expect(config.pinger?.interfaces[0]).toMatchObject({ name: 'eth0', auto: true, peers: ['10.0.0.1'], intervalMs: 60_000 });
  });

  it('dsr/rs-pinger.yaml: ARP to the gateway and recent neighbours every 60 s', async () => {
    expect(pingerFiles).toEqual(['dsr/rs-pinger.yaml']);
    const f = await loadPingerFile(path.join(EXAMPLES, 'dsr/rs-pinger.yaml'));
    expect(f.pinger.interfaces[0]).toMatchObject({ method: 'arp', intervalMs: 60_000, jitter: 0.1, auto: true });
    expect(f.api).toEqual({ host: '127.0.0.1', port: 9102 });
  });
});

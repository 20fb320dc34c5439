/**
 * Vantage options against a real gslb-dns: `http` fetches through the answered address like a
 * client (a local HTTP server stands behind a 127.0.0.1 member), and `server` asks that server
 * instead of the instances.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drill } from '../../drill/main.js';
import { startCli } from '../helpers/cli.js';
import type { Cli } from '../helpers/cli.js';
import { postReport, SECRET_ENV } from '../helpers/report.js';

const TOKEN = 'drill-vantage-token-0123456789';

let dir: string;
let dns: Cli;
let web: Server;
let webPort: number;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-drill-vantage-'));
  const zones = path.join(dir, 'zones');
  await mkdir(zones);
  await writeFile(path.join(zones, 'v.test.zone'), '$ORIGIN v.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n  IN NS ns1\nns1 IN A 192.0.2.53\n');
  await writeFile(path.join(zones, 'v.test.gslb.yaml'), `sites:
  tokyo: { secret: env:GSLB_SECRET_TOKYO, staleAfter: 1h }
pools:
  web:
    names: [www]
    allDown: nodata
    members:
      - { site: tokyo, address: 127.0.0.1 }
`);
  await writeFile(path.join(dir, 'admin.token'), `ops:${TOKEN}\n`);
  dns = await startCli(['--zones', zones, '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0', '--admin-token-file', path.join(dir, 'admin.token'),
    '--state-dir', path.join(dir, 'state'), '--instance', 'v'], SECRET_ENV);
  expect((await postReport(dns.apiPort, 'tokyo', [{ address: '127.0.0.1', state: 'up' }])).status).toBe(200);
  web = createServer((_req, res) => { res.writeHead(204); res.end(); });
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  webPort = (web.address() as AddressInfo).port;
});

afterAll(async () => {
  await dns?.stop();
  await new Promise((resolve) => web?.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe('drill vantages', () => {
  it('fetches through the answer (http) and asks a given server (server)', async () => {
    const plan = path.join(dir, 'plan.yaml');
    const json = path.join(dir, 'out.json');
    await writeFile(plan, `name: vantages
probeEvery: 100ms
instances:
  - { name: ns1, dns: "127.0.0.1:${dns.port}", api: "http://127.0.0.1:${dns.apiPort}", tokenFile: admin.token }
vantages:
  - { name: clients, names: [www.v.test], http: "http://{address}:${webPort}/" }
  - { name: via-resolver, names: [www.v.test], server: "127.0.0.1:${dns.port}" }
steps:
  - { expect: { name: www.v.test, from: clients, sites: [tokyo] }, within: 20s }
  - { expect: { name: www.v.test, from: via-resolver, addresses: [127.0.0.1] }, within: 20s }
`);
    let out = '';
    const code = await drill(['--plan', plan, '--json', json], {
      stdout: { write: (s) => { out += s; } }, stderr: { write: (s) => { out += s; } }, env: {}, onSigint: () => () => {},
    });
    expect(code, out).toBe(0);
    const doc = JSON.parse(await readFile(json, 'utf8')) as { samples: { instance: string; vantage: string; http?: { ok: boolean; status: number | null } }[] };
    const viaClients = doc.samples.filter((s) => s.vantage === 'clients');
    expect(viaClients.length).toBeGreaterThan(0);
    expect(viaClients.every((s) => s.instance === 'ns1')).toBe(true);
    expect(viaClients.some((s) => s.http?.ok === true && s.http.status === 204)).toBe(true);
    const viaResolver = doc.samples.filter((s) => s.vantage === 'via-resolver');
    expect(viaResolver.length).toBeGreaterThan(0);
    expect(viaResolver.every((s) => s.instance === `127.0.0.1:${dns.port}` && s.http === undefined)).toBe(true);
  });
});

/**
 * DNSViz on a signed zone served by gslb-dns (static names, a wildcard, a CNAME into a GSLB pool,
 * a pool answer with ECS): `dnsviz probe` collects, `dnsviz grok` with the trust anchor analyses,
 * and reports no warning and no error; with a wrong trust anchor it does report one.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli } from '../../helpers/cli.js';
import type { Cli } from '../../helpers/cli.js';
import { dnssecCli, sepKeys } from '../../helpers/dnssec.js';
import { SECRET_ENV } from '../../helpers/report.js';

const run = promisify(execFile);

// the zone's NS is 127.0.0.1, so that DNSViz's authoritative analysis asks only this server
const ZONE = `$ORIGIN signed.test.
$TTL 300
@      IN SOA ns1 hostmaster 1 3600 600 86400 60
       IN NS  ns1
ns1    IN A   127.0.0.1
www    IN A   192.0.2.80
       IN AAAA 2001:db8::80
alias  IN CNAME pool
*.wild IN TXT "wild"
`;
const POOLS = `sites:
  tokyo: { secret: env:GSLB_SECRET_TOKYO, subnets: [198.51.100.0/24] }
  osaka: { secret: env:GSLB_SECRET_OSAKA, subnets: [203.0.113.0/24] }
pools:
  web:
    names: [pool]
    policy: topology
    allDown: all
    startup: allDown
    members:
      - { site: tokyo, address: 192.0.2.11 }
      - { site: osaka, address: 192.0.2.12 }
      - { site: osaka, address: "2001:db8::12" }
`;
const NAMES = ['signed.test', 'www.signed.test', 'nope.signed.test', 'x.wild.signed.test', 'alias.signed.test', 'pool.signed.test'];

/**
 * `dnsviz grok` through its module: Debian 12's dnsviz 0.9.4 checks for graphviz by importing
 * `pygraphviz.release`, which its python3-pygraphviz 1.7 no longer has, and refuses trust
 * anchors; the analysis itself does not need graphviz.
 */
const GROK = `import sys
import dnsviz.commands.grok as g
g.test_pygraphviz = lambda: None
g.main(['grok'] + sys.argv[1:])`;

let dir: string;
let server: Cli;

async function grok(anchorKeys: string[], level: string[]): Promise<string> {
  const anchors = path.join(dir, `anchors-${Math.random().toString(36).slice(2)}.txt`);
  await writeFile(anchors, anchorKeys.map((k) => `signed.test. IN DNSKEY ${k}\n`).join(''));
  const out = path.join(dir, 'grok.json');
  await run('/usr/bin/python3', ['-c', GROK, '-t', anchors, ...level, '-r', path.join(dir, 'probe.json'), '-o', out], { timeout: 60_000 });
  return readFile(out, 'utf8');
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-dnsviz-'));
  await writeFile(path.join(dir, 'signed.test.zone'), ZONE);
  await writeFile(path.join(dir, 'signed.test.gslb.yaml'), POOLS);
  await dnssecCli(['keygen', '--zones', dir, '--split', 'signed.test']);
  server = await startCli(['--zones', dir, '--listen', '127.0.0.1:0'], SECRET_ENV);
  await run('dnsviz', ['probe', '-4', '-A', '-e', '198.51.100.0/24', '-x', `signed.test+:127.0.0.1:${server.port}`, '-o', path.join(dir, 'probe.json'), ...NAMES],
    { timeout: 120_000 });
}, 150_000);

afterAll(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('dnsviz probe + grok', () => {
  it('reports no warning and no error with the right trust anchor, and every name secure', async () => {
    const keys = await sepKeys(dir, 'signed.test.');
    // -l warning: only what has a warning or an error is written; nothing is written
    expect(await grok(keys, ['-l', 'warning'])).toBe('');
    const full = JSON.parse(await grok(keys, [])) as Record<string, unknown>;
    expect(Object.keys(full).sort()).toEqual(NAMES.map((n) => `${n}.`).sort());
    const statuses = [...JSON.stringify(full).matchAll(/"status":"?\s*"([A-Z_]+)"/g)].map((m) => m[1]);
    expect(statuses.length).toBeGreaterThan(20);
    expect(new Set(statuses)).toEqual(new Set(['NOERROR', 'SECURE', 'VALID']));
  });

  it('reports an error with a wrong trust anchor (the check can fail)', async () => {
    const other = await mkdtemp(path.join(os.tmpdir(), 'gslb-dnsviz-wrong-'));
    try {
      await writeFile(path.join(other, 'signed.test.zone'), ZONE);
      await dnssecCli(['keygen', '--zones', other, 'signed.test']);
      expect(await grok(await sepKeys(other, 'signed.test.'), ['-l', 'warning'])).toContain('NO_TRUST_ANCHOR_SIGNING');
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});

/**
 * Probe-only sites end to end: the real gslb-dns process probes two local TCP listeners (one
 * per site, 127.0.0.1 and 127.0.0.2) and the real dig sees a failover pool follow them: tier 1
 * while its port listens, tier 2 once it closes, tier 1 again when it reopens.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli } from '../../helpers/cli.js';
import type { Cli } from '../../helpers/cli.js';
import { dig } from '../../helpers/dig.js';

const ZONE = `$ORIGIN probe.test.
$TTL 300
@       IN SOA ns1 hostmaster 1 3600 600 86400 60
        IN NS  ns1
ns1     IN A   192.0.2.53
`;

const TIER1 = '127.0.0.1';
const TIER2 = '127.0.0.2';

/** A TCP listener that accepts and closes nothing itself; `close()` also drops open connections. */
interface Listener {
  port: number;
  close(): Promise<void>;
}

async function openListener(host: string, port = 0): Promise<Listener> {
  const open = new Set<net.Socket>();
  const server = net.createServer((s) => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => {});
    s.resume();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      if (!server.listening) { resolve(); return; }
      server.close(() => resolve());
      for (const s of open) s.destroy();
    }),
  };
}

let dir: string;
let cli: Cli | undefined;
let primary: Listener | undefined;
let backup: Listener | undefined;

beforeAll(async () => {
  primary = await openListener(TIER1);
  backup = await openListener(TIER2);
  dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-probe-e2e-'));
  await writeFile(path.join(dir, 'probe.test.zone'), ZONE);
  await writeFile(path.join(dir, 'probe.test.gslb.yaml'), `# two probe-only sites: no secrets, no agents
sites:
  primary:
    probe: { type: tcp, port: ${primary.port}, interval: 100ms, timeout: 50ms }
    rise: 1
    fall: 1
  backup:
    probe: { type: tcp, port: ${backup.port}, interval: 100ms, timeout: 50ms }
    rise: 1
    fall: 1
pools:
  web:
    names: [www]
    policy: failover
    maxAnswers: 1
    allDown: nodata
    members:
      - { site: primary, address: ${TIER1}, tier: 1 }
      - { site: backup, address: ${TIER2}, tier: 2 }
`);
  cli = await startCli(['--zones', dir, '--listen', '127.0.0.1:0']);
});

afterAll(async () => {
  await cli?.stop();
  await primary?.close();
  await backup?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The addresses in the answer to `www.probe.test A`; `starting` lets SERVFAIL pass as [] (startup: servfail before the first probe). */
async function answer(starting = false): Promise<string[]> {
  const r = await dig(cli!.port, ['+norec', 'www.probe.test', 'A']);
  if (starting && r.status === 'SERVFAIL') return [];
  expect(r.status).toBe('NOERROR');
  return r.answer.map((l) => l.split(' ').at(-1)!);
}

/** Polls dig until the answer is exactly `[address]`; fails with the last answer after `ms`. */
async function waitForAnswer(address: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  let last: string[] = [];
  for (;;) {
    last = await answer(true);
    if (last.length === 1 && last[0] === address) return;
    if (Date.now() > deadline) throw new Error(`www.probe.test still answers ${JSON.stringify(last)}, wanted ${address}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('probe-only sites drive a failover pool', () => {
  it('answers the tier-1 member while its port listens', async () => {
    await waitForAnswer(TIER1);
    // and keeps answering it: the probes keep passing
    expect(await answer()).toEqual([TIER1]);
    await cli!.waitLog((l) => l['msg'] === `health: member-up primary ${TIER1}`);
    await cli!.waitLog((l) => l['msg'] === `health: member-up backup ${TIER2}`);
  });

  it('fails over to the tier-2 member when the tier-1 listener closes', async () => {
    await primary!.close();
    await waitForAnswer(TIER2);
    await cli!.waitLog((l) => l['msg'] === `health: member-down primary ${TIER1}`);
    expect(await answer()).toEqual([TIER2]);
  });

  it('goes back to tier 1 when the listener reopens', async () => {
    primary = await openListener(TIER1, primary!.port);
    await waitForAnswer(TIER1);
    expect(await answer()).toEqual([TIER1]);
  });
});

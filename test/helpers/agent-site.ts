/**
 * A site on loopback for process-level agent tests: echo backends, free ports, the real
 * slb-agent process, and a zone + pool file for gslb-dns with one member per VIP.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { startNode } from './cli.js';
import type { NodeProc } from './cli.js';
import { ROOT } from './server.js';

export const AGENT_MAIN = path.join(ROOT, 'dist/slb-agent/main.js');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A TCP backend on 127.0.0.1: greets every connection with its name, then echoes. */
export interface EchoBackend { readonly name: string; readonly port: number; stop(): Promise<void> }

export async function echoBackend(name: string): Promise<EchoBackend> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.write(`${name}\n`);
    s.on('data', (d) => s.write(d));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    name,
    port: (server.address() as AddressInfo).port,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A TCP port free right now on `host` (bound, then closed). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, host, r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Connects to host:port and reads the greeting line; '' when refused, reset or silent (bounded). */
export function greeting(host: string, port: number, ms = 2000): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    let buf = '';
    const done = (v: string): void => { clearTimeout(t); sock.destroy(); resolve(v); };
    const t = setTimeout(() => done(''), ms);
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) done(buf.slice(0, i));
    });
    sock.on('error', () => done(''));
    sock.on('close', () => done(''));
  });
}

/** The real slb-agent process with its JSON log lines. */
export interface AgentProc extends NodeProc { apiPort: number }

/** Starts `slb-agent --config file` and waits for its API. */
export async function startAgent(config: string, env: Record<string, string>, extra: string[] = []): Promise<AgentProc> {
  const p = startNode(AGENT_MAIN, ['--config', config, ...extra], env);
  try {
    const l = await p.waitLog((x) => x['msg'] === 'api listening', 20_000);
    return Object.assign(p, { apiPort: l['port'] as number });
  } catch (err) {
    p.proc.kill('SIGKILL');
    throw err;
  }
}

/** GET /status of an agent. */
export async function agentStatus(apiPort: number): Promise<{
  vips: { name: string; state: string; reason?: string; weight: number; healthy: number; total: number; realServers: { key: string }[];
    forwarder?: { lastApply?: { ok: boolean; error?: string } } }[];
}> {
  const res = await fetch(`http://127.0.0.1:${apiPort}/status`);
  return (await res.json()) as never;
}

/**
 * Writes `<dir>/zones/<zone>.zone` and its pool file: site tokyo (GSLB_SECRET_TOKYO), one pool per
 * entry named as its key, one member each, `allDown: nodata`; returns the zones directory.
 */
export async function writeZones(dir: string, zone: string, pools: Record<string, string>, staleAfter = '30s'): Promise<string> {
  const zones = path.join(dir, 'zones');
  await mkdir(zones, { recursive: true });
  await writeFile(path.join(zones, `${zone}.zone`), [
    `$ORIGIN ${zone}.`, '$TTL 300', '@ IN SOA ns1 hostmaster 1 3600 600 86400 60', '  IN NS ns1', 'ns1 IN A 192.0.2.53', '',
  ].join('\n'));
  await writeFile(path.join(zones, `${zone}.gslb.yaml`), [
    'sites:',
    `  tokyo: { secret: env:GSLB_SECRET_TOKYO, staleAfter: ${staleAfter} }`,
    'pools:',
    ...Object.entries(pools).flatMap(([name, address]) => [
      `  ${name}:`, `    names: [${name}]`, '    ttl: 20', '    degradedTtl: 5', '    policy: failover', '    maxAnswers: 1', '    allDown: nodata',
      '    members:', `      - { site: tokyo, address: ${address}, tier: 1 }`,
    ]),
    '',
  ].join('\n'));
  return zones;
}

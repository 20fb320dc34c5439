#!/usr/bin/env node
/**
 * A real server for labs (started by Lab.startBackend inside a namespace):
 *   --id ID           the name it answers with
 *   --tcp ADDR:PORT   on accept writes `ID\n`, echoes every chunk; on the client's FIN writes `bye\n` and ends
 *   --udp ADDR:PORT   answers each datagram with `ID:<payload>` to its sender
 *   --http ADDR:PORT  HTTP/1.1 keep-alive, any request -> 200 with body `ID\n` (prebuilt, for benchmarks)
 * Each listener flag may repeat; IPv6 as [::1]:80. Prints `ready` once every listener is up.
 * Exit codes: 0 on SIGTERM/SIGINT, 1 a listener failed, 2 bad flags.
 */
import { createSocket } from 'node:dgram';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { parseHostPort } from '../shared/ip.js';
import { parseArgs } from 'node:util';

interface Endpoint { host: string; port: number; family: 4 | 6 }

export function parseEndpoint(s: string): Endpoint {
  const { host, port, family } = parseHostPort(s);
  if (port < 1 || family === 0) throw new Error(`bad address ${JSON.stringify(s)}: want IPv4:PORT or [IPv6]:PORT`);
  return { host, port, family };
}

function listenTcp(id: string, ep: Endpoint): Promise<void> {
  // allowHalfOpen: after the client's FIN we still write `bye`
  const server = createTcpServer({ allowHalfOpen: true }, (sock) => {
    sock.on('error', () => { /* a reset client is not our problem */ });
    sock.write(`${id}\n`);
    sock.on('data', (d) => { sock.write(d); });
    sock.on('end', () => { sock.end('bye\n'); });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: ep.host, port: ep.port }, () => { resolve(); });
  });
}

function listenUdp(id: string, ep: Endpoint): Promise<void> {
  const sock = createSocket(ep.family === 6 ? 'udp6' : 'udp4');
  const prefix = Buffer.from(`${id}:`);
  sock.on('message', (msg, rinfo) => { sock.send(Buffer.concat([prefix, msg]), rinfo.port, rinfo.address); });
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(ep.port, ep.host, () => { resolve(); });
  });
}

function listenHttp(id: string, ep: Endpoint): Promise<void> {
  const body = Buffer.from(`${id}\n`);
  const headers = { 'content-type': 'text/plain', 'content-length': String(body.length) };
  const server = createHttpServer({ keepAlive: true }, (req, res) => {
    req.resume(); // discard any request body without buffering it
    res.writeHead(200, headers);
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: ep.host, port: ep.port, backlog: 4096 }, () => { resolve(); });
  });
}

async function main(argv: string[]): Promise<number> {
  let values;
  let eps: { tcp: Endpoint[]; udp: Endpoint[]; http: Endpoint[] };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { id: { type: 'string' }, tcp: { type: 'string', multiple: true }, udp: { type: 'string', multiple: true }, http: { type: 'string', multiple: true } },
      strict: true,
    }));
    if (!values.id) throw new Error('--id ID is required');
    eps = { tcp: (values.tcp ?? []).map(parseEndpoint), udp: (values.udp ?? []).map(parseEndpoint), http: (values.http ?? []).map(parseEndpoint) };
    if (eps.tcp.length + eps.udp.length + eps.http.length === 0) throw new Error('give at least one of --tcp, --udp, --http');
  } catch (err) {
    process.stderr.write(`backend-server: ${(err as Error).message}\n`);
    return 2;
  }
  const id = values.id;
  try {
    await Promise.all([...eps.tcp.map((e) => listenTcp(id, e)), ...eps.udp.map((e) => listenUdp(id, e)), ...eps.http.map((e) => listenHttp(id, e))]);
  } catch (err) {
    process.stderr.write(`backend-server: ${(err as Error).message}\n`);
    return 1;
  }
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => { resolve(); });
    process.once('SIGINT', () => { resolve(); });
  });
  return 0;
}

// exit explicitly: open listeners and keep-alive connections would keep the process alive
process.exit(await main(process.argv.slice(2)));

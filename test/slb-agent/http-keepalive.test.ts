/** HTTP checks on kept-alive connections, against real local servers. */
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../shared/clock.js';
import type { CheckConfig } from '../../slb-agent/config.js';
import { createChecker } from '../../slb-agent/health/checkers/index.js';
import { parseResponse } from '../../slb-agent/health/checkers/http-keepalive.js';
import { ManualClock } from '../helpers/manual-clock.js';

/** Checks time out on a clock that never moves, except the timeout case (real clock, a server that never answers). */
const still = new ManualClock();

const servers: (Server | NetServer)[] = [];
afterAll(async () => { await Promise.all(servers.map((s) => new Promise((r) => s.close(() => r(undefined))))); });

const check = (extra: Record<string, unknown> = {}): CheckConfig => ({
  type: 'http', method: 'GET', path: '/healthz', expect: [200], insecure: false, reuseConnection: 60,
  intervalMs: 2000, timeoutMs: 400, rise: 2, fall: 2, startState: 'down', jitter: 0.1, ...extra,
} as CheckConfig);

/** An HTTP server that counts the TCP connections it accepted. */
async function counting(handler: (req: IncomingMessage, res: ServerResponse) => void, keepAliveTimeout = 5000) {
  const s = createHttpServer(handler);
  s.keepAliveTimeout = keepAliveTimeout;
  let connections = 0;
  s.on('connection', () => { connections++; });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { port: (s.address() as AddressInfo).port, connections: () => connections, server: s };
}

const target = (port: number) => ({ address: '127.0.0.1', port });
const signal = () => new AbortController().signal;

describe('http checks on a kept-alive connection', () => {
  it('sends every check on one connection', async () => {
    const srv = await counting((_req, res) => { res.writeHead(200); res.end('ok'); });
    const c = createChecker(check(), 'web', still);
    for (let i = 0; i < 5; i++) expect(await c(target(srv.port), signal())).toMatchObject({ ok: true });
    expect(srv.connections()).toBe(1);
  });

  it('opens a fresh connection every reuseConnection checks', async () => {
    const srv = await counting((_req, res) => { res.writeHead(200); res.end('ok'); });
    const c = createChecker(check({ reuseConnection: 2 }), 'web', still);
    for (let i = 0; i < 6; i++) expect(await c(target(srv.port), signal())).toMatchObject({ ok: true });
    expect(srv.connections()).toBe(3);
  });

  it('survives the server closing an idle kept connection', async () => {
    // answers one request per connection as if keeping it alive, then drops it shortly after
    let connections = 0;
    const srv = createNetServer((sock: Socket) => {
      connections++;
      sock.once('data', () => {
        sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        setTimeout(() => sock.destroy(), 30);
      });
    });
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    const c = createChecker(check(), 'web', still);
    expect(await c(target(port), signal())).toMatchObject({ ok: true });
    await new Promise((r) => setTimeout(r, 150));
    expect(await c(target(port), signal())).toMatchObject({ ok: true });
    expect(connections).toBe(2);
  });

  it('reports a bad status and a body mismatch, and reads chunked bodies', async () => {
    let status = 503;
    const srv = await counting((_req, res) => { res.writeHead(status); res.write('he'); res.end('althy'); });
    const c = createChecker(check({ body: 'healthy' }), 'web', still);
    expect(await c(target(srv.port), signal())).toMatchObject({ ok: false, error: 'status 503' });
    status = 200;
    expect(await c(target(srv.port), signal())).toMatchObject({ ok: true });
    const c2 = createChecker(check({ body: 'sick' }), 'web', still);
    expect(await c2(target(srv.port), signal())).toMatchObject({ ok: false, error: 'body does not match /sick/' });
  });

  it('times out on a server that accepts and never answers, then starts over on a new connection', async () => {
    let sockets = 0;
    const hang = createNetServer((s: Socket) => { sockets++; s.on('data', () => {}); });
    servers.push(hang);
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const port = (hang.address() as AddressInfo).port;
    const c = createChecker(check({ timeoutMs: 100 }), 'web', systemClock);
    expect(await c(target(port), signal())).toMatchObject({ ok: false, error: 'timeout after 100ms' });
    expect(await c(target(port), signal())).toMatchObject({ ok: false, error: 'timeout after 100ms' });
    expect(sockets).toBe(2);
  });

  it('fails on a refused connection', async () => {
    const srv = await counting((_req, res) => { res.end(); });
    const port = srv.port;
    await new Promise((r) => srv.server.close(r));
    servers.splice(servers.indexOf(srv.server), 1);
    expect(await createChecker(check(), 'web', still)(target(port), signal())).toMatchObject({ ok: false, error: 'connection refused' });
  });
});

describe('parseResponse', () => {
  const b = (s: string) => Buffer.from(s, 'latin1');
  it('frames by Content-Length, chunks, HEAD and connection close', () => {
    expect(parseResponse(b('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), false, false)).toMatchObject({ status: 200, keepAlive: true, used: 40 });
    expect(parseResponse(b('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\no'), false, false)).toBeUndefined();
    const chunked = parseResponse(b('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n3\r\n!!!\r\n0\r\n\r\n'), false, false);
    expect(chunked && 'body' in chunked ? chunked.body.toString() : '').toBe('ok!!!');
    expect(parseResponse(b('HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n'), true, false)).toMatchObject({ status: 200, used: 39 });
    expect(parseResponse(b('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody'), false, false)).toBeUndefined();
    expect(parseResponse(b('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody'), false, true)).toMatchObject({ keepAlive: false });
    expect(parseResponse(b('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n'), false, false)).toMatchObject({ keepAlive: false });
    expect(parseResponse(b('SSH-2.0-OpenSSH\r\n\r\n'), false, false)).toEqual({ error: 'no HTTP status line' });
    expect(parseResponse(b('HTTP/1.1 200'), false, true)).toEqual({ error: 'connection closed before a full response' });
  });
});

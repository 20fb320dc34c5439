/**
 * HTTP and HTTPS checks (keepalived HTTP_GET / SSL_GET): the status must be in `expect` and,
 * when `body` is set, the body must match it. node:http rather than node-fetch: a check needs a
 * fresh connection per probe, a Host header of its own and per-check TLS verification.
 */
import { request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { addressFamily, formatHostPort } from '../../../shared/ip.js';
import type { HttpCheckConfig } from '../../config.js';
import { systemClock } from '../../../shared/clock.js';
import type { Clock } from '../../../shared/clock.js';
import { describeError, runProbe } from './deadline.js';
import { createKeepAliveHttpChecker } from './http-keepalive.js';
import type { ProbeOutcome } from './deadline.js';
import type { Checker } from './types.js';

/** Bodies are matched on their first 64 KiB: a health page is small, and memory stays bounded. */
const MAX_BODY = 64 * 1024;

/** A checker that sends one request on a new connection and closes it. */
export function createHttpChecker(check: HttpCheckConfig, clock: Clock = systemClock): Checker {
  const body = check.body === undefined ? undefined : new RegExp(check.body);
  const expect = new Set(check.expect);
  const tls = check.type === 'https';
  if (!tls) return check.reuseConnection > 0 ? createKeepAliveHttpChecker(check, clock) : createPlainHttpChecker(check, expect, body, clock);
  return (target, signal) => runProbe(clock, check.timeoutMs, signal, (s) => new Promise<ProbeOutcome>((resolve) => {
    const port = check.port ?? target.port;
    const hostPort = formatHostPort(target.address, port);
    const host = check.host ?? hostPort;
    // SNI and certificate name: the Host header's name when it is a name, as a browser would
    const sniName = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    const options = {
      host: target.address,
      port,
      method: check.method,
      path: check.path,
      headers: { host, 'user-agent': 'slb-agent', connection: 'close', accept: '*/*' },
      // no keep-alive pool: each probe must prove that a new connection works
      agent: false as const,
      signal: s,
      ...(tls ? { rejectUnauthorized: !check.insecure, ...(addressFamily(sniName) === 0 ? { servername: sniName } : {}) } : {}),
    };
    let settled = false;
    const settle = (r: ProbeOutcome): void => {
      if (settled) return;
      settled = true;
      // closing the connection also ends a body still streaming in
      req.destroy();
      resolve(r);
    };
    const onResponse = (res: IncomingMessage): void => {
      res.on('error', (err) => settle({ ok: false, error: describeError(err) }));
      const status = res.statusCode ?? 0;
      if (!expect.has(status)) return settle({ ok: false, error: `status ${status}` });
      if (body === undefined || check.method === 'HEAD') return settle({ ok: true });
      const chunks: Buffer[] = [];
      let size = 0;
      const test = (): void => {
        const text = Buffer.concat(chunks).toString('utf8');
        settle(body.test(text) ? { ok: true } : { ok: false, error: `body does not match /${check.body}/` });
      };
      res.on('data', (c: Buffer) => {
        if (size >= MAX_BODY) return;
        chunks.push(c);
        size += c.length;
        if (size >= MAX_BODY) test();
      });
      res.on('end', test);
    };
    const req = (tls ? httpsRequest : httpRequest)(options, onResponse);
    req.on('error', (err) => settle({ ok: false, error: s.aborted ? 'aborted' : describeError(err) }));
    req.end();
  }));
}

/**
 * Plain HTTP on a raw socket: one HTTP/1.0 request, the status line, and the body only when a
 * regex needs it. node:http's agent, parser and header objects cost more than the probe itself
 * at a thousand checks a second (bench:agent), and a health check needs none of them.
 */
function createPlainHttpChecker(check: HttpCheckConfig, expect: ReadonlySet<number>, body: RegExp | undefined, clock: Clock): Checker {
  const requests = new Map<string, Buffer>();
  const requestFor = (address: string, port: number): Buffer => {
    const key = `${address}|${port}`;
    let r = requests.get(key);
    if (!r) {
      const hostPort = formatHostPort(address, port);
      r = Buffer.from(`${check.method} ${check.path} HTTP/1.0\r\nHost: ${check.host ?? hostPort}\r\nUser-Agent: slb-agent\r\nAccept: */*\r\nConnection: close\r\n\r\n`, 'latin1');
      requests.set(key, r);
    }
    return r;
  };
  const wantBody = body !== undefined && check.method !== 'HEAD';
  return (target, signal) => runProbe(clock, check.timeoutMs, signal, (s) => new Promise<ProbeOutcome>((resolve) => {
    const port = check.port ?? target.port;
    const sock = connect({ host: target.address, port });
    let settled = false;
    let data: Buffer | undefined;
    let status = 0;
    const settle = (r: ProbeOutcome): void => {
      if (settled) return;
      settled = true;
      s.removeEventListener('abort', onAbort);
      sock.destroy();
      resolve(r);
    };
    const onAbort = (): void => settle({ ok: false, error: 'aborted' });
    s.addEventListener('abort', onAbort, { once: true });
    const testBody = (): void => {
      const text = data!.toString('utf8');
      const at = text.indexOf('\r\n\r\n');
      const content = at < 0 ? '' : text.slice(at + 4);
      settle(body!.test(content) ? { ok: true } : { ok: false, error: `body does not match /${check.body}/` });
    };
    sock.once('connect', () => sock.write(requestFor(target.address, port)));
    sock.on('data', (chunk: Buffer) => {
      data = data === undefined ? chunk : Buffer.concat([data, chunk]);
      if (status === 0) {
        const eol = data.indexOf('\r\n');
        if (eol < 0) {
          if (data.length > 8192) settle({ ok: false, error: 'no HTTP status line' });
          return;
        }
        const m = /^HTTP\/\d\.\d (\d{3})/.exec(data.toString('latin1', 0, eol));
        if (!m) return settle({ ok: false, error: 'no HTTP status line' });
        status = Number(m[1]);
        if (!expect.has(status)) return settle({ ok: false, error: `status ${status}` });
        if (!wantBody) return settle({ ok: true });
      }
      if (data.length >= MAX_BODY) testBody();
    });
    sock.once('end', () => {
      if (status === 0) settle({ ok: false, error: 'connection closed before a status line' });
      else if (wantBody) testBody();
    });
    sock.once('error', (err) => settle({ ok: false, error: describeError(err) }));
  }));
}

/**
 * HTTP and HTTPS checks (keepalived HTTP_GET / SSL_GET): the status must be in `expect` and,
 * when `body` is set, the body must match it. node:http rather than node-fetch: a check needs a
 * fresh connection per probe, a Host header of its own and per-check TLS verification.
 */
import { request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import type { HttpCheckConfig } from '../../config.js';
import { describeError, runProbe } from './deadline.js';
import type { ProbeOutcome } from './deadline.js';
import type { Checker } from './types.js';

/** Bodies are matched on their first 64 KiB: a health page is small, and memory stays bounded. */
const MAX_BODY = 64 * 1024;

/** A checker that sends one request on a new connection and closes it. */
export function createHttpChecker(check: HttpCheckConfig): Checker {
  const body = check.body === undefined ? undefined : new RegExp(check.body);
  const expect = new Set(check.expect);
  const tls = check.type === 'https';
  return (target, signal) => runProbe(check.timeoutMs, signal, (s) => new Promise<ProbeOutcome>((resolve) => {
    const port = check.port ?? target.port;
    const hostPort = isIP(target.address) === 6 ? `[${target.address}]:${port}` : `${target.address}:${port}`;
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
      ...(tls ? { rejectUnauthorized: !check.insecure, ...(isIP(sniName) === 0 ? { servername: sniName } : {}) } : {}),
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

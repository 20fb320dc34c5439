/**
 * HTTP checks on a kept-alive connection per real server (Envoy's default): a thousand checks a
 * second cost a write and a read each instead of a connect, a request and a close. bench:agent
 * measured ~44% of a core for new connections against ~14% kept alive. A fresh connection is
 * opened at least every `reuseConnection` checks, so a listener that stops accepting is still
 * noticed, and whenever the server closes, a check times out, or the framing is in doubt.
 */
import { connect } from 'node:net';
import { addressFamily, formatHostPort } from '../../../shared/ip.js';
import type { Socket } from 'node:net';
import type { HttpCheckConfig } from '../../config.js';
import { systemClock } from '../../../shared/clock.js';
import type { Clock } from '../../../shared/clock.js';
import { describeError, runProbe } from './deadline.js';
import type { ProbeOutcome } from './deadline.js';
import type { Checker } from './types.js';

/** Bodies are matched on their first 64 KiB; longer responses end the connection. */
const MAX_BODY = 64 * 1024;
const MAX_HEAD = 16 * 1024;

interface Conn {
  readonly sock: Socket;
  used: number;
  /** the probe waiting for a response on this connection */
  waiting: ((r: ProbeOutcome | 'retry') => void) | undefined;
  buf: Buffer | undefined;
  dead: boolean;
}

/** Parses one complete response at the start of `buf`; undefined while more bytes are needed. */
export function parseResponse(buf: Buffer, head: boolean, closed: boolean):
  { status: number; body: Buffer; keepAlive: boolean; used: number } | { error: string } | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return buf.length > MAX_HEAD || closed ? { error: closed ? 'connection closed before a full response' : 'response head too long' } : undefined;
  // one lowercased copy of the head and indexOf per header: this runs a thousand times a second
  const text = buf.toString('latin1', 0, end);
  const m = /^HTTP\/1\.([01]) (\d{3})/.exec(text);
  if (!m) return { error: 'no HTTP status line' };
  const status = Number(m[2]);
  const lower = text.toLowerCase();
  const length = headerValue(lower, 'content-length');
  const te = headerValue(lower, 'transfer-encoding');
  const conn = headerValue(lower, 'connection');
  const chunked = te !== undefined && te.includes('chunked');
  let keepAlive = m[1] === '1';
  if (conn !== undefined) keepAlive = conn.includes('keep-alive') || (keepAlive && !conn.includes('close'));
  const bodyStart = end + 4;
  if (head || status === 204 || status === 304 || (status >= 100 && status < 200)) {
    return { status, body: Buffer.alloc(0), keepAlive, used: bodyStart };
  }
  if (chunked) {
    const parts: Buffer[] = [];
    let p = bodyStart;
    for (;;) {
      const eol = buf.indexOf('\r\n', p);
      if (eol < 0) return closed ? { error: 'connection closed inside a chunked body' } : undefined;
      const size = parseInt(buf.toString('latin1', p, eol).split(';')[0]!, 16);
      if (!Number.isFinite(size) || size < 0) return { error: 'bad chunk size' };
      if (size === 0) {
        // no trailers expected from a health endpoint: the terminating CRLF follows
        const fin = buf.indexOf('\r\n', eol + 2);
        if (fin < 0) return closed ? { error: 'connection closed inside a chunked body' } : undefined;
        return { status, body: Buffer.concat(parts), keepAlive, used: fin + 2 };
      }
      if (buf.length < eol + 2 + size + 2) return closed ? { error: 'connection closed inside a chunked body' } : undefined;
      parts.push(buf.subarray(eol + 2, eol + 2 + size));
      p = eol + 2 + size + 2;
    }
  }
  if (length !== undefined) {
    const n = Number(length);
    if (!Number.isInteger(n) || n < 0) return { error: 'bad Content-Length' };
    if (buf.length < bodyStart + n) return closed ? { error: 'connection closed inside the body' } : undefined;
    return { status, body: buf.subarray(bodyStart, bodyStart + n), keepAlive, used: bodyStart + n };
  }
  // no length: the body runs to the end of the connection
  if (!closed) return buf.length - bodyStart > MAX_BODY ? { status, body: buf.subarray(bodyStart), keepAlive: false, used: buf.length } : undefined;
  return { status, body: buf.subarray(bodyStart), keepAlive: false, used: buf.length };
}

/** The trimmed value of a header in a lowercased response head, if present. */
function headerValue(lowerHead: string, name: string): string | undefined {
  const at = lowerHead.indexOf(`\r\n${name}:`);
  if (at < 0) return undefined;
  const from = at + name.length + 3;
  const eol = lowerHead.indexOf('\r\n', from);
  return lowerHead.slice(from, eol < 0 ? lowerHead.length : eol).trim();
}

/** An HTTP checker that keeps one connection per target; see the module comment. */
export function createKeepAliveHttpChecker(check: HttpCheckConfig, clock: Clock = systemClock): Checker {
  const body = check.body === undefined ? undefined : new RegExp(check.body);
  const expect = new Set(check.expect);
  const head = check.method === 'HEAD';
  const conns = new Map<string, Conn>();
  const requests = new Map<string, Buffer>();

  const requestFor = (address: string, port: number, key: string): Buffer => {
    let r = requests.get(key);
    if (!r) {
      const hostPort = formatHostPort(address, port);
      r = Buffer.from(`${check.method} ${check.path} HTTP/1.1\r\nHost: ${check.host ?? hostPort}\r\nUser-Agent: slb-agent\r\nAccept: */*\r\n\r\n`, 'latin1');
      requests.set(key, r);
    }
    return r;
  };

  const drop = (key: string, c: Conn): void => {
    c.dead = true;
    c.sock.destroy();
    if (conns.get(key) === c) conns.delete(key);
  };

  const open = (address: string, port: number, key: string): Conn => {
    const sock = connect({ host: address, port, noDelay: true });
    // a kept connection must not keep the agent alive on shutdown; a probe in flight has its timer
    sock.unref();
    const c: Conn = { sock, used: 0, waiting: undefined, buf: undefined, dead: false };
    const onBytes = (closed: boolean): void => {
      if (!c.waiting) {
        // bytes nobody asked for: the framing is in doubt, start over on a new connection
        if (c.buf) drop(key, c);
        return;
      }
      if (!c.buf) {
        if (closed) {
          const w = c.waiting;
          c.waiting = undefined;
          w(c.used > 1 ? 'retry' : { ok: false, error: 'connection closed before a full response' });
        }
        return;
      }
      const r = parseResponse(c.buf, head, closed);
      if (r === undefined) return;
      const done = c.waiting;
      c.waiting = undefined;
      if ('error' in r) { drop(key, c); done({ ok: false, error: r.error }); return; }
      c.buf = r.used < c.buf.length ? c.buf.subarray(r.used) : undefined;
      if (!r.keepAlive || c.buf !== undefined || c.used >= check.reuseConnection) drop(key, c);
      if (!expect.has(r.status)) { done({ ok: false, error: `status ${r.status}` }); return; }
      if (body && !body.test(r.body.subarray(0, MAX_BODY).toString('utf8'))) { done({ ok: false, error: `body does not match /${check.body}/` }); return; }
      done({ ok: true });
    };
    sock.on('data', (d: Buffer) => { c.buf = c.buf === undefined ? d : Buffer.concat([c.buf, d]); onBytes(false); });
    sock.once('end', () => { onBytes(true); drop(key, c); });
    sock.once('error', (err) => {
      const w = c.waiting;
      c.waiting = undefined;
      drop(key, c);
      // a reused connection the server had just closed: that says nothing about the server
      if (w) w(c.used > 1 ? 'retry' : { ok: false, error: describeError(err) });
    });
    sock.once('close', () => {
      const w = c.waiting;
      c.waiting = undefined;
      drop(key, c);
      if (w) w(c.used > 1 ? 'retry' : { ok: false, error: 'connection closed before a full response' });
    });
    conns.set(key, c);
    return c;
  };

  const attempt = (address: string, port: number, key: string, s: AbortSignal, fresh: boolean): Promise<ProbeOutcome> =>
    new Promise<ProbeOutcome>((resolve) => {
      let c = conns.get(key);
      if (c && (fresh || c.dead || c.waiting)) { drop(key, c); c = undefined; }
      c ??= open(address, port, key);
      const conn = c;
      conn.used++;
      conn.buf = undefined;
      const onAbort = (): void => {
        // framing is unknown after an abandoned request: never reuse this connection
        conn.waiting = undefined;
        drop(key, conn);
        resolve({ ok: false, error: 'aborted' });
      };
      s.addEventListener('abort', onAbort, { once: true });
      conn.waiting = (r) => {
        s.removeEventListener('abort', onAbort);
        if (r === 'retry') resolve(attempt(address, port, key, s, true));
        else resolve(r);
      };
      conn.sock.write(requestFor(address, port, key));
    });

  return (target, signal) => {
    const port = check.port ?? target.port;
    const key = `${target.address}|${port}`;
    return runProbe(clock, check.timeoutMs, signal, (s) => attempt(target.address, port, key, s, false));
  };
}

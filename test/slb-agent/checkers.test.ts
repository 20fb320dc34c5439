import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../shared/clock.js';
import type { Clock } from '../../shared/clock.js';
import type { CheckConfig } from '../../slb-agent/config.js';
import { createChecker, parseAgentReply } from '../../slb-agent/health/checkers/index.js';
import type { CheckResult } from '../../slb-agent/health/checkers/index.js';
import { buildDnsQuery, parseDnsReply } from '../../slb-agent/health/checkers/dns.js';
import { createIcmpChecker } from '../../slb-agent/health/checkers/icmp.js';
import { ManualClock } from '../helpers/manual-clock.js';

const LOCAL = '127.0.0.1';
const COMMON = { intervalMs: 2000, timeoutMs: 400, rise: 2, fall: 2, startState: 'down', jitter: 0.1 } as const;

/** Every server and socket a test opened, closed in afterAll (so no test leaks into the next file). */
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** Starts a TCP-level server on 127.0.0.1 and returns its port; open connections are destroyed at the end. */
async function listen(server: Server): Promise<number> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    // checkers reset connections on purpose (tcp) or at their deadline
    s.on('error', () => { /* expected */ });
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, LOCAL, resolve));
  cleanups.push(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  return (server.address() as AddressInfo).port;
}

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve) => s.listen(0, LOCAL, resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Accepts connections and never sends a byte (nor completes a TLS handshake). */
async function hangingServer(): Promise<number> {
  return listen(createNetServer(() => { /* silence */ }));
}

/**
 * Timeouts run on `clock`: by default one that never moves, so a verdict is the server's and not a
 * deadline met by a busy machine; the timeout cases pass the real clock (their server never answers).
 */
const still = new ManualClock();
const real = systemClock;

async function probe(check: CheckConfig, port: number, address = LOCAL, vip = 'web', signal?: AbortSignal, clock: Clock = still): Promise<CheckResult> {
  const r = await createChecker(check, vip, clock)({ address, port }, signal ?? new AbortController().signal);
  expect(r.latencyMs).toBeGreaterThanOrEqual(0);
  return r;
}

const tcp = (extra: Partial<CheckConfig> = {}): CheckConfig => ({ ...COMMON, type: 'tcp', ...extra } as CheckConfig);
const http = (extra: Record<string, unknown> = {}): CheckConfig =>
  ({ ...COMMON, type: 'http', method: 'GET', path: '/', expect: [200], insecure: false, reuseConnection: 0, ...extra } as CheckConfig);

describe('tcp', () => {
  it('passes on an open port, fails with "connection refused" on a closed one', async () => {
    const open = await listen(createNetServer((s) => s.end()));
    expect(await probe(tcp(), open)).toMatchObject({ ok: true });
    expect(await probe(tcp(), await closedPort())).toEqual({ ok: false, latencyMs: expect.any(Number), error: 'connection refused' });
  });

  it('check.port overrides the real server port', async () => {
    const open = await listen(createNetServer((s) => s.end()));
    expect(await probe(tcp({ port: open }), await closedPort())).toMatchObject({ ok: true });
  });

  it('a hanging server passes: connecting is all a tcp check asks', async () => {
    expect(await probe(tcp(), await hangingServer())).toMatchObject({ ok: true });
  });
});

/** The test HTTP(S) handler: a few paths with known answers. */
let flip = 0;
function handler(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  if (url === '/ok') return void res.end('all good');
  if (url === '/fail') { res.statusCode = 503; return void res.end('down for maintenance'); }
  if (url === '/degraded') return void res.end('status: degraded');
  if (url === '/host') { res.statusCode = req.headers.host === 'www.example.test' ? 200 : 421; return void res.end(); }
  if (url === '/head-only') { res.statusCode = req.method === 'HEAD' ? 200 : 405; return void res.end(); }
  if (url === '/created') { res.statusCode = 201; return void res.end(); }
  if (url === '/flap') { res.statusCode = flip++ % 2 === 0 ? 200 : 503; return void res.end(); }
  if (url === '/big') { res.write('x'.repeat(200_000)); return void res.end('MARKER'); }
  // headers, then a body that never ends
  if (url === '/slow-body') { res.writeHead(200); return void res.write('partial'); }
  res.statusCode = 404;
  res.end();
}

describe('http', () => {
  let port = 0;
  beforeAll(async () => {
    port = await listen(createHttpServer(handler));
  });

  it('passes on 200 and fails on 503 with the status as the reason', async () => {
    expect(await probe(http({ path: '/ok' }), port)).toMatchObject({ ok: true });
    expect(await probe(http({ path: '/fail' }), port)).toMatchObject({ ok: false, error: 'status 503' });
    expect(await probe(http({ path: '/nope' }), port)).toMatchObject({ ok: false, error: 'status 404' });
  });

  it('expect: a list of acceptable statuses', async () => {
    expect(await probe(http({ path: '/created' }), port)).toMatchObject({ ok: false, error: 'status 201' });
    expect(await probe(http({ path: '/created', expect: [200, 201] }), port)).toMatchObject({ ok: true });
    expect(await probe(http({ path: '/fail', expect: [503] }), port)).toMatchObject({ ok: true });
  });

  it('body: a regex the body must match', async () => {
    expect(await probe(http({ path: '/ok', body: 'all\\s+good' }), port)).toMatchObject({ ok: true });
    expect(await probe(http({ path: '/degraded', body: '^all good$' }), port))
      .toMatchObject({ ok: false, error: 'body does not match /^all good$/' });
    // only the first 64 KiB are read
    expect(await probe(http({ path: '/big', body: 'MARKER' }), port)).toMatchObject({ ok: false });
    expect(await probe(http({ path: '/big', body: '^x+$' }), port)).toMatchObject({ ok: true });
  });

  it('host: the Host header sent', async () => {
    expect(await probe(http({ path: '/host' }), port)).toMatchObject({ ok: false, error: 'status 421' });
    expect(await probe(http({ path: '/host', host: 'www.example.test' }), port)).toMatchObject({ ok: true });
  });

  it('method HEAD', async () => {
    expect(await probe(http({ path: '/head-only' }), port)).toMatchObject({ ok: false, error: 'status 405' });
    expect(await probe(http({ path: '/head-only', method: 'HEAD' }), port)).toMatchObject({ ok: true });
  });

  it('a body that never ends is a timeout when the body is matched, a pass when it is not', async () => {
    expect(await probe(http({ path: '/slow-body', body: 'never' }), port, LOCAL, 'web', undefined, real)).toMatchObject({ ok: false, error: 'timeout after 400ms' });
    expect(await probe(http({ path: '/slow-body' }), port)).toMatchObject({ ok: true });
  });

  it('refused and hanging servers fail', async () => {
    expect(await probe(http(), await closedPort())).toMatchObject({ ok: false, error: 'connection refused' });
    expect(await probe(http(), await hangingServer(), LOCAL, 'web', undefined, real)).toMatchObject({ ok: false, error: 'timeout after 400ms' });
  });

  it('a flapping server gives alternating results', async () => {
    const results: boolean[] = [];
    for (let i = 0; i < 6; i++) results.push((await probe(http({ path: '/flap' }), port)).ok);
    expect(results.slice(1)).toEqual(results.slice(1).map((_, i) => (i % 2 === 0) === results[1]));
    expect(new Set(results)).toEqual(new Set([true, false]));
  });

  it('an already aborted signal, or one aborted mid-probe, resolves with "aborted"', async () => {
    const hang = await hangingServer();
    const ac = new AbortController();
    ac.abort();
    expect(await probe(http(), hang, LOCAL, 'web', ac.signal)).toMatchObject({ ok: false, error: 'aborted' });
    const ac2 = new AbortController();
    const p = probe(http({ timeoutMs: 30_000 }), hang, LOCAL, 'web', ac2.signal);
    setTimeout(() => ac2.abort(), 50);
    expect(await p).toMatchObject({ ok: false, error: 'aborted' });
  });
});

describe('https', () => {
  let dir = '';
  let port = 0;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'slb-agent-tls-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=www.example.test',
      '-addext', 'subjectAltName=DNS:www.example.test'], { stdio: 'ignore' });
    port = await listen(createHttpsServer({ key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')) }, handler));
  });
  const https = (extra: Record<string, unknown> = {}): CheckConfig => http({ type: 'https', ...extra });

  it('a self-signed certificate passes with insecure: true and fails without', async () => {
    expect(await probe(https({ path: '/ok', insecure: true }), port)).toMatchObject({ ok: true });
    const strict = await probe(https({ path: '/ok' }), port);
    expect(strict.ok).toBe(false);
    expect(strict.error).toMatch(/self[- ]signed/i);
  });

  it('status, body and Host over TLS', async () => {
    expect(await probe(https({ path: '/fail', insecure: true }), port)).toMatchObject({ ok: false, error: 'status 503' });
    expect(await probe(https({ path: '/ok', body: 'good', insecure: true }), port)).toMatchObject({ ok: true });
    expect(await probe(https({ path: '/host', host: 'www.example.test', insecure: true }), port)).toMatchObject({ ok: true });
  });

  it('a server that never completes the handshake times out', async () => {
    expect(await probe(https({ insecure: true }), await hangingServer(), LOCAL, 'web', undefined, real)).toMatchObject({ ok: false, error: 'timeout after 400ms' });
  });
});

/** A tiny authoritative responder: ok.example.test A/AAAA, nx.example.test NXDOMAIN, flap.example.test alternating. */
async function dnsResponder(): Promise<{ port: number; queries: () => number }> {
  const sock: UdpSocket = createSocket('udp4');
  let count = 0;
  let flap = 0;
  sock.on('message', (msg, rinfo) => {
    count++;
    // question: name from offset 12 to the zero label, then type and class
    let off = 12;
    const labels: string[] = [];
    while (msg[off]! !== 0) { labels.push(msg.subarray(off + 1, off + 1 + msg[off]!).toString()); off += msg[off]! + 1; }
    const qEnd = off + 5;
    const qtype = msg.readUInt16BE(off + 1);
    const name = labels.join('.').toLowerCase();
    let rcode = 0;
    const answers: Buffer[] = [];
    const rr = (type: number, rdata: Buffer): Buffer => {
      const h = Buffer.alloc(12);
      h.writeUInt16BE(0xc00c, 0);
      h.writeUInt16BE(type, 2);
      h.writeUInt16BE(1, 4);
      h.writeUInt32BE(30, 6);
      h.writeUInt16BE(rdata.length, 10);
      return Buffer.concat([h, rdata]);
    };
    if (name === 'ok.example.test' && qtype === 1) {
      answers.push(rr(1, Buffer.from([192, 0, 2, 6])), rr(1, Buffer.from([192, 0, 2, 7])));
    } else if (name === 'ok.example.test' && qtype === 28) {
      answers.push(rr(28, Buffer.from('20010db8000000000000000000000007', 'hex')));
    } else if (name === 'flap.example.test') {
      rcode = flap++ % 2 === 0 ? 0 : 2;
    } else if (name === 'silent.example.test') {
      return;
    } else if (name === 'stray.example.test') {
      // a reply with another id first (a late answer to someone else) must be ignored
      const stray = Buffer.from(msg.subarray(0, qEnd));
      stray.writeUInt16BE((msg.readUInt16BE(0) + 1) & 0xffff, 0);
      stray.writeUInt16BE(0x8183, 2);
      sock.send(stray, rinfo.port, rinfo.address);
    } else if (name !== 'ok.example.test') {
      rcode = 3;
    }
    const reply = Buffer.concat([msg.subarray(0, qEnd), ...answers]);
    reply.writeUInt16BE(0x8400 | 0x0100 | rcode, 2);
    reply.writeUInt16BE(answers.length, 6);
    sock.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => sock.bind(0, LOCAL, resolve));
  cleanups.push(() => new Promise<void>((resolve) => sock.close(() => resolve())));
  return { port: sock.address().port, queries: () => count };
}

describe('dns', () => {
  let port = 0;
  beforeAll(async () => {
    port = (await dnsResponder()).port;
  });
  const dns = (extra: Record<string, unknown>): CheckConfig =>
    ({ ...COMMON, type: 'dns', name: 'ok.example.test', qtype: 'A', qtypeCode: 1, rcode: 'NOERROR', ...extra } as CheckConfig);

  it('rcode NOERROR and an expected address', async () => {
    expect(await probe(dns({}), port)).toMatchObject({ ok: true });
    expect(await probe(dns({ address: '192.0.2.7' }), port)).toMatchObject({ ok: true });
    expect(await probe(dns({ address: '192.0.2.9' }), port))
      .toMatchObject({ ok: false, error: '192.0.2.9 not in the answer (192.0.2.6, 192.0.2.7)' });
    expect(await probe(dns({ qtype: 'AAAA', qtypeCode: 28, address: '2001:db8::7' }), port)).toMatchObject({ ok: true });
  });

  it('an unexpected rcode fails; an expected NXDOMAIN passes', async () => {
    expect(await probe(dns({ name: 'nx.example.test' }), port)).toMatchObject({ ok: false, error: 'rcode NXDOMAIN' });
    expect(await probe(dns({ name: 'nx.example.test', rcode: 'NXDOMAIN' }), port)).toMatchObject({ ok: true });
  });

  it('a reply with another id is ignored', async () => {
    expect(await probe(dns({ name: 'stray.example.test' }), port)).toMatchObject({ ok: true });
  });

  it('a server that never answers times out; a closed port is refused', async () => {
    expect(await probe(dns({ name: 'silent.example.test' }), port, LOCAL, 'web', undefined, real)).toMatchObject({ ok: false, error: 'timeout after 400ms' });
    const silent = createSocket('udp4');
    await new Promise<void>((resolve) => silent.bind(0, LOCAL, resolve));
    cleanups.push(() => new Promise<void>((resolve) => silent.close(() => resolve())));
    expect(await probe(dns({}), silent.address().port, LOCAL, 'web', undefined, real)).toMatchObject({ ok: false, error: 'timeout after 400ms' });
    // ICMP port unreachable reaches a connected UDP socket on loopback
    const closed = createSocket('udp4');
    await new Promise<void>((resolve) => closed.bind(0, LOCAL, resolve));
    const closedUdp = closed.address().port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    expect(await probe(dns({}), closedUdp)).toMatchObject({ ok: false, error: 'connection refused' });
  });

  it('a flapping server gives alternating results', async () => {
    const results: boolean[] = [];
    for (let i = 0; i < 6; i++) results.push((await probe(dns({ name: 'flap.example.test' }), port)).ok);
    expect(results).toEqual([true, false, true, false, true, false]);
  });

  it('query and reply wire format', () => {
    const q = buildDnsQuery(0x1234, 'a.bc', 28);
    expect(q.toString('hex')).toBe('123401000001000000000000' + '0161' + '026263' + '00' + '001c0001');
    expect(() => parseDnsReply(q.subarray(0, 20))).toThrow('truncated reply');
    expect(parseDnsReply(q)).toEqual({ id: 0x1234, qr: false, tc: false, rcode: 0, addresses: [] });
  });
});

describe('icmp', () => {
  const icmp = { ...COMMON, timeoutMs: 2000, type: 'icmp' } as const;
  it('127.0.0.1 answers an echo', async () => {
    expect(await probe(icmp, 0)).toMatchObject({ ok: true });
  });

  it('a missing ping binary is a clear failure', async () => {
    const r = await createIcmpChecker(icmp, '/nonexistent/ping')({ address: LOCAL, port: 0 }, new AbortController().signal);
    expect(r).toMatchObject({ ok: false, error: 'ping not installed (Debian package iputils-ping)' });
  });
});

describe('exec', () => {
  const exec = (command: string[], extra: Record<string, unknown> = {}): CheckConfig =>
    ({ ...COMMON, type: 'exec', command, ...extra } as CheckConfig);

  it('exit code 0 passes, others fail with the code and the last line of output', async () => {
    expect(await probe(exec(['true']), 80)).toMatchObject({ ok: true });
    expect(await probe(exec(['false']), 80)).toMatchObject({ ok: false, error: 'exit code 1' });
    expect(await probe(exec(['sh', '-c', 'echo first; echo "disk full" >&2; exit 3']), 80))
      .toMatchObject({ ok: false, error: 'exit code 3: disk full' });
    expect(await probe(exec(['/nonexistent/check']), 80)).toMatchObject({ ok: false, error: 'command not found: /nonexistent/check' });
  });

  it('the real server and VIP are in the environment; argv is not run by a shell', async () => {
    const cmd = exec(['sh', '-c', 'test "$REAL_SERVER_ADDRESS" = 127.0.0.9 && test "$REAL_SERVER_PORT" = 8080 && test "$VIP_NAME" = web-v4 && test "$1" = "a b;c"', 'sh', 'a b;c']);
    expect(await probe(cmd, 8080, '127.0.0.9', 'web-v4')).toMatchObject({ ok: true });
    expect(await probe(cmd, 8081, '127.0.0.9', 'web-v4')).toMatchObject({ ok: false, error: 'exit code 1' });
  });

  it('a command that outlives the timeout fails, and its whole process group is killed', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'slb-agent-exec-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const pidFile = path.join(dir, 'pid');
    // the deadline passes once the command has started its background child, however long that took
    const clock = new ManualClock();
    const pending = probe(exec(['sh', '-c', `sleep 30 & echo $! > ${pidFile}; sleep 30`], { timeoutMs: 300 }), 80, LOCAL, 'web', undefined, clock);
    await expect.poll(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '', { timeout: 10_000 }).toBe(true);
    await clock.tick(300);
    const r = await pending;
    expect(r).toMatchObject({ ok: false, error: 'timeout after 300ms' });
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    // killed: gone, or a zombie waiting for an init that may not reap promptly in a container
    await expect.poll(() => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z' ? 'gone' : 'alive';
      } catch {
        return 'gone';
      }
    }, { timeout: 10_000 }).toBe('gone');
  });
});

describe('agent', () => {
  /** An agent that answers each connection with the next of `replies` (cycling). */
  async function agentServer(replies: string[]): Promise<number> {
    let i = 0;
    return listen(createNetServer((s) => {
      s.end(replies[i++ % replies.length] ?? '');
    }));
  }
  const agent = (port: number): CheckConfig => ({ ...COMMON, type: 'agent', port });

  it('words: weight, states, combinations', async () => {
    const table: [string, Partial<CheckResult>][] = [
      ['up\n', { ok: true, agent: { state: 'up' } }],
      ['75%\n', { ok: true, agent: { weightPct: 75 } }],
      ['up 50%\r\n', { ok: true, agent: { state: 'up', weightPct: 50 } }],
      ['ready,100%\n', { ok: true, agent: { state: 'up', weightPct: 100 } }],
      ['drain\n', { ok: true, agent: { state: 'drain' } }],
      ['up drain\n', { ok: true, agent: { state: 'drain' } }],
      ['maint\n', { ok: false, agent: { state: 'maint' }, error: 'agent says maint' }],
      ['down # disk full\n', { ok: false, agent: { state: 'down' }, error: 'agent says down: disk full' }],
      ['stopped\n', { ok: false, agent: { state: 'down' }, error: 'agent says stopped' }],
      ['fail 10%\n', { ok: false, agent: { state: 'down', weightPct: 10 }, error: 'agent says fail' }],
      ['UP', { ok: true, agent: { state: 'up' } }],
      ['\n', { ok: false, error: 'agent sent an empty reply' }],
      ['hello world\n', { ok: false, error: 'agent reply not understood: "hello world"' }],
    ];
    for (const [reply, want] of table) {
      const port = await agentServer([reply]);
      const r = await probe(agent(port), 1);
      expect({ reply, ...r, latencyMs: 0 }).toEqual({ reply, latencyMs: 0, ...want });
    }
  });

  it('probes its own port, not the real server port', async () => {
    const port = await agentServer(['up\n']);
    expect(await probe(agent(port), await closedPort())).toMatchObject({ ok: true });
  });

  it('closed without a reply, refused, and hanging agents fail', async () => {
    expect(await probe(agent(await agentServer([''])), 1)).toMatchObject({ ok: false, error: 'agent closed the connection without a reply' });
    expect(await probe(agent(await closedPort()), 1)).toMatchObject({ ok: false, error: 'connection refused' });
    expect(await probe(agent(await hangingServer()), 1, LOCAL, 'web', undefined, real)).toMatchObject({ ok: false, error: 'timeout after 400ms' });
  });

  it('a flapping agent gives alternating results', async () => {
    const port = await agentServer(['up\n', 'down\n']);
    const results: boolean[] = [];
    for (let i = 0; i < 6; i++) results.push((await probe(agent(port), 1)).ok);
    expect(results).toEqual([true, false, true, false, true, false]);
  });

  it('parseAgentReply without a network', () => {
    expect(parseAgentReply('  up   25% ')).toEqual({ ok: true, agent: { state: 'up', weightPct: 25 } });
    expect(parseAgentReply('0%')).toEqual({ ok: true, agent: { weightPct: 0 } });
  });
});

describe('no leaks', () => {
  it('no active handles are left behind by timeouts and aborts', async () => {
    const hang = await hangingServer();
    const before = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').length;
    const checks: CheckConfig[] = [
      http({ timeoutMs: 200 }), http({ type: 'https', timeoutMs: 200 }),
      { ...COMMON, timeoutMs: 200, type: 'agent', port: hang },
      { ...COMMON, timeoutMs: 200, type: 'dns', name: 'x.test', qtype: 'A', qtypeCode: 1, rcode: 'NOERROR' },
    ];
    for (const c of checks) expect((await probe(c, hang, LOCAL, 'web', undefined, real)).ok).toBe(false);
    await expect.poll(() => process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').length, { timeout: 5000 })
      .toBeLessThanOrEqual(before);
  });
});

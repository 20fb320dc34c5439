/**
 * Issue 11: the report API under exhaustion, on the real process limited to 1,024 descriptors.
 * One source holds 1,100 stalled connections and another sends 2,000 bad-signature POSTs; a
 * legitimate signed report is still applied (the answer changes) and TCP DNS still answers.
 * Loopback sources 127.0.0.2 (stalled) and 127.0.0.3 (forgeries) are distinct from the agent's 127.0.0.1.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAIN, watchNode } from '../../helpers/cli.js';
import type { NodeProc } from '../../helpers/cli.js';
import { dig } from '../../helpers/dig.js';
import { postReport, SECRET_ENV } from '../../helpers/report.js';
import { ROOT } from '../../helpers/server.js';

const ZONES = path.join(ROOT, 'test/fixtures/gslb');
const STALLED = 1_100;
const FORGED = 2_000;

let p: NodeProc;
let dnsPort: number;
let apiPort: number;
let apiLine: Record<string, unknown>;
const stalled: net.Socket[] = [];

beforeAll(async () => {
  const proc = spawn('prlimit', ['--nofile=1024:1024', process.execPath, MAIN, '--zones', ZONES, '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...SECRET_ENV },
  });
  p = watchNode(proc, 'gslb-dns');
  try {
    dnsPort = (await p.waitLog((l) => l['msg'] === 'listening'))['tcp'] as number;
    apiLine = await p.waitLog((l) => l['msg'] === 'api listening');
    apiPort = apiLine['port'] as number;
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
});

afterAll(async () => {
  for (const s of stalled) s.destroy();
  await p?.stop();
});

/** Opens `n` connections from `from`, each stalled inside a report body; resolves once each is connected or refused. */
function stall(n: number, from: string): Promise<void> {
  const one = (): Promise<void> => new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: apiPort, localAddress: from });
    stalled.push(s);
    s.on('error', () => resolve());
    s.once('close', () => resolve());
    s.once('connect', () => {
      s.write('POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{"site":"tokyo",');
      resolve();
    });
  });
  return Promise.all(Array.from({ length: n }, one)).then(() => undefined);
}

/** `n` POSTs with a wrong signature from `from` over a few keep-alive sockets; resolves with the status counts. */
async function forge(n: number, from: string): Promise<Map<number | string, number>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16, localAddress: from });
  const body = JSON.stringify({ site: 'osaka', agent: 'evil', seq: 1, sentAt: new Date().toISOString(), members: [{ address: '192.0.2.2', state: 'down', weight: 0 }] });
  const counts = new Map<number | string, number>();
  const one = (): Promise<void> => new Promise((resolve) => {
    const req = http.request({
      agent, host: '127.0.0.1', port: apiPort, path: '/api/v1/reports', method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-gslb-timestamp': String(Date.now()), 'x-gslb-signature': `sha256=${'0'.repeat(64)}` },
    }, (res) => {
      res.resume();
      res.on('end', () => { counts.set(res.statusCode!, (counts.get(res.statusCode!) ?? 0) + 1); resolve(); });
    });
    req.on('error', (e: NodeJS.ErrnoException) => { counts.set(e.code ?? 'error', (counts.get(e.code ?? 'error') ?? 0) + 1); resolve(); });
    req.end(body);
  });
  await Promise.all(Array.from({ length: n }, one));
  agent.destroy();
  return counts;
}

describe('report API under exhaustion (1,024 descriptors)', () => {
  it('derives its connection caps from the descriptor limit', () => {
    expect(apiLine).toMatchObject({ maxConnections: 384, maxPerSource: 48 });
    expect(p.lines.find((l) => String(l['msg']).startsWith('ulimit -n'))).toBeUndefined();
  });

  it('warns at start when the descriptor limit is too low for the caps given', async () => {
    const proc = spawn('prlimit', ['--nofile=1024:1024', process.execPath, MAIN, '--zones', ZONES, '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0', '--api-max-connections', '1000'], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...SECRET_ENV },
    });
    const q = watchNode(proc, 'gslb-dns');
    try {
      const warn = await q.waitLog((l) => String(l['msg']).startsWith('ulimit -n is 1024'));
      expect(warn).toMatchObject({ level: 40, fdLimit: 1024, maxConnections: 1000, maxPerSource: 48 });
      expect(await q.waitLog((l) => l['msg'] === 'api listening')).toMatchObject({ maxConnections: 1000 });
    } finally {
      await q.stop();
    }
  });

  it('applies a legitimate report and answers TCP DNS during 1,100 stalled connections and 2,000 forged POSTs', async () => {
    const before = await dig(dnsPort, ['+norec', 'www.gslb.test', 'A']);
    expect(before.answer).toEqual(['www.gslb.test. 5 IN A 192.0.2.1']);

    await stall(STALLED, '127.0.0.2');
    const flood = forge(FORGED, '127.0.0.3');
    const r = await postReport(apiPort, 'osaka', [{ address: '192.0.2.2', state: 'up' }, { address: '2001:db8::2', state: 'up' }]);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    // the answer moved to the backup (degraded TTL: tokyo has not reported)
    const tcp = await dig(dnsPort, ['+tcp', '+norec', 'www.gslb.test', 'A']);
    expect(tcp.status).toBe('NOERROR');
    expect(tcp.answer).toEqual(['www.gslb.test. 5 IN A 192.0.2.2']);

    const counts = await flood;
    expect(counts.get(401)).toBe(FORGED);
    // still answering after the flood, and the forgeries changed nothing
    expect((await dig(dnsPort, ['+tcp', '+norec', 'www.gslb.test', 'A'])).answer).toEqual(['www.gslb.test. 5 IN A 192.0.2.2']);
    // every forgery is counted, but only the first of each 10 s interval is logged on its own (the
    // rest go into the interval's summary line); a slow machine may see more than one interval
    const metrics = await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text();
    expect(metrics).toContain(`gslb_reports_total{result="rejected",reason="bad-signature"} ${FORGED}`);
    const logged = p.lines.filter((l) => l['msg'] === 'report rejected').length;
    expect(logged).toBeGreaterThanOrEqual(1);
    expect(logged).toBeLessThan(FORGED / 100);
  }, 120_000);
});

/**
 * The reporter against real local HTTP servers standing in for gslb-dns instances: signature and
 * schema compatibility, independence of instances (down, slow), backoff, the latest state after
 * recovery, and seq across restarts.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { afterEach, describe, expect, it } from 'vitest';
import { ReportSchema } from '../../shared/protocol/report.js';
import type { Report, ReportMember } from '../../shared/protocol/report.js';
import { verifyReportSignature } from '../../shared/protocol/signature.js';
import { createReporter, createSeqSource, reportUrl } from '../../slb-agent/reporter/reporter.js';
import type { Reporter, ReporterOptions } from '../../slb-agent/reporter/reporter.js';

const SECRET = 'tokyo-secret-0123456789abcdef';
const checkReport = TypeCompiler.Compile(ReportSchema);

interface Received { at: number; report: Report; ts: string; sig: string; raw: string }

/** A fake DNS instance: records every POST; `mode` decides the answer. */
interface FakeDns {
  url: string;
  received: Received[];
  mode: 'ok' | 'fail' | 'hang';
  close(): Promise<void>;
}

const servers: FakeDns[] = [];
const reporters: Reporter[] = [];

async function fakeDns(mode: FakeDns['mode'] = 'ok'): Promise<FakeDns> {
  const received: Received[] = [];
  const hanging = new Set<http.ServerResponse>();
  const fake: FakeDns = { url: '', received, mode, close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      received.push({ at: performance.now(), report: JSON.parse(raw) as Report, ts: String(req.headers['x-gslb-timestamp']), sig: String(req.headers['x-gslb-signature']), raw });
      if (fake.mode === 'hang') { hanging.add(res); return; }
      res.writeHead(fake.mode === 'ok' ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify(fake.mode === 'ok' ? { accepted: true } : { error: 'unavailable' }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = () => new Promise<void>((r) => {
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    server.close(() => r());
  });
  servers.push(fake);
  return fake;
}

/** A URL where nothing listens (a server bound, then closed). */
async function deadUrl(): Promise<string> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

function reporter(o: Partial<ReporterOptions> & Pick<ReporterOptions, 'dns'>): Reporter {
  const r = createReporter({ site: 'tokyo', agent: 'lb1', secret: SECRET, intervalMs: 100, members: () => [{ address: '192.0.2.1', state: 'up', weight: 100 }], ...o });
  reporters.push(r);
  return r;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `pred` every 10 ms for at most `ms`. */
async function until(pred: () => boolean, ms = 3000): Promise<void> {
  const end = performance.now() + ms;
  while (!pred()) {
    if (performance.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

afterEach(async () => {
  await Promise.all(reporters.splice(0).map((r) => r.stop()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('reporter', () => {
  it('sends bodies that match ReportSchema, signed so that verifyReportSignature accepts them', async () => {
    const dns = await fakeDns();
    const members: ReportMember[] = [{ address: '192.0.2.1', state: 'up', weight: 50, connections: 0, capacity: 1000, healthy: 1, total: 2 }];
    const r = reporter({ dns: [dns.url], members: () => members });
    r.start();
    // the fake records a request before the reporter has read the response: wait for both
    await until(() => dns.received.length >= 2 && r.status()[0]!.sent >= 2);
    for (const got of dns.received) {
      expect(checkReport.Check(got.report), JSON.stringify([...checkReport.Errors(got.report)])).toBe(true);
      expect(verifyReportSignature(SECRET, got.ts, got.raw, got.sig)).toBe(true);
      expect(verifyReportSignature('other-secret', got.ts, got.raw, got.sig)).toBe(false);
      expect(Math.abs(Number(got.ts) - Date.now())).toBeLessThan(5000);
      expect(got.report).toMatchObject({ site: 'tokyo', agent: 'lb1', members });
    }
    expect(dns.received[1]!.report.seq).toBeGreaterThan(dns.received[0]!.report.seq);
    const st = r.status()[0]!;
    expect(st).toMatchObject({ url: `${dns.url}/api/v1/reports`, consecutiveFailures: 0, lastStatus: 200 });
    expect(st.sent).toBeGreaterThanOrEqual(2);
    expect(st.lastSuccessAt).toBeGreaterThan(0);
  });

  it('reportUrl appends the report path once', () => {
    expect(reportUrl('http://127.0.0.1:8053')).toBe('http://127.0.0.1:8053/api/v1/reports');
    expect(reportUrl('http://127.0.0.1:8053/')).toBe('http://127.0.0.1:8053/api/v1/reports');
    expect(reportUrl('http://h:1/api/v1/reports')).toBe('http://h:1/api/v1/reports');
  });

  it('an instance that is down and one that hangs never delay reports to a healthy one', async () => {
    const good = await fakeDns();
    const slow = await fakeDns('hang');
    const dead = await deadUrl();
    let state: ReportMember['state'] = 'up';
    const r = reporter({ dns: [dead, slow.url, good.url], intervalMs: 100, timeoutMs: 2000, members: () => [{ address: '192.0.2.1', state, weight: 100 }] });
    r.start();
    await until(() => good.received.length >= 1 && slow.received.length >= 1);
    // the heartbeat keeps arriving at the good instance while the slow one holds its request
    const before = good.received.length;
    await sleep(600);
    expect(good.received.length - before).toBeGreaterThanOrEqual(3);
    // a change reaches the good instance at once (no waiting for the heartbeat or the others)
    state = 'down';
    const n = good.received.length;
    r.notify();
    await until(() => good.received.slice(n).some((g) => g.report.members[0]!.state === 'down'), 1000);
    const [d, s, g] = r.status();
    expect(d!.consecutiveFailures).toBeGreaterThan(0);
    expect(d!.lastError).toBeTruthy();
    expect(s!.inFlight).toBe(true);
    expect(g!.consecutiveFailures).toBe(0);
    // only one request at a time per instance: the hanging one got exactly one
    expect(slow.received).toHaveLength(1);
  });

  it('a slow instance times out per request and retries', async () => {
    const slow = await fakeDns('hang');
    const r = reporter({ dns: [slow.url], timeoutMs: 150, backoff: { initialMs: 20, maxMs: 50 } });
    r.start();
    await until(() => (r.status()[0]!.failed >= 2), 3000);
    expect(r.status()[0]!.lastError).toBe('timeout after 150 ms');
    expect(slow.received.length).toBeGreaterThanOrEqual(2);
  });

  it('backs off exponentially, capped, while an instance fails', async () => {
    const dns = await fakeDns('fail');
    const r = reporter({ dns: [dns.url], intervalMs: 10, backoff: { initialMs: 40, maxMs: 320 } });
    r.start();
    await sleep(1500);
    const n = dns.received.length;
    // 0, 40, 120, 280, 600, 920, 1240 ms: a handful of attempts, not the 150 heartbeats of 10 ms
    // (counts, not times: a loaded CI machine stretches every gap)
    expect(n).toBeGreaterThanOrEqual(3);
    expect(n).toBeLessThanOrEqual(12);
    const st = r.status()[0]!;
    expect(st).toMatchObject({ lastStatus: 503, sent: 0 });
    // the last request may still be in flight when the fake has recorded it
    expect(st.failed).toBeGreaterThanOrEqual(n - 1);
    expect(st.failed).toBeLessThanOrEqual(n);
    expect(st.consecutiveFailures).toBe(st.failed);
    expect(r.status()[0]!.lastError).toMatch(/^HTTP 503/);
  });

  it('an instance that comes back gets the latest state, not a queue of stale reports', async () => {
    const dns = await fakeDns('fail');
    let weight = 0;
    const r = reporter({ dns: [dns.url], intervalMs: 50, backoff: { initialMs: 20, maxMs: 100 }, members: () => [{ address: '192.0.2.1', state: 'up', weight }] });
    r.start();
    for (weight = 10; weight <= 50; weight += 10) {
      r.notify();
      await sleep(60);
    }
    weight = 77;
    r.notify();
    const failedBefore = dns.received.length;
    dns.mode = 'ok';
    await until(() => r.status()[0]!.sent >= 1, 2000);
    const accepted = dns.received.slice(failedBefore);
    // the first report accepted after recovery already carries the latest state
    expect(accepted[0]!.report.members[0]!.weight).toBe(77);
    await sleep(200);
    for (const g of dns.received.slice(failedBefore)) expect(g.report.members[0]!.weight).toBe(77);
    const seqs = dns.received.map((g) => g.report.seq);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]!).toBeGreaterThan(seqs[i - 1]!);
    expect(r.status()[0]!.consecutiveFailures).toBe(0);
  });

  it('seq keeps increasing across a restart (a second reporter after the first stopped)', async () => {
    const dns = await fakeDns();
    const first = reporter({ dns: [dns.url], intervalMs: 20 });
    first.start();
    await until(() => dns.received.length >= 5);
    await first.stop();
    const last = dns.received.at(-1)!.report.seq;
    const n = dns.received.length;
    const second = reporter({ dns: [dns.url], intervalMs: 20 });
    second.start();
    await until(() => dns.received.length > n);
    expect(dns.received[n]!.report.seq).toBeGreaterThan(last);
  });

  it('the seq source is strictly increasing even when the clock steps back', () => {
    let t = 1_700_000_000_000;
    const next = createSeqSource(() => t);
    const a = next();
    const b = next();
    t -= 60_000;
    const c = next();
    t += 120_000;
    const d = next();
    expect(a).toBe(1_700_000_000_000_000);
    expect(b).toBe(a + 1);
    expect(c).toBe(b + 1);
    expect(d).toBe(1_700_000_060_000_000);
    expect(Number.isSafeInteger(d)).toBe(true);
  });
});

/**
 * The reporter against real local HTTP servers standing in for gslb-dns instances: signature and
 * schema compatibility, independence of instances (down, slow), backoff, the latest state after
 * recovery, and seq across restarts. Heartbeats, backoff and request timeouts run on a manual
 * clock the tests move; only the HTTP round trips take real time (waited for, never measured).
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
import { ManualClock } from '../helpers/manual-clock.js';

const SECRET = 'tokyo-secret-0123456789abcdef-0123456789';
const checkReport = TypeCompiler.Compile(ReportSchema);

interface Received { at: number; report: Report; ts: string; sig: string; site: string | undefined; raw: string }

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
      received.push({ at: performance.now(), report: JSON.parse(raw) as Report, ts: String(req.headers['x-gslb-timestamp']), sig: String(req.headers['x-gslb-signature']), site: req.headers['x-gslb-site'] as string | undefined, raw });
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

/** Waits (real time, polling every 5 ms) for `pred`: the reporter's HTTP round trips are real I/O. */
async function until(pred: () => boolean, what = 'condition', ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!pred()) {
    if (performance.now() > end) throw new Error(`${what}: not met within ${ms} ms`);
    await sleep(5);
  }
}

/** Waits until instance `i` has no request in flight and has counted `n` results (sent + failed). */
function settled(r: Reporter, i: number, n: number): Promise<void> {
  return until(() => { const s = r.status()[i]!; return !s.inFlight && s.sent + s.failed >= n; }, `instance ${i}: ${n} results`);
}

afterEach(async () => {
  await Promise.all(reporters.splice(0).map((r) => r.stop()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('reporter', () => {
  it('sends bodies that match ReportSchema, signed so that verifyReportSignature accepts them', async () => {
    const dns = await fakeDns();
    const clock = new ManualClock();
    const members: ReportMember[] = [{ address: '192.0.2.1', state: 'up', weight: 50, connections: 0, capacity: 1000, healthy: 1, total: 2 }];
    const r = reporter({ dns: [dns.url], members: () => members, clock });
    const t0 = clock.wallNow();
    r.start();
    await settled(r, 0, 1);
    // the heartbeat: due one interval after the first report
    expect(clock.nextIn).toBe(100);
    await clock.tick(100);
    await settled(r, 0, 2);
    expect(dns.received).toHaveLength(2);
    for (const [i, got] of dns.received.entries()) {
      expect(checkReport.Check(got.report), JSON.stringify([...checkReport.Errors(got.report)])).toBe(true);
      expect(verifyReportSignature(SECRET, got.ts, got.raw, got.sig)).toBe(true);
      expect(verifyReportSignature('other-secret', got.ts, got.raw, got.sig)).toBe(false);
      // X-GSLB-Site lets the DNS pick the secret before it parses the body
      expect(got.site).toBe(got.report.site);
      // X-GSLB-Timestamp and sentAt come from the reporter's clock
      expect(got.ts).toBe(String(t0 + i * 100));
      expect(got.report.sentAt).toBe(new Date(t0 + i * 100).toISOString());
      expect(got.report).toMatchObject({ site: 'tokyo', agent: 'lb1', members });
    }
    expect(dns.received[1]!.report.seq).toBeGreaterThan(dns.received[0]!.report.seq);
    const st = r.status()[0]!;
    expect(st).toMatchObject({ url: `${dns.url}/api/v1/reports`, consecutiveFailures: 0, lastStatus: 200, sent: 2, lastSuccessAt: t0 + 100, nextAttemptAt: t0 + 200 });
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
    const clock = new ManualClock();
    let state: ReportMember['state'] = 'up';
    const r = reporter({ dns: [dead, slow.url, good.url], intervalMs: 100, timeoutMs: 2000, clock, members: () => [{ address: '192.0.2.1', state, weight: 100 }] });
    r.start();
    await until(() => good.received.length >= 1 && slow.received.length >= 1, 'first reports');
    await settled(r, 2, 1);
    await settled(r, 0, 1);
    // the heartbeat keeps arriving at the good instance while the slow one holds its request
    // (600 ms of the reporter's clock: six heartbeats, well inside the slow one's 2 s timeout)
    for (let i = 1; i <= 6; i++) {
      await clock.tick(100);
      await settled(r, 2, 1 + i);
    }
    expect(r.status()[2]!.sent).toBe(7);
    // a change reaches the good instance at once (no waiting for the heartbeat or the others):
    // the clock stands still, so only notify() can send it
    state = 'down';
    const n = good.received.length;
    r.notify();
    await until(() => good.received.slice(n).some((g) => g.report.members[0]!.state === 'down'), 'the change at the good instance');
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
    const clock = new ManualClock();
    const r = reporter({ dns: [slow.url], timeoutMs: 150, backoff: { initialMs: 20, maxMs: 50 }, clock });
    r.start();
    await until(() => slow.received.length === 1, 'the first request');
    await clock.tick(149);
    expect(r.status()[0]).toMatchObject({ inFlight: true, failed: 0 });
    await clock.tick(1);
    await settled(r, 0, 1);
    expect(r.status()[0]!.lastError).toBe('timeout after 150 ms');
    // the retry after the backoff, timing out the same way
    expect(clock.nextIn).toBe(20);
    await clock.tick(20);
    await until(() => slow.received.length === 2, 'the retry');
    await clock.tick(150);
    await settled(r, 0, 2);
    expect(r.status()[0]).toMatchObject({ failed: 2, consecutiveFailures: 2, lastError: 'timeout after 150 ms' });
  });

  it('backs off exponentially, capped, while an instance fails', async () => {
    const dns = await fakeDns('fail');
    const clock = new ManualClock();
    const r = reporter({ dns: [dns.url], intervalMs: 10, backoff: { initialMs: 40, maxMs: 320 }, clock });
    r.start();
    await settled(r, 0, 1);
    // 40, 80, 160, 320, 320, 320 ms: the heartbeat (10 ms) never fires while backing off
    for (const [i, delay] of [40, 80, 160, 320, 320, 320].entries()) {
      expect(clock.nextIn).toBe(delay);
      expect(r.status()[0]!.nextAttemptAt).toBe(clock.wallNow() + delay);
      await clock.tick(delay - 1);
      expect(dns.received).toHaveLength(i + 1);
      await clock.tick(1);
      await settled(r, 0, i + 2);
      expect(dns.received).toHaveLength(i + 2);
    }
    const st = r.status()[0]!;
    expect(st).toMatchObject({ lastStatus: 503, sent: 0, failed: 7, consecutiveFailures: 7 });
    expect(st.lastError).toMatch(/^HTTP 503/);
  });

  it('by default backs off no longer than the heartbeat interval, so a restarted instance hears within one interval', async () => {
    const dns = await fakeDns('fail');
    const clock = new ManualClock();
    const r = reporter({ dns: [dns.url], intervalMs: 1000, clock });
    r.start();
    await settled(r, 0, 1);
    for (const [i, delay] of [100, 200, 400, 800, 1000, 1000].entries()) {
      expect(clock.nextIn).toBe(delay);
      await clock.tick(delay);
      await settled(r, 0, i + 2);
    }
    expect(dns.received).toHaveLength(7);
  });

  it('an instance that comes back gets the latest state, not a queue of stale reports', async () => {
    const dns = await fakeDns('fail');
    const clock = new ManualClock();
    let weight = 0;
    const r = reporter({ dns: [dns.url], intervalMs: 50, backoff: { initialMs: 20, maxMs: 100 }, clock, members: () => [{ address: '192.0.2.1', state: 'up', weight }] });
    r.start();
    await settled(r, 0, 1);
    // changes while the instance fails: each retry carries the state of its moment
    for (weight = 10; weight <= 50; weight += 10) {
      r.notify();
      const failed = r.status()[0]!.failed;
      await clock.next();
      await settled(r, 0, failed + 1);
      expect(dns.received.at(-1)!.report.members[0]!.weight).toBe(weight);
    }
    weight = 77;
    r.notify();
    const failedBefore = dns.received.length;
    dns.mode = 'ok';
    await clock.next();
    await until(() => r.status()[0]!.sent >= 1, 'the first accepted report');
    await settled(r, 0, failedBefore + 1);
    const accepted = dns.received.slice(failedBefore);
    // the first report accepted after recovery already carries the latest state
    expect(accepted).toHaveLength(1);
    expect(accepted[0]!.report.members[0]!.weight).toBe(77);
    // then heartbeats only, every one with the latest state
    for (let i = 1; i <= 4; i++) {
      expect(clock.nextIn).toBe(50);
      await clock.tick(50);
      await settled(r, 0, failedBefore + 1 + i);
    }
    expect(dns.received.slice(failedBefore)).toHaveLength(5);
    for (const g of dns.received.slice(failedBefore)) expect(g.report.members[0]!.weight).toBe(77);
    const seqs = dns.received.map((g) => g.report.seq);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]!).toBeGreaterThan(seqs[i - 1]!);
    expect(r.status()[0]).toMatchObject({ consecutiveFailures: 0, sent: 5 });
  });

  it('seq keeps increasing across a restart (a second reporter after the first stopped)', async () => {
    // the system clock on purpose: the default seq source (sub-millisecond unix time)
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

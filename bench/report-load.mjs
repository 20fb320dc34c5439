#!/usr/bin/env node
// Report load for `npm run bench:dns`: posts signed site reports to gslb-dns as N slb-agents
// would (one per site per 1/rate s, spread evenly over each interval, every member `up`
// with weight 100, seq increasing from Date.now()), over keep-alive HTTP, while dnsperf
// measures the DNS side.
//
//   node bench/report-load.mjs --api http://127.0.0.1:5390 --config-dir DIR
//        [--sites 1000] [--rate 1] [--duration 60] [--once] [--summary FILE]
//
//   --config-dir  a zones dir with *.gslb.yaml (bench/gslb-bench-config.mjs writes one): the
//                 sites, their secrets (file:/env:) and their members are read from it
//   --sites N     report for the first N sites of the config (default: all of them)
//   --rate R      reports per site per second (default 1)
//   --duration S  stop after S seconds (default 60); SIGTERM / SIGINT stop it earlier
//   --once        one round (every site once, 32 in flight) after waiting up to
//                 --connect-wait (15) s for the API port; exit 0 only if every report got 200
//   --summary F   also write the result as markdown bullet lines to F (for the bench report)
//   --connections C  keep-alive connections (default 4); --tick-ms T: the sending tick (default
//                 20 ms): what is due in a tick goes out as one write of pipelined requests on
//                 the next connection. This process shares its core with dnsperf, and each
//                 wake-up preempts dnsperf: with a 1000-report/s load into a no-op HTTP sink
//                 (both on the dnsperf core), a reportless gslb-dns measured 54k qps at 5 ms
//                 ticks, 72k at 20 ms, 95k at 50 ms (96k without); longer ticks make the
//                 server's input burstier.
//   --max-in-flight  reports outstanding at most (default 256); a report due while that many
//                 are outstanding, or while the site's previous report is still outstanding (an
//                 agent sends one at a time), is skipped and counted, so a slow server is not buried
//
// At the end it prints reports sent, accepted (200), rejected by status, network errors,
// skipped, POST latency p50/p95/max, the achieved rate and its own CPU time (user+sys).
// Exit status: 0 when every report was accepted with --once; otherwise 0 when at least one
// was accepted, 1 when none was, 2 for bad arguments. Loopback API addresses only.
import { createHmac } from 'node:crypto';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readBenchConfig } from './gslb-bench-config.mjs';

const REPORTS_PATH = '/api/v1/reports';
const AGENT = 'bench-load';
const REQUEST_TIMEOUT_MS = 5000;
const DRAIN_TIMEOUT_MS = 5000;
const ONCE_CONCURRENCY = 32;
const ONCE_BATCH = 4;
const MAX_DURATION_S = 24 * 3600;
/** falling further behind schedule than this (a stalled event loop) skips the missed reports */
const MAX_LAG_MS = 1000;

class UsageError extends Error {}

/** what the first SIGTERM / SIGINT does: stop sending and report (continuous mode), else exit */
let onStopSignal = () => process.exit(130);

function parseCli(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      api: { type: 'string' },
      'config-dir': { type: 'string' },
      sites: { type: 'string' },
      rate: { type: 'string', default: '1' },
      duration: { type: 'string', default: '60' },
      once: { type: 'boolean', default: false },
      summary: { type: 'string' },
      'max-in-flight': { type: 'string', default: '256' },
      'connect-wait': { type: 'string', default: '15' },
      connections: { type: 'string', default: '4' },
      'tick-ms': { type: 'string', default: '20' },
    },
    strict: true,
  });
  if (!values.api) throw new UsageError('--api URL is required');
  if (!values['config-dir']) throw new UsageError('--config-dir DIR is required');
  let url;
  try {
    url = new URL(values.api);
  } catch {
    throw new UsageError(`--api: not a URL: ${values.api}`);
  }
  if (url.protocol !== 'http:') throw new UsageError('--api: http:// only');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!(host === 'localhost' || host === '::1' || (net.isIPv4(host) && host.startsWith('127.')))) {
    throw new UsageError(`--api: loopback addresses only (127.0.0.0/8, ::1, localhost), got ${host}`);
  }
  const num = (name, min, max, int) => {
    const v = values[name];
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max || (int && !Number.isInteger(n))) {
      throw new UsageError(`--${name}: expected ${int ? 'an integer' : 'a number'} from ${min} to ${max}, got ${v}`);
    }
    return n;
  };
  const base = url.pathname.replace(/\/+$/, '');
  return {
    host, port: Number(url.port || 80),
    path: base.endsWith(REPORTS_PATH) ? base : `${base}${REPORTS_PATH}`,
    configDir: values['config-dir'],
    sites: num('sites', 1, 1_000_000, true),
    rate: num('rate', 0.001, 100, false),
    duration: num('duration', 0.001, MAX_DURATION_S, false),
    once: values.once,
    summary: values.summary,
    maxInFlight: num('max-in-flight', 1, 100_000, true),
    connectWait: num('connect-wait', 0, 600, false),
    connections: num('connections', 1, 1024, true),
    tickMs: num('tick-ms', 1, 1000, false),
  };
}

// ------------------------------------------------------------------ reports
/** Per site: the constant parts of its report body, so a report costs two concatenations and one HMAC. */
function prepareSite(s) {
  const members = s.members.map((a) => `{"address":${JSON.stringify(a)},"state":"up","weight":100,"connections":0,"capacity":1000,"healthy":1,"total":1}`);
  return {
    name: s.name,
    secret: s.secret,
    head: `{"site":${JSON.stringify(s.name)},"agent":"${AGENT}","seq":`,
    tail: `","members":[${members.join(',')}]}`,
    lastSeq: 0,
    busy: false,
  };
}

/** The next signed report of a site: { body, ts, sig } (ASCII); seq is strictly increasing and >= Date.now(). */
function buildReport(site) {
  const ts = Date.now();
  const seq = site.lastSeq >= ts ? site.lastSeq + 1 : ts;
  site.lastSeq = seq;
  const body = `${site.head}${seq},"sentAt":"${new Date(ts).toISOString()}${site.tail}`;
  const tsText = String(ts);
  const sig = createHmac('sha256', site.secret).update(`${tsText}.`).update(body).digest('hex');
  return { body, ts: tsText, sig: `sha256=${sig}` };
}

// ------------------------------------------------------------------ statistics
function createStats() {
  return { sent: 0, accepted: 0, rejected: new Map(), errors: new Map(), skipped: 0, latencies: [], inFlight: 0 };
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

const ms = (x) => (Number.isFinite(x) ? `${x.toFixed(2)} ms` : '-');
const byCount = (m) => [...m.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} x${n}`).join(', ');
const total = (m) => [...m.values()].reduce((a, n) => a + n, 0);

/** The result lines (plain text, also used as markdown bullets). */
function resultLines(o, stats, wallS, cpuS, cpuWallS, cpuTotalS) {
  const lat = Float64Array.from(stats.latencies).sort();
  const rej = total(stats.rejected);
  const err = total(stats.errors);
  const rate = stats.sent / wallS;
  const lines = [];
  if (o.once) {
    lines.push(`readiness round (--once): ${o.siteCount} sites: sent ${stats.sent}, accepted ${stats.accepted}, rejected ${rej}${rej ? ` (${byCount(stats.rejected)})` : ''}, errors ${err}${err ? ` (${byCount(stats.errors)})` : ''} in ${wallS.toFixed(2)} s; POST latency p50 ${ms(percentile(lat, 50))}, max ${ms(lat[lat.length - 1])}`);
    return lines;
  }
  lines.push(`reports: ${o.siteCount} sites x ${o.rate}/s for ${wallS.toFixed(1)} s: sent ${stats.sent}, accepted ${stats.accepted}, rejected ${rej}${rej ? ` (${byCount(stats.rejected)})` : ''}, errors ${err}${err ? ` (${byCount(stats.errors)})` : ''}, skipped ${stats.skipped}`);
  lines.push(`POST latency: p50 ${ms(percentile(lat, 50))}, p95 ${ms(percentile(lat, 95))}, max ${ms(lat[lat.length - 1])}; achieved ${rate.toFixed(1)} reports/s (target ${(o.siteCount * o.rate).toFixed(1)}/s)`);
  lines.push(`generator CPU: ${cpuS.toFixed(2)} s user+sys while sending (${((cpuS / cpuWallS) * 100).toFixed(1)}% of one CPU); ${cpuTotalS.toFixed(2)} s with start-up`);
  return lines;
}

// ------------------------------------------------------------------ HTTP
/**
 * A minimal HTTP/1.1 client on a few keep-alive connections. node:http costs ~3x more CPU per
 * request, and this process shares its core with dnsperf: each tick's reports go out as ONE
 * write (pipelined requests) on the next connection, responses come back in order on it.
 * Responses must carry Content-Length (fastify's do); anything else fails the connection.
 */
function createSender(o, stats) {
  const idle = [];
  const conns = Array.from({ length: o.connections }, () => ({ sock: null, pending: [], buf: null }));
  let rr = 0;
  const reqHead = `POST ${o.path} HTTP/1.1\r\nHost: ${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}\r\n` +
    'Content-Type: application/json\r\nContent-Length: ';

  const settle = (p, status, errKey) => {
    stats.inFlight--;
    p.site.busy = false;
    if (status === 200) stats.accepted++;
    else if (status !== undefined) stats.rejected.set(String(status), (stats.rejected.get(String(status)) ?? 0) + 1);
    else stats.errors.set(errKey, (stats.errors.get(errKey) ?? 0) + 1);
    if (status !== undefined) stats.latencies.push(performance.now() - p.t);
    if (stats.inFlight === 0) for (const fn of idle.splice(0)) fn();
  };

  const fail = (c, errKey) => {
    const sock = c.sock;
    c.sock = null;
    c.buf = null;
    for (const p of c.pending.splice(0)) settle(p, undefined, errKey);
    sock?.destroy();
  };

  const onData = (c, chunk) => {
    c.buf = c.buf === null ? chunk : Buffer.concat([c.buf, chunk]);
    while (c.buf !== null) {
      const he = c.buf.indexOf('\r\n\r\n');
      if (he < 0) return;
      const head = c.buf.toString('latin1', 0, he);
      const status = Number(head.slice(9, 12));
      const cl = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
      if (!/^HTTP\/1\.[01] \d{3}/.test(head) || !cl) return fail(c, 'bad-response');
      const end = he + 4 + Number(cl[1]);
      if (c.buf.length < end) return;
      c.buf = c.buf.length === end ? null : c.buf.subarray(end);
      const p = c.pending.shift();
      if (!p) return fail(c, 'unexpected-response');
      settle(p, status);
      if (/\r\nconnection:[ \t]*close/i.test(head)) return fail(c, 'closed-by-server');
    }
  };

  const connect = (c) => {
    const sock = net.connect({ host: o.host, port: o.port });
    sock.setNoDelay(true);
    c.sock = sock;
    c.buf = null;
    sock.on('data', (d) => { if (c.sock === sock) onData(c, d); });
    sock.on('error', (e) => { if (c.sock === sock) fail(c, e.code ?? 'error'); });
    sock.on('close', () => { if (c.sock === sock) fail(c, 'closed'); });
  };

  // a response overdue by REQUEST_TIMEOUT_MS fails its connection (and what is queued on it)
  const watchdog = setInterval(() => {
    const now = performance.now();
    for (const c of conns) if (c.pending.length && now - c.pending[0].t > REQUEST_TIMEOUT_MS) fail(c, 'timeout');
  }, 250);

  /** Sends one report per site of `batch` in one write on the next connection. */
  const sendBatch = (batch) => {
    if (batch.length === 0) return;
    const c = conns[rr++ % conns.length];
    if (c.sock === null) connect(c);
    const t = performance.now();
    let out = '';
    for (const site of batch) {
      const r = buildReport(site);
      out += `${reqHead}${Buffer.byteLength(r.body)}\r\nX-GSLB-Timestamp: ${r.ts}\r\nX-GSLB-Signature: ${r.sig}\r\n\r\n${r.body}`;
      site.busy = true;
      c.pending.push({ site, t });
    }
    stats.sent += batch.length;
    stats.inFlight += batch.length;
    c.sock.write(out, 'latin1');
  };

  /** resolves when nothing is outstanding, or after timeoutMs */
  const drain = (timeoutMs) => new Promise((resolve) => {
    if (stats.inFlight === 0) return resolve();
    const t = setTimeout(resolve, timeoutMs);
    idle.push(() => { clearTimeout(t); resolve(); });
  });

  const close = () => {
    clearInterval(watchdog);
    for (const c of conns) if (c.sock) fail(c, 'closed-at-end');
  };
  return { sendBatch, drain, close };
}

function waitForPort(host, port, seconds) {
  const deadline = Date.now() + seconds * 1000;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = net.connect({ host, port });
      s.once('connect', () => { s.destroy(); resolve(); });
      s.once('error', (e) => {
        s.destroy();
        if (Date.now() >= deadline) reject(new Error(`the API at ${host}:${port} did not accept connections within ${seconds} s (${e.code ?? e.message})`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

// ------------------------------------------------------------------ main
async function main(argv) {
  let o;
  try {
    o = parseCli(argv);
  } catch (err) {
    process.stderr.write(`report-load: ${err.message}\n`);
    return 2;
  }
  const config = readBenchConfig(o.configDir);
  if (config.sites.length === 0) {
    process.stderr.write(`report-load: ${o.configDir}: no site with a secret and a member\n`);
    return 2;
  }
  if (o.sites !== undefined && o.sites > config.sites.length) {
    process.stderr.write(`report-load: --sites ${o.sites}, but ${o.configDir} has ${config.sites.length} reporting sites\n`);
    return 2;
  }
  const sites = config.sites.slice(0, o.sites ?? config.sites.length).map(prepareSite);
  o.siteCount = sites.length;
  o.rate ??= 1;
  o.duration ??= 60;
  o.maxInFlight ??= 256;
  const stats = createStats();
  const sender = createSender(o, stats);
  const cpu0 = process.cpuUsage();
  let t0 = performance.now();

  /** prints (and writes) the result; the rate is over t0..sendEnd, the CPU share over the whole run */
  const report = (sendEnd) => {
    const wallS = Math.max(1e-3, (sendEnd - t0) / 1000);
    const c = process.cpuUsage(cpu0);
    const cpuWallS = Math.max(1e-3, (performance.now() - t0) / 1000);
    const all = process.cpuUsage();
    const lines = resultLines(o, stats, wallS, (c.user + c.system) / 1e6, cpuWallS, (all.user + all.system) / 1e6);
    for (const l of lines) process.stdout.write(`report-load: ${l}\n`);
    if (o.summary) fs.writeFileSync(o.summary, lines.map((l) => `- ${l}\n`).join(''));
  };

  if (o.once) {
    await waitForPort(o.host, o.port, o.connectWait ?? 15);
    t0 = performance.now();
    let next = 0;
    await new Promise((resolve) => {
      let tick;
      // every request has its own timeout; this only bounds the whole round
      const cap = setTimeout(() => finish(), REQUEST_TIMEOUT_MS * (Math.ceil(sites.length / ONCE_CONCURRENCY) + 1));
      const finish = () => { clearInterval(tick); clearTimeout(cap); resolve(); };
      const pump = () => {
        while (next < sites.length && stats.inFlight < ONCE_CONCURRENCY) {
          const n = Math.min(ONCE_BATCH, ONCE_CONCURRENCY - stats.inFlight, sites.length - next);
          sender.sendBatch(sites.slice(next, next + n));
          next += n;
        }
        if (next >= sites.length && stats.inFlight === 0) finish();
      };
      tick = setInterval(pump, 1);
      pump();
    });
    sender.close();
    report(performance.now());
    return stats.accepted === sites.length ? 0 : 1;
  }

  // continuous: report k is due at t0 + k * interval and goes to site k mod N; every tick sends
  // what is due as one batch
  const interval = 1000 / (sites.length * o.rate);
  const batch = [];
  const endAt = t0 + o.duration * 1000;
  let k = 0;
  let timer;
  await new Promise((resolve) => {
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      resolve();
    };
    onStopSignal = stop;
    const pump = () => {
      const now = performance.now();
      const due = Math.min(now, endAt);
      if (due - (t0 + k * interval) > MAX_LAG_MS) {
        const behind = Math.floor((due - MAX_LAG_MS - t0) / interval) - k;
        if (behind > 0) { stats.skipped += behind; k += behind; }
      }
      while (t0 + k * interval <= due) {
        const site = sites[k % sites.length];
        // like an agent, one report per site at a time: a newer one could overtake it (409)
        if (stats.inFlight + batch.length >= o.maxInFlight || site.busy) stats.skipped++;
        else batch.push(site);
        k++;
      }
      sender.sendBatch(batch);
      batch.length = 0;
      if (now >= endAt) return stop();
      const wait = Math.min(t0 + k * interval, endAt) - now;
      timer = setTimeout(pump, Math.max(o.tickMs, wait));
    };
    pump();
  });
  const sendEnd = performance.now();
  await sender.drain(DRAIN_TIMEOUT_MS);
  sender.close();
  report(sendEnd);
  return stats.accepted > 0 ? 0 : 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // the first signal stops the run and prints the result; a second one (while draining) exits at once
  let signals = 0;
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { if (++signals > 1) process.exit(130); else onStopSignal(); });
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err) => {
    process.stderr.write(`report-load: ${err?.stack ?? err}\n`);
    process.exitCode = 1;
  }).finally(() => {
    // nothing may keep the process alive past its result
    setTimeout(() => process.exit(), 100).unref();
  });
}

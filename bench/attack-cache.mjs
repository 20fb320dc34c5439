#!/usr/bin/env node
// `npm run bench:attack-cache`: a random-subdomain flood against the reply cache (issue: negative
// and random-name answers must not evict the answers of names that exist, RSS under 200 MB).
//
// Every server serves the same zone on a port from the OS: bench/peers/conf/static/gslb.example.test.zone
// plus HOSTS generated A records (h0..h<HOSTS-1>). Each server is first asked every existing name
// once (dnsperf, one pass), then dnsperf sends NAMES distinct random names under the zone
// (r<random>.gslb.example.test A, all NXDOMAIN; a generated query file) at QPS q/s for DURATION s,
// while a second client asks the names that exist (static, www, up, ns1, ns2 and the hosts, in
// turn; A) at LEGIT_QPS q/s, each query with LEGIT_TIMEOUT_MS to be answered. Each host is asked
// again only every HOSTS/LEGIT_QPS seconds, so an LRU that the flood sweeps in less time forgets
// it (the old single budget: 100,000 entries, 10 s of a 10k q/s flood). Prints per server: RSS before / peak / after (VmRSS from /proc,
// summed over the server's process group: nsd forks), flood queries sent/lost (dnsperf), legit
// answered/lost and p50/p99 latency, and for gslb-dns the reply-cache hit rate of the existing
// names and of the flood (from /metrics: gslb_dns_cache_{hits,misses}_total by budget).
// Servers (SERVERS, space-separated): gslb-dns (the default split budgets), gslb-dns-single
// (GSLB_DNS_CACHE=single: one budget for every reply, admitted at once, as before the change),
// nsd, knot (from /usr/sbin; run as the current user in a private temp dir, rrl off as in
// bench/peers, and gslb-dns runs with --rrl-rate 0 likewise: the flood comes from one address, and
// this measures the cache, not the rate limit; they have no reply cache of this kind: their RSS and loss are the comparison).
// Missing binaries are reported and skipped.
//
// Knobs (env): NAMES (600000), QPS (10000), DURATION (60), HOSTS (20000), LEGIT_QPS (1000), LEGIT_TIMEOUT_MS
// (1000), NAME_REPEAT (1; 2 asks each name twice in a row, which passes the negative budget's
// admission: the flood then churns that budget instead), SERVERS ("gslb-dns gslb-dns-single nsd knot"), SERVER_ARGS (extra gslb-dns flags),
// TOTAL_TIMEOUT (s; default from the others), KEEP_TMP=1. Bounded: dnsperf keeps at most 100
// queries outstanding, every run has a deadline, children run in their own process groups and are
// killed by group, the temp dir is removed.
//   NAMES=50000 QPS=5000 DURATION=10 npm run bench:attack-cache     # smoke run
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeReply, encodeQuery } from './lib/dns-udp.mjs';
import { intEnv } from './lib/env.mjs';
import { startGslbDns } from './lib/gslb-dns.mjs';
import { alive, cleanUpOnExit, killGroup, releaseAll, runBench } from './lib/lifecycle.mjs';
import { PEERS_CONF, peerArgv, renderPeerConf } from './lib/peers.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = path.join(REPO, 'dist', 'dns', 'main.js');
const ZONE = 'gslb.example.test';
const ZONE_FILE = path.join(PEERS_CONF, 'static', `${ZONE}.zone`);
const HOSTS = intEnv('HOSTS', 20_000, 0);
const LEGIT_NAMES = ['static', 'www', 'up', 'ns1', 'ns2', ...Array.from({ length: HOSTS }, (_, i) => `h${i}`)].map((l) => `${l}.${ZONE}`);
const NAMES = intEnv('NAMES', 600_000, 1);
const QPS = intEnv('QPS', 10_000, 1);
const DURATION = intEnv('DURATION', 60, 1);
const LEGIT_QPS = intEnv('LEGIT_QPS', 1000, 1);
const LEGIT_TIMEOUT_MS = intEnv('LEGIT_TIMEOUT_MS', 1000, 10);
const NAME_REPEAT = intEnv('NAME_REPEAT', 1, 1);
const SERVERS = (process.env.SERVERS ?? 'gslb-dns gslb-dns-single nsd knot').split(/\s+/).filter(Boolean);
const SERVER_ARGS = (process.env.SERVER_ARGS ?? '').split(/\s+/).filter(Boolean);
const SETTLE_S = 3;
const TOTAL_TIMEOUT_S = intEnv('TOTAL_TIMEOUT', 120 + SERVERS.length * (DURATION + 4 * SETTLE_S + 60), 10);

const log = (msg) => console.error(`[attack-cache] ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const state = { tmp: null, children: new Set(), servers: [], timers: [] };
const cleanupSync = () => releaseAll(state, log);
cleanUpOnExit(cleanupSync, log);

function track(child) {
  state.children.add(child);
  child.on('exit', () => state.children.delete(child));
  return child;
}

/** A UDP port the OS has just handed out (for servers that cannot take port 0 and report it). */
async function freePort() {
  const s = dgram.createSocket('udp4');
  await new Promise((r) => s.bind(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** VmRSS in KiB of every live process in the process group `pgid`. */
function groupRssKiB(pgid) {
  let kib = 0;
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) !== pgid) continue;
      kib += Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${d}/status`, 'utf8'))?.[1] ?? 0);
    } catch { /* gone meanwhile */ }
  }
  return kib;
}

/** Waits until `port` answers a legit query over UDP (bounded). */
async function waitAnswers(port, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise((resolve) => {
      const s = dgram.createSocket('udp4');
      const t = setTimeout(() => { s.close(); resolve(false); }, 200);
      s.on('message', () => { clearTimeout(t); s.close(); resolve(true); });
      s.send(encodeQuery(1, LEGIT_NAMES[0]), port, '127.0.0.1');
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing answers on 127.0.0.1:${port} after ${ms} ms`);
}

/** Starts one server on the zone in dir/static; resolves with { child, port, api? }. */
async function startServer(name, dir) {
  const zonesDir = path.join(dir, 'static');
  if (name.startsWith('gslb-dns')) {
    let child;
    const orig = process.env;
    process.env = { ...orig, GSLB_DNS_CACHE: name === 'gslb-dns-single' ? 'single' : 'split' };
    try {
      const { udp, api } = await startGslbDns(MAIN, ['--zones', zonesDir, '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0', '--log-level', 'info', '--rrl-rate', '0', ...SERVER_ARGS], {
        startTimeoutMs: 30_000, onSpawn: (c) => { child = track(c); },
      });
      return { child, port: udp, api };
    } finally { process.env = orig; }
  }
  const port = await freePort();
  const run = path.join(dir, name);
  fs.mkdirSync(path.join(run, 'db'), { recursive: true });
  if (name !== 'nsd' && name !== 'knot') throw new Error(`unknown server ${name} (known: gslb-dns gslb-dns-single nsd knot)`);
  const confFile = path.join(run, `${name}.conf`);
  fs.writeFileSync(confFile, renderPeerConf(name, { run, conf: dir, port }));
  const argv = peerArgv(name, confFile);
  const logFd = fs.openSync(path.join(run, 'server.log'), 'a');
  const child = track(spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', logFd, logFd] }));
  fs.closeSync(logFd);
  try {
    await waitAnswers(port, 20_000);
  } catch (err) {
    killGroup(child, 'SIGKILL');
    throw new Error(`${name}: ${err.message}\n${fs.readFileSync(path.join(run, 'server.log'), 'utf8').slice(-2000)}`);
  }
  return { child, port };
}

/** The cache counters of gslb-dns from /metrics: { positive: {hits, misses}, negative: {...} }. */
async function cacheCounters(api) {
  const text = await (await fetch(`http://127.0.0.1:${api}/metrics`)).text();
  const read = (family, budget) => Number(new RegExp(`^${family}\\{budget="${budget}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  const c = (b) => ({ hits: read('gslb_dns_cache_hits_total', b), misses: read('gslb_dns_cache_misses_total', b) });
  return { positive: c('positive'), negative: c('negative') };
}

/** The legit client: LEGIT_QPS queries/s over LEGIT_NAMES until stop(); stop() resolves with the figures. */
function startLegit(port) {
  const sock = dgram.createSocket('udp4');
  const pending = new Map();
  const lat = [];
  let sent = 0;
  let wrong = 0;
  let id = 0;
  sock.on('message', (m) => {
    const r = decodeReply(m);
    const p = r && pending.get(r.id);
    if (!p) return;
    pending.delete(r.id);
    clearTimeout(p.timer);
    if (r.rcode !== 0 || r.addrs.length === 0) wrong++;
    lat.push(performance.now() - p.t0);
  });
  let credit = 0;
  const tick = setInterval(() => {
    // 10 ms ticks, the fraction carried to the next one
    for (credit += LEGIT_QPS / 100; credit >= 1; credit--) {
      id = (id + 1) & 0xffff;
      if (pending.has(id)) continue;
      const qid = id;
      pending.set(qid, { t0: performance.now(), timer: setTimeout(() => pending.delete(qid), LEGIT_TIMEOUT_MS) });
      sock.send(encodeQuery(qid, LEGIT_NAMES[sent++ % LEGIT_NAMES.length]), port, '127.0.0.1');
    }
  }, 10);
  state.timers.push(tick);
  return {
    sent: () => sent,
    answered: () => lat.length,
    async stop() {
      clearInterval(tick);
      await sleep(LEGIT_TIMEOUT_MS + 100);
      sock.close();
      lat.sort((a, b) => a - b);
      const pct = (p) => lat.length ? lat[Math.min(lat.length - 1, Math.ceil((p / 100) * lat.length) - 1)] : NaN;
      return { sent, answered: lat.length, wrong, p50: pct(50), p99: pct(99) };
    },
  };
}

/** dnsperf over `file` against `port`: { out, sent, lost }; `args` add to the common ones. */
async function dnsperf(port, file, args, boundS) {
  const perf = track(spawn('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', file, '-q', '100', '-t', '2', ...args],
    { detached: true, stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  perf.stdout.on('data', (d) => { out += d; });
  perf.stderr.on('data', (d) => { out += d; });
  await Promise.race([new Promise((r) => perf.once('exit', r)), sleep(boundS * 1000)]);
  killGroup(perf, 'SIGKILL');
  const num = (re) => Number(re.exec(out)?.[1] ?? NaN);
  return { out, sent: num(/Queries sent:\s+(\d+)/), lost: num(/Queries lost:\s+(\d+)/) };
}

async function runServer(name, dir, queries, existing) {
  const srv = await startServer(name, dir);
  const pgid = srv.child.pid;
  // every existing name asked once (compiled, where there is a cache), then the legit client
  await dnsperf(srv.port, existing, ['-n', '1'], 60);
  const legit = startLegit(srv.port);
  await sleep(SETTLE_S * 1000);
  const before = groupRssKiB(pgid);
  const c0 = srv.api ? await cacheCounters(srv.api) : undefined;
  const legit0 = legit.answered();
  let peak = before;
  const sampler = setInterval(() => { peak = Math.max(peak, groupRssKiB(pgid)); }, 250);
  state.timers.push(sampler);
  log(`${name}: flood of ${NAMES} names at ${QPS} q/s for ${DURATION} s on port ${srv.port}`);
  const { out, sent, lost } = await dnsperf(srv.port, queries, ['-l', String(DURATION), '-Q', String(QPS)], DURATION + 20);
  const legitDuring = legit.answered() - legit0;
  const c1 = srv.api ? await cacheCounters(srv.api) : undefined;
  await sleep(SETTLE_S * 1000);
  clearInterval(sampler);
  const after = groupRssKiB(pgid);
  peak = Math.max(peak, after);
  const l = await legit.stop();
  killGroup(srv.child, 'SIGTERM');
  await Promise.race([new Promise((r) => (alive(srv.child) ? srv.child.once('exit', r) : r())), sleep(5000)]);
  killGroup(srv.child, 'SIGKILL');
  if (Number.isNaN(sent)) log(`${name}: no dnsperf summary:\n${out.slice(-1500)}`);
  let legitHit = NaN;
  let floodHit = NaN;
  if (c0 && c1) {
    const d = (b, k) => c1[b][k] - c0[b][k];
    // the flood never hits the positive budget (NXDOMAIN), so its hits are the existing names';
    // with one budget (single) every hit is counted there, and the flood names repeat only when
    // dnsperf wraps around the query file
    const floodRepeats = NAME_REPEAT > 1 || sent > NAMES;
    legitHit = name === 'gslb-dns-single' && floodRepeats ? NaN : Math.min(1, d('positive', 'hits') / Math.max(1, legitDuring));
    floodHit = name === 'gslb-dns-single' ? NaN : d('negative', 'hits') / Math.max(1, d('negative', 'hits') + d('negative', 'misses'));
  }
  return { name, before, peak, after, sent, lost, legit: l, legitHit, floodHit };
}

function fmtMB(kib) { return `${(kib / 1024).toFixed(0)} MB`; }
function fmtPct(x) { return Number.isNaN(x) ? 'n/a' : `${(x * 100).toFixed(1)}%`; }

async function main() {
  if (!fs.existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build`);
  if (spawnSync('dnsperf', ['-h']).error) throw new Error('dnsperf is not installed');
  state.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gslb-attack-cache-'));
  fs.mkdirSync(path.join(state.tmp, 'static'));
  const hosts = Array.from({ length: HOSTS }, (_, i) => `h${i} IN A 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}\n`).join('');
  fs.writeFileSync(path.join(state.tmp, 'static', `${ZONE}.zone`), `${fs.readFileSync(ZONE_FILE, 'utf8')}${hosts}`);
  const existing = path.join(state.tmp, 'existing.txt');
  fs.writeFileSync(existing, LEGIT_NAMES.map((n) => `${n} A\n`).join(''));
  const queries = path.join(state.tmp, 'queries.txt');
  const fd = fs.openSync(queries, 'w');
  for (let i = 0; i < NAMES; i += 10_000) {
    const lines = [];
    for (let j = i; j < Math.min(NAMES, i + 10_000); j++) {
      const line = `r${randomBytes(6).toString('hex')}${j.toString(36)}.${ZONE} A`;
      for (let k = 0; k < NAME_REPEAT; k++) lines.push(line);
    }
    fs.writeSync(fd, `${lines.join('\n')}\n`);
  }
  fs.closeSync(fd);
  const rows = [];
  for (const name of SERVERS) {
    const bin = name === 'nsd' ? '/usr/sbin/nsd' : name === 'knot' ? '/usr/sbin/knotd' : undefined;
    if (bin && !fs.existsSync(bin)) { log(`${name}: ${bin} not installed, skipped`); continue; }
    rows.push(await runServer(name, state.tmp, queries, existing));
  }
  console.log(`\nrandom-subdomain flood: ${NAMES} distinct names (NXDOMAIN${NAME_REPEAT > 1 ? `, each ${NAME_REPEAT} times in a row` : ''}) at ${QPS} q/s for ${DURATION} s (dnsperf, <= 100 outstanding); ` +
    `legit: ${LEGIT_NAMES.length} existing names in turn at ${LEGIT_QPS} q/s, ${LEGIT_TIMEOUT_MS} ms deadline; ${os.cpus().length} CPUs, shared`);
  console.log('server           RSS before  RSS peak  RSS after  flood sent  flood lost  legit answered  lost  wrong  p50 ms  p99 ms  legit hit  flood hit');
  for (const r of rows) {
    const l = r.legit;
    console.log(`${r.name.padEnd(16)} ${fmtMB(r.before).padStart(10)}  ${fmtMB(r.peak).padStart(8)}  ${fmtMB(r.after).padStart(9)}  ` +
      `${String(r.sent).padStart(10)}  ${String(r.lost).padStart(10)}  ${`${l.answered}/${l.sent}`.padStart(14)}  ${String(l.sent - l.answered).padStart(4)}  ` +
      `${String(l.wrong).padStart(5)}  ${l.p50.toFixed(2).padStart(6)}  ${l.p99.toFixed(2).padStart(6)}  ${fmtPct(r.legitHit).padStart(9)}  ${fmtPct(r.floodHit).padStart(9)}`);
  }
  console.log('RSS: VmRSS summed over the server\'s process group; legit/flood hit: reply-cache hits per query during the flood ' +
    '(gslb-dns only; single budget: flood hit n/a, legit hit n/a when the flood names repeat)');
  return 0;
}

runBench(main, { totalS: TOTAL_TIMEOUT_S, cleanupSync, log });

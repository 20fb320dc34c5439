#!/usr/bin/env node
// `npm run bench:forwarder`: the L4 forwarder data planes in a network-namespace lab, side by side
// with the direct path and with HAProxy, plus rule-update latency and the remap fraction.
//
// Lab (lab/netns.ts): one bridge; namespaces client, lb, rs1..rsRS_MAX, all on 10.77.0.0/16
// (client 10.77.0.2, lb 10.77.0.3, rsI 10.77.1.I). Every real server namespace runs one
// dist/lab/backend-server.js (`--http 0.0.0.0:80`, `--udp VIP_DSR:9000`) and had
// `slb-agent rs-setup --mode dsr --vip VIP_DSR --interface eth0`.
//
// (a) throughput: wrk (HTTP/1.1, GET /, `-t1 -cCONNS`) in the client namespace, DURATION s x RUNS
//     per row (median shown), 1 s warm-up first, both keep-alive and `Connection: close` (a new
//     TCP connection per request). Rows: direct (rs1's address), dsr (nftables plane, maglev),
//     nat (nftables plane, full NAT, maglev), proxy (our userspace proxy in the lb namespace, rr),
//     haproxy (mode tcp, balance roundrobin, nbthread 1, in the lb namespace). The dsr/nat/proxy/
//     haproxy rows use rs1..rsHTTP_RS (default 1: the same single server as direct). Pinning (2+ CPUs): wrk on CPU 0; backends, proxy and haproxy on CPU 1.
// (b) rule update latency: one dsr VIP with N = 3, 10, 50 real servers (addresses only, no
//     processes), 20 health changes each (rs #1 down, up, down, ...), performance.now() around
//     apply() next to the plane's own lastApplyMs().
// (c) remap fraction: a UDP dsr VIP on N = 5, 10, 20 real servers; K flows from K distinct client
//     addresses (10.78.x.y on the client's eth0, routed back by the real servers via the client)
//     and ports; phase 1 records which real server answers each flow, then rs #2 goes unhealthy,
//     we wait FLOW_WAIT ms (> the 1 s flowTimeoutMs, so the kernel flow table has forgotten the
//     flows), phase 2 records again. moved = flows whose real server changed / flows answered in
//     both phases. Distinct source addresses because sh hashes the source address only (IPVS sh,
//     nftlb hash): with one client address every flow would sit on one real server.
//
// Knobs (env): DURATION (5 s), RUNS (3), CONNS (32), WARMUP (1 s), FLOWS (2000), RS_MAX (20),
// FLOW_WAIT (2000 ms), HTTP_RS (1), PART (all | a | b | c, comma-separated), TOTAL_TIMEOUT (300 s).
// Writes the report to bench/peers/results/forwarder-latest.md. Traffic stays inside the lab's
// namespaces; every child is bounded (wrk -d, exec timeouts); lab.close() runs on exit, error and
// SIGINT/SIGTERM. Exit status 1 when a row failed to measure.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { intEnv } from './lib/env.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(REPO, 'dist');
const CLIENT_TOOL = path.join(REPO, 'bench/forwarder/client-tool.mjs');
const PROXY_RUNNER = path.join(REPO, 'bench/forwarder/proxy-runner.mjs');
const SLB_AGENT_BIN = path.join(REPO, 'bin/slb-agent.js');
const RESULT_FILE = path.join(REPO, 'bench/peers/results/forwarder-latest.md');

const DURATION_S = intEnv('DURATION', 5, 1);
const RUNS = intEnv('RUNS', 3, 1);
const CONNS = intEnv('CONNS', 32, 1);
const WARMUP_S = intEnv('WARMUP', 1, 0);
const FLOWS = intEnv('FLOWS', 2000, 10);
const RS_MAX = intEnv('RS_MAX', 20, 3);
const FLOW_WAIT_MS = intEnv('FLOW_WAIT', 2000, 0);
const TOTAL_TIMEOUT_S = intEnv('TOTAL_TIMEOUT', 300, 10);
const PARTS = new Set((process.env.PART ?? 'all').split(',').map((s) => s.trim()));
const part = (p) => PARTS.has('all') || PARTS.has(p);

const NET = '10.77';
const CLIENT_IP = `${NET}.0.2`;
const LB_IP = `${NET}.0.3`;
const rsIp = (i) => `${NET}.1.${i}`;
const VIP_DSR = `${NET}.0.100`;
const VIP_NAT = `${NET}.0.101`;
const VIP_PROXY = `${NET}.0.102`;
const VIP_HAPROXY = `${NET}.0.103`;
const VIP_UPDATE = `${NET}.0.120`;
const UDP_PORT = 9000;
// real servers behind the throughput VIPs: 1 by default, so every row ends at rs1 like direct and the
// ratio is the cost of the forwarding path, not of spreading load over more backends
const HTTP_RS = intEnv('HTTP_RS', 1, 1);
const UPDATE_NS = [3, 10, 50];
const UPDATE_CHANGES = 20;
const REMAP_NS = [5, 10, 20].filter((n) => n <= RS_MAX);
const CPUS = os.cpus().length;
const PIN = CPUS >= 2;
const CLIENT_CPU = '0';
const SERVER_CPU = '1';
const TARGETS = { dsrVsDirect: 0.8, proxyVsHaproxy: 0.5, updateMs: 100 };

const log = (msg) => process.stderr.write(`[bench:forwarder] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ clean-up
const state = { lab: null, plane: null, tmp: null, closing: null, interrupted: false };

async function cleanup() {
  if (state.closing) return state.closing;
  state.closing = (async () => {
    if (state.plane) await Promise.race([state.plane.close().catch(() => undefined), sleep(5000)]);
    state.plane = null;
    if (state.lab) await Promise.race([state.lab.close().catch((e) => log(`lab.close: ${e.message}`)), sleep(15000)]);
    state.lab = null;
    if (state.tmp) fs.rmSync(state.tmp, { recursive: true, force: true });
    state.tmp = null;
  })();
  return state.closing;
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    log(`${sig}: cleaning up`);
    state.interrupted = true;
    cleanup().finally(() => process.exit(128 + os.constants.signals[sig]));
  });
}

// ------------------------------------------------------------------ helpers
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
/** nearest-rank percentile */
function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
/** the 1-minute load average (other work on the box shows up here) */
const loadavg = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : NaN);

/** Runs argv in a lab namespace (tracked by the lab, so close() kills it); resolves with stdout. */
function labRun(role, argv, timeoutMs) {
  const child = state.lab.spawn(role, argv);
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => { clearTimeout(timer); reject(e); });
    child.once('close', (code, sig) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${argv.join(' ')} in ${role} exited ${code ?? sig}: ${err.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

/** Waits for a line matching re on a child's stdout (bounded). */
function waitReady(child, re, what, ms = 10000) {
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} not ready within ${ms} ms: ${err.trim()}`)), ms);
    child.stdout.on('data', (d) => {
      out += d;
      if (re.test(out)) { clearTimeout(timer); resolve(); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${what} exited ${code}: ${err.trim()}`)); });
  });
}

function pin(pid) {
  if (!PIN || pid === undefined) return;
  execFileSync('taskset', ['-pc', SERVER_CPU, String(pid)], { stdio: 'ignore', timeout: 5000 });
}

async function clientJson(args, timeoutMs) {
  const out = await labRun('client', [process.execPath, CLIENT_TOOL, ...args], timeoutMs);
  return JSON.parse(out.trim().split('\n').pop());
}

/** Which real servers answer `n` GETs on new connections (also: the VIP works before wrk runs). */
async function probe(url, n = 12) {
  const r = await clientJson(['http', url, '--count', String(n), '--deadline', '5000'], 20000);
  if (r.ids.length === 0) throw new Error(`no answer from ${url} (${r.errors} errors, last: ${r.lastError})`);
  const counts = {};
  for (const id of r.ids) counts[id] = (counts[id] ?? 0) + 1;
  return Object.entries(counts).sort().map(([k, v]) => `${k}:${v}`).join(' ');
}

// ------------------------------------------------------------------ wrk
function toMs(s) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(s);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : m[2] === 's' ? v * 1000 : v * 60000;
}

function parseWrk(text) {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]);
  const avg = toMs(/Latency\s+(\S+)/.exec(text)?.[1] ?? '');
  const p99 = toMs(/\s99%\s+(\S+)/.exec(text)?.[1] ?? '');
  const requests = Number(/(\d+) requests in/.exec(text)?.[1]);
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const errors = se ? se.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  return { rps, avg, p99, requests, errors, non2xx };
}

function wrkArgv(url, seconds, close) {
  const argv = ['wrk', '-t1', `-c${CONNS}`, `-d${seconds}s`, '--latency', '--timeout', '2s', ...(close ? ['-H', 'Connection: close'] : []), url];
  return PIN ? ['taskset', '-c', CLIENT_CPU, ...argv] : argv;
}

async function wrk(url, close) {
  if (WARMUP_S > 0) await labRun('client', wrkArgv(url, WARMUP_S, close), (WARMUP_S + 15) * 1000);
  const runs = [];
  for (let i = 0; i < RUNS; i++) {
    const out = await labRun('client', wrkArgv(url, DURATION_S, close), (DURATION_S + 15) * 1000);
    runs.push(parseWrk(out));
  }
  const med = median(runs.map((r) => r.rps));
  const at = runs.find((r) => r.rps === med) ?? runs[0];
  return { runs, rps: med, avg: at.avg, p99: at.p99, errors: runs.reduce((a, r) => a + r.errors + r.non2xx, 0) };
}

// ------------------------------------------------------------------ lab
async function buildLab() {
  const { createLab } = await import(pathToFileURL(path.join(DIST, 'lab/netns.js')).href);
  const lab = await createLab({ prefix: 'slbf' });
  state.lab = lab;
  await lab.addBridge('br0');
  await lab.addNamespace('client');
  await lab.addNamespace('lb');
  await lab.attach('client', 'br0', { address: `${CLIENT_IP}/16` });
  await lab.attach('lb', 'br0', { address: `${LB_IP}/16` });
  const rs = [];
  for (let i = 1; i <= RS_MAX; i++) {
    await lab.addNamespace(`rs${i}`);
    await lab.attach(`rs${i}`, 'br0', { address: `${rsIp(i)}/16` });
    rs.push(i);
  }
  // a new connection per request makes ~20,000 connections a run: without these the second run
  // of a row (and the rows after it) meets ports still in TIME_WAIT from the first and measures
  // the port shortage, not the forwarder
  for (const role of ['client', 'lb', ...rs.map((i) => `rs${i}`)]) {
    await lab.sysctl(role, 'net/ipv4/ip_local_port_range', '1024 65535');
    await lab.sysctl(role, 'net/ipv4/tcp_tw_reuse', 1);
  }
  // nat: conntrack keeps TIME_WAIT entries 120 s by default; masquerade would run out of ports too
  await lab.exec('lb', ['sh', '-c', 'modprobe nf_conntrack 2>/dev/null; echo 5 > /proc/sys/net/netfilter/nf_conntrack_tcp_timeout_time_wait || true']);
  // client addresses for the remap flows; the real servers route them back via the client
  const batch = [];
  for (let i = 0; i < FLOWS; i++) batch.push(`addr add 10.78.${Math.floor(i / 250)}.${1 + (i % 250)}/32 dev eth0`);
  await lab.exec('client', ['ip', '-batch', '-'], { input: `${batch.join('\n')}\n`, timeoutMs: 60000 });
  await Promise.all(rs.map(async (i) => {
    await lab.exec(`rs${i}`, ['ip', 'route', 'add', '10.78.0.0/16', 'via', CLIENT_IP]);
    await lab.exec(`rs${i}`, [process.execPath, SLB_AGENT_BIN, 'rs-setup', '--mode', 'dsr', '--vip', VIP_DSR, '--interface', 'eth0'], { timeoutMs: 30000 });
  }));
  const backends = [];
  for (const i of rs) {
    const b = await lab.startBackend(`rs${i}`, { id: `rs${i}`, http: '0.0.0.0:80', udp: `${VIP_DSR}:${UDP_PORT}` });
    pin(b.process.pid);
    backends.push(b);
  }
  return lab;
}

const realServer = (i, port, extra = {}) => ({ id: `${rsIp(i)}:${port}`, address: rsIp(i), port, weight: 1, backup: false, healthy: true, drained: false, ...extra });
const httpServers = () => Array.from({ length: HTTP_RS }, (_, k) => realServer(k + 1, 80));

// ------------------------------------------------------------------ (a) throughput
async function startProxy() {
  await state.lab.exec('lb', ['ip', 'addr', 'add', `${VIP_PROXY}/32`, 'dev', 'eth0']);
  const spec = { name: 'proxy', address: VIP_PROXY, port: 80, protocol: 'tcp', scheduler: 'rr', persistenceMs: 0, mode: 'proxy', realServers: httpServers() };
  const child = state.lab.spawn('lb', [process.execPath, PROXY_RUNNER, JSON.stringify(spec)]);
  await waitReady(child, /^ready$/m, 'proxy-runner');
  pin(child.pid);
  return { stop: () => new Promise((r) => { child.once('exit', r); child.kill('SIGTERM'); setTimeout(() => { child.kill('SIGKILL'); r(); }, 3000); }), note: 'scheduler rr' };
}

async function startHaproxy() {
  await state.lab.exec('lb', ['ip', 'addr', 'add', `${VIP_HAPROXY}/32`, 'dev', 'eth0']);
  const cfg = path.join(state.tmp, 'haproxy.cfg');
  fs.writeFileSync(cfg, [
    'global',
    '  nbthread 1',
    '  maxconn 4096',
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    '  timeout client 30s',
    '  timeout server 30s',
    'listen vip',
    `  bind ${VIP_HAPROXY}:80`,
    '  balance roundrobin',
    ...httpServers().map((s, k) => `  server rs${k + 1} ${s.address}:80`),
    '',
  ].join('\n'));
  const version = execFileSync('haproxy', ['-v'], { encoding: 'utf8' }).split('\n')[0].replace(/^HAProxy version (\S+).*/, '$1');
  const child = state.lab.spawn('lb', ['haproxy', '-db', '-f', cfg]);
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  child.stdout.on('data', () => undefined);
  await sleep(300);
  if (child.exitCode !== null) throw new Error(`haproxy exited ${child.exitCode}: ${err.trim()}`);
  pin(child.pid);
  return { stop: () => new Promise((r) => { child.once('exit', r); child.kill('SIGTERM'); setTimeout(() => { child.kill('SIGKILL'); r(); }, 3000); }), note: `haproxy ${version}, mode tcp, roundrobin, nbthread 1` };
}

async function benchThroughput(plane) {
  const rows = [];
  const defs = [
    { name: 'direct', url: `http://${rsIp(1)}/`, setup: async () => ({ note: 'rs1 only' }) },
    {
      name: 'dsr', url: `http://${VIP_DSR}/`,
      setup: async () => {
        await plane.apply([{ name: 'web', address: VIP_DSR, port: 80, protocol: 'tcp', scheduler: 'maglev', persistenceMs: 0, mode: 'dsr', interface: 'eth0', realServers: httpServers() }]);
        return { note: 'nftables, maglev', stop: () => plane.apply([]) };
      },
    },
    {
      name: 'nat', url: `http://${VIP_NAT}/`,
      setup: async () => {
        await plane.apply([{ name: 'webnat', address: VIP_NAT, port: 80, protocol: 'tcp', scheduler: 'maglev', persistenceMs: 0, mode: 'nat', interface: 'eth0', snat: true, realServers: httpServers() }]);
        return { note: 'nftables, maglev, full NAT', stop: () => plane.apply([]) };
      },
    },
    { name: 'proxy', url: `http://${VIP_PROXY}/`, setup: startProxy },
    { name: 'haproxy', url: `http://${VIP_HAPROXY}/`, setup: startHaproxy },
  ];
  for (const d of defs) {
    const row = { name: d.name, url: d.url, note: '', ka: null, close: null, error: null, spread: '', load: loadavg() };
    let ctl;
    try {
      log(`(a) ${d.name}: ${d.url}`);
      ctl = await d.setup();
      row.note = ctl.note;
      row.spread = await probe(d.url);
      row.ka = await wrk(d.url, false);
      log(`(a) ${d.name} keep-alive: ${row.ka.runs.map((r) => r.rps.toFixed(0)).join('/')} req/s`);
      row.close = await wrk(d.url, true);
      log(`(a) ${d.name} conn-close: ${row.close.runs.map((r) => r.rps.toFixed(0)).join('/')} req/s`);
    } catch (err) {
      row.error = err.message.split('\n')[0];
      const line = Number(/\/dev\/stdin:(\d+):/.exec(err.message)?.[1]);
      if (Number.isInteger(line) && (d.name === 'dsr' || d.name === 'nat')) row.error += ` (script line ${line}: \`${plane.lastScript().split('\n')[line - 1]?.trim()}\`)`;
      log(`(a) ${d.name} FAILED: ${err.stack ?? err}`);
    } finally {
      if (ctl?.stop) await ctl.stop().catch((e) => log(`(a) ${d.name} stop: ${e.message}`));
    }
    row.load += ` -> ${loadavg()}`;
    rows.push(row);
  }
  return rows;
}

function throughputReport(rows) {
  const by = Object.fromEntries(rows.map((r) => [r.name, r]));
  const out = [];
  for (const variant of ['ka', 'close']) {
    const title = variant === 'ka' ? 'HTTP keep-alive' : "new connection per request (`-H 'Connection: close'`)";
    out.push(`### ${title}`, '');
    out.push('| row | req/s (median) | req/s per run | avg latency (ms) | p99 latency (ms) | errors | vs direct | vs haproxy | answered by (12 new conns) | load avg (row start -> end) | notes |');
    out.push('|---|---:|---|---:|---:|---:|---:|---:|---|---|---|');
    for (const r of rows) {
      const m = r[variant];
      if (!m) {
        out.push(`| ${r.name} | FAILED | | | | | | | | ${r.load} | ${r.error ?? 'not measured'} |`);
        continue;
      }
      const direct = by.direct?.[variant]?.rps;
      const hap = by.haproxy?.[variant]?.rps;
      out.push(`| ${r.name} | ${m.rps.toFixed(0)} | ${m.runs.map((x) => x.rps.toFixed(0)).join('/')} | ${f2(m.avg)} | ${f2(m.p99)} | ${m.errors} | ${f2(ratio(m.rps, direct))}x | ${r.name === 'proxy' ? `${f2(ratio(m.rps, hap))}x` : ''} | ${r.spread} | ${r.load} | ${r.note}${r.error ? `; ${r.error}` : ''} |`);
    }
    const dsr = ratio(by.dsr?.[variant]?.rps, by.direct?.[variant]?.rps);
    const px = ratio(by.proxy?.[variant]?.rps, by.haproxy?.[variant]?.rps);
    const verdict = (x, t) => (Number.isFinite(x) ? (x >= t ? 'PASS' : 'FAIL') : 'NOT MEASURED');
    out.push('');
    out.push(`- dsr / direct = ${f2(dsr)}x   target >= ${TARGETS.dsrVsDirect}x: ${verdict(dsr, TARGETS.dsrVsDirect)}`);
    out.push(`- proxy / haproxy = ${f2(px)}x   target >= ${TARGETS.proxyVsHaproxy}x: ${verdict(px, TARGETS.proxyVsHaproxy)}`);
    out.push('');
  }
  return out;
}

// ------------------------------------------------------------------ (b) rule update latency
async function benchUpdates(plane) {
  const out = ['| real servers | initial apply (ms) | changes | wall p50 (ms) | wall p99 (ms) | wall max (ms) | lastApplyMs p50 / p99 / max | target p99 < 100 ms |', '|---:|---:|---:|---:|---:|---:|---|---|'];
  let allPass = true;
  for (const n of UPDATE_NS) {
    const servers = Array.from({ length: n }, (_, k) => ({ id: `${NET}.3.${k + 1}:8080`, address: `${NET}.3.${k + 1}`, port: 8080, weight: 1, backup: false, healthy: true, drained: false }));
    const spec = (healthy0) => ({ name: 'upd', address: VIP_UPDATE, port: 8080, protocol: 'tcp', scheduler: 'maglev', persistenceMs: 0, mode: 'dsr', interface: 'eth0', realServers: servers.map((s, k) => (k === 0 ? { ...s, healthy: healthy0 } : s)) });
    const t0 = performance.now();
    await plane.apply([spec(true)]);
    const initial = performance.now() - t0;
    const wall = [];
    const own = [];
    for (let c = 0; c < UPDATE_CHANGES; c++) {
      const s = spec(c % 2 === 1); // down, up, down, ...
      const t = performance.now();
      await plane.apply([s]);
      wall.push(performance.now() - t);
      own.push(plane.lastApplyMs());
    }
    const pass = pct(wall, 99) < TARGETS.updateMs;
    allPass &&= pass;
    out.push(`| ${n} | ${f1(initial)} | ${UPDATE_CHANGES} | ${f1(pct(wall, 50))} | ${f1(pct(wall, 99))} | ${f1(Math.max(...wall))} | ${f1(pct(own, 50))} / ${f1(pct(own, 99))} / ${f1(Math.max(...own))} | ${pass ? 'PASS' : 'FAIL'} |`);
    log(`(b) N=${n}: p50 ${f1(pct(wall, 50))} ms, max ${f1(Math.max(...wall))} ms`);
  }
  await plane.apply([]);
  out.push('', `(p99 of ${UPDATE_CHANGES} samples is nearest-rank, i.e. the largest but one at most; wall = performance.now() around apply(), which resolves after \`nft -f\` committed.)`);
  return { lines: out, pass: allPass };
}

// ------------------------------------------------------------------ (c) remap fraction
async function remapOne(plane, n, scheduler) {
  const removed = 2; // rs2 leaves
  const servers = (down) => Array.from({ length: n }, (_, k) => realServer(k + 1, UDP_PORT, { healthy: !(down && k + 1 === removed) }));
  const spec = (down) => ({ name: `u${n}${scheduler}`, address: VIP_DSR, port: UDP_PORT, protocol: 'udp', scheduler, persistenceMs: 0, mode: 'dsr', interface: 'eth0', flowTimeoutMs: 1000, realServers: servers(down) });
  const flows = async () => (await clientJson(['udp', '--vip', VIP_DSR, '--port', String(UDP_PORT), '--count', String(FLOWS), '--batch', '100', '--timeout', '300', '--retries', '3'], 120000)).ids;
  await plane.apply([spec(false)]);
  const t1 = performance.now();
  const a = await flows();
  const phaseMs = performance.now() - t1;
  await plane.apply([spec(true)]);
  await sleep(FLOW_WAIT_MS);
  const b = await flows();
  await plane.apply([]);
  let both = 0;
  let moved = 0;
  let onRemoved = 0;
  let wrong = 0;
  const used = new Set();
  for (let i = 0; i < FLOWS; i++) {
    if (a[i]) used.add(a[i]);
    if (b[i] === `rs${removed}`) wrong++;
    if (!a[i] || !b[i]) continue;
    both++;
    if (a[i] === `rs${removed}`) onRemoved++;
    if (a[i] !== b[i]) moved++;
  }
  return { n, scheduler, both, moved, frac: moved / both, onRemoved: onRemoved / both, used: used.size, unanswered: FLOWS - both, wrong, phaseMs };
}

/** Share of uniformly hashed flows that change real server under plain modulo when real server `removed` (1-based) of n leaves. */
function shExpected(n, removed) {
  const before = Array.from({ length: n }, (_, k) => k + 1);
  const after = before.filter((x) => x !== removed);
  const steps = 1_000_000;
  let moved = 0;
  for (let h = 0; h < steps; h++) if (before[h % n] !== after[h % (n - 1)]) moved++;
  return moved / steps;
}

async function benchRemap(plane) {
  const out = [
    `| real servers | maglev moved | maglev: flows that were on rs2 | sh (modulo) moved | sh: flows that were on rs2 | ideal (1/N) | modulo computed ((N-1)/N) | unanswered (maglev / sh) |`,
    '|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  const notes = [];
  for (const n of REMAP_NS) {
    const r = {};
    for (const s of ['maglev', 'sh']) {
      r[s] = await remapOne(plane, n, s);
      log(`(c) N=${n} ${s}: moved ${(r[s].frac * 100).toFixed(1)} % of ${r[s].both} flows (phase ${r[s].phaseMs.toFixed(0)} ms, ${r[s].used} real servers seen)`);
      if (r[s].used < n) notes.push(`N=${n} ${s}: phase 1 reached only ${r[s].used} of ${n} real servers`);
      if (r[s].wrong > 0) notes.push(`N=${n} ${s}: ${r[s].wrong} flows still answered by the removed rs2 in phase 2`);
    }
    const pc = (x) => `${(x * 100).toFixed(1)} %`;
    out.push(`| ${n} | ${pc(r.maglev.frac)} | ${pc(r.maglev.onRemoved)} | ${pc(r.sh.frac)} | ${pc(r.sh.onRemoved)} | ${pc(1 / n)} | ${pc(shExpected(n, 2))} | ${r.maglev.unanswered} / ${r.sh.unanswered} |`);
  }
  out.push('', 'sh is plain modulo hashing: the kernel plane interleaves the server list over ~1024 buckets (IPVS sh style), because nft `jhash ... mod N` alone scales the hash into N ranges (reciprocal_scale) rather than taking `hash % N`. The computed column assumes a uniform hash.');
  if (notes.length) out.push('', ...notes.map((x) => `- ${x}`));
  return out;
}

// ------------------------------------------------------------------ main
async function main() {
  for (const f of ['lab/netns.js', 'lab/backend-server.js', 'slb-agent/forwarder/nftables/index.js', 'slb-agent/forwarder/proxy/proxy.js']) {
    if (!fs.existsSync(path.join(DIST, f))) throw new Error(`dist/${f} not found: run 'npm run build' first`);
  }
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespaces, nftables)');
  const loadAtStart = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  state.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'slb-bench-forwarder-'));
  const started = performance.now();
  log(`building the lab: client, lb, rs1..rs${RS_MAX}`);
  const lab = await buildLab();
  log(`lab ${lab.id} up in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const { createNftablesDataPlane } = await import(pathToFileURL(path.join(DIST, 'slb-agent/forwarder/nftables/index.js')).href);
  const plane = createNftablesDataPlane({ netns: lab.ns('lb'), cleanupOnClose: true });
  state.plane = plane;

  const kernel = os.release();
  const wrkVersion = (() => { try { return execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'wrk'], { encoding: 'utf8' }); } catch { return '?'; } })();
  const md = [
    `## Forwarder benchmark ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`,
    '',
    `${CPUS} x ${os.cpus()[0]?.model ?? 'cpu'}, kernel ${kernel}, Node ${process.version}, wrk ${wrkVersion}.`,
    `Lab: one bridge; namespaces client (${CLIENT_IP}), lb (${LB_IP}), rs1..rs${RS_MAX} (${NET}.1.I/16); one backend-server.js (node) per real server.`,
    '',
  ];
  let failed = false;
  if (part('a')) {
    md.push('### (a) throughput', '',
      `Load average before the lab: ${loadAtStart} (1/5/15 min). The box is shared: anything else running (tests, builds) takes CPU from these rows; the load column shows it.`,
      `wrk -t1 -c${CONNS} -d${DURATION_S}s --latency, ${RUNS} runs per row (median shown; avg/p99 latency from the median run), ${WARMUP_S} s warm-up run first; GET / -> 200 \`rsI\\n\`.`,
      PIN ? `Pinning: wrk on CPU ${CLIENT_CPU} (\`taskset -c ${CLIENT_CPU}\`); every backend, the proxy and haproxy on CPU ${SERVER_CPU} (\`taskset -pc ${SERVER_CPU}\`). Kernel forwarding (dsr, nat) runs in softirq wherever the packets are sent from.` : 'No pinning (1 CPU).',
      `direct = rs1 alone; every other row ${HTTP_RS === 1 ? 'also ends at rs1 alone (HTTP_RS=1), so the ratio is the cost of the forwarding path' : `balances over rs1..rs${HTTP_RS}`}. haproxy nbthread 1: it gets one core (CPU ${SERVER_CPU}) like our single-threaded proxy, which is the fair match on 2 cores with wrk on the other.`, '');
    const rows = await benchThroughput(plane);
    failed ||= rows.some((r) => r.error);
    md.push(...throughputReport(rows));
  }
  if (part('b')) {
    md.push('### (b) rule update latency (nftables plane, dsr VIP, maglev)', '',
      `${UPDATE_CHANGES} health changes per size (real server #1 healthy:false, then back, alternating).`, '');
    const r = await benchUpdates(plane);
    md.push(...r.lines, '');
  }
  if (part('c')) {
    md.push('### (c) remap fraction when one real server leaves (measured through the kernel)', '',
      `UDP dsr VIP ${VIP_DSR}:${UDP_PORT}, flowTimeoutMs 1000; ${FLOWS} flows, each from its own client address (10.78.x.y) and port, 100 in flight, 300 ms timeout, 3 retries.`,
      `Phase 1 records the answering real server of every flow; rs2 -> healthy:false; wait ${FLOW_WAIT_MS} ms (flow table forgets); phase 2 again. moved = changed / answered in both phases.`,
      'maglev = the kernel Maglev table (jhash of source address.port); sh = the kernel sh table (jhash of the source address, the server list interleaved over ~1024 buckets: plain modulo hashing, not consistent, like IPVS sh). One namespace + one backend process per real server: DSR delivers the VIP unchanged, so a real server is only told apart by the machine (MAC) the frame reaches.', '');
    md.push(...await benchRemap(plane), '');
  }
  const env = [`DURATION=${DURATION_S}`, `RUNS=${RUNS}`, `CONNS=${CONNS}`, `WARMUP=${WARMUP_S}`, `FLOWS=${FLOWS}`, `RS_MAX=${RS_MAX}`, `FLOW_WAIT=${FLOW_WAIT_MS}`, `PART=${[...PARTS].join(',')}`].join(' ');
  md.push(`Total ${((performance.now() - started) / 1000).toFixed(0)} s. Command: \`${env} npm run bench:forwarder\` (root; needs wrk, haproxy, nft, ip, taskset).`);
  const text = `${md.join('\n')}\n`;
  if (state.interrupted) return 1; // a partial report must not replace the last complete one
  process.stdout.write(text);
  fs.mkdirSync(path.dirname(RESULT_FILE), { recursive: true });
  fs.writeFileSync(RESULT_FILE, text);
  log(`wrote ${path.relative(REPO, RESULT_FILE)}`);
  return failed ? 1 : 0;
}

const total = setTimeout(() => {
  log(`TOTAL_TIMEOUT (${TOTAL_TIMEOUT_S} s) reached: giving up`);
  cleanup().finally(() => process.exit(1));
}, TOTAL_TIMEOUT_S * 1000);
total.unref();

let code = 1;
try {
  code = await main();
} catch (err) {
  log(`error: ${err?.stack ?? err}`);
} finally {
  await cleanup();
}
process.exit(code);

#!/usr/bin/env node
// `npm run bench:agent`: what slb-agent costs and how fast a dead real server leaves DNS answers.
//
// (a) load: a real-server process (one Node HTTP server process listening on RS ports of
//     127.0.0.1, not the agent's) and `node dist/slb-agent/main.js` with RS real servers (10 VIPs)
//     checked by HTTP every 1 s (timeout 500 ms, rise 2, fall 2), reporting to a sink in this
//     process. After WARMUP s, samples the agent's /proc/<pid>/stat and VmRSS over DURATION s and
//     prints its CPU % of one core, RSS (mean and max) and the checks it actually ran (from
//     GET /status), next to the targets (< 20 %, < 150 MB).
// (b) detection to DNS: gslb-dns (dist/dns/main.js, generated zone + .gslb.yaml: failover pool,
//     192.0.2.1 at site tokyo = the agent's VIP, 192.0.2.2 at site osaka = a heartbeat from this
//     process) and the agent with one HTTP real server in its own process (check interval 500 ms,
//     timeout 300 ms, rise 2, fall 2, report interval 1 s). Each trial waits until dig answers
//     192.0.2.1, SIGKILLs the real server and polls dig (spawned back to back) until 192.0.2.1 is
//     gone; then restarts the real server. Prints every trial, the median and the mean, next to
//     the peers' figures from the issue.
//
// Knobs (env): RS (1000), DURATION (20), WARMUP (5), TRIALS (10), PART (all | a | b),
// TOTAL_TIMEOUT (300 s), KEEP_TMP=1. Loopback only. Every child runs in its own process group and
// is stopped by that PGID; the temp dir is removed on exit, on error and on SIGINT/SIGTERM.
// Exit status 1 when a trial missed its deadline or the measurement failed.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { intEnv } from './lib/env.mjs';
import { signReport } from './lib/gslb-dns.mjs';
import { alive, cleanUpOnExit, killGroup, releaseAll, runBench } from './lib/lifecycle.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DNS_MAIN = path.join(REPO, 'dist', 'dns', 'main.js');
const AGENT_MAIN = path.join(REPO, 'dist', 'slb-agent', 'main.js');
const RS = intEnv('RS', 1000, 1);
const DURATION_S = intEnv('DURATION', 20, 1);
const WARMUP_S = intEnv('WARMUP', 5, 0);
const TRIALS = intEnv('TRIALS', 10, 1);
const PART = process.env.PART ?? 'all';
const TOTAL_TIMEOUT_S = intEnv('TOTAL_TIMEOUT', 300, 1);
const VIPS = Math.min(10, RS);
const START_TIMEOUT_MS = 20_000;
const DETECT_DEADLINE_MS = 10_000;
const RECOVER_DEADLINE_MS = 15_000;
const ZONE = 'agent-bench.test';
const QNAME = `www.${ZONE}`;
const TOKYO = '192.0.2.1';
const OSAKA = '192.0.2.2';
const PEERS = [
  'PowerDNS 4.7 ifportup: 3.1 s mean (issue 4, same machine)',
  'gdnsd 3.8 http_status (interval 2 s, 2/2): 4.1 s mean (issue 4, same machine)',
];

const log = (msg) => process.stderr.write(`[bench:agent] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();

// ------------------------------------------------------------------ clean-up
const state = { tmp: null, children: new Set(), timers: [], servers: [] };

/** SIGTERM to the child's group, SIGKILL after graceMs. */
async function stopChild(child, graceMs = 5000, signal = 'SIGTERM') {
  if (!alive(child)) { state.children.delete(child); return; }
  const exited = new Promise((r) => child.once('exit', r));
  killGroup(child, signal);
  const t = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
  state.children.delete(child);
}

const cleanupSync = () => releaseAll(state, log);
cleanUpOnExit(cleanupSync, log);

/**
 * Spawns `node args` in its own process group; resolves with the child and the first stdout JSON
 * line that `ready` accepts (or rejects after START_TIMEOUT_MS / on exit).
 */
function spawnNode(args, ready, env = {}) {
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  state.children.add(child);
  const tail = [];
  const keep = (line) => { tail.push(line); if (tail.length > 30) tail.shift(); };
  readline.createInterface({ input: child.stderr }).on('line', keep);
  const lines = readline.createInterface({ input: child.stdout });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${path.basename(args[0])} did not get ready within ${START_TIMEOUT_MS} ms:\n${tail.join('\n')}`)), START_TIMEOUT_MS);
    const onExit = (code, sig) => { clearTimeout(timer); reject(new Error(`${path.basename(args[0])} exited (${code ?? sig}) during start-up:\n${tail.join('\n')}`)); };
    child.once('exit', onExit);
    const acc = {};
    lines.on('line', (line) => {
      keep(line);
      let j;
      try { j = JSON.parse(line); } catch { return; }
      const r = ready(j, acc);
      if (r !== undefined) { clearTimeout(timer); child.off('exit', onExit); resolve({ child, info: r }); }
    });
  });
}

// ------------------------------------------------------------------ helpers
const REAL_SERVER_JS = `
import http from 'node:http';
const ports = process.argv.slice(2).map(Number);
const count = Number(process.env.COUNT || 0);
const handler = (req, res) => { res.writeHead(req.url === '/healthz' ? 200 : 404, { 'content-type': 'text/plain' }); res.end('ok\\n'); };
const bound = [];
const listen = (p) => new Promise((resolve, reject) => {
  const s = http.createServer(handler);
  s.keepAliveTimeout = 1000;
  s.once('error', reject);
  s.listen(p, '127.0.0.1', () => resolve(s.address().port));
});
for (const p of ports) bound.push(await listen(p));
for (let i = 0; i < count; i++) bound.push(await listen(0));
process.stdout.write(JSON.stringify({ msg: 'real servers listening', ports: bound }) + '\\n');
`;

/** A port nothing listens on right now (bound, then closed). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = http.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

async function startRealServers(file, { ports = [], count = 0 }) {
  const { child, info } = await spawnNode([file, ...ports.map(String)], (j) => (j.msg === 'real servers listening' ? j.ports : undefined), { COUNT: String(count) });
  return { child, ports: info };
}

async function startAgent(config, env) {
  // AGENT_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p") profiles the agent alone
  const nodeArgs = (process.env.AGENT_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const { child, info } = await spawnNode([...nodeArgs, AGENT_MAIN, '--config', config], (j) => (j.msg === 'api listening' ? j.port : undefined), env);
  return { child, apiPort: info };
}

async function getJson(port, p) {
  const res = await fetch(`http://127.0.0.1:${port}${p}`, { signal: AbortSignal.timeout(5000) });
  return res.json();
}

const CLK_TCK = (() => {
  try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { return 100; }
})();

/** [utime, stime] of a pid, in seconds (fields 14 and 15 of /proc/<pid>/stat, stat(5)). */
function cpuTimes(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(f[11]) / CLK_TCK, Number(f[12]) / CLK_TCK];
}

/** utime + stime of a pid, in seconds. */
function cpuSeconds(pid) {
  const [u, s] = cpuTimes(pid);
  return u + s;
}

function rssMb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function agentYaml({ dns, api, vips, report = '1s', check }) {
  const lines = ['site: tokyo', 'agent: bench', 'secret: env:BENCH_SECRET_TOKYO', `dns: [ ${dns.map((d) => `"${d}"`).join(', ')} ]`,
    `report: { interval: ${report} }`, `api: 127.0.0.1:${api}`, 'vips:'];
  for (const v of vips) {
    lines.push(`  - name: ${v.name}`, `    address: ${v.address}`, '    port: 80', '    capacity: 1000', '    quorum: 1', `    check: ${check}`, '    realServers:');
    for (const p of v.ports) lines.push(`      - { address: 127.0.0.1, port: ${p}, weight: 1 }`);
  }
  return `${lines.join('\n')}\n`;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// ------------------------------------------------------------------ (a) load
async function benchLoad(dir, rsFile, secret) {
  log(`(a) starting ${RS} real servers in their own process`);
  const rs = await startRealServers(rsFile, { count: RS });
  // the agent reports to a sink here, so the reporter's cost is part of the measurement
  let reports = 0;
  const sink = http.createServer((req, res) => { req.resume(); req.on('end', () => { reports++; res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"accepted":true}'); }); });
  state.servers.push(sink);
  await new Promise((r) => sink.listen(0, '127.0.0.1', r));
  const per = Math.ceil(RS / VIPS);
  const vips = [];
  for (let i = 0; i < VIPS; i++) vips.push({ name: `vip${i}`, address: `192.0.2.${100 + i}`, ports: rs.ports.slice(i * per, (i + 1) * per) });
  const config = path.join(dir, 'load.yaml');
  fs.writeFileSync(config, agentYaml({
    dns: [`http://127.0.0.1:${sink.address().port}`], api: await freePort(), vips: vips.filter((v) => v.ports.length),
    check: '{ type: http, path: /healthz, expect: [200], interval: 1s, timeout: 500ms, rise: 2, fall: 2 }',
  }));
  const agent = await startAgent(config, { BENCH_SECRET_TOKYO: secret });
  log(`(a) agent pid ${agent.child.pid}, API :${agent.apiPort}; warm-up ${WARMUP_S} s, then ${DURATION_S} s of samples`);
  await sleep(WARMUP_S * 1000);
  const checksOf = (st) => st.vips.reduce((n, v) => n + v.realServers.reduce((m, r) => m + r.passes + r.fails, 0), 0);
  const failsOf = (st) => st.vips.reduce((n, v) => n + v.realServers.reduce((m, r) => m + r.fails, 0), 0);
  const st0 = await getJson(agent.apiPort, '/status');
  const [u0, s0] = cpuTimes(agent.child.pid);
  const c0 = u0 + s0;
  const t0 = now();
  const reports0 = reports;
  const rss = [];
  const cpuPerSecond = [];
  let last = c0;
  for (let i = 0; i < DURATION_S; i++) {
    await sleep(1000);
    const c = cpuSeconds(agent.child.pid);
    cpuPerSecond.push((c - last) * 100);
    last = c;
    rss.push(rssMb(agent.child.pid));
  }
  const [u1, s1] = cpuTimes(agent.child.pid);
  const c1 = u1 + s1;
  const elapsed = (now() - t0) / 1000;
  const st1 = await getJson(agent.apiPort, '/status');
  const up = st1.vips.filter((v) => v.state === 'up').length;
  await stopChild(agent.child);
  await stopChild(rs.child);
  sink.close();
  const cpu = (c1 - c0) / elapsed * 100;
  const checks = checksOf(st1) - checksOf(st0);
  const fails = failsOf(st1) - failsOf(st0);
  const rssMean = rss.reduce((a, b) => a + b, 0) / rss.length;
  return [
    `(a) ${RS} real servers in ${VIPS} VIPs, HTTP checks every 1 s, for ${elapsed.toFixed(1)} s (after ${WARMUP_S} s warm-up):`,
    `    agent CPU      ${cpu.toFixed(1)} % of one core (user ${((u1 - u0) / elapsed * 100).toFixed(1)} %, system ${((s1 - s0) / elapsed * 100).toFixed(1)} %; per second: min ${Math.min(...cpuPerSecond).toFixed(0)} %, max ${Math.max(...cpuPerSecond).toFixed(0)} %)   target < 20 %`,
    `    agent RSS      mean ${rssMean.toFixed(1)} MB, max ${Math.max(...rss).toFixed(1)} MB   target < 150 MB`,
    `    checks run     ${checks} (${(checks / elapsed).toFixed(0)}/s), failed ${fails}; VIPs up ${up}/${st1.vips.length}; reports received ${reports - reports0}`,
  ];
}

// ------------------------------------------------------------------ (b) detection
function writeZones(dir, secrets) {
  const zones = path.join(dir, 'zones');
  fs.mkdirSync(zones, { recursive: true });
  fs.writeFileSync(path.join(zones, `${ZONE}.zone`), [
    `$ORIGIN ${ZONE}.`, '$TTL 300', '@ IN SOA ns1 hostmaster 1 3600 600 604800 60', '@ IN NS ns1', 'ns1 IN A 192.0.2.53', '',
  ].join('\n'));
  fs.writeFileSync(path.join(zones, `${ZONE}.gslb.yaml`), [
    '# generated by bench/agent.mjs',
    'sites:',
    '  tokyo: { secret: env:BENCH_SECRET_TOKYO, staleAfter: 5s }',
    '  osaka: { secret: env:BENCH_SECRET_OSAKA, staleAfter: 5s }',
    'pools:',
    '  web:',
    '    names: [www]',
    '    ttl: 20',
    '    degradedTtl: 5',
    '    policy: failover',
    '    maxAnswers: 1',
    '    allDown: all',
    '    members:',
    `      - { site: tokyo, address: ${TOKYO}, tier: 1 }`,
    `      - { site: osaka, address: ${OSAKA}, tier: 2 }`, '',
  ].join('\n'));
  return { zones, env: { BENCH_SECRET_TOKYO: secrets.tokyo, BENCH_SECRET_OSAKA: secrets.osaka } };
}

let osakaSeq = 0;
async function postOsaka(apiPort, secret) {
  const ts = Date.now();
  osakaSeq = Math.max(osakaSeq + 1, ts * 1000);
  const { body, sig } = signReport(secret, { site: 'osaka', agent: 'bench', seq: osakaSeq, members: [{ address: OSAKA, state: 'up' }] }, ts);
  const res = await fetch(`http://127.0.0.1:${apiPort}/api/v1/reports`, {
    method: 'POST', body, signal: AbortSignal.timeout(5000),
    headers: { 'content-type': 'application/json', 'x-gslb-timestamp': String(ts), 'x-gslb-signature': sig },
  });
  await res.text();
  return res.status;
}

function digOnce(port) {
  return new Promise((resolve) => {
    execFile('dig', ['+short', '+norec', '+time=1', '+tries=1', '-p', String(port), '@127.0.0.1', QNAME, 'A'], { timeout: 3000 }, (err, stdout) => {
      resolve(err ? `dig failed: ${err.message.split('\n')[0]}` : stdout.trim().split('\n').filter(Boolean).join(','));
    });
  });
}

/** Polls dig back to back until `pred(answer)`; ms since t0, or undefined at the deadline. */
async function digUntil(port, pred, t0, deadlineMs) {
  let last = '';
  for (let i = 0; i < deadlineMs; i++) { // each dig takes well over 1 ms: a bound, never reached
    last = await digOnce(port);
    const t = now() - t0;
    if (pred(last)) return { ms: t, last };
    if (t > deadlineMs) break;
  }
  return { ms: undefined, last };
}

async function benchDetection(dir, rsFile, secrets) {
  const { zones, env } = writeZones(dir, secrets);
  const { child: dns, info: ports } = await spawnNode([DNS_MAIN, '--zones', zones, '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0',
    '--rrl-rate', '0'], (j, acc) => { // RRL off: dig is polled back to back from one address
    if (j.msg === 'listening' && typeof j.udp === 'number') acc.udp = j.udp;
    if (j.msg === 'api listening' && typeof j.port === 'number') acc.api = j.port;
    return acc.udp !== undefined && acc.api !== undefined ? acc : undefined;
  }, env);
  log(`(b) gslb-dns pid ${dns.pid}: UDP ${ports.udp}, API ${ports.api}`);
  if (await postOsaka(ports.api, secrets.osaka) !== 200) throw new Error('the osaka heartbeat was refused');
  state.timers.push(setInterval(() => { postOsaka(ports.api, secrets.osaka).catch((e) => log(`osaka heartbeat: ${e.message}`)); }, 1000));

  let rs = await startRealServers(rsFile, { count: 1 });
  const rsPort = rs.ports[0];
  const config = path.join(dir, 'detect.yaml');
  fs.writeFileSync(config, agentYaml({
    dns: [`http://127.0.0.1:${ports.api}`], api: await freePort(), vips: [{ name: 'web', address: TOKYO, ports: [rsPort] }],
    check: '{ type: http, path: /healthz, expect: [200], interval: 500ms, timeout: 300ms, rise: 2, fall: 2 }',
  }));
  const agent = await startAgent(config, { BENCH_SECRET_TOKYO: secrets.tokyo });
  log(`(b) agent pid ${agent.child.pid}; real server on 127.0.0.1:${rsPort} (pid ${rs.child.pid})`);

  const trials = [];
  const misses = [];
  for (let i = 1; i <= TRIALS; i++) {
    const up = await digUntil(ports.udp, (a) => a === TOKYO, now(), RECOVER_DEADLINE_MS);
    if (up.ms === undefined) throw new Error(`trial ${i}: dig never answered ${TOKYO} (last: ${up.last})`);
    // kill at a random phase of the check interval, as a real failure would
    await sleep(500 + Math.random() * 500);
    const t0 = now();
    await stopChild(rs.child, 1000, 'SIGKILL');
    const gone = await digUntil(ports.udp, (a) => a !== TOKYO && !a.startsWith('dig failed'), t0, DETECT_DEADLINE_MS);
    if (gone.ms === undefined) misses.push(`trial ${i}: still ${TOKYO} after ${DETECT_DEADLINE_MS} ms`);
    else trials.push(gone.ms);
    log(`(b) trial ${i}: ${gone.ms === undefined ? 'MISSED' : `${gone.ms.toFixed(0)} ms -> ${gone.last}`}`);
    rs = await startRealServers(rsFile, { ports: [rsPort] });
  }
  await stopChild(agent.child);
  await stopChild(rs.child);
  await stopChild(dns);
  const mean = trials.reduce((a, b) => a + b, 0) / (trials.length || 1);
  return {
    misses,
    lines: [
      `(b) detection to DNS: HTTP real server SIGKILLed, check interval 500 ms, timeout 300 ms, fall 2, report on change; dig polled back to back:`,
      `    trials (ms)    ${trials.map((t) => t.toFixed(0)).join(', ')}`,
      `    median         ${trials.length ? `${(median(trials) / 1000).toFixed(2)} s` : 'n/a'}   mean ${(mean / 1000).toFixed(2)} s   target: median < 1.5 s`,
      ...PEERS.map((p) => `    peer           ${p}`),
      ...(misses.length ? [`    MISSED (${misses.length}): ${misses.join('; ')}`] : []),
    ],
  };
}

// ------------------------------------------------------------------ main
async function main() {
  for (const f of [DNS_MAIN, AGENT_MAIN]) if (!fs.existsSync(f)) throw new Error(`${f} not found: run 'npm run build' first`);
  state.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'slb-agent-bench-'));
  const rsFile = path.join(state.tmp, 'real-servers.mjs');
  fs.writeFileSync(rsFile, REAL_SERVER_JS);
  const secrets = { tokyo: randomBytes(16).toString('hex'), osaka: randomBytes(16).toString('hex') };
  const out = [`slb-agent benchmark on ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`, ''];
  let missed = 0;
  if (PART === 'all' || PART === 'a') out.push(...await benchLoad(state.tmp, rsFile, secrets.tokyo), '');
  if (PART === 'all' || PART === 'b') {
    const r = await benchDetection(state.tmp, rsFile, secrets);
    out.push(...r.lines);
    missed = r.misses.length;
  }
  process.stdout.write(`${out.join('\n')}\n`);
  return missed === 0 ? 0 : 1;
}

runBench(main, { totalS: TOTAL_TIMEOUT_S, cleanupSync, log });

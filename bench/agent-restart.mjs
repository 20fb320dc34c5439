#!/usr/bin/env node
// `npm run bench:agent-restart`: connections refused while slb-agent restarts in `proxy` mode.
//
// A TCP backend (greets each connection with "ok\n") on 127.0.0.1, `node dist/slb-agent/main.js`
// forwarding a proxy VIP on 127.0.0.41 to it (tcp check every 200 ms, rise 1), reporting to a
// sink in this process. A client opens RATE connections a second to the VIP, each waiting for the
// greeting, while the agent restarts RESTARTS times, once per mode:
//   handover    a new agent is started while the old one runs (it takes the listeners over: the
//               control socket in the run dir, SO_REUSEPORT); the next restart waits until the
//               old one has exited
//   stop-start  the old behaviour: SIGTERM the agent, wait for it to exit, start a new one and
//               wait until the VIP accepts again
// Prints, per mode, the connections tried, greeted, refused (ECONNREFUSED), reset and otherwise
// failed, side by side. Exit status 1 when a mode could not run, or handover refused or failed any.
//
// Knobs (env): RESTARTS (10), RATE (200 connections/s), PAUSE_MS (500, between restarts),
// MODES (handover,stop-start), TOTAL_TIMEOUT (300 s), KEEP_TMP=1. Loopback only; every child is
// in its own process group and stopped by that PGID; the temp dir goes on exit and on signals.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { intEnv } from './lib/env.mjs';
import { cleanUpOnExit, killGroup, releaseAll, runBench } from './lib/lifecycle.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const AGENT_MAIN = path.join(REPO, 'dist', 'slb-agent', 'main.js');
const RESTARTS = intEnv('RESTARTS', 10, 1);
const RATE = intEnv('RATE', 200, 1);
const PAUSE_MS = intEnv('PAUSE_MS', 500, 0);
const TOTAL_TIMEOUT_S = intEnv('TOTAL_TIMEOUT', 300, 1);
const MODES = (process.env.MODES ?? 'handover,stop-start').split(',').filter(Boolean);
const VIP = '127.0.0.41';
const START_TIMEOUT_MS = 20_000;
const CONNECT_TIMEOUT_MS = 2_000;
const SECRET = 'bench-secret-0123456789abcdef';

const log = (msg) => process.stderr.write(`[bench:agent-restart] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const state = { tmp: null, children: new Set(), servers: [], timers: [] };
const cleanupSync = () => releaseAll(state, log);
cleanUpOnExit(cleanupSync, log);

/** Starts an agent; `ready` resolves on the first stdout JSON line `pred` accepts, `exited` on exit. */
function startAgent(config, runDir, pred) {
  const child = spawn(process.execPath, [AGENT_MAIN, '--config', config], {
    detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SLB_AGENT_RUN_DIR: runDir, BENCH_SECRET: SECRET },
  });
  state.children.add(child);
  const tail = [];
  const keep = (l) => { tail.push(l); if (tail.length > 30) tail.shift(); };
  readline.createInterface({ input: child.stderr }).on('line', keep);
  const exited = new Promise((r) => child.once('exit', (code, sig) => { state.children.delete(child); r(code ?? sig); }));
  const ready = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`agent not ready within ${START_TIMEOUT_MS} ms:\n${tail.join('\n')}`)), START_TIMEOUT_MS);
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`agent exited (${code}) during start-up:\n${tail.join('\n')}`)); });
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      keep(line);
      let j;
      try { j = JSON.parse(line); } catch { return; }
      if (pred(j)) { clearTimeout(t); resolve(j); }
    });
  });
  ready.catch(() => undefined);
  return { child, ready, exited };
}

/** One connection: greeted, refused, reset or failed otherwise. */
function attempt(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: VIP, port });
    let done = false;
    const end = (outcome) => { if (done) return; done = true; clearTimeout(t); sock.destroy(); resolve(outcome); };
    const t = setTimeout(() => end('timeout'), CONNECT_TIMEOUT_MS);
    sock.on('data', () => end('ok'));
    sock.on('error', (err) => end(err.code === 'ECONNREFUSED' ? 'refused' : err.code === 'ECONNRESET' ? 'reset' : `other:${err.code}`));
    sock.on('close', () => end('reset'));
  });
}

/** Connects RATE times a second until stopped; counts outcomes. */
function startClient(port) {
  const counts = { tried: 0, ok: 0, refused: 0, reset: 0, other: 0 };
  const pending = new Set();
  const period = 1000 / RATE;
  let next = performance.now();
  const timer = setInterval(() => {
    // catch up in whole connections, so the rate holds even with coarse timers
    while (performance.now() >= next) {
      next += period;
      counts.tried++;
      const p = attempt(port).then((o) => {
        pending.delete(p);
        if (o === 'ok' || o === 'refused' || o === 'reset') counts[o]++; else counts.other++;
      });
      pending.add(p);
    }
  }, 1);
  state.timers.push(timer);
  return { counts, async stop() { clearInterval(timer); await Promise.all(pending); } };
}

async function runMode(mode, config, port, runDir) {
  let agent = startAgent(config, runDir, (j) => j.msg === 'reporting started');
  await agent.ready;
  await sleep(500);
  const client = startClient(port);
  const t0 = performance.now();
  await sleep(PAUSE_MS);
  for (let i = 0; i < RESTARTS; i++) {
    if (mode === 'handover') {
      const next = startAgent(config, runDir, (j) => j.msg === 'handover complete');
      await next.ready;
      const code = await Promise.race([agent.exited, sleep(15_000).then(() => 'timeout')]);
      if (code !== 0) throw new Error(`the old agent ended with ${code} after the handover`);
      agent = next;
    } else {
      killGroup(agent.child, 'SIGTERM');
      await agent.exited;
      agent = startAgent(config, runDir, (j) => j.msg === 'reporting started');
      await agent.ready;
      // the proxy listens right after the first apply, a moment after reporting started
      for (let k = 0; k < 200 && (await attempt(port)) !== 'ok'; k++) await sleep(10);
    }
    await sleep(PAUSE_MS);
  }
  await client.stop();
  const seconds = (performance.now() - t0) / 1000;
  killGroup(agent.child, 'SIGTERM');
  await agent.exited;
  return { mode, restarts: RESTARTS, seconds, ...client.counts };
}

async function main() {
  if (!fs.existsSync(AGENT_MAIN)) throw new Error(`${AGENT_MAIN} is missing: run npm run build`);
  state.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-agent-restart-'));
  const runDir = path.join(state.tmp, 'run');
  const backend = net.createServer((s) => { s.on('error', () => undefined); s.end('ok\n'); });
  state.servers.push(backend);
  await new Promise((r) => backend.listen(0, '127.0.0.1', r));
  const sink = http.createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(200); res.end('{}'); }); });
  state.servers.push(sink);
  await new Promise((r) => sink.listen(0, '127.0.0.1', r));
  const free = async (host) => {
    const s = net.createServer();
    await new Promise((r) => s.listen(0, host, r));
    const { port } = s.address();
    await new Promise((r) => s.close(r));
    return port;
  };
  const port = await free(VIP);
  const config = path.join(state.tmp, 'site.yaml');
  fs.writeFileSync(config, [
    'site: bench', 'agent: lb1', 'secret: env:BENCH_SECRET',
    `dns: [ "http://127.0.0.1:${sink.address().port}" ]`, 'report: { interval: 1s }',
    `api: 127.0.0.1:${await free('127.0.0.1')}`,
    'forwarder: { drainTimeout: 5s }',
    'vips:',
    `  - { name: web, address: ${VIP}, port: ${port}, forwarder: { mode: proxy },`,
    '      check: { type: tcp, interval: 200ms, timeout: 150ms, rise: 1, fall: 1 },',
    `      realServers: [ { address: 127.0.0.1, port: ${backend.address().port} } ] }`, '',
  ].join('\n'));
  log(`${RESTARTS} restarts per mode, a client connecting ${RATE}/s to ${VIP}:${port}, ${PAUSE_MS} ms between restarts`);
  const rows = [];
  for (const mode of MODES) {
    if (mode !== 'handover' && mode !== 'stop-start') throw new Error(`MODES: unknown mode ${mode}`);
    log(`mode ${mode}...`);
    rows.push(await runMode(mode, config, port, runDir));
  }
  const cols = ['mode', 'restarts', 'seconds', 'tried', 'ok', 'refused', 'reset', 'other'];
  const fmt = (r) => cols.map((c) => (c === 'seconds' ? r[c].toFixed(1) : String(r[c])).padStart(c === 'mode' ? 10 : 8)).join(' ');
  process.stdout.write(`\nslb-agent restarts in proxy mode: client connecting ${RATE}/s\n`);
  process.stdout.write(`${cols.map((c) => c.padStart(c === 'mode' ? 10 : 8)).join(' ')}\n`);
  for (const r of rows) process.stdout.write(`${fmt(r)}\n`);
  const h = rows.find((r) => r.mode === 'handover');
  return h !== undefined && (h.refused > 0 || h.reset > 0 || h.other > 0) ? 1 : 0;
}

runBench(main, { totalS: TOTAL_TIMEOUT_S, cleanupSync, log });

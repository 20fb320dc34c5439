#!/usr/bin/env node
// `npm run bench:overrides`: how long an operator action takes to be in force on every instance
// when overrides live in etcd.
//
// Starts a 3-member etcd cluster on 127.0.0.1 (ports from the OS, data in a temp dir) and two
// `node dist/dns/main.js --overrides etcd://.../bench/overrides` instances on the GSLB test
// fixture, then repeats ACTIONS times (alternately drain / undrain member tokyo 192.0.2.21):
// POST the action to instance 1 and measure, from the start of the POST,
//   - the POST round trip (one etcd read + one etcd transaction + a re-read),
//   - until instance 2's GET /api/v1/state shows it (polled back to back, 2 ms gap).
// Prints min / p50 / p95 / max of each.
//
// Knobs (env): ACTIONS (20), TOTAL_TIMEOUT (120 s), KEEP_TMP=1. Exit 1 when an action was not
// seen within 5 s. Loopback only; every process is stopped by its PID (group); the temp dir is
// removed on exit, on error and on SIGINT/SIGTERM.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { intEnv } from './lib/env.mjs';
import { cleanUpOnExit, removeTmp, runBench } from './lib/lifecycle.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = path.join(REPO, 'dist', 'dns', 'main.js');
const ZONES = path.join(REPO, 'test', 'fixtures', 'gslb');
const ACTIONS = intEnv('ACTIONS', 20, 1);
const TOTAL_TIMEOUT_S = intEnv('TOTAL_TIMEOUT', 120, 1);
const SEEN_DEADLINE_MS = 5000;
const TOKEN = 'bench-overrides-token-0123456789';
const SECRETS = { GSLB_SECRET_TOKYO: 'tokyo-secret-0123456789abcdef-0123456789', GSLB_SECRET_OSAKA: 'osaka-secret-0123456789abcdef-0123456789' };

const log = (msg) => process.stderr.write(`[overrides-etcd] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();

const state = { tmp: null, children: [] };

function cleanupSync() {
  for (const c of state.children) {
    if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
      try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
  removeTmp(state, log);
}
cleanUpOnExit(cleanupSync, log);

async function freePort() {
  const srv = net.createServer();
  await new Promise((resolve, reject) => { srv.once('error', reject); srv.listen(0, '127.0.0.1', resolve); });
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

function start(cmd, args, env = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, ...env } });
  state.children.push(child);
  return child;
}

async function startEtcd(n) {
  const members = [];
  for (let i = 0; i < n; i++) members.push({ name: `etcd${i}`, client: await freePort(), peer: await freePort() });
  const cluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(',');
  for (const m of members) {
    const child = start('etcd', [
      '--name', m.name, '--data-dir', path.join(state.tmp, m.name),
      '--listen-client-urls', `http://127.0.0.1:${m.client}`, '--advertise-client-urls', `http://127.0.0.1:${m.client}`,
      '--listen-peer-urls', `http://127.0.0.1:${m.peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peer}`,
      '--initial-cluster', cluster, '--initial-cluster-state', 'new', '--initial-cluster-token', `bench-${process.pid}`,
      '--heartbeat-interval', '50', '--election-timeout', '500',
    ]);
    child.stdout.resume();
    child.stderr.resume();
  }
  for (const m of members) {
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        const res = await fetch(`http://127.0.0.1:${m.client}/health`, { signal: AbortSignal.timeout(1000) });
        if ((await res.json()).health === 'true') break;
      } catch { /* not yet */ }
      if (Date.now() > deadline) throw new Error(`etcd ${m.name} not healthy within 20 s`);
      await sleep(100);
    }
  }
  return members.map((m) => `127.0.0.1:${m.client}`).join(',');
}

async function main() {
  state.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gslb-bench-overrides-'));
  fs.writeFileSync(path.join(state.tmp, 'token'), `bench:${TOKEN}\n`);
  const endpoints = await startEtcd(3);
  log(`etcd cluster up: ${endpoints}`);
  const ports = [];
  for (const i of [1, 2]) {
    const child = start(process.execPath, [MAIN, '--zones', ZONES, '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0',
      '--instance', `bench-${i}`, '--admin-token-file', path.join(state.tmp, 'token'), '--state-dir', path.join(state.tmp, `state-${i}`),
      '--overrides', `etcd://${endpoints}/bench/overrides`], SECRETS);
    child.stderr.resume();
    const port = await new Promise((resolve, reject) => {
      const rl = readline.createInterface({ input: child.stdout });
      const t = setTimeout(() => reject(new Error(`instance ${i} did not start within 20 s`)), 20_000);
      rl.on('line', (line) => {
        let l;
        try { l = JSON.parse(line); } catch { return; }
        if (l.msg === 'api listening') { clearTimeout(t); resolve(l.port); }
      });
      child.once('exit', (code) => reject(new Error(`instance ${i} exited ${code}`)));
    });
    ports.push(port);
  }
  log(`gslb-dns instances up: api ports ${ports.join(', ')}`);
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
  const overridesOf = async (port) => {
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/state`, { headers });
    return (await res.json()).overrides;
  };

  const post = [];
  const seen = [];
  let failed = 0;
  for (let k = 0; k < ACTIONS; k++) {
    const action = k % 2 === 0 ? 'drain' : 'undrain';
    const want = action === 'drain' ? 1 : 0;
    const t0 = now();
    const res = await fetch(`http://127.0.0.1:${ports[0]}/api/v1/admin/${action}`, {
      method: 'POST', headers, body: JSON.stringify({ site: 'tokyo', address: '192.0.2.21', reason: `bench ${k}` }),
    });
    const body = await res.json();
    post.push(now() - t0);
    if (res.status !== 200 || body.changed !== true) throw new Error(`${action}: ${res.status} ${JSON.stringify(body)}`);
    for (;;) {
      if ((await overridesOf(ports[1])).length === want) { seen.push(now() - t0); break; }
      if (now() - t0 > SEEN_DEADLINE_MS) { failed++; log(`${action} ${k}: not seen by instance 2 within ${SEEN_DEADLINE_MS} ms`); break; }
      await sleep(2);
    }
    await sleep(20);
  }
  const stats = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
    return `min ${s[0].toFixed(1)}  p50 ${q(0.5).toFixed(1)}  p95 ${q(0.95).toFixed(1)}  max ${s[s.length - 1].toFixed(1)} ms`;
  };
  process.stdout.write(`overrides in etcd: ${ACTIONS} actions on instance 1 (3-member etcd on loopback)\n`);
  process.stdout.write(`  POST round trip on instance 1:          ${stats(post)}\n`);
  if (seen.length) process.stdout.write(`  until instance 2's state API shows it:  ${stats(seen)}\n`);
  return failed === 0 ? 0 : 1;
}

runBench(main, { totalS: TOTAL_TIMEOUT_S, cleanupSync, log });

#!/usr/bin/env node
// `npm run bench:attack-tcp`: a legitimate TCP query against gslb-dns while its TCP slots are
// attacked (issue 11, part 1). Attack, held for the whole run (a connection the server closes is
// opened again RECONNECT_MS later, as an attacker would):
//   - IDLE_ONE (1000) idle connections from one source, 127.0.9.1;
//   - IDLE_MANY (5000) idle connections from 50 sources, 127.0.10.1-50;
//   - SLOWLORIS (1000) connections from 100 sources, 127.0.11.1-100, each sending a 2-byte length
//     and then one byte a second.
// Meanwhile, from 127.0.0.1, a fresh TCP connection with one query every QUERY_GAP_MS (200) for
// DURATION seconds (60); each has QUERY_DEADLINE_MS (5000) to be answered. Prints answered/sent,
// p50/p99/max latency (connect to reply) and what the attack saw.
// Knobs (env): DURATION, QUERY_GAP_MS, QUERY_DEADLINE_MS, RECONNECT_MS (1000), IDLE_ONE, IDLE_MANY,
// SLOWLORIS, SERVER_ARGS (extra gslb-dns flags, e.g. "--tcp-max-clients 1000"). Loopback only;
// bounded (at most IDLE_ONE + IDLE_MANY + SLOWLORIS attack sockets at once); the server runs in its
// own process group and is stopped by that PGID; every socket and timer is closed on exit.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { intEnv } from './lib/env.mjs';
import { loopbackSources, startTcpAttack } from '../dist/lab/tcp-attack.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DURATION = intEnv('DURATION', 60, 1);
const QUERY_GAP_MS = intEnv('QUERY_GAP_MS', 200, 10);
const QUERY_DEADLINE_MS = intEnv('QUERY_DEADLINE_MS', 5000, 100);
const RECONNECT_MS = intEnv('RECONNECT_MS', 1000, 10);
const IDLE_ONE = intEnv('IDLE_ONE', 1000, 0);
const IDLE_MANY = intEnv('IDLE_MANY', 5000, 0);
const SLOWLORIS = intEnv('SLOWLORIS', 1000, 0);
const SERVER_ARGS = (process.env.SERVER_ARGS ?? '').split(/\s+/).filter(Boolean);

const fdLimit = /^Max open files\s+(\S+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'))?.[1];
if (fdLimit !== 'unlimited' && Number(fdLimit) < IDLE_ONE + IDLE_MANY + SLOWLORIS + 256) {
  console.error(`open-file limit ${fdLimit} is below the attack size; raise it (ulimit -n) or shrink the attack`);
  process.exit(2);
}

let server;
const cleanups = [];
function cleanup() {
  for (const c of cleanups.splice(0)) c();
  if (server?.pid && server.exitCode === null) { try { process.kill(-server.pid, 'SIGKILL'); } catch { /* gone */ } }
}
process.on('SIGINT', () => { cleanup(); process.exit(130); });
process.on('exit', cleanup);

function startServer() {
  server = spawn(process.execPath, [path.join(ROOT, 'dist/dns/main.js'), '--zones', path.join(ROOT, 'zones'),
    '--listen', '127.0.0.1:0', ...SERVER_ARGS], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail = [];
  readline.createInterface({ input: server.stderr }).on('line', (l) => { tail.push(l); if (tail.length > 20) tail.shift(); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gslb-dns did not listen within 20 s:\n${tail.join('\n')}`)), 20_000);
    server.once('exit', (code) => { clearTimeout(timer); reject(new Error(`gslb-dns exited ${code}:\n${tail.join('\n')}`)); });
    readline.createInterface({ input: server.stdout }).on('line', (line) => {
      let j;
      try { j = JSON.parse(line); } catch { return; }
      if (j.msg === 'listening' && typeof j.tcp === 'number') { clearTimeout(timer); resolve(j.tcp); }
    });
  });
}

/** The attack of the header; per-source counts are rounded up, so the totals printed are what is held. */
function startAttack(port) {
  const group = (third, n, total, kind) => ({ sources: loopbackSources(third, n), perSource: Math.ceil(total / n), kind });
  const groups = [group(9, 1, IDLE_ONE, 'idle'), group(10, 50, IDLE_MANY, 'idle'), group(11, 100, SLOWLORIS, 'slowloris')]
    .filter((g) => g.perSource > 0);
  const attack = startTcpAttack(port, groups, RECONNECT_MS);
  cleanups.push(attack.stop);
  return { open: attack.open, closed: attack.closedByServer, stop: attack.stop };
}

/** A query for static.gslb.example.test A, framed for TCP. */
function framedQuery(id) {
  const name = Buffer.concat(['static', 'gslb', 'example', 'test'].map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])));
  const msg = Buffer.concat([Buffer.from([id >> 8, id & 255, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]), name, Buffer.from([0, 0, 1, 0, 1])]);
  return Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 255]), msg]);
}

/** One legitimate query on a fresh connection: resolves with the latency in ms, or undefined. */
function legit(port, id) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const s = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1' }, () => s.write(framedQuery(id)));
    let buf = Buffer.alloc(0);
    const done = (v) => { clearTimeout(timer); s.destroy(); resolve(v); };
    const timer = setTimeout(() => done(undefined), QUERY_DEADLINE_MS);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        done(buf.readUInt16BE(2) === id ? Number(process.hrtime.bigint() - t0) / 1e6 : undefined);
      }
    });
    s.on('error', () => done(undefined));
    s.on('close', () => done(undefined));
  });
}

const pct = (sorted, p) => sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN;

try {
  const port = await startServer();
  const attack = startAttack(port);
  // let the attack take its slots first (bounded)
  for (let i = 0; i < 100 && attack.open() < Math.min(IDLE_ONE + IDLE_MANY + SLOWLORIS, 2000); i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 2000));
  console.log(`attack: ${IDLE_ONE} idle from 1 source, ${IDLE_MANY} idle from 50, ${SLOWLORIS} slowloris from 100; ` +
    `reconnect after ${RECONNECT_MS} ms; server flags: ${SERVER_ARGS.join(' ') || '(defaults)'}`);
  const pending = [];
  const end = Date.now() + DURATION * 1000;
  let maxOpen = 0;
  for (let id = 1; Date.now() < end; id++) {
    pending.push(legit(port, id & 0xffff));
    maxOpen = Math.max(maxOpen, attack.open());
    await new Promise((r) => setTimeout(r, QUERY_GAP_MS));
  }
  const results = await Promise.all(pending);
  const lat = results.filter((x) => x !== undefined).sort((a, b) => a - b);
  console.log(`legitimate TCP queries: ${lat.length}/${results.length} answered within ${QUERY_DEADLINE_MS} ms; ` +
    `latency ms p50 ${pct(lat, 50)?.toFixed(1)} p99 ${pct(lat, 99)?.toFixed(1)} max ${lat.at(-1)?.toFixed(1)}; ` +
    `over 1000 ms: ${lat.filter((x) => x > 1000).length}`);
  console.log(`attack connections closed by the server: ${attack.closed()}; attack sockets open at most: ${maxOpen}`);
  attack.stop();
  process.exitCode = lat.length === results.length ? 0 : 1;
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
} finally {
  cleanup();
}

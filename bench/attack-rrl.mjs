#!/usr/bin/env node
// `npm run bench:attack-rrl`: UDP amplification through an authoritative server, with and without
// response-rate limiting, against gslb-dns, NSD and Knot side by side. Per server:
//   - QUERIES (10000) identical DNSKEY queries for rrl.test (EDNS 4096; a 37-byte query, an
//     865-byte answer) from one source, 127.0.0.1, sent as fast as one socket takes them;
//   - meanwhile LEGIT_SOURCES (50) clients, 127.1.1.1, 127.1.2.1, ... (each its own /24), send one
//     query every LEGIT_GAP_MS (250) (www A, the DNSKEY, an NXDOMAIN; EDNS 1232 or none), from
//     500 ms before the flood to 500 ms after; a query unanswered after 5 s is lost (no retries).
// Servers (SERVERS, default all four): gslb-dns (RRL defaults: 200/s, slip 2), gslb-dns-off
// (--rrl-rate 0), nsd (its default RRL: 200/s, slip 2), knot (mod-rrl, rate-limit RATE (200),
// slip SLIP (2)). Printed per server: queries sent, reply bytes / query bytes, answered (full) /
// slipped (TC=1) / dropped (no reply) in %, the send time, legitimate queries lost and
// truncated, and the host's UDP receive-buffer drops meanwhile (non-zero: the client or server
// socket overflowed, so "dropped" includes losses that are not the server's choice).
// Knobs (env): QUERIES, LEGIT_SOURCES (1-255), LEGIT_GAP_MS, RATE, SLIP, SERVERS, SERVER_ARGS
// (extra gslb-dns flags). Loopback only; bounded; every server runs in its own process group in a
// private temporary directory, on a port the OS gave, and is stopped by its PGID; the directory
// is removed on exit.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { intEnv } from './lib/env.mjs';
import { dnsQuery, distinctPrefixSources, startLegitClients, udpFlood, udpReceiveBufferErrors } from '../dist/lab/udp-rrl-attack.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ZONE_FILE = path.join(ROOT, 'test/fixtures/rrl/rrl.test.zone');
const QUERIES = intEnv('QUERIES', 10_000, 1);
const LEGIT_SOURCES = intEnv('LEGIT_SOURCES', 50, 0);
const LEGIT_GAP_MS = intEnv('LEGIT_GAP_MS', 250, 10);
const RATE = intEnv('RATE', 200, 1);
const SLIP = intEnv('SLIP', 2, 0);
const SERVERS = (process.env.SERVERS ?? 'gslb-dns gslb-dns-off nsd knot').split(/[\s,]+/).filter(Boolean);
const SERVER_ARGS = (process.env.SERVER_ARGS ?? '').split(/\s+/).filter(Boolean);
if (LEGIT_SOURCES > 255) throw new Error('LEGIT_SOURCES must be at most 255');

const DNSKEY = 48;
const ATTACK = dnsQuery(1, 'rrl.test', DNSKEY, 4096);
const NORMAL = [dnsQuery(0, 'www.rrl.test', 1, 1232), dnsQuery(0, 'rrl.test', DNSKEY, 1232), dnsQuery(0, 'nx.rrl.test', 1)];

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-attack-rrl-'));
const children = new Set();
function cleanup() {
  for (const c of children) { try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ } }
  children.clear();
  fs.rmSync(work, { recursive: true, force: true });
}
process.on('SIGINT', () => { cleanup(); process.exit(130); });
process.on('exit', cleanup);

/** A port free for UDP and TCP on 127.0.0.1 right now (the OS picks it). */
async function freePort() {
  for (let i = 0; i < 20; i++) {
    const u = dgram.createSocket('udp4');
    const port = await new Promise((resolve) => u.bind(0, '127.0.0.1', () => resolve(u.address().port)));
    const ok = await new Promise((resolve) => {
      const t = net.createServer().once('error', () => resolve(false)).listen(port, '127.0.0.1', function () { this.close(() => resolve(true)); });
    });
    u.close();
    if (ok) return port;
  }
  throw new Error('no free port');
}

/** Spawns a server in its own process group, keeping the last log lines for errors. */
function launch(argv, cwd) {
  const child = spawn(argv[0], argv.slice(1), { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const tail = [];
  const keep = (l) => { tail.push(l); if (tail.length > 30) tail.shift(); };
  readline.createInterface({ input: child.stdout }).on('line', keep);
  readline.createInterface({ input: child.stderr }).on('line', keep);
  child.once('exit', () => children.delete(child));
  return { child, tail };
}

async function stop({ child }) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  try { process.kill(-child.pid, 'SIGTERM'); } catch { return; }
  const t = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
  await exited;
  clearTimeout(t);
}

/** Waits until the server answers www.rrl.test A over UDP (from a source no flood uses). */
async function ready(port, proc) {
  for (let i = 0; i < 200; i++) {
    if (proc.child.exitCode !== null) break;
    const r = await udpFlood(port, '127.2.0.1', dnsQuery(7, 'www.rrl.test', 1), 1, 100).catch(() => undefined);
    if (r?.answered === 1) return;
  }
  throw new Error(`the server did not answer within 20 s:\n${proc.tail.join('\n')}`);
}

async function startServer(name) {
  const dir = fs.mkdtempSync(path.join(work, `${name}-`));
  const zones = path.join(dir, 'zones');
  fs.mkdirSync(zones);
  fs.copyFileSync(ZONE_FILE, path.join(zones, 'rrl.test.zone'));
  const port = await freePort();
  let proc;
  let settings;
  if (name === 'gslb-dns' || name === 'gslb-dns-off') {
    const args = name === 'gslb-dns-off' ? ['--rrl-rate', '0'] : [];
    proc = launch([process.execPath, path.join(ROOT, 'dist/dns/main.js'), '--zones', zones, '--listen', `127.0.0.1:${port}`, ...args, ...SERVER_ARGS], dir);
    settings = name === 'gslb-dns-off' ? 'RRL off (--rrl-rate 0)' : `RRL defaults (200/s, slip 2)${SERVER_ARGS.length ? ` + ${SERVER_ARGS.join(' ')}` : ''}`;
  } else if (name === 'nsd') {
    fs.writeFileSync(path.join(dir, 'nsd.conf'), [
      'server:', `    ip-address: 127.0.0.1@${port}`, '    do-ip6: no', '    server-count: 1', '    username: ""', '    chroot: ""',
      `    zonesdir: "${zones}"`, `    zonelistfile: "${dir}/zone.list"`, '    database: ""', `    pidfile: "${dir}/nsd.pid"`,
      `    xfrdfile: "${dir}/xfrd.state"`, `    xfrdir: "${dir}"`, '    verbosity: 1',
      '    # no rrl-* line: NSD\'s default RRL (200 qps per /24, slip 2)',
      'remote-control:', '    control-enable: no', 'zone:', '    name: "rrl.test"', '    zonefile: "rrl.test.zone"', '',
    ].join('\n'));
    proc = launch(['/usr/sbin/nsd', '-d', '-c', path.join(dir, 'nsd.conf')], dir);
    settings = 'default RRL (200/s, slip 2)';
  } else if (name === 'knot') {
    fs.writeFileSync(path.join(dir, 'knot.conf'), [
      'server:', `    rundir: "${dir}"`, `    pidfile: "${dir}/knot.pid"`, `    listen: 127.0.0.1@${port}`,
      '    udp-workers: 1', '    tcp-workers: 1', '    background-workers: 1',
      'control:', `    listen: "${dir}/knot.sock"`, 'database:', `    storage: "${dir}/db"`,
      'log:', '  - target: stderr', '    any: warning',
      'mod-rrl:', '  - id: default', `    rate-limit: ${RATE}`, `    slip: ${SLIP}`,
      'template:', '  - id: default', `    storage: "${zones}"`, '    file: "%s.zone"', '    zonefile-sync: -1',
      '    zonefile-load: whole', '    journal-content: none', '    global-module: mod-rrl/default',
      'zone:', '  - domain: rrl.test', '',
    ].join('\n'));
    proc = launch(['/usr/sbin/knotd', '-c', path.join(dir, 'knot.conf')], dir);
    settings = `mod-rrl rate-limit ${RATE}, slip ${SLIP}`;
  } else {
    throw new Error(`unknown server ${name} (gslb-dns, gslb-dns-off, nsd, knot)`);
  }
  await ready(port, proc);
  return { proc, port, settings };
}

const pct = (n, of) => (of ? ((100 * n) / of).toFixed(1) : '-');

const rows = [];
try {
  for (const name of SERVERS) {
    let s;
    try {
      s = await startServer(name);
    } catch (err) {
      console.error(`${name}: ${err instanceof Error ? err.message : err}`);
      rows.push({ name, error: 'did not start' });
      continue;
    }
    try {
      const rcvbuf0 = udpReceiveBufferErrors();
      const legit = await startLegitClients(s.port, distinctPrefixSources(LEGIT_SOURCES), NORMAL, LEGIT_GAP_MS, 5000);
      await new Promise((r) => setTimeout(r, 500));
      const f = await udpFlood(s.port, '127.0.0.1', ATTACK, QUERIES, 1000);
      await new Promise((r) => setTimeout(r, 500));
      const l = await legit.stop();
      const rcvbuf = rcvbuf0 === undefined ? undefined : udpReceiveBufferErrors() - rcvbuf0;
      rows.push({ name, settings: s.settings, f, l, rcvbuf });
    } finally {
      await stop(s.proc);
    }
  }
  console.log(`attack: ${QUERIES} x DNSKEY rrl.test (EDNS 4096, ${ATTACK.length} bytes) from 127.0.0.1; ` +
    `${LEGIT_SOURCES} legitimate sources in distinct /24s, one query each per ${LEGIT_GAP_MS} ms`);
  const header = ['server', 'settings', 'sent', 'bytes out/in', 'answered %', 'slipped %', 'dropped %', 'send s', 'legit lost/sent', 'legit TC', 'rcvbuf drops'];
  const table = rows.map((r) => (r.error ? [r.name, r.error] : [
    r.name, r.settings, String(r.f.sent), `${(r.f.replyBytes / r.f.sentBytes).toFixed(2)}x`,
    pct(r.f.answered, r.f.sent), pct(r.f.truncated, r.f.sent), pct(r.f.sent - r.f.replies, r.f.sent), r.f.sendSeconds.toFixed(2),
    `${r.l.lost}/${r.l.sent}`, String(r.l.truncated), r.rcvbuf === undefined ? '?' : String(r.rcvbuf),
  ]));
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] ?? '').length)));
  for (const row of [header, ...table]) console.log(row.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd());
  process.exitCode = rows.some((r) => r.error) ? 1 : 0;
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
} finally {
  cleanup();
}

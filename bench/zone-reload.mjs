#!/usr/bin/env node
// `npm run bench:zone-reload`: queries lost and the longest event-loop block while a
// 100,000-record zone is reloaded 20 times under 20,000 q/s of UDP.
//
// Generates the zone in a temp dir and starts `node dist/dns/main.js` on it twice: "before"
// (GSLB_DNS_RELOAD=inline: the zone parsed and built on the serving thread, as before the
// worker) and "after" (the default: parsed in a worker thread, adopted in slices). In each run
// dnsperf sends `-Q QPS` for the whole run while the bench replaces the zone RELOADS times by
// rename (a new serial each time, so each reload parses the whole zone), one after the other.
// The server (GSLB_DNS_RELOAD_PROBE=1) logs the longest event-loop block of each reload
// (perf_hooks.monitorEventLoopDelay, until 300 ms after the swap). Prints, per mode: queries
// sent and lost (dnsperf), the max and median of the per-reload max block, next to the targets
// (0 lost, <= 20 ms), and as a control the block of CONTROLS SIGHUPs with nothing changed (no
// parse at all: what the query load and a shared machine cost alone). Missing a target is
// reported, not an error.
//
// Knobs (env): RECORDS (100000), RELOADS (20), QPS (20000), GAP_MS (500, pause between reloads),
// MODES (before,after), TOTAL_TIMEOUT (400 s), KEEP_TMP=1. Needs dnsperf. Bounded: each reload
// and start-up has a deadline; children are killed by process group; the temp dir is removed.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { intEnv } from './lib/env.mjs';
import { startGslbDns } from './lib/gslb-dns.mjs';
import { alive, cleanUpOnExit, killGroup, releaseAll, runBench } from './lib/lifecycle.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = path.join(REPO, 'dist', 'dns', 'main.js');
const ZONE = 'reload.example.test';
const RECORDS = intEnv('RECORDS', 100_000, 10);
const RELOADS = intEnv('RELOADS', 20, 1);
const QPS = intEnv('QPS', 20_000, 1);
const GAP_MS = intEnv('GAP_MS', 500, 0);
const TOTAL_TIMEOUT_S = intEnv('TOTAL_TIMEOUT', 400, 10);
const MODES = (process.env.MODES ?? 'before,after').split(',').filter(Boolean);
const CONTROLS = intEnv('CONTROLS', 3, 0);
const RELOAD_TIMEOUT_MS = 30_000;
const TARGET_BLOCK_MS = 20;

const log = (msg) => console.error(`[zone-reload] ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const state = { tmp: null, children: new Set(), servers: [], timers: [] };
const cleanupSync = () => releaseAll(state, log);
cleanUpOnExit(cleanupSync, log);

/** The zone text with `serial`, and a dnsperf query list of names in it (and a few missing). */
function zoneText(serial) {
  const lines = [`$ORIGIN ${ZONE}.`, '$TTL 3600', `@ IN SOA ns1 hostmaster ${serial} 3600 600 604800 300`, '@ IN NS ns1', 'ns1 IN A 192.0.2.53'];
  for (let i = 0; lines.length - 2 < RECORDS; i++) {
    const host = i % 8 === 0 ? `h${i}.svc${i % 64}` : `h${i}`;
    if (i % 10 === 7) lines.push(`${host} IN AAAA 2001:db8::${(i & 0xffff).toString(16)}`);
    else if (i % 10 === 9) lines.push(`${host} IN TXT "v=${i}"`);
    else lines.push(`${host} IN A 10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`);
  }
  return `${lines.join('\n')}\n`;
}

function queryList() {
  const out = [];
  for (let i = 0; i < 20_000; i += 7) {
    const host = i % 8 === 0 ? `h${i}.svc${i % 64}` : `h${i}`;
    out.push(`${host}.${ZONE} ${i % 10 === 7 ? 'AAAA' : i % 10 === 9 ? 'TXT' : 'A'}`);
  }
  for (let i = 0; i < 100; i++) out.push(`missing${i}.${ZONE} A`);
  return `${out.join('\n')}\n`;
}

/** One mode: a server, dnsperf for the whole run, RELOADS replacements; returns the figures. */
async function runMode(mode, dir, queries) {
  const env = { ...process.env, GSLB_DNS_RELOAD_PROBE: '1', GSLB_DNS_RELOAD: mode === 'before' ? 'inline' : 'worker' };
  let child;
  const startP = (async () => {
    const orig = process.env;
    process.env = env; // startGslbDns spawns with the process's environment
    try {
      return await startGslbDns(MAIN, ['--zones', dir, '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0', '--log-level', 'info',
        '--rrl-rate', '0'], { // dnsperf from one address: more NXDOMAINs a second than RRL allows
        startTimeoutMs: 60_000, onSpawn: (c) => { child = c; state.children.add(c); c.on('exit', () => state.children.delete(c)); },
      });
    } finally { process.env = orig; }
  })();
  const { udp } = await startP;
  const blocks = [];
  const waiters = [];
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    let j; try { j = JSON.parse(line); } catch { return; }
    if (j.msg === 'reload loop block') { blocks.push(j.maxBlockMs); waiters.shift()?.(); }
    if (j.msg === 'reload failed; the previous zones keep serving') log(`${mode}: a reload failed: ${line}`);
  });
  const file = path.join(dir, `${ZONE}.zone`);
  const seconds = Math.ceil(2 + (CONTROLS + RELOADS) * (GAP_MS / 1000 + 3) + 2);
  log(`${mode}: dnsperf ${QPS} q/s for ${seconds} s, ${RELOADS} reloads of ${RECORDS} records`);
  const perf = spawn('dnsperf', ['-s', '127.0.0.1', '-p', String(udp), '-d', queries, '-l', String(seconds), '-Q', String(QPS), '-t', '2'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  state.children.add(perf);
  let out = '';
  perf.stdout.on('data', (d) => { out += d; });
  perf.stderr.on('data', (d) => { out += d; });
  const perfDone = new Promise((r) => perf.once('exit', r));
  await sleep(2000);
  const expectBlock = () => new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`reload not done within ${RELOAD_TIMEOUT_MS} ms`)), RELOAD_TIMEOUT_MS);
    waiters.push(() => { clearTimeout(t); resolve(); });
  });
  // control: SIGHUP with nothing changed (no parse): the loop block of the load and the machine alone
  for (let i = 0; i < CONTROLS; i++) {
    const seen = expectBlock();
    child.kill('SIGHUP');
    await seen;
    await sleep(GAP_MS);
  }
  const control = blocks.splice(0);
  let serial = 100;
  for (let i = 0; i < RELOADS; i++) {
    if (!alive(perf)) { log(`${mode}: dnsperf ended after ${i} reloads`); break; }
    const tmp = path.join(dir, `.${ZONE}.zone.tmp`);
    fs.writeFileSync(tmp, zoneText(++serial));
    const seen = expectBlock();
    fs.renameSync(tmp, file);
    await seen;
    await sleep(GAP_MS);
  }
  const done = blocks.length;
  await Promise.race([perfDone, sleep((seconds + 15) * 1000)]);
  killGroup(perf, 'SIGKILL');
  killGroup(child, 'SIGTERM');
  const sent = Number(/Queries sent:\s+(\d+)/.exec(out)?.[1] ?? NaN);
  const lost = Number(/Queries lost:\s+(\d+)/.exec(out)?.[1] ?? NaN);
  if (Number.isNaN(lost)) log(`${mode}: no dnsperf summary:\n${out}`);
  const sorted = [...blocks].sort((a, b) => a - b);
  const ctl = [...control].sort((a, b) => a - b);
  return {
    mode, reloads: done, sent, lost, maxBlock: sorted.at(-1) ?? NaN, medianBlock: sorted[Math.floor(sorted.length / 2)] ?? NaN,
    controlMax: ctl.at(-1) ?? NaN, blocks,
  };
}

async function main() {
  if (!fs.existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build`);
  if (spawnSync('dnsperf', ['-h']).error) throw new Error('dnsperf is not installed');
  state.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gslb-zone-reload-'));
  const dir = path.join(state.tmp, 'zones');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, `${ZONE}.zone`), zoneText(100));
  const queries = path.join(state.tmp, 'queries.txt');
  fs.writeFileSync(queries, queryList());
  const rows = [];
  for (const mode of MODES) rows.push(await runMode(mode, dir, queries));
  console.log(`\nzone reload: ${RECORDS} records, ${RELOADS} reloads (rename into place), ${QPS} q/s UDP (dnsperf), ${os.cpus().length} CPUs`);
  console.log('mode      reloads  queries sent  queries lost  max loop block  median per-reload max  control (no-change SIGHUP) max');
  for (const r of rows) {
    console.log(`${r.mode.padEnd(9)} ${String(r.reloads).padStart(7)}  ${String(r.sent).padStart(12)}  ${String(r.lost).padStart(12)}  ${`${r.maxBlock} ms`.padStart(14)}  ${`${r.medianBlock} ms`.padStart(21)}  ${`${r.controlMax} ms`.padStart(30)}`);
  }
  for (const r of rows) console.log(`${r.mode} per-reload max block (ms): ${r.blocks.join(' ')}`);
  for (const r of rows) {
    const ok = r.lost === 0 && r.maxBlock <= TARGET_BLOCK_MS;
    console.log(`${r.mode}: target 0 lost and <= ${TARGET_BLOCK_MS} ms per reload: ${ok ? 'met' : 'MISSED'}`);
  }
  return 0;
}

runBench(main, { totalS: TOTAL_TIMEOUT_S, cleanupSync, log });

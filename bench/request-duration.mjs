#!/usr/bin/env node
// The request-duration histogram's cost on the engine alone, in-process: two engines on the same
// zones (bench/gslb-bench-config.mjs) and query mix as `npm run bench:dns` (70% www A from the
// GSLB pool, 20% static A, 10% nonexistent), one with gslb_dns_request_duration_seconds on, one
// with it off (--metrics-request-duration off), measured in alternating rounds so that a busy
// machine slows both alike. Prints ns per query of each and the ratio. No sockets: this is the
// share of the work per query that the two clock reads and the bucket update add.
//
//   node bench/request-duration.mjs [--rounds 20] [--queries 200000]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeBenchConfig } from './gslb-bench-config.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '20' }, queries: { type: 'string', default: '200000' } } });
const ROUNDS = Number(values.rounds);
const QUERIES = Number(values.queries);

const { Engine, DEFAULT_ENGINE_OPTIONS } = await import(path.join(REPO, 'dist/dns/server/engine.js'));
const { loadServing } = await import(path.join(REPO, 'dist/dns/serving.js'));
const { GslbState } = await import(path.join(REPO, 'dist/dns/gslb/state.js'));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gslb-bench-duration-'));
try {
  await writeBenchConfig({ dir, sites: 3 });
  const serving = await loadServing(dir);
  const state = new GslbState(serving.gslb, Date.now, () => {});
  const gslb = { config: serving.gslb, view: () => state.view };
  const engines = { on: new Engine(serving.zones, { ...DEFAULT_ENGINE_OPTIONS, requestDuration: true }), off: new Engine(serving.zones, { ...DEFAULT_ENGINE_OPTIONS, requestDuration: false }) };
  for (const e of Object.values(engines)) e.setZones(serving.zones, gslb);

  const packet = (name, id) => {
    const labels = name.split('.').flatMap((l) => [l.length, ...Buffer.from(l)]);
    return Buffer.from([id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1]);
  };
  const mix = [];
  for (let i = 0; i < 100; i++) mix.push(packet(i < 70 ? 'www.gslb.example.test' : i < 90 ? 'static.gslb.example.test' : `nx${i}.gslb.example.test`, i));
  const out = Buffer.alloc(65535);
  const peer = { family: 4, address: Uint8Array.from([127, 0, 0, 1]) };
  // in batches of 32, as the UDP transport hands them over (batchStart: its beforeBatch)
  const run = (e) => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < QUERIES; i++) {
      if (i % 32 === 0) e.batchStart();
      const q = mix[i % 100];
      e.handle(q, 0, q.length, out, 0, 1232, false, peer);
    }
    return Number(process.hrtime.bigint() - t0) / QUERIES;
  };
  run(engines.on); run(engines.off); // warm-up: JIT and caches
  const ns = { on: [], off: [] };
  for (let r = 0; r < ROUNDS; r++) for (const k of r % 2 ? ['off', 'on'] : ['on', 'off']) ns[k].push(run(engines[k]));
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const on = median(ns.on);
  const off = median(ns.off);
  console.log(`request-duration histogram, in-process engine (${ROUNDS} alternating rounds x ${QUERIES} queries, median):`);
  console.log(`  on:  ${on.toFixed(1)} ns/query (${(1e9 / on).toFixed(0)} queries/s on one core)`);
  console.log(`  off: ${off.toFixed(1)} ns/query (${(1e9 / off).toFixed(0)} queries/s on one core)`);
  console.log(`  cost: +${(on - off).toFixed(1)} ns/query, throughput on/off = ${(off / on).toFixed(3)}x`);
  const observed = engines.on.stats.counters.histogram(0).count;
  if (observed === 0) { console.error('no request was timed'); process.exitCode = 1; }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

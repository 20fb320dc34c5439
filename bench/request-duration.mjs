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
import { alternatingRounds, benchMix } from './lib/engine-rounds.mjs';

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

  const mix = benchMix('gslb.example.test');
  const { on, off } = alternatingRounds({ on: [engines.on, mix], off: [engines.off, mix] }, ROUNDS, QUERIES);
  console.log(`request-duration histogram, in-process engine (${ROUNDS} alternating rounds x ${QUERIES} queries, median):`);
  console.log(`  on:  ${on.toFixed(1)} ns/query (${(1e9 / on).toFixed(0)} queries/s on one core)`);
  console.log(`  off: ${off.toFixed(1)} ns/query (${(1e9 / off).toFixed(0)} queries/s on one core)`);
  console.log(`  cost: +${(on - off).toFixed(1)} ns/query, throughput on/off = ${(off / on).toFixed(3)}x`);
  const observed = engines.on.stats.counters.histogram(0).count;
  if (observed === 0) { console.error('no request was timed'); process.exitCode = 1; }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

#!/usr/bin/env node
// Online signing's cost on the engine alone, in-process: one engine serving the zones of
// `npm run bench:dns` (bench/gslb-bench-config.mjs) with a CSK for the zone, asked the same mix
// (70% www A from the GSLB pool, 20% static A, 10% nonexistent) with EDNS, DO=0 and DO=1 in
// alternating rounds so that a busy machine slows both alike. Prints ns per query of each, the
// ratio (signed qps / unsigned qps; target >= 0.7) and the signature cache. No sockets: bench:dns
// measures the same through the network, where a shared machine disturbs it more.
//
//   node bench/dnssec-engine.mjs [--rounds 20] [--queries 200000]
import { execFileSync } from 'node:child_process';
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
const ZONE = 'gslb.example.test';

const { Engine, DEFAULT_ENGINE_OPTIONS } = await import(path.join(REPO, 'dist/dns/server/engine.js'));
const { loadServing } = await import(path.join(REPO, 'dist/dns/serving.js'));
const { GslbState } = await import(path.join(REPO, 'dist/dns/gslb/state.js'));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gslb-bench-dnssec-'));
try {
  await writeBenchConfig({ dir, sites: 3 });
  execFileSync(process.execPath, [path.join(REPO, 'dist/dns/main.js'), 'dnssec', 'keygen', '--zones', dir, ZONE]);
  const serving = await loadServing(dir);
  const state = new GslbState(serving.gslb, Date.now, () => {});
  const engine = new Engine(serving.zones, DEFAULT_ENGINE_OPTIONS);
  engine.setZones(serving.zones, { config: serving.gslb, view: () => state.view }, serving.signing);

  const { unsigned: u, signed: s } = alternatingRounds({
    unsigned: [engine, benchMix(ZONE, { edns: true, dnssecOk: false })],
    signed: [engine, benchMix(ZONE, { edns: true, dnssecOk: true })],
  }, ROUNDS, QUERIES);
  const c = engine.signatureCache();
  console.log(`online signing, in-process engine (${ROUNDS} alternating rounds x ${QUERIES} queries, median; mix 70% pool A / 20% static A / 10% nonexistent, EDNS):`);
  console.log(`  DO=0 (unsigned answers): ${u.toFixed(1)} ns/query (${(1e9 / u).toFixed(0)} queries/s on one core)`);
  console.log(`  DO=1 (signed answers):   ${s.toFixed(1)} ns/query (${(1e9 / s).toFixed(0)} queries/s on one core)`);
  console.log(`  signed / unsigned qps: ${(u / s).toFixed(2)}x (target >= 0.70x)`);
  console.log(`  signature cache: ${c.entries} RRSIG sets, ${c.bytes} bytes; ${c.misses} signed, ${c.hits} reused`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

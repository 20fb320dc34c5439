#!/usr/bin/env node
// `npm run bench:attack`: the hostile-internet benchmarks of issue 11, one after the other, in
// one run: TCP exhaustion (attack-tcp), report-API exhaustion (attack-api), response-rate
// limiting next to NSD and Knot (attack-rrl), the reply cache under a random-subdomain flood next
// to NSD and Knot (attack-cache), and zone reloads under load next to NSD and Knot (zone-reload).
// Each prints its own table; this script only runs them in turn (each bounded by its own
// deadlines) and ends with one line per benchmark: its exit status and how long it ran.
//
// Knobs (env): ATTACKS (comma list, default all five, in the order above); everything else is
// passed through to each benchmark (see the header of each bench/<name>.mjs).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ALL = ['attack-tcp', 'attack-api', 'attack-rrl', 'attack-cache', 'zone-reload'];
const chosen = (process.env.ATTACKS ?? ALL.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
const unknown = chosen.filter((c) => !ALL.includes(c));
if (unknown.length > 0) {
  console.error(`bench/attack.mjs: unknown ATTACKS ${unknown.join(', ')} (known: ${ALL.join(', ')})`);
  process.exit(2);
}
const summary = [];
for (const name of chosen) {
  console.log(`\n=== ${name} ===`);
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [path.join(HERE, `${name}.mjs`)], { stdio: 'inherit' });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  summary.push({ name, status: r.status ?? r.signal, seconds: s.toFixed(0) });
}
console.log('\n| benchmark | exit | seconds |\n|---|---|---|');
for (const x of summary) console.log(`| ${x.name} | ${x.status} | ${x.seconds} |`);
process.exit(summary.every((x) => x.status === 0) ? 0 : 1);

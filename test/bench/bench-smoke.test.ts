/**
 * The benchmarks run (briefly) and print their tables. Nothing here asserts a speed: the
 * numbers are for `npm run bench:*` on a quiet machine.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/server.js';

const run = promisify(execFile);

describe('benchmark scripts', () => {
  // bench:dns itself is exercised by test/bench/gslb-bench.test.ts (with its report load)
  it('bench:zone-load loads a generated zone and prints load time and RSS', async () => {
    const { stdout, stderr } = await run(process.execPath, [path.join(ROOT, 'bench/zone-load.mjs')], {
      timeout: 120_000, env: { ...process.env, RECORDS: '5000' },
    });
    const out = stdout + stderr;
    expect(out).toMatch(/load: spawn -> dig answers last record\s+\d+\.\d+ s/);
    expect(out).toMatch(/RSS after load\s+\d+(\.\d+)? MB/);
    expect(out).toMatch(/check --zones\s+\d+\.\d+ s, exit 0/);
  }, 150_000);

  it('bench:attack-api posts legitimate reports through a (small) attack and prints their latency', async () => {
    const { stdout } = await run(process.execPath, [path.join(ROOT, 'bench/attack-api.mjs')], {
      timeout: 120_000, env: { ...process.env, STALLED: '200', FORGED: '500', REPORTS: '3' },
    });
    expect(stdout).toMatch(/forged \(127\.0\.0\.3\):\s+500 POSTs/);
    expect(stdout).toMatch(/report POST round trip\s+p50\s+\d+\.\d+ ms/);
    expect(stdout).toMatch(/TCP DNS query\s+p50\s+\d+\.\d+ ms/);
    expect(stdout).toContain('failures: 0');
  }, 150_000);

  it('bench:attack-rrl floods gslb-dns with and without RRL and prints one row each', async () => {
    const { stdout } = await run(process.execPath, [path.join(ROOT, 'bench/attack-rrl.mjs')], {
      timeout: 120_000, env: { ...process.env, SERVERS: 'gslb-dns gslb-dns-off', QUERIES: '1000', LEGIT_SOURCES: '5' },
    });
    expect(stdout).toMatch(/^gslb-dns +RRL defaults \(200\/s, slip 2\) +1000 +[\d.]+x +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+ +\d+\/\d+/m);
    expect(stdout).toMatch(/^gslb-dns-off +RRL off \(--rrl-rate 0\) +1000 +[\d.]+x/m);
  }, 150_000);

  it('bench:attack-cache floods gslb-dns with random names and prints RSS, loss and hit rates', async () => {
    const { stdout } = await run(process.execPath, [path.join(ROOT, 'bench/attack-cache.mjs')], {
      timeout: 120_000,
      env: { ...process.env, SERVERS: 'gslb-dns', NAMES: '3000', QPS: '1000', DURATION: '2', HOSTS: '200', LEGIT_QPS: '100' },
    });
    expect(stdout).toMatch(/^gslb-dns\s+\d+ MB\s+\d+ MB\s+\d+ MB\s+\d+\s+\d+\s+\d+\/\d+\s+\d+\s+\d+\s+\d+\.\d+\s+\d+\.\d+\s+\d+\.\d%\s+\d+\.\d%$/m);
  }, 150_000);
});

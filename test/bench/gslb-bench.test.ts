/**
 * The GSLB benchmark pieces run (briefly): the candidate's zones, bench:dns with the report
 * load, and bench:report-latency. Nothing here asserts a time or a rate: the numbers are for
 * `npm run bench:dns` / `npm run bench:report-latency` on a quiet machine.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/server.js';

const run = promisify(execFile);
const tmp: string[] = [];
afterAll(async () => { await Promise.all(tmp.map((d) => rm(d, { recursive: true, force: true }))); });

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  tmp.push(dir);
  return dir;
}

describe('GSLB benchmarks', () => {
  it('the bench config serves www from a GSLB pool and gives every site a member', async () => {
    const dir = await tempDir('gslb-bench-config-');
    await run(process.execPath, [path.join(ROOT, 'bench/gslb-bench-config.mjs'), '--dir', dir, '--sites', '50'], { timeout: 30_000 });
    const zone = await readFile(path.join(dir, 'gslb.example.test.zone'), 'utf8');
    expect(zone).not.toMatch(/^(www|up)\s.*\sA\s/m);
    expect(zone).toMatch(/^static\s+IN\s+A\s+192\.0\.2\.10/m);
    const { stdout } = await run(process.execPath, [path.join(ROOT, 'dist/dns/main.js'), 'check', '--zones', dir], { timeout: 30_000 });
    expect(stdout).toContain('pool web: weighted, 3 members, names www.gslb.example.test.');
    expect(stdout).toContain('pool fleet: all, 50 members, names fleet.gslb.example.test.');
  }, 60_000);

  it('bench:dns measures gslb-dns under report load and prints the report statistics', async () => {
    const dir = await tempDir('gslb-bench-load-');
    const { stdout } = await run('bash', [path.join(ROOT, 'bench/dns.sh')], {
      timeout: 150_000,
      env: {
        ...process.env, SERVERS: ' ', DURATION: '1', REPEAT: '1', WARMUP: '0', QUIET_WAIT: '0', REPORT_SITES: '50',
        RESULTS_DIR: path.join(dir, 'results'), RUN_DIR: path.join(dir, 'run'), CANDIDATE_PORT: '5392', REPORT_API_PORT: '5393',
      },
    });
    const row = stdout.split('\n').find((l) => l.startsWith('| gslb-dns |'));
    expect(row, stdout).toBeDefined();
    const cells = row!.split('|').map((c) => c.trim());
    expect(Number(cells[4])).toBeGreaterThan(0);
    expect(cells[7]).toBe('0.00');
    // RRL on (at a rate dnsperf does not reach) against RRL off, in the same run
    expect(stdout).toMatch(/`gslb-dns \/ gslb-dns-rrl-off = [\d.]+x`/);
    expect(stdout).toContain('RRL cost: `gslb-dns / gslb-dns-rrl-off` above is RRL on / RRL off in this run. gslb-dns ran with --rrl-rate 1000000');
    expect(stdout.split('\n').find((l) => l.startsWith('| gslb-dns-rrl-off |'))?.split('|')[7]?.trim()).toBe('0.00');
    // the request-duration histogram on against off, in the same run
    expect(stdout).toMatch(/`gslb-dns \/ gslb-dns-duration-off = [\d.]+x` \(qps \d+ vs \d+;/);
    expect(stdout).toContain('Request-duration histogram cost: `gslb-dns / gslb-dns-duration-off` above is gslb_dns_request_duration_seconds on / off');
    expect(stdout).toContain('--metrics-request-duration off');
    // the signed run: the same mix with DO=1 against the signed zone, its ratio and signature cache
    expect(stdout).toMatch(/signed \/ unsigned: `gslb-dns-signed \/ gslb-dns = [\d.]+x` \(qps \d+ vs \d+;/);
    const signed = stdout.split('\n').find((l) => l.startsWith('| gslb-dns-signed |'))?.split('|').map((c) => c.trim());
    expect(Number(signed?.[4])).toBeGreaterThan(0);
    // compact denial: the nonexistent names of the mix are NOERROR when signed
    expect(signed?.[8]).toBe('0');
    expect(stdout).toMatch(/Signature cache of gslb-dns-signed when it stopped[^\n]*\n\n- "signatureCache":\{"hits":\d+,"misses":\d+,"entries":\d+,"bytes":\d+\}/);
    // the readiness round got every site up, and the load during the run was accepted
    expect(stdout).toMatch(/readiness round \(--once\): 50 sites: sent 50, accepted 50, rejected 0, errors 0/);
    const load = /reports: 50 sites x 1\/s for [\d.]+ s: sent (\d+), accepted (\d+), rejected (\d+), errors (\d+)/.exec(stdout);
    expect(load, stdout).not.toBeNull();
    expect(Number(load![2])).toBeGreaterThan(0);
    expect(load![3]).toBe('0');
    expect(stdout).toMatch(/POST latency: p50 [\d.]+ ms, p95 [\d.]+ ms, max [\d.]+ ms/);
    expect(stdout).toMatch(/generator CPU: [\d.]+ s/);
    // the statistics are part of the saved report
    const report = await readFile(path.join(dir, 'results', 'bench-latest.md'), 'utf8');
    expect(report).toContain('Report load on gslb-dns');
  }, 180_000);

  it('bench:request-duration times the engine with the histogram on and off and prints both', async () => {
    const { stdout } = await run(process.execPath, [path.join(ROOT, 'bench/request-duration.mjs'), '--rounds', '2', '--queries', '2000'], { timeout: 60_000 });
    expect(stdout).toMatch(/on: +[\d.]+ ns\/query/);
    expect(stdout).toMatch(/off: +[\d.]+ ns\/query/);
    expect(stdout).toMatch(/throughput on\/off = [\d.]+x/);
  }, 90_000);

  it('bench:dnssec times the engine with DO=0 and DO=1 against a signed zone and prints the ratio and the signature cache', async () => {
    const { stdout } = await run(process.execPath, [path.join(ROOT, 'bench/dnssec-engine.mjs'), '--rounds', '2', '--queries', '2000'], { timeout: 60_000 });
    expect(stdout).toMatch(/DO=0 \(unsigned answers\): +[\d.]+ ns\/query/);
    expect(stdout).toMatch(/DO=1 \(signed answers\): +[\d.]+ ns\/query/);
    expect(stdout).toMatch(/signed \/ unsigned qps: [\d.]+x/);
    // the pool's answers, the static name, the NXDOMAIN proofs, the SOA: signed once each, then reused
    expect(stdout).toMatch(/signature cache: \d+ RRSIG sets, \d+ bytes; \d+ signed, \d+ reused/);
  }, 90_000);

  it('bench:report-latency measures report-to-answer latency and prints the p50 lines', async () => {
    const { stdout } = await run(process.execPath, [path.join(ROOT, 'bench/report-latency.mjs')], {
      timeout: 120_000, env: { ...process.env, TRIALS: '3', DIG_TRIALS: '1' },
    });
    expect(stdout).toMatch(/POST round trip\s+min +[\d.]+ ms, p50 +[\d.]+ ms, p95 +[\d.]+ ms, max +[\d.]+ ms +\(n=4\)/);
    expect(stdout).toMatch(/in-process UDP query sees it\s+min +[\d.]+ ms, p50 +[\d.]+ ms, .*\(n=3\)/);
    expect(stdout).toMatch(/dig \(spawned per poll\) sees it\s+min +[\d.]+ ms, p50 +[\d.]+ ms, .*\(n=1\)/);
  }, 150_000);
});

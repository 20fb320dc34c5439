/**
 * The benchmarks run (briefly) and print their tables. Nothing here asserts a speed: the
 * numbers are for `npm run bench:*` on a quiet machine.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/server.js';

const run = promisify(execFile);
const tmp: string[] = [];
afterAll(async () => { await Promise.all(tmp.map((d) => rm(d, { recursive: true, force: true }))); });

describe('benchmark scripts', () => {
  it('bench:dns runs gslb-dns under dnsperf and reports a row for it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-bench-smoke-'));
    tmp.push(dir);
    const { stdout } = await run('bash', [path.join(ROOT, 'bench/dns.sh')], {
      timeout: 120_000,
      env: {
        ...process.env, SERVERS: ' ', DURATION: '1', REPEAT: '1', WARMUP: '0', QUIET_WAIT: '0', REPORT_SITES: '50',
        RESULTS_DIR: path.join(dir, 'results'), RUN_DIR: path.join(dir, 'run'), CANDIDATE_PORT: '5391',
      },
    });
    const row = stdout.split('\n').find((l) => l.startsWith('| gslb-dns |'));
    expect(row, stdout).toBeDefined();
    const cells = row!.split('|').map((c) => c.trim());
    // qps (median) is a number, and nothing was lost
    expect(Number(cells[4])).toBeGreaterThan(0);
    expect(cells[7]).toBe('0.00');
  }, 150_000);

  it('bench:zone-load loads a generated zone and prints load time and RSS', async () => {
    const { stdout, stderr } = await run(process.execPath, [path.join(ROOT, 'bench/zone-load.mjs')], {
      timeout: 120_000, env: { ...process.env, RECORDS: '5000' },
    });
    const out = stdout + stderr;
    expect(out).toMatch(/load: spawn -> dig answers last record\s+\d+\.\d+ s/);
    expect(out).toMatch(/RSS after load\s+\d+(\.\d+)? MB/);
    expect(out).toMatch(/check --zones\s+\d+\.\d+ s, exit 0/);
  }, 150_000);
});

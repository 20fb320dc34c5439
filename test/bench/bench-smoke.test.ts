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
});

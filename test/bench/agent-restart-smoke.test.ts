/**
 * bench:agent-restart runs (briefly: 2 restarts per mode at 50 connections/s) and prints its
 * side-by-side table. Nothing here asserts a count or a time: handover.test.ts proves the
 * handover; the numbers are for `npm run bench:agent-restart` on a quiet machine.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/server.js';

describe('bench:agent-restart', () => {
  it('prints tried/ok/refused per mode for handover and stop-start', async () => {
    const out = await new Promise<string>((resolve) => {
      execFile(process.execPath, [path.join(ROOT, 'bench/agent-restart.mjs')], {
        timeout: 120_000, env: { ...process.env, RESTARTS: '2', RATE: '50', PAUSE_MS: '200', TOTAL_TIMEOUT: '100' },
      }, (_err, stdout, stderr) => resolve(`${stdout}${stderr}`));
    });
    expect(out).toMatch(/mode\s+restarts\s+seconds\s+tried\s+ok\s+refused\s+reset\s+other/);
    expect(out).toMatch(/^\s*handover\s+2\s+\d+\.\d\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+$/m);
    expect(out).toMatch(/^\s*stop-start\s+2\s+\d+\.\d\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+$/m);
  }, 150_000);
});

/** bench:pinger runs (briefly, few peers) and prints its numbers; nothing asserts a speed. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../helpers/server.js';

const run = promisify(execFile);

describe('bench:pinger', () => {
  it('prints CPU, answered ratio, RSS and the target', async () => {
    const { stdout } = await run(process.execPath, [path.join(ROOT, 'bench/pinger.mjs')], {
      timeout: 120_000, env: { ...process.env, PEERS: '40', NS: '2', DURATION: '2' },
    });
    expect(stdout).toMatch(/40 peers in 2 namespaces/);
    expect(stdout).toMatch(/answered\s+\d+ \(\d+\.\d+ %\)/);
    expect(stdout).toMatch(/CPU\s+\d+\.\d+ % of one core \(target: < 5 %/);
    expect(stdout).toMatch(/RSS\s+\d+\.\d MB/);
    expect(stdout).toMatch(/child processes\s+0/);
  }, 150_000);
});

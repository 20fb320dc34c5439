/** Operator overrides survive a restart of the real process through --state-dir. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startCli } from '../../helpers/cli.js';
import type { Cli } from '../../helpers/cli.js';
import { SECRET_ENV } from '../../helpers/report.js';
import { ROOT } from '../../helpers/server.js';

const TOKEN = 'restart-admin-token-0123456789';
const dirs: string[] = [];
const clis: Cli[] = [];
afterAll(async () => {
  await Promise.all(clis.map((c) => c.stop()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function state(cli: Cli): Promise<{ overrides: { action: string; site: string }[]; overridesDigest: string }> {
  const res = await fetch(`http://127.0.0.1:${cli.apiPort}/api/v1/state`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as { overrides: { action: string; site: string }[]; overridesDigest: string };
}

describe('--state-dir', () => {
  it('keeps operator overrides across a restart', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-restart-'));
    dirs.push(dir);
    await writeFile(path.join(dir, 'token'), TOKEN);
    const args = ['--zones', path.join(ROOT, 'test/fixtures/gslb'), '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0',
      '--admin-token-file', path.join(dir, 'token'), '--state-dir', path.join(dir, 'state')];
    const first = await startCli(args, SECRET_ENV);
    clis.push(first);
    const res = await fetch(`http://127.0.0.1:${first.apiPort}/api/v1/admin/force-down`, {
      method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ site: 'osaka' }),
    });
    expect(res.status).toBe(200);
    const before = await state(first);
    expect(before.overrides.map((o) => `${o.action} ${o.site}`)).toEqual(['force-down osaka']);
    await first.stop();

    const second = await startCli(args, SECRET_ENV);
    clis.push(second);
    await second.waitLog((l) => l['msg'] === 'operator overrides restored');
    const after = await state(second);
    expect(after.overrides.map((o) => `${o.action} ${o.site}`)).toEqual(['force-down osaka']);
    expect(after.overridesDigest).toBe(before.overridesDigest);
  });
});

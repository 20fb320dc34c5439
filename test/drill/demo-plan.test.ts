/**
 * The drill plan shipped for `npm start` (demo/drills/tokyo-drain.yaml) stays valid: loaded as
 * `gslb-dns drill --dry-run` would, with the admin token the demo writes to run/ (made up here),
 * and it names what the demo runs: ns1 and ns2 on the default addresses, sites tokyo and osaka.
 */
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describePlan } from '../../drill/main.js';
import { loadPlan } from '../../drill/plan.js';
import { ROOT } from '../helpers/server.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('demo/drills/tokyo-drain.yaml', () => {
  it('loads against a demo checkout, drains and undrains tokyo, and expects osaka meanwhile', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'gslb-demo-drill-'));
    dirs.push(root);
    await mkdir(path.join(root, 'demo', 'drills'), { recursive: true });
    await mkdir(path.join(root, 'run'));
    await writeFile(path.join(root, 'run', 'admin.token'), 'demo-admin-token-0123456789\n');
    const file = path.join(root, 'demo', 'drills', 'tokyo-drain.yaml');
    await copyFile(path.join(ROOT, 'demo', 'drills', 'tokyo-drain.yaml'), file);
    const plan = await loadPlan(file, {});
    expect(plan.instances.map((i) => [i.name, `${i.dns.host}:${i.dns.port}`, i.api])).toEqual([
      ['ns1', '127.0.0.1:5300', 'http://127.0.0.1:8053'],
      ['ns2', '127.0.0.2:5300', 'http://127.0.0.2:8053'],
    ]);
    const text = describePlan(plan);
    expect(text).toContain('drain site tokyo');
    expect(text).toContain('sites osaka');
    expect(text).toContain('rollback 0: undrain site tokyo');
  });
});

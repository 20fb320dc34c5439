/**
 * `gslb-dns drill` end to end: two real gslb-dns processes fed signed reports by the test, the
 * real command (`node bin/gslb-dns.js drill`) run against them, exit codes, --json and the
 * instances' state afterwards. Deadlines are generous bounds, never speed claims.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCli } from '../helpers/cli.js';
import type { Cli } from '../helpers/cli.js';
import { postReport, SECRET_ENV } from '../helpers/report.js';
import { ROOT } from '../helpers/server.js';

const BIN = path.join(ROOT, 'bin/gslb-dns.js');
const TOKEN = 'drill-admin-token-0123456789';

const ZONE = `$ORIGIN drill.test.
$TTL 300
@    IN SOA ns1 hostmaster 1 3600 600 86400 60
     IN NS  ns1
ns1  IN A   192.0.2.53
`;

// staleAfter is long: the test reports once, no heartbeat is needed while a drill runs
const POOLS = `sites:
  tokyo: { secret: env:GSLB_SECRET_TOKYO, subnets: [198.51.100.0/24], staleAfter: 1h }
  osaka: { secret: env:GSLB_SECRET_OSAKA, subnets: [203.0.113.0/24], staleAfter: 1h }
pools:
  web:
    names: [www]
    policy: all
    maxAnswers: 4
    allDown: nodata
    members:
      - { site: tokyo, address: 192.0.2.1 }
      - { site: osaka, address: 192.0.2.2 }
  solo:
    names: [solo]
    allDown: nodata
    members:
      - { site: tokyo, address: 192.0.2.5 }
`;

let dir: string;
let a: Cli;
let b: Cli;

function instancesYaml(): string {
  return `instances:
  - { name: ns1, dns: "127.0.0.1:${a.port}", api: "http://127.0.0.1:${a.apiPort}", tokenFile: ./admin.token }
  - { name: ns2, dns: "127.0.0.1:${b.port}", api: "http://127.0.0.1:${b.apiPort}", tokenFile: ./admin.token }
vantages:
  - { name: tokyo-clients, subnet: 198.51.100.0/24, names: [www.drill.test, solo.drill.test], type: A }
probeEvery: 100ms
`;
}

async function overrides(cli: Cli): Promise<unknown[]> {
  const res = await fetch(`http://127.0.0.1:${cli.apiPort}/api/v1/state`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return ((await res.json()) as { overrides: unknown[] }).overrides;
}

interface Run { code: number | null; stdout: string; stderr: string }

/** Runs `gslb-dns drill` with a plan written into the test directory; `onOut` sees stdout as it comes. */
async function drill(planText: string, extra: string[] = [], onOut?: (text: string, proc: ReturnType<typeof spawn>) => void): Promise<Run> {
  const plan = path.join(dir, 'plan.yaml');
  await writeFile(plan, planText);
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [BIN, 'drill', '--plan', plan, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const guard = setTimeout(() => proc.kill('SIGKILL'), 50_000);
    proc.stdout.on('data', (d: Buffer) => { stdout += d.toString(); onOut?.(stdout, proc); });
    proc.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    proc.on('exit', (code) => { clearTimeout(guard); resolve({ code, stdout, stderr }); });
  });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-drill-'));
  const zones = path.join(dir, 'zones');
  await (await import('node:fs/promises')).mkdir(zones);
  await writeFile(path.join(zones, 'drill.test.zone'), ZONE);
  await writeFile(path.join(zones, 'drill.test.gslb.yaml'), POOLS);
  await writeFile(path.join(dir, 'admin.token'), `${TOKEN}\n`);
  const args = (n: string) => ['--zones', zones, '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0', '--admin-token-file', path.join(dir, 'admin.token'),
    '--state-dir', path.join(dir, n), '--instance', n];
  [a, b] = await Promise.all([startCli(args('a'), SECRET_ENV), startCli(args('b'), SECRET_ENV)]);
  for (const cli of [a, b]) {
    expect((await postReport(cli.apiPort, 'tokyo', [{ address: '192.0.2.1', state: 'up' }, { address: '192.0.2.5', state: 'up' }])).status).toBe(200);
    expect((await postReport(cli.apiPort, 'osaka', [{ address: '192.0.2.2', state: 'up' }])).status).toBe(200);
  }
});

afterEach(async () => {
  // a drill that left an override behind fails its own test; the next one starts clean anyway
  for (const cli of [a, b]) {
    await fetch(`http://127.0.0.1:${cli.apiPort}/api/v1/admin/undrain`, {
      method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ site: 'tokyo' }),
    });
  }
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await rm(dir, { recursive: true, force: true });
});

describe('gslb-dns drill against real instances', () => {
  it('SUCCEEDED: drains tokyo, sees osaka only, rolls back; --json keeps the contract', async () => {
    const json = path.join(dir, 'out.json');
    const html = path.join(dir, 'out.html');
    const r = await drill(`name: tokyo-drain
${instancesYaml()}guards:
  - { name: always-served, serving: www.drill.test, atLeast: 1 }
steps:
  - { expect: { name: www.drill.test, from: tokyo-clients, sites: [tokyo, osaka] }, within: 20s }
  - { action: drain, site: tokyo, reason: drill }
  - { expect: { name: www.drill.test, from: tokyo-clients, sites: [osaka] }, within: 20s }
  - { wait: 300ms }
rollback:
  - { action: undrain, site: tokyo }
  - { expect: { name: www.drill.test, from: tokyo-clients, addresses: [192.0.2.1, 192.0.2.2] }, within: 20s }
`, ['--json', json, '--html', html]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('SUCCEEDED');
    // the report is drawn from the same record, lanes in the plan's order
    const page = await readFile(html, 'utf8');
    expect(page).toMatch(/^<!doctype html>/i);
    expect(page).toContain('SUCCEEDED');
    expect(page).toContain('tokyo-drain');
    const doc = JSON.parse(await readFile(json, 'utf8')) as Record<string, unknown>;
    for (const k of ['outcome', 'name', 'startedAt', 'steps', 'rollback', 'guards', 'samples']) expect(doc).toHaveProperty(k);
    expect(doc['outcome']).toBe('SUCCEEDED');
    expect(doc['name']).toBe('tokyo-drain');
    const steps = doc['steps'] as Record<string, unknown>[];
    expect(steps.map((s) => [s['index'], s['kind'], s['ok']])).toEqual([[0, 'expect', true], [1, 'action', true], [2, 'expect', true], [3, 'wait', true]]);
    for (const s of steps) for (const k of ['startedAt', 'elapsedMs', 'detail']) expect(s).toHaveProperty(k);
    expect(steps[1]!['detail']).toContain('drain site tokyo');
    expect((doc['rollback'] as Record<string, unknown>[]).map((s) => s['ok'])).toEqual([true, true]);
    expect(doc['guards']).toEqual([expect.objectContaining({ name: 'always-served', tripped: false, at: null })]);
    const samples = doc['samples'] as { instance: string; sites: string[]; addresses: string[] }[];
    expect(new Set(samples.map((s) => s.instance))).toEqual(new Set(['ns1', 'ns2']));
    expect(samples.some((s) => s.addresses.includes('192.0.2.2') && s.sites.includes('osaka'))).toBe(true);
    expect(await overrides(a)).toEqual([]);
    expect(await overrides(b)).toEqual([]);
  });

  it('FAILED: an impossible expectation misses its deadline, the rest is skipped, rollback runs', async () => {
    const json = path.join(dir, 'failed.json');
    const r = await drill(`name: impossible
${instancesYaml()}steps:
  - { action: drain, site: tokyo }
  - { expect: { name: www.drill.test, from: tokyo-clients, sites: [tokyo] }, within: 1s }
  - { action: force-down, site: osaka }
rollback:
  - { action: undrain, site: tokyo }
`, ['--json', json]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const doc = JSON.parse(await readFile(json, 'utf8')) as { outcome: string; steps: Record<string, unknown>[]; rollback: Record<string, unknown>[] };
    expect(doc.outcome).toBe('FAILED');
    expect(doc.steps[1]).toMatchObject({ kind: 'expect', ok: false, elapsedMs: 1000 });
    expect(doc.steps[2]).toMatchObject({ kind: 'action', ok: false, skipped: true });
    expect(doc.rollback).toMatchObject([{ kind: 'action', ok: true }]);
    expect(await overrides(a)).toEqual([]);
    expect(await overrides(b)).toEqual([]);
  });

  it('INTERRUPTED: a guard trips when the only serving site is drained; the wait is cut short, rollback restores', async () => {
    const json = path.join(dir, 'guard.json');
    const r = await drill(`name: guarded
${instancesYaml()}guards:
  - { name: solo-served, serving: solo.drill.test, atLeast: 1, from: tokyo-clients }
steps:
  - { action: drain, site: tokyo }
  - { wait: 40s }
  - { action: force-down, site: osaka }
rollback:
  - { action: undrain, site: tokyo }
`, ['--json', json]);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    const doc = JSON.parse(await readFile(json, 'utf8')) as { outcome: string; steps: Record<string, unknown>[]; guards: Record<string, unknown>[]; rollback: Record<string, unknown>[] };
    expect(doc.outcome).toBe('INTERRUPTED');
    expect(doc.guards).toEqual([expect.objectContaining({ name: 'solo-served', tripped: true, at: expect.any(Number) })]);
    expect(doc.steps[1]).toMatchObject({ kind: 'wait', ok: false });
    expect(doc.steps[2]).toMatchObject({ skipped: true });
    expect(doc.rollback).toMatchObject([{ ok: true }]);
    expect(await overrides(a)).toEqual([]);
  });

  it('runs commands through /bin/sh in the plan directory; one past its timeout ends the drill (ERROR) and rollback runs', async () => {
    const json = path.join(dir, 'run.json');
    await rm(path.join(dir, 'ran.txt'), { force: true });
    const r = await drill(`name: commands
${instancesYaml()}steps:
  - { run: "echo hello > ran.txt && echo done", timeout: 20s }
  - { run: "sleep 30", timeout: 500ms }
  - { wait: 1s }
rollback:
  - { run: "echo rolled >> ran.txt" }
`, ['--json', json]);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(await readFile(path.join(dir, 'ran.txt'), 'utf8')).toBe('hello\nrolled\n');
    const doc = JSON.parse(await readFile(json, 'utf8')) as { outcome: string; steps: Record<string, unknown>[] };
    expect(doc.outcome).toBe('ERROR');
    expect(doc.steps[0]).toMatchObject({ kind: 'run', ok: true, detail: expect.stringContaining('exit 0: done') });
    expect(doc.steps[1]).toMatchObject({ kind: 'run', ok: false, detail: expect.stringContaining('timed out after 500 ms') });
    expect(doc.steps[2]).toMatchObject({ skipped: true });
  });

  it('--dry-run prints the plan, changes nothing and exits 0', async () => {
    const r = await drill(`name: dry
${instancesYaml()}steps:
  - { action: drain, site: tokyo }
  - { run: "touch should-not-exist" }
rollback:
  - { action: undrain, site: tokyo }
`, ['--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('step 0: drain site tokyo on ns1, ns2');
    expect(r.stdout).toContain('rollback 0: undrain site tokyo');
    expect(await overrides(a)).toEqual([]);
    expect(await overrides(b)).toEqual([]);
    await expect(readFile(path.join(dir, 'should-not-exist'))).rejects.toThrow();
  });

  it('a bad plan, or a --json that cannot be written, exits 2 and changes nothing', async () => {
    const r = await drill(`name: bad
${instancesYaml()}steps:
  - { action: drain, site: tokyo }
  - { expect: { name: www.drill.test, from: nowhere, sites: [osaka] }, within: 2s }
`);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/plan\.yaml:\d+: steps\[1\]\.expect\.from: no vantage "nowhere"/);
    expect(await overrides(a)).toEqual([]);
    // a --json that could not be written is refused before the drill changes anything
    const noDir = await drill(`name: good\n${instancesYaml()}steps:\n  - { action: drain, site: tokyo }\n`, ['--json', path.join(dir, 'missing', 'out.json')]);
    expect(noDir.code).toBe(2);
    expect(noDir.stderr).toContain('--json: cannot write');
    expect(await overrides(a)).toEqual([]);
  });

  it('Ctrl-C interrupts the drill (exit 3) and the rollback still runs', async () => {
    let sent = false;
    const r = await drill(`name: ctrl-c
${instancesYaml()}steps:
  - { action: drain, site: tokyo }
  - { wait: 40s }
rollback:
  - { action: undrain, site: tokyo }
`, [], (out, proc) => {
      if (!sent && out.includes('step 1: wait')) { sent = true; proc.kill('SIGINT'); }
    });
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stdout).toContain('interrupted (Ctrl-C)');
    expect(await overrides(a)).toEqual([]);
    expect(await overrides(b)).toEqual([]);
  });
});

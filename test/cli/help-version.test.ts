/**
 * Every command and subcommand answers --version (package.json's version) and --help (usage and
 * examples) through the installed entry points, and durations without a unit are refused by
 * `slb-agent check` the way the issue describes.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/server.js';

const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const BIN = {
  'gslb-dns': path.join(ROOT, 'bin/gslb-dns.js'), 'slb-agent': path.join(ROOT, 'bin/slb-agent.js'), 'npm start': path.join(ROOT, 'dist/demo/main.js'),
  'drill:lab': path.join(ROOT, 'dist/drill/lab/main.js'), 'lab:flooding': path.join(ROOT, 'dist/lab/flooding-main.js'),
};

function run(bin: keyof typeof BIN, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN[bin], ...args], { timeout: 30_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

const COMMANDS: [keyof typeof BIN, string[]][] = [
  ['gslb-dns', []], ['gslb-dns', ['serve']], ['gslb-dns', ['check']], ['gslb-dns', ['ctl']], ['gslb-dns', ['drill']], ['gslb-dns', ['dnssec']],
  ['slb-agent', []], ['slb-agent', ['run']], ['slb-agent', ['check']], ['slb-agent', ['pinger']], ['slb-agent', ['rs-setup']],
  ['npm start', []], ['drill:lab', []], ['lab:flooding', []],
];

describe('--version and --help on every command', () => {
  for (const [bin, sub] of COMMANDS) {
    const name = [bin, ...sub.filter((s) => s !== 'serve' && s !== 'run')].join(' ');
    it(`${name} --version prints package.json's version (${VERSION})`, async () => {
      for (const flag of ['--version', '-V']) {
        const r = await run(bin, [...sub, flag]);
        expect(r).toMatchObject({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
      }
    });
    it(`${[bin, ...sub].join(' ')} --help prints usage and examples`, async () => {
      const r = await run(bin, [...sub, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^usage:\n/);
      const examples = r.stdout.slice(r.stdout.indexOf('\nexamples:\n'));
      // every example is a command of this program (npm start's are npm's)
      expect(examples.split('\n').filter((l) => l.startsWith('  ')).length).toBeGreaterThan(0);
      expect(examples).toContain(bin.includes(':') ? `npm run ${bin}` : bin === 'npm start' ? bin : `${bin}${sub.length > 0 && sub[0] !== 'serve' && sub[0] !== 'run' ? ` ${sub[0]}` : ''}`);
    });
  }
});

describe('duration flags and files need a unit', () => {
  it('lab:flooding --ageing 10 is a usage error naming 10ms and 10s (before anything needs root)', async () => {
    const r = await run('lab:flooding', ['--ageing', '10']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^lab:flooding: --ageing: duration needs a unit: 10ms or 10s\nusage:/);
  });

  it('refuses `check: { interval: 500 }` naming 500ms and 500s, with file:line and path', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'agent-check-'));
    try {
      const file = path.join(dir, 'site.yaml');
      await writeFile(file, [
        'site: tokyo', 'agent: lb1', 'secret: env:S', 'dns: [ "http://127.0.0.1:8053" ]', 'vips:', '  - name: web',
        '    address: 192.0.2.1', '    port: 80', '    check: { interval: 500 }', '    realServers:', '      - { address: 127.0.0.1, port: 8080 }', '',
      ].join('\n'));
      const r = await run('slb-agent', ['check', '--config', file], { S: 's'.repeat(32) });
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`${file}:9: vips[0].check.interval: duration needs a unit: 500ms or 500s\n`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Keys: gslb-dns dnssec keygen / ds against BIND's own tools (dnssec-keygen, dnssec-dsfromkey),
 * the permission check, and the apex records of a signed zone.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadKeysDir } from '../../../dns/dnssec/keys.js';
import { TYPE_NXNAME, coveringPair, typeBitmap } from '../../../dns/dnssec/denial.js';
import { loadServing } from '../../../dns/serving.js';
import { runCli } from '../../helpers/cli.js';
import { dnssecCli, fixtureCopy } from '../../helpers/dnssec.js';

const run = promisify(execFile);
const dirs: string[] = [];
afterAll(async () => { await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))); });

async function fresh(withGslb = true): Promise<string> {
  const d = await fixtureCopy(withGslb);
  dirs.push(d);
  return d;
}

describe('dnssec keygen and ds', () => {
  it('writes a CSK (flags 257) in BIND format, private key mode 0600; its DS is what dnssec-dsfromkey computes', async () => {
    const dir = await fresh();
    const said = await dnssecCli(['keygen', '--zones', dir, 'example.test']);
    expect(said).toMatch(/^CSK example\.test\. algorithm 13 tag \d+/);
    const files = (await readdir(path.join(dir, 'keys'))).sort();
    expect(files).toHaveLength(2);
    expect(files[0]).toMatch(/^Kexample\.test\.\+013\+\d{5}\.key$/);
    expect((await stat(path.join(dir, 'keys', files[1]!))).mode & 0o777).toBe(0o600);
    const keys = (await loadKeysDir(dir)).get('example.test.')!;
    expect(keys.map((k) => [k.flags, k.algorithm])).toEqual([[257, 13]]);
    expect(files[0]).toContain(String(keys[0]!.tag).padStart(5, '0'));
    const ds = await dnssecCli(['ds', '--zones', dir, 'example.test']);
    const bind = (await run('dnssec-dsfromkey', ['-2', path.join(dir, 'keys', files[0]!)])).stdout;
    expect(ds.trim().split(/\s+/)).toEqual(bind.trim().split(/\s+/));
  });

  it('--split writes a KSK and a ZSK; --algorithm 15 makes Ed25519 keys', async () => {
    const dir = await fresh();
    await dnssecCli(['keygen', '--zones', dir, '--split', '--algorithm', '15', 'gslb.test']);
    const keys = (await loadKeysDir(dir)).get('gslb.test.')!;
    expect(keys.map((k) => [k.flags, k.algorithm]).sort()).toEqual([[256, 15], [257, 15]]);
    // only the SEP key goes to the parent
    expect((await dnssecCli(['ds', '--zones', dir, 'gslb.test'])).trim().split('\n')).toHaveLength(1);
  });

  for (const alg of ['ECDSAP256SHA256', 'ED25519']) {
    it(`loads a key made by BIND's dnssec-keygen (${alg}) with the same key tag`, async () => {
      const dir = await fresh();
      const keysDir = path.join(dir, 'keys');
      await mkdir(keysDir);
      const { stdout } = await run('dnssec-keygen', ['-q', '-K', keysDir, '-a', alg, '-f', 'KSK', 'example.test']);
      const tag = Number(/\+(\d{5})$/.exec(stdout.trim())![1]);
      const keys = (await loadKeysDir(dir)).get('example.test.')!;
      expect(keys.map((k) => k.tag)).toEqual([tag]);
      const serving = await loadServing(dir, { GSLB_SECRET_TOKYO: 'x'.repeat(32), GSLB_SECRET_OSAKA: 'y'.repeat(32) });
      expect(serving.signing.keysOf('example.test.')?.ksks.map((k) => k.tag)).toEqual([tag]);
    });
  }

  it('refuses a private key readable by group or others, in the server load and in check', async () => {
    const dir = await fresh(false);
    await dnssecCli(['keygen', '--zones', dir, 'example.test']);
    const priv = (await readdir(path.join(dir, 'keys'))).find((f) => f.endsWith('.private'))!;
    await chmod(path.join(dir, 'keys', priv), 0o640);
    await expect(loadKeysDir(dir)).rejects.toThrow(`${priv}: private key is readable by group or others (mode 640)`);
    const r = await runCli(['check', '--zones', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${priv}: private key is readable by group or others`);
  });

  it('a command-line mistake exits 2 with the usage', async () => {
    const dir = await fresh(false);
    for (const [args, said] of [
      [['dnssec', 'keygen', '--zones', dir], 'dnssec keygen: expected one ZONE'],
      [['dnssec', 'keygen', '--zones', dir, '--algorithm', '8', 'example.test'], '--algorithm: expected 13 (ECDSAP256SHA256) or 15 (ED25519)'],
      [['dnssec', 'keygen', '--zones', dir, '--zsk', '--activate', 'soon', 'example.test'], '--activate: expected a duration such as 2d'],
      [['dnssec', 'sign', '--zones', dir, 'example.test'], 'dnssec: expected keygen or ds, not sign'],
    ] as const) {
      const r = await runCli([...args]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(said);
      expect(r.stderr).toContain('gslb-dns dnssec keygen --zones DIR ZONE');
    }
  });

  it('check reports a signed zone with its keys', async () => {
    const dir = await fresh(false);
    await dnssecCli(['keygen', '--zones', dir, 'example.test']);
    const r = await runCli(['check', '--zones', dir], 30_000);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/zone example\.test\.: loaded serial 1, \d+ records, signed \(keys \d+\/257\)/);
    expect(r.stdout).toMatch(/zone child\.example\.test\.: loaded serial 7, \d+ records \(/);
  });
});

describe('NSEC synthesis', () => {
  it('type bit maps per RFC 4034 4.1.2 (NXNAME is meta type 128, window 0)', () => {
    // RRSIG 46, NSEC 47: octet 5 bits 6 and 7; 128: octet 16 bit 0
    const b = typeBitmap([46, 47, TYPE_NXNAME]);
    expect([...b]).toEqual([0, 17, 0, 0, 0, 0, 0, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80]);
    expect([...typeBitmap([1, 1, 257])]).toEqual([0, 1, 0x40, 1, 1, 0x40]);
  });

  it('brackets a next closer name between siblings that share only the parent', () => {
    const parent = Uint8Array.from([4, 0x77, 0x69, 0x6c, 0x64, 0]); // wild.
    const pair = coveringPair(Uint8Array.from([0x5b]), parent)!; // '[' : the octet below it, 'Z', would sort as 'z'
    expect(pair.owner[1]).toBe(0x40);
    expect(pair.owner[0]).toBe(63);
    expect([...pair.next.subarray(0, 3)]).toEqual([2, 0x5b, 0]);
    expect(coveringPair(Uint8Array.from([0]), parent)).toBeUndefined();
  });
});

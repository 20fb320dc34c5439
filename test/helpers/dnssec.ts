import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { dnssecCommand } from '../../dns/dnssec/cli.js';
import { ROOT } from './server.js';

const run = promisify(execFile);

/** A zones directory with the fixture zones (example.test, child.example.test) and, unless told not to, the GSLB fixture (gslb.test). */
export async function fixtureCopy(withGslb = true): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-dnssec-'));
  await cp(path.join(ROOT, 'test/fixtures/zones'), dir, { recursive: true });
  if (withGslb) await cp(path.join(ROOT, 'test/fixtures/gslb'), dir, { recursive: true });
  return dir;
}

/** Runs `gslb-dns dnssec ...` in-process; its output. */
export async function dnssecCli(args: string[]): Promise<string> {
  let text = '';
  const out = { write: (s: string) => { text += s; return true; } } as unknown as NodeJS.WritableStream;
  const code = await dnssecCommand(args, out);
  if (code !== 0) throw new Error(`dnssec ${args.join(' ')} exited ${code}`);
  return text;
}

/** The published SEP keys of `zone` in `dir/keys`, as `<flags> <protocol> <alg> <base64>` (trust anchor material). */
export async function sepKeys(dir: string, zone: string): Promise<string[]> {
  const keysDir = path.join(dir, 'keys');
  const out: string[] = [];
  for (const f of (await readdir(keysDir)).filter((n) => n.startsWith(`K${zone}+`) && n.endsWith('.key'))) {
    const line = (await readFile(path.join(keysDir, f), 'utf8')).split('\n').find((l) => l !== '' && !l.startsWith(';'))!;
    const t = line.trim().split(/\s+/);
    const at = t.indexOf('DNSKEY');
    if (t[at + 1] === '257') out.push(t.slice(at + 1).join(' '));
  }
  return out;
}

/** A delv trust-anchors file for `zone` with these keys. */
export async function delvAnchors(file: string, zone: string, keys: readonly string[]): Promise<string> {
  const lines = keys.map((k) => {
    const [flags, proto, alg, ...b64] = k.split(' ');
    return `  ${zone} static-key ${flags} ${proto} ${alg} "${b64.join('')}";`;
  });
  await writeFile(file, `trust-anchors {\n${lines.join('\n')}\n};\n`);
  return file;
}

/** delv against the server at 127.0.0.1:port with `anchors` for `root`: its combined output ("; fully validated", "resolution failed: ..."). */
export async function delv(port: number, anchors: string, root: string, name: string, type: string, extra: string[] = []): Promise<string> {
  const args = ['@127.0.0.1', '-p', String(port), '-a', anchors, `+root=${root}`, ...extra, name, type];
  const r = await run('delv', args, { timeout: 20_000 }).catch((e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? '', stderr: e.stderr ?? '' }));
  return `${r.stderr}${r.stdout}`;
}

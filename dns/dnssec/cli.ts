/**
 * `gslb-dns dnssec keygen|ds`: makes a zone's keys in `<zones>/keys/` and prints the DS records
 * its parent needs.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { canonicalName } from '../wire/name.js';
import { ALG_ECDSAP256SHA256, ALG_ED25519, FLAGS_KSK, FLAGS_ZSK, KEYS_SUBDIR, dsRdata, formatDs, generateKey, isPublished, loadKeysDir } from './keys.js';
import type { Algorithm } from './keys.js';
import { helpOrVersion, UsageError } from '../../shared/cli.js';
import type { CommandHelp } from '../../shared/cli.js';

export const DNSSEC_USAGE = `  gslb-dns dnssec keygen --zones DIR ZONE [--algorithm 13|15] [--split | --zsk] [--activate DURATION]
  gslb-dns dnssec ds --zones DIR ZONE`;

export const DNSSEC_HELP: CommandHelp = {
  name: 'gslb-dns dnssec',
  usage: `${DNSSEC_USAGE}
keygen writes a CSK (or KSK + ZSK with --split, or one more ZSK with --zsk, signing from
--activate on: 2d, 36h, 90m) to DIR/keys/ in BIND's format; ds prints the DS records for the
parent. See docs/dnssec.md.`,
  examples: [
    'gslb-dns dnssec keygen --zones zones gslb.example.test',
    'gslb-dns dnssec ds --zones zones gslb.example.test',
    'gslb-dns dnssec keygen --zones zones gslb.example.test --zsk --activate 2d',
  ],
};

/** Runs `dnssec <sub> ...`; returns the exit code (a UsageError for a command-line mistake). `now`: unix ms. */
export async function dnssecCommand(args: string[], out: NodeJS.WritableStream = process.stdout, now: () => number = Date.now): Promise<number> {
  const asked = helpOrVersion(args, DNSSEC_HELP, (t) => { out.write(t); });
  if (asked !== undefined) return asked;
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest, allowPositionals: true, strict: true,
    options: {
      zones: { type: 'string' }, algorithm: { type: 'string' }, split: { type: 'boolean' }, zsk: { type: 'boolean' },
      activate: { type: 'string' },
    },
  });
  if (!values.zones) throw new UsageError(`dnssec ${sub ?? ''}: --zones DIR is required`);
  if (positionals.length !== 1) throw new UsageError(`dnssec ${sub ?? ''}: expected one ZONE`);
  const zone = canonicalName(positionals[0]!.endsWith('.') ? positionals[0]! : `${positionals[0]!}.`);
  if (sub === 'keygen') return keygen(values.zones, zone, values, out, Math.floor(now() / 1000));
  if (sub === 'ds') return ds(values.zones, zone, out, Math.floor(now() / 1000));
  throw new UsageError(`dnssec: expected keygen or ds, not ${sub ?? 'nothing'}`);
}

async function keygen(zonesDir: string, zone: string, values: { algorithm?: string; split?: boolean; zsk?: boolean; activate?: string },
  out: NodeJS.WritableStream, now: number): Promise<number> {
  const algorithm = Number(values.algorithm ?? ALG_ECDSAP256SHA256);
  if (algorithm !== ALG_ECDSAP256SHA256 && algorithm !== ALG_ED25519) throw new UsageError('--algorithm: expected 13 (ECDSAP256SHA256) or 15 (ED25519)');
  if (values.split && values.zsk) throw new UsageError('--split and --zsk: choose one');
  let activate = now;
  if (values.activate !== undefined) {
    const m = /^\+?(\d{1,6})([dhms])$/.exec(values.activate);
    if (!m) throw new UsageError('--activate: expected a duration such as 2d, 36h or 90m');
    activate = now + Number(m[1]) * { d: 86400, h: 3600, m: 60, s: 1 }[m[2] as 'd' | 'h' | 'm' | 's'];
  }
  const flags = values.zsk ? [FLAGS_ZSK] : values.split ? [FLAGS_KSK, FLAGS_ZSK] : [FLAGS_KSK];
  const dir = path.join(zonesDir, KEYS_SUBDIR);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const f of flags) {
    const k = generateKey(zone, algorithm as Algorithm, f, now, activate);
    // 'wx': never overwrite a key (two keys with one tag would be a collision to resolve by hand)
    await writeFile(path.join(dir, `${k.base}.private`), k.privateText, { mode: 0o600, flag: 'wx' });
    await writeFile(path.join(dir, `${k.base}.key`), k.keyText, { mode: 0o644, flag: 'wx' });
    const role = f === FLAGS_ZSK ? 'ZSK' : values.split ? 'KSK' : 'CSK';
    out.write(`${role} ${zone} algorithm ${algorithm} tag ${k.tag}: ${path.join(dir, k.base)}.{key,private}${activate > now ? ` (signs from ${new Date(activate * 1000).toISOString()})` : ''}\n`);
  }
  return 0;
}

async function ds(zonesDir: string, zone: string, out: NodeJS.WritableStream, now: number): Promise<number> {
  const keys = (await loadKeysDir(zonesDir)).get(zone) ?? [];
  const sep = keys.filter((k) => k.flags === FLAGS_KSK && isPublished(k, now));
  if (sep.length === 0) {
    process.stderr.write(`no published KSK or CSK for ${zone} in ${path.join(zonesDir, KEYS_SUBDIR)}\n`);
    return 1;
  }
  for (const k of sep) out.write(`${zone} IN DS ${formatDs(dsRdata(zone, k.dnskey))}\n`);
  return 0;
}

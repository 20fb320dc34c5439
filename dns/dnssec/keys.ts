/**
 * DNSSEC keys in BIND's file format (`K<zone>.+<alg>+<tag>.key` / `.private`, as dnssec-keygen
 * writes them), so that keys made here and keys made by BIND are interchangeable. Algorithms 13
 * (ECDSA P-256 SHA-256) and 15 (Ed25519), with node:crypto.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { canonicalName, nameToWire } from '../wire/name.js';
import { ZoneError } from '../zone/record.js';

export const ALG_ECDSAP256SHA256 = 13;
export const ALG_ED25519 = 15;
export type Algorithm = typeof ALG_ECDSAP256SHA256 | typeof ALG_ED25519;

/** The SEP bit: a key signing key, or a combined signing key (CSK). */
export const FLAGS_KSK = 257;
export const FLAGS_ZSK = 256;

/** Where the keys of a zones directory live. */
export const KEYS_SUBDIR = 'keys';

const ALG_NAMES: Record<Algorithm, string> = { 13: 'ECDSAP256SHA256', 15: 'ED25519' };
const PUBLIC_LEN: Record<Algorithm, number> = { 13: 64, 15: 32 };

/** One key of a zone, with BIND's timing metadata (unix seconds; absent: no such event). */
export interface DnssecKey {
  readonly zone: string;
  readonly flags: number;
  readonly algorithm: Algorithm;
  readonly tag: number;
  /** the DNSKEY RDATA */
  readonly dnskey: Uint8Array;
  readonly privateKey: KeyObject;
  readonly file: string;
  readonly publish?: number;
  readonly activate?: number;
  readonly inactive?: number;
  readonly delete?: number;
}

/** Whether a key's DNSKEY is in the zone at `now` (unix seconds): published and not yet deleted. */
export function isPublished(k: DnssecKey, now: number): boolean {
  return (k.publish === undefined || k.publish <= now) && (k.delete === undefined || k.delete > now);
}

/** Whether a key signs at `now`: published, activated and not yet inactive. */
export function isActive(k: DnssecKey, now: number): boolean {
  return isPublished(k, now) && (k.activate === undefined || k.activate <= now) && (k.inactive === undefined || k.inactive > now);
}

/** RFC 4034 appendix B: the key tag of a DNSKEY RDATA (algorithm 1 excepted, not supported here). */
export function keyTag(dnskey: Uint8Array): number {
  let ac = 0;
  for (let i = 0; i < dnskey.length; i++) ac += i & 1 ? dnskey[i]! : dnskey[i]! << 8;
  ac += (ac >> 16) & 0xffff;
  return ac & 0xffff;
}

/** DNSKEY RDATA: flags, protocol 3, algorithm, public key. */
export function dnskeyRdata(flags: number, algorithm: number, publicKey: Uint8Array): Uint8Array {
  const b = new Uint8Array(4 + publicKey.length);
  b[0] = flags >> 8; b[1] = flags & 0xff; b[2] = 3; b[3] = algorithm;
  b.set(publicKey, 4);
  return b;
}

/** RFC 4509: DS RDATA with a SHA-256 digest of owner (canonical wire) and DNSKEY RDATA. */
export function dsRdata(zone: string, dnskey: Uint8Array): Uint8Array {
  const digest = createHash('sha256').update(nameToWire(canonicalName(zone))).update(dnskey).digest();
  const tag = keyTag(dnskey);
  const b = new Uint8Array(4 + digest.length);
  b[0] = tag >> 8; b[1] = tag & 0xff; b[2] = dnskey[3]!; b[3] = 2;
  b.set(digest, 4);
  return b;
}

/** Presentation text of a DS RDATA (key tag, algorithm, digest type, hex digest in upper case as BIND prints it). */
export function formatDs(ds: Uint8Array): string {
  return `${(ds[0]! << 8) | ds[1]!} ${ds[2]} ${ds[3]} ${Buffer.from(ds.subarray(4)).toString('hex').toUpperCase()}`;
}

const b64url = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

/** The private key object of an algorithm's raw private key and DNSKEY public key. */
function privateKeyOf(algorithm: Algorithm, priv: Buffer, pub: Uint8Array): KeyObject {
  if (algorithm === ALG_ED25519) {
    return createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64url(priv), x: b64url(pub) }, format: 'jwk' });
  }
  return createPrivateKey({
    key: { kty: 'EC', crv: 'P-256', d: b64url(priv), x: b64url(pub.subarray(0, 32)), y: b64url(pub.subarray(32)) }, format: 'jwk',
  });
}

/** The DNSKEY public key field of a private key. */
function publicKeyOf(algorithm: Algorithm, key: KeyObject): Uint8Array {
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  const x = Buffer.from(jwk.x!, 'base64url');
  return algorithm === ALG_ED25519 ? x : Buffer.concat([x, Buffer.from(jwk.y!, 'base64url')]);
}

/** BIND's timestamp form YYYYMMDDHHMMSS (UTC). */
function formatTime(unix: number): string {
  return new Date(unix * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

function parseTime(text: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(text.trim());
  if (!m) return undefined;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) / 1000;
}

/** A new key's two files, as dnssec-keygen would write them. */
export interface GeneratedKey {
  readonly tag: number;
  readonly flags: number;
  /** base name without suffix: K<zone>.+<alg>+<tag> */
  readonly base: string;
  readonly keyText: string;
  readonly privateText: string;
}

/** Generates a key; `activate` (unix seconds) later than `now` pre-publishes it (a ZSK rollover's first step). */
export function generateKey(zone: string, algorithm: Algorithm, flags: number, now: number, activate = now): GeneratedKey {
  const origin = canonicalName(zone);
  const { privateKey } = algorithm === ALG_ED25519 ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pub = publicKeyOf(algorithm, privateKey);
  const d = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  const dnskey = dnskeyRdata(flags, algorithm, pub);
  const tag = keyTag(dnskey);
  const role = flags === FLAGS_KSK ? 'key-signing' : 'zone-signing';
  const keyText = [
    `; This is a ${role} key, keyid ${tag}, for ${origin}`,
    `; Created: ${formatTime(now)}`, `; Publish: ${formatTime(now)}`, `; Activate: ${formatTime(activate)}`,
    `${origin} IN DNSKEY ${flags} 3 ${algorithm} ${Buffer.from(pub).toString('base64')}`, '',
  ].join('\n');
  const privateText = [
    'Private-key-format: v1.3', `Algorithm: ${algorithm} (${ALG_NAMES[algorithm]})`, `PrivateKey: ${d.toString('base64')}`,
    `Created: ${formatTime(now)}`, `Publish: ${formatTime(now)}`, `Activate: ${formatTime(activate)}`, '',
  ].join('\n');
  const base = `K${origin}+${String(algorithm).padStart(3, '0')}+${String(tag).padStart(5, '0')}`;
  return { tag, flags, base, keyText, privateText };
}

/** Parses a `.key` file's DNSKEY line: owner, flags, algorithm, public key. */
function parseKeyFile(text: string, file: string): { owner: string; flags: number; algorithm: number; pub: Buffer; line: number } {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/;.*$/, '').trim();
    if (line === '') continue;
    const t = line.split(/\s+/);
    const at = t.findIndex((x) => x.toUpperCase() === 'DNSKEY');
    if (at < 1 || t.length < at + 5) throw new ZoneError(file, i + 1, 'expected "<zone> [TTL] [IN] DNSKEY <flags> 3 <algorithm> <base64>"');
    const flags = Number(t[at + 1]);
    const algorithm = Number(t[at + 3]);
    if (t[at + 2] !== '3') throw new ZoneError(file, i + 1, `DNSKEY protocol must be 3, not ${t[at + 2]}`);
    return { owner: t[0]!, flags, algorithm, pub: Buffer.from(t.slice(at + 4).join(''), 'base64'), line: i + 1 };
  }
  throw new ZoneError(file, 0, 'no DNSKEY record in the key file');
}

/** Parses a `.private` file's `Field: value` lines. */
function parsePrivateFile(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line.trim());
    if (m) fields.set(m[1]!, m[2]!.trim());
  }
  return fields;
}

/** Loads one key pair; `base` is the path without `.key`/`.private`. Throws ZoneError naming the file. */
export async function loadKey(base: string): Promise<DnssecKey> {
  const keyFile = `${base}.key`;
  const privFile = `${base}.private`;
  const st = await stat(privFile).catch((e: Error) => { throw new ZoneError(privFile, 0, `cannot read: ${e.message}`); });
  // a private key others can read is a leaked key: refuse it rather than sign with it
  if ((st.mode & 0o077) !== 0) {
    throw new ZoneError(privFile, 0, `private key is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
  }
  const { owner, flags, algorithm, pub, line } = parseKeyFile(await readFile(keyFile, 'utf8'), keyFile);
  if (algorithm !== ALG_ECDSAP256SHA256 && algorithm !== ALG_ED25519) {
    throw new ZoneError(keyFile, line, `algorithm ${algorithm} is not supported (13 ECDSAP256SHA256 or 15 ED25519)`);
  }
  if (flags !== FLAGS_KSK && flags !== FLAGS_ZSK) throw new ZoneError(keyFile, line, `flags must be 256 (ZSK) or 257 (KSK/CSK), not ${flags}`);
  if (pub.length !== PUBLIC_LEN[algorithm]) throw new ZoneError(keyFile, line, `public key of algorithm ${algorithm} must be ${PUBLIC_LEN[algorithm]} bytes, not ${pub.length}`);
  const fields = parsePrivateFile(await readFile(privFile, 'utf8'));
  const alg = Number((fields.get('Algorithm') ?? '').split(/\s/)[0]);
  if (alg !== algorithm) throw new ZoneError(privFile, 0, `Algorithm ${fields.get('Algorithm') ?? '(missing)'} does not match the key file's ${algorithm}`);
  const priv = Buffer.from(fields.get('PrivateKey') ?? '', 'base64');
  if (priv.length !== 32) throw new ZoneError(privFile, 0, 'PrivateKey: expected 32 bytes of base64');
  let privateKey: KeyObject;
  try {
    privateKey = privateKeyOf(algorithm, priv, pub);
    if (!Buffer.from(publicKeyOf(algorithm, privateKey)).equals(pub)) throw new Error('mismatch');
  } catch {
    throw new ZoneError(privFile, 0, `the private key does not belong to the public key in ${path.basename(keyFile)}`);
  }
  const times: Record<string, number> = {};
  for (const [field, name] of [['Publish', 'publish'], ['Activate', 'activate'], ['Inactive', 'inactive'], ['Delete', 'delete']] as const) {
    const v = fields.get(field);
    if (v === undefined) continue;
    const t = parseTime(v);
    if (t === undefined) throw new ZoneError(privFile, 0, `${field}: expected YYYYMMDDHHMMSS, got "${v}"`);
    times[name] = t;
  }
  const dnskey = dnskeyRdata(flags, algorithm, pub);
  return { zone: canonicalName(owner), flags, algorithm, tag: keyTag(dnskey), dnskey, privateKey, file: keyFile, ...times };
}

/**
 * The keys in `zonesDir/keys/`, by canonical zone. No directory: no keys (nothing is signed).
 * Every key file is tried, so one run reports every broken key.
 */
export async function loadKeysDir(zonesDir: string): Promise<Map<string, DnssecKey[]>> {
  const dir = path.join(zonesDir, KEYS_SUBDIR);
  const byZone = new Map<string, DnssecKey[]>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return byZone;
    throw new ZoneError(dir, 0, `cannot read the keys directory: ${(err as Error).message}`);
  }
  const errors: ZoneError[] = [];
  for (const n of names.filter((x) => /^K.*\.key$/.test(x)).sort()) {
    try {
      const k = await loadKey(path.join(dir, n.slice(0, -4)));
      const list = byZone.get(k.zone) ?? [];
      list.push(k);
      byZone.set(k.zone, list);
    } catch (err) {
      errors.push(err instanceof ZoneError ? err : new ZoneError(path.join(dir, n), 0, String(err)));
    }
  }
  if (errors.length) throw new KeyLoadError(errors);
  return byZone;
}

/** One or more key files failed to load; `message` has one `file:line: reason` per line. */
export class KeyLoadError extends Error {
  constructor(readonly errors: readonly ZoneError[]) {
    super(errors.map((e) => e.message).join('\n'));
    this.name = 'KeyLoadError';
  }
}

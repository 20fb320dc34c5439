/**
 * Bearer-token check for the HTTP APIs of gslb-dns and slb-agent (admin and read tokens), in constant time (both sides are hashed first and every
 * configured token is compared, so neither a token's content, its length nor its position in the
 * file leaks through timing). Each token has a name: the actor recorded with every admin action.
 *
 * The token file holds either one bare token (named `admin`), or lines `name:token`; blank lines
 * and lines starting with `#` are ignored. Names are 1-64 letters, digits, `.`, `_`, `@` or `-`;
 * tokens are at least 16 characters; a name or token given twice is an error (file:line).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { UsageError } from './cli.js';
import { addressBytes } from './ip.js';

export type AdminAuthResult =
  | { readonly ok: true; readonly actor: string }
  | { readonly ok: false; readonly status: 401 | 403; readonly reason: string };

/** One admin credential: who (`name`, the actor) and the secret. */
export interface AdminToken {
  readonly name: string;
  readonly token: string;
}

export const MIN_TOKEN_LENGTH = 16;
/** The actor of a file holding a single bare token. */
export const BARE_TOKEN_NAME = 'admin';
const NAME_RE = /^[A-Za-z0-9._@-]{1,64}$/;

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Parses a token file's text; throws naming `file` and the line of the first fault. */
export function parseAdminTokens(text: string, file = 'token file'): AdminToken[] {
  const lines = text.split(/\r?\n/).map((l, i) => ({ line: i + 1, text: l.trim() })).filter((l) => l.text !== '' && !l.text.startsWith('#'));
  if (lines.length === 0) throw new Error(`${file}: admin token is empty`);
  const named = (t: string): { name: string; token: string } | undefined => {
    const i = t.indexOf(':');
    if (i <= 0) return undefined;
    const name = t.slice(0, i);
    return NAME_RE.test(name) ? { name, token: t.slice(i + 1).trim() } : undefined;
  };
  if (lines.length === 1 && named(lines[0]!.text) === undefined) {
    const token = lines[0]!.text;
    if (token.length < MIN_TOKEN_LENGTH) throw new Error(`${file}:${lines[0]!.line}: the token must be at least ${MIN_TOKEN_LENGTH} characters`);
    return [{ name: BARE_TOKEN_NAME, token }];
  }
  const out: AdminToken[] = [];
  const names = new Map<string, number>();
  const tokens = new Map<string, number>();
  for (const l of lines) {
    const e = named(l.text);
    if (e === undefined) throw new Error(`${file}:${l.line}: expected name:token (name: 1-64 letters, digits, ".", "_", "@" or "-")`);
    if (e.token.length < MIN_TOKEN_LENGTH) throw new Error(`${file}:${l.line}: the token of "${e.name}" must be at least ${MIN_TOKEN_LENGTH} characters`);
    const dupName = names.get(e.name);
    if (dupName !== undefined) throw new Error(`${file}:${l.line}: name "${e.name}" is also on line ${dupName}`);
    const dupToken = tokens.get(e.token);
    if (dupToken !== undefined) throw new Error(`${file}:${l.line}: the token of "${e.name}" is also on line ${dupToken}`);
    names.set(e.name, l.line);
    tokens.set(e.token, l.line);
    out.push(e);
  }
  return out;
}

/**
 * A checker for `Authorization` header values against the tokens of `tokenFileText` (see the
 * file format above). Undefined disables the admin API (403); an empty text is a configuration
 * error and throws here, never an open door.
 */
export function createAdminAuth(tokenFileText: string | undefined): (authorization: string | undefined) => AdminAuthResult {
  if (tokenFileText === undefined) {
    return () => ({ ok: false, status: 403, reason: 'admin API disabled: start with --admin-token-file' });
  }
  if (tokenFileText.trim() === '') throw new Error('admin token is empty');
  const wanted = parseAdminTokens(tokenFileText).map((t) => ({ name: t.name, digest: digest(t.token) }));
  return (authorization) => {
    if (authorization === undefined) return { ok: false, status: 401, reason: 'unauthorized: Authorization: Bearer <token> required' };
    const m = /^Bearer[ \t]+(.*)$/i.exec(authorization);
    if (!m) return { ok: false, status: 401, reason: 'unauthorized: Authorization: Bearer <token> required' };
    const got = digest(m[1]!.trim());
    let actor: string | undefined;
    // compare against every token, without stopping at a match
    for (const w of wanted) if (timingSafeEqual(got, w.digest) && actor === undefined) actor = w.name;
    if (actor === undefined) return { ok: false, status: 401, reason: 'unauthorized: wrong token' };
    return { ok: true, actor };
  };
}

/** Who may read the state (page data, state, explain, events): read tokens, admin tokens, or anyone. */
export interface ReadAuthOptions {
  /** the admin token file's text: admin tokens read too */
  readonly adminToken: string | undefined;
  /** the read token file's text (the admin file's format); its tokens read but never act */
  readonly readToken: string | undefined;
  /** reading needs no token (--status-public) */
  readonly public: boolean;
}

/**
 * A checker for `Authorization` values on the read routes: open when `public`, else a read or an
 * admin token (each compared in constant time as above). With neither file nor `public`, reading
 * is refused with 403 (like the admin API without a token file).
 */
export function createReadAuth(opts: ReadAuthOptions): (authorization: string | undefined) => AdminAuthResult {
  if (opts.public) return () => ({ ok: true, actor: 'public' });
  if (opts.readToken !== undefined && opts.readToken.trim() === '') throw new Error('read token is empty');
  const checks = [opts.readToken, opts.adminToken].filter((t): t is string => t !== undefined).map((t) => createAdminAuth(t));
  if (checks.length === 0) {
    return () => ({ ok: false, status: 403, reason: 'reading disabled: start with --read-token-file, --admin-token-file or --status-public' });
  }
  return (authorization) => {
    // every checker runs (no early exit), so timing does not tell read tokens from admin ones
    const results = checks.map((c) => c(authorization));
    return results.find((r) => r.ok) ?? results[0]!;
  };
}

/** A token file's text (admin or read: the same format), checked; undefined when the flag is absent. */
export async function readTokenFile(flag: string, file: string | undefined): Promise<string | undefined> {
  if (file === undefined) return undefined;
  const text = await readFile(file, 'utf8').catch((e: Error) => {
    throw new UsageError(`--${flag}: ${e.message}`);
  });
  try {
    parseAdminTokens(text, file);
  } catch (err) {
    throw new UsageError(`--${flag}: ${(err as Error).message}`);
  }
  return text;
}

/** Whether `host` (as given to --api or an agent's `api:`) only listens on the loopback interface. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const b = addressBytes(host);
  // 127.0.0.0/8, or ::1
  return b !== undefined && (b.length === 4 ? b[0] === 127 : b.every((x, i) => x === (i === 15 ? 1 : 0)));
}

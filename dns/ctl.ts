/**
 * `gslb-dns ctl`: applies an operator action to every listed gslb-dns instance at once (they share
 * nothing, so each must be told), or compares their state. Exit 0 only when every instance
 * succeeded (and, for `state`, all agree on the override digest), 1 otherwise, 2 on usage errors.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

const ACTIONS = ['drain', 'undrain', 'force-down', 'release'] as const;
type Action = (typeof ACTIONS)[number];

export const CTL_USAGE = `usage:
  gslb-dns ctl --servers URL[,URL...] [--token-file FILE] <drain|undrain|force-down|release> site <site>
  gslb-dns ctl --servers URL[,URL...] [--token-file FILE] <drain|undrain|force-down|release> member <site> <address>
  gslb-dns ctl --servers URL[,URL...] [--token-file FILE] state
The admin token is read from --token-file, else from the environment variable GSLB_ADMIN_TOKEN.`;

/** Per-instance request timeout. */
export const CTL_TIMEOUT_MS = 5000;

/** Where ctl writes and what it reads; the process's by default. */
export interface CtlIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Readonly<Record<string, string | undefined>>;
  timeoutMs: number;
}

class UsageError extends Error {}

type CallResult =
  | { readonly kind: 'http'; readonly status: number; readonly body: unknown }
  | { readonly kind: 'error'; readonly error: string };

interface Command {
  readonly servers: string[];
  readonly token: string;
  readonly op: { readonly kind: 'state' } | { readonly kind: 'action'; readonly action: Action; readonly site: string; readonly address?: string };
}

function parseServer(s: string): string {
  const text = s.includes('://') ? s : `http://${s}`;
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new UsageError(`--servers: "${s}" is not a URL (expected e.g. http://192.0.2.53:8053)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`--servers: "${s}": expected an http or https URL`);
  if (u.search || u.hash) throw new UsageError(`--servers: "${s}": a query or fragment is not allowed`);
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

async function parseCommand(argv: string[], io: CtlIo): Promise<Command | 'help'> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        servers: { type: 'string', multiple: true },
        'token-file': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  const servers = [...new Set((values.servers ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '').map(parseServer))];
  if (servers.length === 0) throw new UsageError('--servers URL[,URL...] is required');

  let op: Command['op'];
  const [verb, kind, ...rest] = positionals;
  if (verb === 'state' && positionals.length === 1) {
    op = { kind: 'state' };
  } else if (verb !== undefined && (ACTIONS as readonly string[]).includes(verb)) {
    const action = verb as Action;
    if (kind === 'site' && rest.length === 1) op = { kind: 'action', action, site: rest[0]! };
    else if (kind === 'member' && rest.length === 2) op = { kind: 'action', action, site: rest[0]!, address: rest[1]! };
    else throw new UsageError(`${verb}: expected "site <site>" or "member <site> <address>"`);
  } else {
    throw new UsageError(verb === undefined ? 'a command is required' : `unknown command "${positionals.join(' ')}"`);
  }

  let token: string | undefined;
  const file = values['token-file'];
  if (file !== undefined) {
    try {
      token = (await readFile(file, 'utf8')).trim();
    } catch (err) {
      throw new UsageError(`--token-file: cannot read ${file}: ${(err as Error).message}`);
    }
    if (token === '') throw new UsageError(`--token-file: ${file} is empty`);
  } else {
    token = io.env['GSLB_ADMIN_TOKEN']?.trim();
    if (!token) throw new UsageError('no admin token: pass --token-file FILE or set GSLB_ADMIN_TOKEN');
  }
  return { servers, token, op };
}

function describeError(err: unknown, timeoutMs: number): string {
  const e = err as Error & { cause?: unknown };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return `timed out after ${timeoutMs} ms`;
  const cause = e.cause as (Error & { code?: string; errors?: (Error & { code?: string })[] }) | undefined;
  if (cause) {
    const inner = cause.errors?.[0];
    return cause.message || inner?.message || cause.code || inner?.code || e.message;
  }
  return e.message;
}

async function call(base: string, path: string, token: string, timeoutMs: number, body?: unknown): Promise<CallResult> {
  try {
    const res = await fetch(`${base}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // keep the text: a proxy's error page, say
    }
    return { kind: 'http', status: res.status, body: parsed };
  } catch (err) {
    return { kind: 'error', error: describeError(err, timeoutMs) };
  }
}

function field(body: unknown, key: string): unknown {
  return body !== null && typeof body === 'object' ? (body as Record<string, unknown>)[key] : undefined;
}

function httpError(status: number, body: unknown): string {
  const e = field(body, 'error');
  const text = typeof e === 'string' ? e : typeof body === 'string' ? body.trim().slice(0, 200) : JSON.stringify(body);
  return `${status} error: ${text || '(empty body)'}`;
}

async function runAction(cmd: Command, op: Extract<Command['op'], { kind: 'action' }>, io: CtlIo): Promise<number> {
  const target = op.address === undefined ? { site: op.site } : { site: op.site, address: op.address };
  const results = await Promise.all(cmd.servers.map((s) => call(s, `/api/v1/admin/${op.action}`, cmd.token, io.timeoutMs, target)));
  const width = Math.max(...cmd.servers.map((s) => s.length));
  let ok = 0;
  const digests = new Set<string>();
  cmd.servers.forEach((server, i) => {
    const r = results[i]!;
    let line: string;
    if (r.kind === 'error') {
      line = `error: ${r.error}`;
    } else if (r.status === 200 && field(r.body, 'ok') === true) {
      ok++;
      const digest = String(field(r.body, 'overridesDigest'));
      digests.add(digest);
      line = `${r.status} ${field(r.body, 'changed') === true ? 'changed' : 'unchanged'} overridesDigest=${digest}`;
    } else {
      line = httpError(r.status, r.body);
    }
    io.stdout(`${server.padEnd(width)}  ${line}\n`);
  });
  const what = `${op.action} ${op.address === undefined ? `site ${op.site}` : `member ${op.site} ${op.address}`}`;
  const n = cmd.servers.length;
  io.stdout(ok === n ? `${what}: ok on all ${n} instances\n` : `${what}: FAILED on ${n - ok} of ${n} instances\n`);
  if (digests.size > 1) io.stderr('warning: the instances disagree on overridesDigest; compare them with "gslb-dns ctl state"\n');
  return ok === n ? 0 : 1;
}

async function runState(cmd: Command, io: CtlIo): Promise<number> {
  const results = await Promise.all(cmd.servers.map((s) => call(s, '/api/v1/state', cmd.token, io.timeoutMs)));
  const width = Math.max(...cmd.servers.map((s) => s.length));
  const digests = new Set<string>();
  let ok = 0;
  cmd.servers.forEach((server, i) => {
    const r = results[i]!;
    let line: string;
    if (r.kind === 'error') {
      line = `error: ${r.error}`;
    } else if (r.status === 200 && typeof field(r.body, 'overridesDigest') === 'string') {
      ok++;
      const digest = field(r.body, 'overridesDigest') as string;
      digests.add(digest);
      const overrides = field(r.body, 'overrides');
      line = `instance=${String(field(r.body, 'instance'))} epoch=${String(field(r.body, 'epoch'))} overrides=${Array.isArray(overrides) ? overrides.length : '?'} overridesDigest=${digest}`;
    } else {
      line = httpError(r.status, r.body);
    }
    io.stdout(`${server.padEnd(width)}  ${line}\n`);
  });
  const n = cmd.servers.length;
  const agree = digests.size <= 1;
  if (ok === 0) io.stdout(`no instance answered (0 of ${n})\n`);
  else if (agree) io.stdout(`overridesDigest: ${ok === n ? `all ${n} instances agree` : `the ${ok} instances that answered agree; ${n - ok} did not answer`}\n`);
  else io.stdout(`overridesDigest: the instances DISAGREE (${digests.size} different digests)${ok < n ? `; ${n - ok} did not answer` : ''}\n`);
  return ok === n && agree ? 0 : 1;
}

/** Runs `gslb-dns ctl` with the arguments after `ctl`; resolves with the exit code. */
export async function ctl(argv: string[], io: Partial<CtlIo> = {}): Promise<number> {
  const full: CtlIo = {
    stdout: io.stdout ?? ((t) => { process.stdout.write(t); }),
    stderr: io.stderr ?? ((t) => { process.stderr.write(t); }),
    env: io.env ?? process.env,
    timeoutMs: io.timeoutMs ?? CTL_TIMEOUT_MS,
  };
  let cmd: Command | 'help';
  try {
    cmd = await parseCommand(argv, full);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    full.stderr(`gslb-dns ctl: ${err.message}\n${CTL_USAGE}\n`);
    return 2;
  }
  if (cmd === 'help') {
    full.stdout(`${CTL_USAGE}\n`);
    return 0;
  }
  return cmd.op.kind === 'state' ? runState(cmd, full) : runAction(cmd, cmd.op, full);
}

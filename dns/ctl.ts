/**
 * `gslb-dns ctl`: applies an operator action to every listed gslb-dns instance at once, or
 * compares their state. With per-instance overrides (the file store) each instance must be told;
 * with `--overrides etcd://...` one instance would do, and telling every one is harmless (the
 * action is idempotent) and shows what each one now holds. Exit 0 only when every instance
 * succeeded (and, for `state`, all agree on the override digest; for `explain`, on the answer set), 1 otherwise, 2 on usage errors.
 *
 * `--retry-for DURATION` retries, with a backoff (250 ms doubling to 5 s), the instances that
 * could not be reached, until the duration has passed, and says per instance what it did.
 */
import { helpOrVersion, helpText, UsageError } from '../shared/cli.js';
import type { CommandHelp } from '../shared/cli.js';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { durationFlag } from '../shared/config/values.js';

const ACTIONS = ['drain', 'undrain', 'force-down', 'release'] as const;
type Action = (typeof ACTIONS)[number];

/** ctl's help: usage and examples (--help, and after a usage error). */
export const CTL_HELP: CommandHelp = {
  name: 'gslb-dns ctl',
  usage: `  gslb-dns ctl --servers URL[,URL...] [--token-file FILE] [--reason TEXT] [--force] [--retry-for DURATION]
               <drain|undrain|force-down|release> site <site>
  gslb-dns ctl --servers URL[,URL...] [--token-file FILE] [--reason TEXT] [--force] [--retry-for DURATION]
               <drain|undrain|force-down|release> member <site> <address>
  gslb-dns ctl --servers URL[,URL...] [--token-file FILE] state
  gslb-dns ctl --servers URL[,URL...] [--token-file FILE] explain NAME [--type A|AAAA] [--subnet PREFIX]
The admin token is read from --token-file (a bare token, or one name:token line), else from the
environment variable GSLB_ADMIN_TOKEN. --reason is recorded with the override; --force (which
needs --reason) passes a pool guard (minServing). --retry-for (e.g. 30s) retries instances that
could not be reached until then. explain asks every instance what it answers for NAME now and why,
and says whether they agree.`,
  examples: [
    'gslb-dns ctl --servers http://ns1:8053,http://ns2:8053 --token-file admin.token drain site tokyo --reason "network work"',
    'gslb-dns ctl --servers http://ns1:8053,http://ns2:8053 --token-file admin.token --retry-for 30s undrain site tokyo',
    'gslb-dns ctl --servers http://ns1:8053 --token-file admin.token force-down member tokyo 192.0.2.1',
    'GSLB_ADMIN_TOKEN=... gslb-dns ctl --servers http://ns1:8053 state',
    'gslb-dns ctl --servers http://ns1:8053,http://ns2:8053 --token-file admin.token explain www.gslb.example.test --subnet 198.51.100.0/24',
  ],
};

/** The first and the longest pause between two attempts on an unreachable instance (--retry-for). */
export const RETRY_FIRST_MS = 250;
export const RETRY_MAX_MS = 5000;

/** Per-instance request timeout. */
export const CTL_TIMEOUT_MS = 5000;

/** Where ctl writes and what it reads; the process's by default. */
export interface CtlIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Readonly<Record<string, string | undefined>>;
  timeoutMs: number;
  /** the clock and the pause of --retry-for (Date.now and setTimeout by default) */
  now: () => number;
  sleep: (ms: number) => Promise<void>;
}


type CallResult =
  | { readonly kind: 'http'; readonly status: number; readonly body: unknown }
  | { readonly kind: 'error'; readonly error: string };

interface Command {
  readonly servers: string[];
  readonly token: string;
  readonly op: { readonly kind: 'state' } | { readonly kind: 'explain'; readonly name: string; readonly type?: string; readonly subnet?: string } | {
    readonly kind: 'action'; readonly action: Action; readonly site: string; readonly address?: string;
    readonly reason?: string; readonly force: boolean; readonly retryForMs: number;
  };
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
        reason: { type: 'string' },
        force: { type: 'boolean' },
        'retry-for': { type: 'string' },
        type: { type: 'string' },
        subnet: { type: 'string' },
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
  const reason = values.reason?.trim();
  if (values.reason !== undefined && reason === '') throw new UsageError('--reason: must not be empty');
  if (values.force === true && reason === undefined) throw new UsageError('--force needs --reason TEXT (why the guard may be overridden)');
  let retryForMs = 0;
  if (values['retry-for'] !== undefined) {
    retryForMs = durationFlag('retry-for', values['retry-for']);
  }
  if (verb !== 'explain' && (values.type !== undefined || values.subnet !== undefined)) throw new UsageError('--type and --subnet apply to explain only');
  if (verb === 'explain') {
    if (positionals.length !== 2) throw new UsageError('explain: expected one NAME');
    if (reason !== undefined || values.force === true || values['retry-for'] !== undefined) throw new UsageError('explain: --reason, --force and --retry-for apply to actions only');
    op = { kind: 'explain', name: kind!, ...(values.type !== undefined ? { type: values.type } : {}), ...(values.subnet !== undefined ? { subnet: values.subnet } : {}) };
  } else if (verb === 'state' && positionals.length === 1) {
    if (reason !== undefined || values.force === true || values['retry-for'] !== undefined) throw new UsageError('state: --reason, --force and --retry-for apply to actions only');
    op = { kind: 'state' };
  } else if (verb !== undefined && (ACTIONS as readonly string[]).includes(verb)) {
    const action = verb as Action;
    const extra = { ...(reason !== undefined ? { reason } : {}), force: values.force === true, retryForMs };
    if (kind === 'site' && rest.length === 1) op = { kind: 'action', action, site: rest[0]!, ...extra };
    else if (kind === 'member' && rest.length === 2) op = { kind: 'action', action, site: rest[0]!, address: rest[1]!, ...extra };
    else throw new UsageError(`${verb}: expected "site <site>" or "member <site> <address>"`);
  } else {
    throw new UsageError(verb === undefined ? 'a command is required' : `unknown command "${positionals.join(' ')}"`);
  }

  let token: string | undefined;
  const file = values['token-file'];
  if (file !== undefined) {
    let lines: string[];
    try {
      lines = (await readFile(file, 'utf8')).split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    } catch (err) {
      throw new UsageError(`--token-file: cannot read ${file}: ${(err as Error).message}`);
    }
    if (lines.length === 0) throw new UsageError(`--token-file: ${file} is empty`);
    if (lines.length > 1) throw new UsageError(`--token-file: ${file} holds ${lines.length} lines; ctl needs one token (bare, or name:token)`);
    // `name:token`, as in the server's token file: send the token
    token = /^[A-Za-z0-9._@-]{1,64}:(.+)$/.exec(lines[0]!)?.[1]!.trim() ?? lines[0]!;
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

/** One instance's answer to an action, after the attempts --retry-for allowed. */
interface Attempted {
  readonly result: CallResult;
  readonly attempts: number;
  readonly firstFailure?: string;
}

/** Calls once, then again with a backoff while the instance cannot be reached and `retryForMs` has not passed. */
async function callWithRetry(io: CtlIo, retryForMs: number, attempt: () => Promise<CallResult>): Promise<Attempted> {
  const deadline = io.now() + retryForMs;
  let result = await attempt();
  let attempts = 1;
  const firstFailure = result.kind === 'error' ? result.error : undefined;
  let pause = RETRY_FIRST_MS;
  while (result.kind === 'error' && io.now() < deadline) {
    await io.sleep(Math.min(pause, Math.max(0, deadline - io.now())));
    pause = Math.min(pause * 2, RETRY_MAX_MS);
    result = await attempt();
    attempts++;
  }
  return { result, attempts, ...(firstFailure !== undefined ? { firstFailure } : {}) };
}

async function runAction(cmd: Command, op: Extract<Command['op'], { kind: 'action' }>, io: CtlIo): Promise<number> {
  const body = {
    site: op.site, ...(op.address !== undefined ? { address: op.address } : {}),
    ...(op.reason !== undefined ? { reason: op.reason } : {}), ...(op.force ? { force: true } : {}),
  };
  const started = io.now();
  const results = await Promise.all(cmd.servers.map((s) => callWithRetry(io, op.retryForMs, () => call(s, `/api/v1/admin/${op.action}`, cmd.token, io.timeoutMs, body))));
  const width = Math.max(...cmd.servers.map((s) => s.length));
  let ok = 0;
  const digests = new Set<string>();
  cmd.servers.forEach((server, i) => {
    const { result: r, attempts, firstFailure } = results[i]!;
    let line: string;
    if (r.kind === 'error') {
      line = `error: ${r.error}`;
    } else if (r.status === 200 && field(r.body, 'ok') === true) {
      ok++;
      const digest = String(field(r.body, 'overridesDigest'));
      digests.add(digest);
      line = `${r.status} ${field(r.body, 'changed') === true ? 'changed' : 'unchanged'}${field(r.body, 'forced') === true ? ' FORCED past guard' : ''} overridesDigest=${digest}`;
    } else {
      line = httpError(r.status, r.body);
    }
    if (op.retryForMs > 0 && firstFailure !== undefined) {
      line += r.kind === 'error'
        ? ` (gave up after ${attempts} attempts over --retry-for ${formatMs(op.retryForMs)})`
        : ` (unreachable at first: ${firstFailure}; answered at attempt ${attempts}, after ${formatMs(io.now() - started)})`;
    }
    io.stdout(`${server.padEnd(width)}  ${line}\n`);
    const warnings = r.kind === 'http' ? field(r.body, 'warnings') : undefined;
    if (Array.isArray(warnings)) for (const w of warnings) io.stdout(`${' '.repeat(width)}  warning: ${String(w)}\n`);
  });
  const what = `${op.action} ${op.address === undefined ? `site ${op.site}` : `member ${op.site} ${op.address}`}`;
  const n = cmd.servers.length;
  io.stdout(ok === n ? `${what}: ok on all ${n} instances\n` : `${what}: FAILED on ${n - ok} of ${n} instances\n`);
  if (digests.size > 1) io.stderr('warning: the instances disagree on overridesDigest; compare them with "gslb-dns ctl state"\n');
  return ok === n ? 0 : 1;
}

/** ` store=KIND`, with UNREACHABLE (and the error) or `from cache` when it matters. */
function storeText(store: unknown): string {
  const kind = field(store, 'kind');
  if (typeof kind !== 'string') return '';
  const notes = [];
  if (field(store, 'reachable') === false) notes.push(`UNREACHABLE: ${String(field(store, 'lastError'))}`);
  if (field(store, 'source') === 'cache') notes.push('overrides from the --state-dir cache');
  return ` store=${kind}${notes.length ? ` (${notes.join('; ')})` : ''}`;
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
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
      line = `instance=${String(field(r.body, 'instance'))} epoch=${String(field(r.body, 'epoch'))} overrides=${Array.isArray(overrides) ? overrides.length : '?'} overridesDigest=${digest}${storeText(field(r.body, 'overridesStore'))}`;
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

interface ExplainCandidateJson {
  site?: unknown; address?: unknown; eligible?: unknown; selected?: unknown; reason?: unknown;
  override?: { actor?: unknown; reason?: unknown };
}

/**
 * What two instances must share to agree: mode, TTL and the answer set. For policies that draw
 * at random or rotate per query (weighted, all) the set is the eligible members, else the answers.
 */
function answerSetOf(body: unknown): string {
  const candidates = (Array.isArray(field(body, 'candidates')) ? field(body, 'candidates') : []) as ExplainCandidateJson[];
  const answers = (Array.isArray(field(body, 'answers')) ? field(body, 'answers') : []) as unknown[];
  const varies = field(body, 'policy') === 'weighted' || field(body, 'policy') === 'all';
  const set = varies ? candidates.filter((c) => c.eligible === true).map((c) => String(c.address)) : answers.map(String);
  return `${varies ? 'eligible' : 'answers'} ${[...new Set(set)].sort().join(' ') || '(none)'}, ttl ${String(field(body, 'ttl'))}, mode ${String(field(body, 'mode'))}`;
}

function candidateTable(body: unknown, indent: string): string {
  const candidates = (Array.isArray(field(body, 'candidates')) ? field(body, 'candidates') : []) as ExplainCandidateJson[];
  const rows = [['site', 'address', 'eligible', 'selected', 'reason'], ...candidates.map((c) => {
    const who = [c.override?.actor, c.override?.reason].filter((x) => typeof x === 'string').join(': ');
    return [String(c.site), String(c.address), c.eligible === true ? 'yes' : 'no', c.selected === true ? 'yes' : 'no', `${String(c.reason)}${who !== '' ? ` (${who})` : ''}`];
  })];
  const widths = [0, 1, 2, 3].map((k) => Math.max(...rows.map((r) => r[k]!.length)));
  return rows.map((r) => `${indent}${r.map((x, k) => (k < 4 ? x.padEnd(widths[k]!) : x)).join('  ')}\n`).join('');
}

async function runExplain(cmd: Command, op: Extract<Command['op'], { kind: 'explain' }>, io: CtlIo): Promise<number> {
  const query = new URLSearchParams({ name: op.name, ...(op.type !== undefined ? { type: op.type } : {}), ...(op.subnet !== undefined ? { subnet: op.subnet } : {}) });
  const results = await Promise.all(cmd.servers.map((s) => call(s, `/api/v1/explain?${query.toString()}`, cmd.token, io.timeoutMs)));
  const width = Math.max(...cmd.servers.map((s) => s.length));
  const sets = new Set<string>();
  let ok = 0;
  cmd.servers.forEach((server, i) => {
    const r = results[i]!;
    if (r.kind === 'error') {
      io.stdout(`${server.padEnd(width)}  error: ${r.error}\n`);
      return;
    }
    if (r.status !== 200 || !Array.isArray(field(r.body, 'candidates'))) {
      io.stdout(`${server.padEnd(width)}  ${httpError(r.status, r.body)}\n`);
      return;
    }
    ok++;
    const b = r.body;
    sets.add(answerSetOf(b));
    const answers = (field(b, 'answers') as unknown[]).map(String);
    const pool = field(b, 'answeredBy') !== field(b, 'pool') ? `${String(field(b, 'pool'))} (answered by ${String(field(b, 'answeredBy'))})` : String(field(b, 'pool'));
    io.stdout(`${server.padEnd(width)}  instance=${String(field(b, 'instance'))} epoch=${String(field(b, 'epoch'))} pool=${pool} policy=${String(field(b, 'policy'))} mode=${String(field(b, 'mode'))}${field(b, 'failOpen') === true ? ` (allDown ${String(field(b, 'allDown'))})` : ''} rcode=${String(field(b, 'rcode'))} ttl=${String(field(b, 'ttl'))} answers=${answers.join(',') || '(none)'}\n`);
    io.stdout(candidateTable(b, ' '.repeat(width + 2)));
  });
  const n = cmd.servers.length;
  const what = `explain ${op.name} ${op.type?.toUpperCase() ?? 'A'}${op.subnet !== undefined ? ` subnet ${op.subnet}` : ''}`;
  const agree = sets.size <= 1;
  if (ok === 0) io.stdout(`${what}: no instance answered (0 of ${n})\n`);
  else if (agree) io.stdout(`${what}: ${ok === n ? `all ${n} instances agree` : `the ${ok} instances that answered agree; ${n - ok} did not answer`} (${[...sets][0]!})\n`);
  else io.stdout(`${what}: the instances DISAGREE (${sets.size} different answer sets)${ok < n ? `; ${n - ok} did not answer` : ''}\n`);
  return ok === n && agree ? 0 : 1;
}

/** Runs `gslb-dns ctl` with the arguments after `ctl`; resolves with the exit code. */
export async function ctl(argv: string[], io: Partial<CtlIo> = {}): Promise<number> {
  const full: CtlIo = {
    stdout: io.stdout ?? ((t) => { process.stdout.write(t); }),
    stderr: io.stderr ?? ((t) => { process.stderr.write(t); }),
    env: io.env ?? process.env,
    timeoutMs: io.timeoutMs ?? CTL_TIMEOUT_MS,
    now: io.now ?? Date.now,
    sleep: io.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
  };
  const asked = helpOrVersion(argv, CTL_HELP, full.stdout);
  if (asked !== undefined) return asked;
  let cmd: Command | 'help';
  try {
    cmd = await parseCommand(argv, full);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    full.stderr(`gslb-dns ctl: ${err.message}\n${helpText(CTL_HELP)}`);
    return 2;
  }
  if (cmd === 'help') {
    full.stdout(helpText(CTL_HELP));
    return 0;
  }
  if (cmd.op.kind === 'explain') return runExplain(cmd, cmd.op, full);
  return cmd.op.kind === 'state' ? runState(cmd, full) : runAction(cmd, cmd.op, full);
}

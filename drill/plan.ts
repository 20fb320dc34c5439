/**
 * A drill plan: the YAML file of `gslb-dns drill --plan FILE` -> Plan, validated and resolved at
 * load time. Errors name the plan file as given, the line where known and the path:
 * `drill.yaml:12: steps[1].expect.from: no vantage "tokio" (vantages: tokyo-clients)`.
 *
 * The contract's keys (extend, don't rename): name, instances [{ name, dns, api, tokenFile }],
 * vantages [{ name, subnet, names, type, http, server }], guards [{ name, serving, atLeast, from }],
 * steps and rollback [{ action, site, address, force, reason } | { expect: { name, from, on,
 * sites | addresses | none }, within } | { wait } | { run, timeout }].
 *
 * Extensions: `probeEvery` (default 200ms) and `probeTimeout` (default 1s) at the top level;
 * `timeout` on an action (per instance request, default 5s). `tokenFile` may be left out when
 * GSLB_ADMIN_TOKEN is set (or when the instances need no token to be read and no action is planned).
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { addressFamily, parseHostPort, parsePrefix } from '../shared/ip.js';
import path from 'node:path';
import { Type } from '@sinclair/typebox';
import type { Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { LineCounter, parseDocument } from 'yaml';
import { checkedDuration, DurationSchema as Duration } from '../shared/config/values.js';
import { formatPath, lineAt, NAME_RE, schemaIssues, show } from '../shared/config/yaml-errors.js';
import type { Seg } from '../shared/config/yaml-errors.js';

const Name = Type.String({ pattern: NAME_RE.source, description: 'a name of 1-63 letters, digits, "-" or "_"' });
const HostPort = Type.String({ description: 'HOST:PORT (IPv6 as [addr]:port)' });

const InstanceSchema = Type.Object({
  name: Name,
  dns: HostPort,
  api: Type.Optional(Type.String({ description: 'an http(s) URL such as http://127.0.0.1:8053' })),
  tokenFile: Type.Optional(Type.String()),
}, { additionalProperties: false });

const VantageSchema = Type.Object({
  name: Name,
  subnet: Type.Optional(Type.String({ description: 'a prefix such as 198.51.100.0/24' })),
  names: Type.Array(Type.String(), { minItems: 1 }),
  type: Type.Optional(Type.Union([Type.Literal('A'), Type.Literal('AAAA')])),
  http: Type.Optional(Type.String({ description: 'a URL with {address}, e.g. "http://{address}:8080/"' })),
  server: Type.Optional(HostPort),
}, { additionalProperties: false });

const GuardSchema = Type.Object({
  name: Name,
  serving: Type.String(),
  atLeast: Type.Integer({ minimum: 1 }),
  from: Type.Optional(Name),
}, { additionalProperties: false });

const ExpectSchema = Type.Object({
  name: Type.String(),
  from: Name,
  on: Type.Optional(Name),
  sites: Type.Optional(Type.Array(Name, { minItems: 1 })),
  addresses: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
  none: Type.Optional(Type.Literal(true)),
}, { additionalProperties: false });

const ACTIONS = ['drain', 'undrain', 'force-down', 'release'] as const;

const StepSchema = Type.Object({
  action: Type.Optional(Type.Union(ACTIONS.map((a) => Type.Literal(a)))),
  site: Type.Optional(Name),
  address: Type.Optional(Type.String()),
  force: Type.Optional(Type.Boolean()),
  reason: Type.Optional(Type.String({ minLength: 1 })),
  expect: Type.Optional(ExpectSchema),
  within: Type.Optional(Duration),
  wait: Type.Optional(Duration),
  run: Type.Optional(Type.String({ minLength: 1 })),
  timeout: Type.Optional(Duration),
}, { additionalProperties: false });

const PlanSchema = Type.Object({
  name: Name,
  probeEvery: Type.Optional(Duration),
  probeTimeout: Type.Optional(Duration),
  instances: Type.Array(InstanceSchema, { minItems: 1 }),
  vantages: Type.Optional(Type.Array(VantageSchema)),
  guards: Type.Optional(Type.Array(GuardSchema)),
  steps: Type.Array(StepSchema, { minItems: 1 }),
  rollback: Type.Optional(Type.Array(StepSchema)),
}, { additionalProperties: false });

const checkPlan = TypeCompiler.Compile(PlanSchema);
type RawStep = Static<typeof StepSchema>;

export type DrillAction = (typeof ACTIONS)[number];

/** Where DNS questions go. */
export interface Endpoint { readonly host: string; readonly port: number }

export interface Instance {
  readonly name: string;
  readonly dns: Endpoint;
  /**
   * origin and path, no trailing slash; undefined for a server without the state API (a peer
   * DNS server): its answers' sites are then unknown, so no action or `sites` expectation
   */
  readonly api: string | undefined;
  /** the admin (or read) token, undefined when none was given */
  readonly token: string | undefined;
}

export interface Vantage {
  readonly name: string;
  /** canonical prefix text, sent as EDNS Client Subnet */
  readonly subnet?: { readonly address: string; readonly prefix: number; readonly family: 4 | 6 };
  /** without the trailing dot */
  readonly names: readonly string[];
  readonly type: 'A' | 'AAAA';
  readonly http?: string;
  /** asked instead of the instances (a resolver, say) */
  readonly server?: Endpoint & { readonly text: string };
}

export interface Guard {
  readonly name: string;
  readonly serving: string;
  readonly atLeast: number;
  readonly from?: string;
}

export type Step =
  | { readonly kind: 'action'; readonly action: DrillAction; readonly site: string; readonly address?: string; readonly force: boolean; readonly reason?: string; readonly timeoutMs: number }
  | { readonly kind: 'expect'; readonly name: string; readonly from: string; readonly on?: string; readonly want: ExpectWant; readonly withinMs: number }
  | { readonly kind: 'wait'; readonly ms: number }
  | { readonly kind: 'run'; readonly command: string; readonly timeoutMs: number };

/** What an expectation holds for: members of these sites, these addresses, or no address. */
export type ExpectWant =
  | { readonly sites: readonly string[] }
  | { readonly addresses: readonly string[] }
  | { readonly none: true };

export interface Plan {
  /** the plan file as given */
  readonly file: string;
  /** where tokenFile and run commands are relative to */
  readonly dir: string;
  readonly name: string;
  readonly probeEveryMs: number;
  readonly probeTimeoutMs: number;
  readonly instances: readonly Instance[];
  readonly vantages: readonly Vantage[];
  readonly guards: readonly Guard[];
  readonly steps: readonly Step[];
  readonly rollback: readonly Step[];
}

export const DEFAULT_PROBE_EVERY_MS = 200;
export const DEFAULT_PROBE_TIMEOUT_MS = 1000;
export const DEFAULT_ACTION_TIMEOUT_MS = 5000;
export const DEFAULT_RUN_TIMEOUT_MS = 60_000;

export interface PlanIssue {
  readonly file: string;
  readonly line?: number;
  readonly path: string;
  readonly reason: string;
}

/** One or more plan errors; `message` has one `file:line: path: reason` per line. */
export class PlanError extends Error {
  constructor(readonly issues: readonly PlanIssue[]) {
    super(issues.map((e) => {
      const where = e.line !== undefined ? `${e.file}:${e.line}` : e.file;
      return e.path === '' ? `${where}: ${e.reason}` : `${where}: ${e.path}: ${e.reason}`;
    }).join('\n'));
    this.name = 'PlanError';
  }
}

type Fail = (segs: readonly Seg[], reason: string) => void;

/** `IP:PORT` or `[IPv6]:PORT` (port 1..65535) -> Endpoint, or undefined. */
export function parseEndpoint(text: string): Endpoint | undefined {
  try {
    const { host, port } = parseHostPort(text);
    return port >= 1 ? { host, port } : undefined;
  } catch {
    return undefined;
  }
}

function parseSubnet(text: string): Vantage['subnet'] | undefined {
  try {
    const p = parsePrefix(text.trim());
    return { address: p.text.slice(0, p.text.indexOf('/')), prefix: p.length, family: p.family };
  } catch {
    return undefined;
  }
}

function bareName(name: string): string {
  return name.replace(/\.$/, '').toLowerCase();
}

/** A token file: a bare token, or one `name:token` line (the server's format); comments skipped. */
export function tokenFromFile(text: string): string | undefined {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length !== 1) return undefined;
  return /^[A-Za-z0-9._@-]{1,64}:(.+)$/.exec(lines[0]!)?.[1]!.trim() ?? lines[0]!;
}

interface Ctx {
  readonly fail: Fail;
  readonly vantages: ReadonlyMap<string, Vantage>;
  readonly instances: ReadonlySet<string>;
}

function duration(v: unknown, dflt: number, segs: readonly Seg[], fail: Fail): number {
  return checkedDuration(v, dflt, (reason) => fail(segs, reason));
}

const KIND_KEYS = ['action', 'expect', 'wait', 'run'] as const;
/** keys each kind of step may carry besides its own */
const KIND_EXTRA: Record<(typeof KIND_KEYS)[number], readonly string[]> = {
  action: ['site', 'address', 'force', 'reason', 'timeout'], expect: ['within'], wait: [], run: ['timeout'],
};

function resolveStep(s: RawStep, at: readonly Seg[], ctx: Ctx): Step | undefined {
  const { fail } = ctx;
  const kinds = KIND_KEYS.filter((k) => s[k] !== undefined);
  if (kinds.length !== 1) {
    fail(at, kinds.length === 0 ? 'expected one of action, expect, wait or run' : `expected one of action, expect, wait or run, got ${kinds.join(' and ')}`);
    return undefined;
  }
  const kind = kinds[0]!;
  const allowed = new Set<string>([kind, ...KIND_EXTRA[kind]]);
  for (const k of Object.keys(s)) if (!allowed.has(k)) fail([...at, k], `does not apply to a${kind === 'action' || kind === 'expect' ? 'n' : ''} ${kind} step`);
  switch (kind) {
    case 'action': {
      if (s.site === undefined) { fail(at, `missing key "site" (the site to ${s.action!})`); return undefined; }
      if (s.address !== undefined && addressFamily(s.address) === 0) fail([...at, 'address'], `not an IPv4 or IPv6 address: ${show(s.address)}`);
      if (s.force === true && s.reason === undefined) fail([...at, 'force'], 'needs a "reason" (why the pool guard may be overridden)');
      return {
        kind, action: s.action!, site: s.site, ...(s.address !== undefined ? { address: s.address } : {}), force: s.force === true,
        ...(s.reason !== undefined ? { reason: s.reason } : {}), timeoutMs: duration(s.timeout, DEFAULT_ACTION_TIMEOUT_MS, [...at, 'timeout'], fail),
      };
    }
    case 'expect': {
      const e = s.expect!;
      const ea = [...at, 'expect'];
      if (!ctx.vantages.has(e.from)) fail([...ea, 'from'], `no vantage "${e.from}"${ctx.vantages.size ? ` (vantages: ${[...ctx.vantages.keys()].join(', ')})` : ' (the plan has no vantages)'}`);
      if (e.on !== undefined && !ctx.instances.has(e.on)) fail([...ea, 'on'], `no instance "${e.on}" (instances: ${[...ctx.instances].join(', ')})`);
      const wants = (['sites', 'addresses', 'none'] as const).filter((k) => e[k] !== undefined);
      if (wants.length !== 1) fail(ea, `expected exactly one of sites, addresses or none${wants.length ? `, got ${wants.join(' and ')}` : ''}`);
      e.addresses?.forEach((a, i) => { if (addressFamily(a) === 0) fail([...ea, 'addresses', i], `not an IPv4 or IPv6 address: ${show(a)}`); });
      if (s.within === undefined) fail(at, 'missing key "within" (the deadline, e.g. 2s)');
      const want: ExpectWant = e.sites !== undefined ? { sites: e.sites } : e.addresses !== undefined ? { addresses: e.addresses } : { none: true };
      return { kind, name: bareName(e.name), from: e.from, ...(e.on !== undefined ? { on: e.on } : {}), want, withinMs: duration(s.within, 1, [...at, 'within'], fail) };
    }
    case 'wait':
      return { kind, ms: duration(s.wait, 1, [...at, 'wait'], fail) };
    case 'run':
      return { kind, command: s.run!, timeoutMs: duration(s.timeout, DEFAULT_RUN_TIMEOUT_MS, [...at, 'timeout'], fail) };
  }
}

function loadDocument(text: string, file: string): { doc: ReturnType<typeof parseDocument>; lc: LineCounter; raw: unknown } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new PlanError(doc.errors.map((e) => ({ file, line: lc.linePos(e.pos[0]).line, path: '', reason: `invalid YAML: ${e.message}` })));
  }
  try {
    return { doc, lc, raw: doc.toJS() ?? {} };
  } catch (err) {
    throw new PlanError([{ file, path: '', reason: `invalid YAML: ${(err as Error).message}` }]);
  }
}

/** What a plan reads besides its text; the process's by default. */
export interface PlanEnv {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly readText: (file: string) => string | undefined;
}

/**
 * Parses and validates a plan; token files are read relative to the plan's directory. Throws
 * PlanError listing every error found, sorted by line.
 */
export function parsePlan(text: string, file: string, penv: PlanEnv): Plan {
  const { doc, lc, raw } = loadDocument(text, file);
  const issues: PlanIssue[] = [];
  const fail: Fail = (segs, reason) => {
    const line = lineAt(doc, lc, segs);
    issues.push(line === undefined ? { file, path: formatPath(segs), reason } : { file, line, path: formatPath(segs), reason });
  };
  const done = (): never => {
    issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new PlanError(issues);
  };
  if (!checkPlan.Check(raw)) {
    for (const i of schemaIssues(checkPlan, raw, doc, lc)) issues.push({ file, ...i });
    done();
  }
  const p = raw as Static<typeof PlanSchema>;
  const dir = path.dirname(file);

  const unique = (list: readonly { name: string }[], key: string): void => {
    const seen = new Set<string>();
    list.forEach((x, i) => { if (seen.has(x.name)) fail([key, i, 'name'], `"${x.name}" is already the name of another entry`); seen.add(x.name); });
  };
  unique(p.instances, 'instances');
  unique(p.vantages ?? [], 'vantages');
  unique(p.guards ?? [], 'guards');

  const instances: Instance[] = p.instances.map((x, i) => {
    const dns = parseEndpoint(x.dns);
    if (!dns) fail(['instances', i, 'dns'], `expected HOST:PORT, got ${show(x.dns)}`);
    let api = x.api;
    if (x.api !== undefined) {
      try {
        const u = new URL(x.api);
        if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
        api = `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
      } catch {
        fail(['instances', i, 'api'], `expected an http or https URL, got ${show(x.api)}`);
      }
    }
    let token = penv.env['GSLB_ADMIN_TOKEN']?.trim() || undefined;
    if (x.tokenFile !== undefined) {
      const full = path.resolve(dir, x.tokenFile);
      const t = penv.readText(full);
      token = t === undefined ? undefined : tokenFromFile(t);
      if (t === undefined) fail(['instances', i, 'tokenFile'], `cannot read ${full}`);
      else if (token === undefined) fail(['instances', i, 'tokenFile'], `${full}: expected one token (bare, or name:token)`);
    }
    return { name: x.name, dns: dns ?? { host: '', port: 0 }, api, token };
  });

  const vantages = new Map<string, Vantage>();
  (p.vantages ?? []).forEach((v, i) => {
    const subnet = v.subnet === undefined ? undefined : parseSubnet(v.subnet);
    if (v.subnet !== undefined && subnet === undefined) fail(['vantages', i, 'subnet'], `expected a prefix such as 198.51.100.0/24, got ${show(v.subnet)}`);
    const server = v.server === undefined ? undefined : parseEndpoint(v.server);
    if (v.server !== undefined && server === undefined) fail(['vantages', i, 'server'], `expected HOST:PORT, got ${show(v.server)}`);
    if (v.http !== undefined && !v.http.includes('{address}')) fail(['vantages', i, 'http'], `expected a URL with {address}, got ${show(v.http)}`);
    vantages.set(v.name, {
      name: v.name, names: v.names.map(bareName), type: v.type ?? 'A',
      ...(subnet !== undefined ? { subnet } : {}), ...(v.http !== undefined ? { http: v.http } : {}),
      ...(server !== undefined && v.server !== undefined ? { server: { ...server, text: v.server } } : {}),
    });
  });

  const guards: Guard[] = (p.guards ?? []).map((g, i) => {
    if (g.from !== undefined && !vantages.has(g.from)) fail(['guards', i, 'from'], `no vantage "${g.from}"`);
    else if (vantages.size === 0) fail(['guards', i], 'a guard needs vantages to observe from');
    else {
      const asked = [...vantages.values()].filter((v) => g.from === undefined || v.name === g.from).some((v) => v.names.includes(bareName(g.serving)));
      if (!asked) fail(['guards', i, 'serving'], `no vantage${g.from !== undefined ? ` "${g.from}"` : ''} asks for ${g.serving} (add it to a vantage's names)`);
    }
    return { name: g.name, serving: bareName(g.serving), atLeast: g.atLeast, ...(g.from !== undefined ? { from: g.from } : {}) };
  });

  const ctx: Ctx = { fail, vantages, instances: new Set(instances.map((x) => x.name)) };
  const steps = p.steps.map((s, i) => resolveStep(s, ['steps', i], ctx));
  const rollback = (p.rollback ?? []).map((s, i) => resolveStep(s, ['rollback', i], ctx));
  // an expectation of a name its vantage never asks for could never hold
  for (const [key, list] of [['steps', steps], ['rollback', rollback]] as const) {
    list.forEach((s, i) => {
      if (s?.kind !== 'expect') return;
      const v = vantages.get(s.from);
      if (v !== undefined && !v.names.includes(s.name)) fail([key, i, 'expect', 'name'], `vantage "${v.name}" does not ask for ${s.name} (its names: ${v.names.join(', ')})`);
    });
  }
  // actions go through the state API, and `sites` are known only from it
  const needsApi = [...steps, ...rollback].find((s) => s?.kind === 'action' || (s?.kind === 'expect' && 'sites' in s.want));
  if (needsApi !== undefined) {
    p.instances.forEach((x, i) => {
      if (x.api === undefined) fail(['instances', i, 'api'], `missing: the plan has ${needsApi.kind === 'action' ? 'an action' : 'an expectation by sites'}, which needs the instance's state API (or expect by addresses)`);
    });
  }
  const probeEveryMs = duration(p.probeEvery, DEFAULT_PROBE_EVERY_MS, ['probeEvery'], fail);
  const probeTimeoutMs = duration(p.probeTimeout, DEFAULT_PROBE_TIMEOUT_MS, ['probeTimeout'], fail);
  if (issues.length > 0) done();
  return {
    file, dir, name: p.name, probeEveryMs, probeTimeoutMs, instances, vantages: [...vantages.values()], guards,
    steps: steps as Step[], rollback: rollback as Step[],
  };
}

/** Reads and parses a plan file; an unreadable file is a PlanError naming it. */
export async function loadPlan(file: string, env: Readonly<Record<string, string | undefined>> = process.env): Promise<Plan> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new PlanError([{ file, path: '', reason: `cannot read the plan: ${e.code ?? e.message}` }]);
  }
  return parsePlan(text, file, {
    env,
    readText: (f) => {
      try { return readFileSync(f, 'utf8'); } catch { return undefined; }
    },
  });
}

/**
 * GSLB pool definitions: `zones/<zone>.gslb.yaml` -> the validated model of model.ts, with every
 * reference (site, allDown pool, secret, zone name) resolved at load time (ARCHITECTURE
 * principle 3). Errors name the file, the line where known, and the path: `f.yaml:12: pools.web.members[1].address: ...`.
 *
 * The contract's keys (fixed; extend, don't rename):
 *   sites.<site>:  secret (env:NAME | file:/path, or a list: a report signed with any verifies),
 *                  subnets [prefix], staleAfter (duration)
 *   pools.<pool>:  names, ttl, degradedTtl, policy, maxAnswers, allDown,
 *                  members [{ site, address, weight, tier }]
 *
 * Extensions of the contract:
 *   sites.<site>.rise / fall   integers >= 1: consecutive observations to turn a member up / down.
 *                              Default 1/1 for agent-reported sites (the agent debounces its own
 *                              checks already; debouncing twice only delays failover), 2/2 for
 *                              probed sites (our probe is the only debouncer there).
 *   pools.<pool>.startup       servfail | allDown (default servfail): while some member is still
 *                              unknown (not restored from --state-dir, not reported) within its
 *                              site's staleAfter of the start, servfail holds every answer that
 *                              would include it were it up (and the answer when nothing serves);
 *                              allDown answers from what serves now, by allDown when nothing does.
 *                              SERVFAIL makes resolvers ask another name server instead of
 *                              caching a partial or fail-open answer for a whole TTL.
 *   sites.<site>.probe         { type: tcp | http, port, path (http, default "/"), expect (http,
 *                              default [200]), interval (default 5s), timeout (default 2s, or the
 *                              interval when shorter; never above the interval) } for a
 *                              site without an agent; such a site needs no `secret`. For tcp,
 *                              ProbeConfig.path is "" and expect is [].
 *   pools.<pool>.guard         { minServing: N } (1..members): an operator action (drain,
 *                              force-down) that would leave fewer than N members of the pool
 *                              serving is refused unless forced with a reason (see GslbState.planAdmin).
 *
 * Defaults: staleAfter 3s; pool ttl 20, degradedTtl min(ttl, 5), policy weighted, maxAnswers 1,
 * allDown all, names []; member weight 1, tier 1. Durations: `500ms`, `3s`, `1m`, `1h`, decimals
 * allowed (`1.5s`), always with a unit (a bare number is an error); they must be above 0.
 *
 * Choices beyond the contract, each because a silent mistake would be worse than a load error:
 *   - site and pool names are 1-63 letters, digits, `-` or `_` (they appear in reports, in
 *     `pool:<name>` and in error paths);
 *   - `file:` secrets are read relative to the YAML file's directory when not absolute;
 *   - subnets are `address/length` with no host bits set; a subnet listed twice is an error;
 *   - degradedTtl may not exceed ttl; a probe's timeout may not exceed its interval;
 *   - names may not be wildcards (`*`) and may not repeat within or across pools;
 *   - member sites and `pool:<name>` resolve within the same file (each file lists the sites it
 *     uses; mergeGslbConfigs requires a site defined in several files to be defined identically).
 */
import { Type } from '@sinclair/typebox';
import type { Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { LineCounter, parseDocument } from 'yaml';
import { canonicalName, isInZone, labelsOf } from '../wire/name.js';
import { parseAddress, parsePrefix } from '../../shared/ip.js';
import { checkedDuration, DurationSchema as Duration, resolveSecrets, SecretSchema } from '../../shared/config/values.js';
import type {
  AllDown,
  GslbConfig,
  MemberConfig,
  PolicyName,
  PoolConfig,
  Prefix,
  ProbeConfig,
  SiteConfig,
} from './model.js';
import { formatPath, lineAt, NAME_RE, schemaIssues, show } from '../../shared/config/yaml-errors.js';
import type { Seg } from '../../shared/config/yaml-errors.js';

// ---------------------------------------------------------------------------------------------
// Schema: the shape of one file. Values that need parsing (durations, addresses, allDown,
// secrets) are strings here and are checked in code below, with their own wording.


const POLICIES = ['weighted', 'failover', 'topology', 'least-load', 'hashed', 'all'] as const satisfies readonly PolicyName[];
const MAX_TTL = 2147483647;

const ProbeSchema = Type.Object({
  type: Type.Union([Type.Literal('tcp'), Type.Literal('http')]),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  path: Type.Optional(Type.String()),
  expect: Type.Optional(Type.Array(Type.Integer({ minimum: 100, maximum: 599 }))),
  interval: Type.Optional(Duration),
  timeout: Type.Optional(Duration),
}, { additionalProperties: false });

const SiteSchema = Type.Object({
  secret: Type.Optional(SecretSchema),
  subnets: Type.Optional(Type.Array(Type.String())),
  staleAfter: Type.Optional(Duration),
  rise: Type.Optional(Type.Integer({ minimum: 1 })),
  fall: Type.Optional(Type.Integer({ minimum: 1 })),
  probe: Type.Optional(ProbeSchema),
}, { additionalProperties: false });

const MemberSchema = Type.Object({
  site: Type.String(),
  address: Type.String(),
  weight: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  tier: Type.Optional(Type.Integer({ minimum: 1 })),
}, { additionalProperties: false });

const PoolSchema = Type.Object({
  names: Type.Optional(Type.Array(Type.String())),
  ttl: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_TTL })),
  degradedTtl: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_TTL })),
  policy: Type.Optional(Type.Union(POLICIES.map((p) => Type.Literal(p)))),
  maxAnswers: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
  allDown: Type.Optional(Type.String()),
  startup: Type.Optional(Type.Union([Type.Literal('servfail'), Type.Literal('allDown')])),
  guard: Type.Optional(Type.Object({
    minServing: Type.Integer({ minimum: 1, maximum: 65535 }),
  }, { additionalProperties: false })),
  members: Type.Array(MemberSchema),
}, { additionalProperties: false });

/** The schema of one `<zone>.gslb.yaml` file (structure and ranges; references are checked by parseGslbYaml). */
export const GslbFileSchema = Type.Object({
  sites: Type.Optional(Type.Record(Type.String(), SiteSchema)),
  pools: Type.Optional(Type.Record(Type.String(), PoolSchema)),
}, { additionalProperties: false });

/** One `<zone>.gslb.yaml` file as written, after the schema accepted it. */
export type GslbFileInput = Static<typeof GslbFileSchema>;

const checkFile = TypeCompiler.Compile(GslbFileSchema);

// ---------------------------------------------------------------------------------------------
// Errors

/** A configuration error at one path of one file: `file:line: path: reason` (or `file: path: reason`). */
export class GslbConfigError extends Error {
  constructor(readonly file: string, readonly path: string, readonly reason: string, readonly line?: number) {
    const where = line !== undefined && line > 0 ? `${file}:${line}` : file;
    super(path === '' ? `${where}: ${reason}` : `${where}: ${path}: ${reason}`);
    this.name = 'GslbConfigError';
  }
}

/** One or more GSLB configuration errors; `message` has one error per line. */
export class GslbLoadError extends Error {
  constructor(readonly errors: readonly GslbConfigError[]) {
    super(errors.map((e) => e.message).join('\n'));
    this.name = 'GslbLoadError';
  }
}

// ---------------------------------------------------------------------------------------------
// Result of one file

/** The sites and pools of one file, validated and resolved, before merging with other files. */
export interface GslbFileConfig {
  readonly file: string;
  /** canonical origin of the zone the file belongs to */
  readonly zone: string;
  readonly sites: ReadonlyMap<string, SiteConfig>;
  /** `file:line: path: reason` of what loads but should be fixed (a secret shorter than 32 bytes) */
  readonly warnings: readonly string[];
  readonly pools: ReadonlyMap<string, PoolConfig>;
  /** 1-based line of a path such as `pools.web.names[0]` in the file, for errors found later */
  readonly lineOf: (path: string) => number | undefined;
}




function parsePathText(p: string): Seg[] {
  const segs: Seg[] = [];
  for (const m of p.matchAll(/\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]|([^.[\]]+)/g)) {
    if (m[1] !== undefined) segs.push(Number(m[1]));
    else if (m[2] !== undefined) segs.push(JSON.parse(`"${m[2]}"`) as string);
    else if (m[3] !== undefined) segs.push(m[3]);
  }
  return segs;
}


// ---------------------------------------------------------------------------------------------
// Schema errors in our words






// ---------------------------------------------------------------------------------------------
// Addresses and prefixes (private on purpose: this file must not depend on prefix.ts)

/** An address as the loader keeps it, or undefined when `text` is not one (the caller words the error). */
function parseIp(text: string): { family: 4 | 6; bytes: Uint8Array; text: string } | undefined {
  try {
    const a = parseAddress(text);
    return { family: a.family, bytes: a.bytes, text: a.canonical };
  } catch {
    return undefined;
  }
}


// ---------------------------------------------------------------------------------------------
// The parser

type Fail = (segs: readonly Seg[], reason: string) => void;
type DurationOf = (segs: readonly Seg[], v: string | number | undefined, dflt: number) => number;

/** A probed site's probe block (a site without an agent): http keys only for http, timeout within the interval. */
function resolveProbe(p: Static<typeof ProbeSchema>, pAt: readonly Seg[], fail: Fail, duration: DurationOf): ProbeConfig {
  if (p.type === 'tcp') {
    if (p.path !== undefined) fail([...pAt, 'path'], 'only for type http');
    if (p.expect !== undefined) fail([...pAt, 'expect'], 'only for type http');
  }
  if (p.path !== undefined && !p.path.startsWith('/')) fail([...pAt, 'path'], `must start with "/", got ${show(p.path)}`);
  if (p.expect !== undefined && p.expect.length === 0) fail([...pAt, 'expect'], 'needs at least one status code');
  const intervalMs = duration([...pAt, 'interval'], p.interval, 5000);
  const timeoutMs = duration([...pAt, 'timeout'], p.timeout, Math.min(2000, intervalMs));
  if (timeoutMs > intervalMs) fail([...pAt, 'timeout'], `must not exceed the interval (${intervalMs}ms)`);
  return {
    type: p.type,
    port: p.port,
    path: p.type === 'http' ? p.path ?? '/' : '',
    expect: p.type === 'http' ? p.expect ?? [200] : [],
    intervalMs,
    timeoutMs,
  };
}

/** A site's client subnets (topology): prefixes without host bits, each once. */
function resolveSubnets(list: readonly string[], at: readonly Seg[], fail: Fail): Prefix[] {
  const subnets: Prefix[] = [];
  list.forEach((text, i) => {
    if (!text.includes('/')) return fail([...at, i], `expected a subnet as address/length, got ${JSON.stringify(text)}`);
    let p: Prefix;
    try {
      p = parsePrefix(text);
    } catch (err) {
      return fail([...at, i], (err as Error).message);
    }
    const dup = subnets.findIndex((q) => q.text === p.text);
    if (dup >= 0) return fail([...at, i], `${p.text} is listed twice (also subnets[${dup}])`);
    subnets.push(p);
  });
  return subnets;
}

/** A pool's members: a configured site, an address, each (site, address) once. */
function resolveMembers(list: Static<typeof PoolSchema>['members'], at: readonly Seg[], rawSites: object, fail: Fail): MemberConfig[] {
  const members: MemberConfig[] = [];
  if (list.length === 0) fail(at, 'a pool needs at least one member');
  list.forEach((m, i) => {
    const mAt = [...at, i];
    let ok = true;
    if (!Object.hasOwn(rawSites, m.site)) {
      const known = Object.keys(rawSites);
      fail([...mAt, 'site'], `unknown site "${m.site}" (${known.length ? `sites: ${known.join(', ')}` : 'no sites are defined'})`);
      ok = false;
    }
    const ip = parseIp(m.address);
    if (!ip) {
      fail([...mAt, 'address'], `not an IPv4 or IPv6 address: ${show(m.address)}`);
      return;
    }
    const dup = members.find((x) => x.site === m.site && x.address === ip.text);
    if (dup) {
      fail(mAt, `duplicate member: site ${m.site} address ${ip.text} is also members[${dup.index}]`);
      return;
    }
    if (!ok) return;
    members.push({
      index: i,
      site: m.site,
      address: ip.text,
      family: ip.family,
      addressBytes: ip.bytes,
      weight: m.weight ?? 1,
      tier: m.tier ?? 1,
    });
  });
  return members;
}

/** allDown chains must end: each loop is reported once, at its first pool in file order. */
function reportAllDownLoops(order: readonly string[], allDownRef: ReadonlyMap<string, string>, fail: Fail): void {
  const inLoop = new Set<string>();
  for (const start of order) {
    const chain = [start];
    for (let cur = allDownRef.get(start); cur !== undefined; cur = allDownRef.get(cur)) {
      const at = chain.indexOf(cur);
      if (at < 0) { chain.push(cur); continue; }
      const loop = chain.slice(at);
      if (!loop.some((x) => inLoop.has(x))) {
        const first = loop.reduce((a, b) => (order.indexOf(a) <= order.indexOf(b) ? a : b));
        const k = loop.indexOf(first);
        const shown = [...loop.slice(k), ...loop.slice(0, k), first];
        fail(['pools', first, 'allDown'], `allDown pools form a loop: ${shown.join(' -> ')}`);
        loop.forEach((x) => inLoop.add(x));
      }
      break;
    }
  }
}

/**
 * Parses and validates one `<zone>.gslb.yaml` (zone: its canonical origin), resolving secrets from
 * `env` and the file system. Throws GslbLoadError listing every error found in the file.
 */
export function parseGslbYaml(text: string, file: string, zone: string, env: NodeJS.ProcessEnv = process.env): GslbFileConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const errors: GslbConfigError[] = [];
  const fail = (segs: readonly Seg[], reason: string): void => {
    errors.push(new GslbConfigError(file, formatPath(segs), reason, lineAt(doc, lc, segs)));
  };
  const warnings: string[] = [];
  const warn = (segs: readonly Seg[], reason: string): void => {
    warnings.push(new GslbConfigError(file, formatPath(segs), reason, lineAt(doc, lc, segs)).message);
  };
  if (doc.errors.length > 0) {
    throw new GslbLoadError(doc.errors.map((e) =>
      new GslbConfigError(file, '', `invalid YAML: ${e.message}`, lc.linePos(e.pos[0]).line)));
  }
  let raw: unknown;
  try {
    raw = doc.toJS() ?? {};
  } catch (err) {
    throw new GslbLoadError([new GslbConfigError(file, '', `invalid YAML: ${(err as Error).message}`)]);
  }

  if (!checkFile.Check(raw)) {
    for (const i of schemaIssues(checkFile, raw, doc, lc)) errors.push(new GslbConfigError(file, i.path, i.reason, i.line));
    errors.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new GslbLoadError(errors);
  }
  const input = raw;

  const duration: DurationOf = (segs, v, dflt) => checkedDuration(v, dflt, (reason) => fail(segs, reason));

  // ---- sites
  const sites = new Map<string, SiteConfig>();
  const rawSites = input.sites ?? {};
  for (const [name, s] of Object.entries(rawSites)) {
    const at: Seg[] = ['sites', name];
    if (!NAME_RE.test(name)) fail(at, `site name must be 1-63 letters, digits, "-" or "_", got ${JSON.stringify(name)}`);

    const probe = s.probe ? resolveProbe(s.probe, [...at, 'probe'], fail, duration) : undefined;

    let secrets: Buffer[] = [];
    if (s.secret === undefined) {
      if (!probe) fail(at, 'missing key "secret" (env:NAME or file:/path; only a site with a probe needs none)');
    } else {
      const segs = (i: number | undefined): Seg[] => (i === undefined ? [...at, 'secret'] : [...at, 'secret', i]);
      secrets = resolveSecrets(s.secret, file, env, (i, reason) => fail(segs(i), reason), (i, reason) => warn(segs(i), reason)) ?? [];
    }

    const subnets = resolveSubnets(s.subnets ?? [], [...at, 'subnets'], fail);

    sites.set(name, {
      name,
      secrets,
      secretRef: s.secret,
      subnets,
      staleAfterMs: duration([...at, 'staleAfter'], s.staleAfter, 3000),
      rise: s.rise ?? (probe ? 2 : 1),
      fall: s.fall ?? (probe ? 2 : 1),
      probe,
    });
  }

  // ---- pools
  const pools = new Map<string, PoolConfig>();
  const rawPools = input.pools ?? {};
  const poolNames = new Set(Object.keys(rawPools));
  const nameOwner = new Map<string, { pool: string; index: number }>();
  const allDownRef = new Map<string, string>();
  for (const [name, p] of Object.entries(rawPools)) {
    const at: Seg[] = ['pools', name];
    if (!NAME_RE.test(name)) fail(at, `pool name must be 1-63 letters, digits, "-" or "_", got ${JSON.stringify(name)}`);

    const ttl = p.ttl ?? 20;
    const degradedTtl = p.degradedTtl ?? Math.min(ttl, 5);
    if (degradedTtl > ttl) fail([...at, 'degradedTtl'], `must not exceed ttl (${ttl}), got ${degradedTtl}`);

    let allDown: AllDown = { kind: 'all' };
    if (p.allDown !== undefined) {
      const v = p.allDown;
      if (v === 'all' || v === 'first-tier' || v === 'nodata') {
        allDown = { kind: v };
      } else if (v.startsWith('pool:')) {
        const target = v.slice(5);
        if (target === name) fail([...at, 'allDown'], 'a pool cannot be its own allDown pool');
        else if (!poolNames.has(target)) fail([...at, 'allDown'], `unknown pool "${target}"`);
        else allDownRef.set(name, target);
        allDown = { kind: 'pool', pool: target };
      } else {
        fail([...at, 'allDown'], `expected all | first-tier | nodata | pool:<name>, got ${show(v)}`);
      }
    }

    const names: string[] = [];
    (p.names ?? []).forEach((n, i) => {
      const nAt = [...at, 'names', i];
      const owner = ownerName(n, zone);
      if (owner.error !== undefined) return fail(nAt, owner.error);
      const prev = nameOwner.get(owner.name);
      if (prev) {
        return fail(nAt, prev.pool === name
          ? `${owner.name} is listed twice (also names[${prev.index}])`
          : `${owner.name} is also answered by pool ${prev.pool}`);
      }
      nameOwner.set(owner.name, { pool: name, index: i });
      names.push(owner.name);
    });

    const members = resolveMembers(p.members, [...at, 'members'], rawSites, fail);

    if (p.guard !== undefined && p.guard.minServing > p.members.length) {
      fail([...at, 'guard', 'minServing'], `must not exceed the number of members (${p.members.length}), got ${p.guard.minServing}`);
    }

    pools.set(name, {
      ...(p.guard !== undefined ? { guard: { minServing: p.guard.minServing } } : {}),
      name,
      zone,
      names,
      ttl,
      degradedTtl,
      policy: p.policy ?? 'weighted',
      maxAnswers: p.maxAnswers ?? 1,
      allDown,
      startup: p.startup ?? 'servfail',
      members,
    });
  }

  reportAllDownLoops([...poolNames], allDownRef, fail);

  if (errors.length) {
    // found site by site, pool by pool; read in file order
    errors.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new GslbLoadError(errors);
  }
  return { file, zone, sites, pools, warnings, lineOf: (p: string) => lineAt(doc, lc, parsePathText(p)) };
}


/** Ends with a label separator, not with an escaped dot (`a\\.` is relative). */
function isAbsolute(n: string): boolean {
  if (!n.endsWith('.')) return false;
  let bs = 0;
  for (let i = n.length - 2; i >= 0 && n[i] === '\\'; i--) bs++;
  return bs % 2 === 0;
}

/** Canonical owner name of a `names:` entry, or why it is not one. */
function ownerName(n: string, zone: string): { name: string; error?: undefined } | { name?: undefined; error: string } {
  if (n === '@') return { name: zone };
  if (n === '' || /\s/.test(n)) return { error: `not a domain name: ${JSON.stringify(n)}` };
  let name: string;
  try {
    name = canonicalName(isAbsolute(n) ? n : zone === '.' ? `${n}.` : `${n}.${zone}`);
    if (labelsOf(name).some((l) => l.length === 1 && l[0] === 0x2a)) {
      return { error: `${name}: wildcard names cannot be GSLB names` };
    }
  } catch (err) {
    return { error: `not a domain name: ${(err as Error).message}` };
  }
  if (!isInZone(name, zone)) return { error: `${name} is outside the zone ${zone}` };
  return { name };
}

// ---------------------------------------------------------------------------------------------
// Merging files

function siteDifferences(a: SiteConfig, b: SiteConfig): string[] {
  const diff: string[] = [];
  if (JSON.stringify(a.secretRef) !== JSON.stringify(b.secretRef)) diff.push('secret');
  if (a.subnets.map((p) => p.text).join(',') !== b.subnets.map((p) => p.text).join(',')) diff.push('subnets');
  if (a.staleAfterMs !== b.staleAfterMs) diff.push('staleAfter');
  if (a.rise !== b.rise) diff.push('rise');
  if (a.fall !== b.fall) diff.push('fall');
  if (JSON.stringify(a.probe) !== JSON.stringify(b.probe)) diff.push('probe');
  return diff;
}

/**
 * Combines the files of a zones directory: a site may appear in several files only if defined
 * identically; pool names, GSLB names and site subnets are unique. Throws GslbLoadError.
 */
export function mergeGslbConfigs(files: readonly GslbFileConfig[]): GslbConfig {
  const errors: GslbConfigError[] = [];
  const fail = (f: GslbFileConfig, p: string, reason: string): void => {
    errors.push(new GslbConfigError(f.file, p, reason, f.lineOf(p)));
  };
  const sites = new Map<string, SiteConfig>();
  const siteFile = new Map<string, GslbFileConfig>();
  const subnetOwner = new Map<string, { site: string; index: number }>();
  const pools = new Map<string, PoolConfig>();
  const poolFile = new Map<string, GslbFileConfig>();
  const byName = new Map<string, PoolConfig>();

  for (const f of files) {
    for (const s of f.sites.values()) {
      const prev = sites.get(s.name);
      if (prev) {
        const diff = siteDifferences(prev, s);
        if (diff.length) {
          fail(f, `sites.${s.name}`, `site ${s.name} is defined differently in ${siteFile.get(s.name)!.file} (${diff.join(', ')} differ)`);
        }
        continue;
      }
      s.subnets.forEach((p, i) => {
        const owner = subnetOwner.get(p.text);
        // topology needs one site per subnet; the same subnet in two sites makes the answer a coin toss
        if (owner) fail(f, `sites.${s.name}.subnets[${i}]`, `${p.text} is also a subnet of site ${owner.site}`);
        else subnetOwner.set(p.text, { site: s.name, index: i });
      });
      sites.set(s.name, s);
      siteFile.set(s.name, f);
    }
  }
  for (const f of files) {
    for (const p of f.pools.values()) {
      const prev = poolFile.get(p.name);
      if (prev) {
        fail(f, `pools.${p.name}`, `pool ${p.name} is also defined in ${prev.file}`);
        continue;
      }
      pools.set(p.name, p);
      poolFile.set(p.name, f);
      p.names.forEach((n, i) => {
        const other = byName.get(n);
        if (other) fail(f, `pools.${p.name}.names[${i}]`, `${n} is also answered by pool ${other.name} (${poolFile.get(other.name)!.file})`);
        else byName.set(n, p);
      });
    }
  }
  if (errors.length) throw new GslbLoadError(errors);
  return { sites, pools, byName, warnings: files.flatMap((f) => f.warnings) };
}

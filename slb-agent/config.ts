/**
 * slb-agent configuration: `site.yaml` -> AgentConfig, validated and resolved at load time
 * (ARCHITECTURE principle 3). Errors name the file, the line where known and the path:
 * `site.yaml:12: vips[0].realServers[1].address: not an IPv4 or IPv6 address: "x"`.
 *
 * The contract's keys (fixed; extend, don't rename):
 *   site, agent, secret (env:NAME | file:/path, or a list: the first signs), dns [url], report { interval }, api HOST:PORT,
 *   vips [{ name, address, port, protocol, capacity, quorum, forwarder, check, realServers }]
 *
 * Extensions of the contract:
 *   report.timeout               per-DNS-instance request timeout (default 1s)
 *   forwarder { cleanupOnExit }  agent-wide: on exit remove the kernel forwarding (true) or leave
 *                                it so traffic keeps flowing across a restart (false, default);
 *                                `--cleanup-on-exit` overrides it; { drainTimeout } how long an
 *                                agent that handed over to a successor lets its open proxy flows
 *                                finish (default 30s, DEFAULT_DRAIN_TIMEOUT_MS)
 *   vips[].forwarder             { mode, scheduler, interface, persistence, dscp, tunnel, vni, snat,
 *                                flowTimeout, shPorts (sh: hash address and port, L3+L4) }; a VIP without this block is health-checked and
 *                                reported only (the agent forwards nothing for it, as before the
 *                                forwarder existed), with it the agent runs the VIP's data plane:
 *                                the userspace proxy for `proxy`, nftables for the kernel modes
 *                                dsr | l3dsr-dscp | l3dsr-tunnel | nat
 *   vips[].vipCheck              optional check of the VIP itself (its address and port, through the
 *                                forwarder; same types and keys as `check`, nothing merged); after
 *                                `fall` failures the VIP is reported down with the reason; its
 *                                startState defaults to up (it takes a VIP down, never holds it)
 *   pinger                       optional MAC-keepalive pinger (schema and defaults: pinger/config.ts)
 *   vips[].check / realServers[].check   see CheckConfig; a real server's `check` without a `type`
 *                                (or with the VIP's type) is merged key by key over the VIP's
 *                                check; with another type it replaces it
 *
 * Defaults: report.interval 1s, report.timeout 1s, api 127.0.0.1:9100; VIP protocol tcp,
 * capacity 0 (unknown), quorum 1, forwarder (when written) { mode: proxy, scheduler: wrr, tunnel:
 * vxlan, vni 4242 (DEFAULT_VNI), snat: true, flowTimeout: the data plane's }, check { type: tcp };
 * check interval 2s, timeout 1s, rise 2, fall 2, startState down, jitter 0.1, port: the real
 * server's; http(s) method GET, path /, expect [200], insecure false; dns qtype A (AAAA when
 * `address` is IPv6), rcode NOERROR; real server weight 1, backup false.
 * Durations: `500ms`, `2s`, `1m`, `1h`, decimals allowed, always with a unit; above 0.
 *
 * Choices beyond the contract, each because a silent mistake would be worse than a load error:
 *   - site, agent and VIP names are 1-63 letters, digits, `-` or `_` (they appear in reports,
 *     metrics and error paths);
 *   - `file:` secrets are read relative to the YAML file's directory when not absolute; one
 *     trailing newline is not part of the secret;
 *   - keys that do not apply to a check's type are errors (`insecure` on a tcp check);
 *   - a check's timeout must be below its interval (a probe never overlaps the next one);
 *   - two VIPs may not share address, port and protocol; dns URLs may not repeat;
 *   - forwarder keys only where their mode uses them: the kernel modes need `interface`; `dscp`
 *     only and always with l3dsr-dscp, unique per interface (real servers tell VIPs apart by it);
 *     `tunnel` only with l3dsr-tunnel, `vni` only with its vxlan; `snat` only with nat; `lc`/`wlc`
 *     only where the data plane sees connections (proxy, nat); dsr and l3dsr cannot rewrite ports,
 *     so there every real server's port must be the VIP's.
 */
import { readFile } from 'node:fs/promises';
import { Type } from '@sinclair/typebox';
import type { Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { LineCounter, parseDocument } from 'yaml';
import { formatPath, lineAt, NAME_RE, schemaIssues, show } from '../shared/config/yaml-errors.js';
import type { Seg } from '../shared/config/yaml-errors.js';
import { hostPortOrReason, parseAddress } from '../shared/ip.js';
import { SCHEDULER_KINDS } from './forwarder/model.js';
import type { SchedulerKind } from './forwarder/model.js';
import { checkedDuration, DurationSchema as Duration, resolveSecrets, SecretSchema } from '../shared/config/values.js';
import { DEFAULT_VNI } from './forwarder/tunnel.js';
import { PingerSchema, resolvePinger } from './pinger/config.js';
import type { PingerConfig } from './pinger/config.js';

// ---------------------------------------------------------------------------------------------
// Resolved types (what the rest of the agent uses)

/** Check types, as written in `check.type` (from the schema below). */
export type CheckType = Static<typeof CheckTypeSchema>;

/** Keys every check has, resolved with defaults. */
/** Checks per kept-alive connection before a fresh one proves that new connections still work. */
const DEFAULT_REUSE = 60;

export interface CheckCommon {
  readonly intervalMs: number;
  /** always below intervalMs */
  readonly timeoutMs: number;
  readonly rise: number;
  readonly fall: number;
  /** the state before the first rise/fall run completes; default down (no optimistic start) */
  readonly startState: 'up' | 'down';
  /** port to probe; undefined means the real server's port (agent checks always have one) */
  readonly port?: number;
  /** fraction 0..0.5 of the interval by which each run is randomly shifted */
  readonly jitter: number;
}

/** TCP connect. */
export interface TcpCheckConfig extends CheckCommon { readonly type: 'tcp' }

/** HTTP or HTTPS request: status in `expect` and, when given, the body matches `body`. */
export interface HttpCheckConfig extends CheckCommon {
  readonly type: 'http' | 'https';
  readonly method: 'GET' | 'HEAD';
  readonly path: string;
  /** Host header; default: the target's address and port */
  readonly host?: string;
  readonly expect: readonly number[];
  /** regular expression source (validated at load) the body must match */
  readonly body?: string;
  /** https: skip certificate verification */
  readonly insecure: boolean;
  /**
   * http: keep one connection per real server and send each check on it (Envoy's default), new
   * connection at least every `reuseConnection` checks; 0 = a new connection per check (keepalived)
   */
  readonly reuseConnection: number;
}

/** DNS rcodes a check can expect (from the schema below). */
export type DnsRcode = Static<typeof RcodeSchema>;

/** DNS query over UDP: the answer's rcode and, when given, an address in the answer. */
export interface DnsCheckConfig extends CheckCommon {
  readonly type: 'dns';
  /** absolute name without the trailing dot, e.g. `www.example.com` */
  readonly name: string;
  readonly qtype: string;
  /** numeric RR type of qtype */
  readonly qtypeCode: number;
  readonly rcode: DnsRcode;
  /** canonical IPv4/IPv6 text expected among the answer's A/AAAA records */
  readonly address?: string;
}

/** ICMP echo. */
export interface IcmpCheckConfig extends CheckCommon { readonly type: 'icmp' }

/** A command (argv, no shell); exit code 0 passes. */
export interface ExecCheckConfig extends CheckCommon {
  readonly type: 'exec';
  readonly command: readonly string[];
}

/** HAProxy agent-check: one line of words from the real server's agent port. */
export interface AgentCheckConfig extends CheckCommon {
  readonly type: 'agent';
  readonly port: number;
}

/** A resolved health check, discriminated on `type`. */
export type CheckConfig =
  | TcpCheckConfig | HttpCheckConfig | DnsCheckConfig | IcmpCheckConfig | ExecCheckConfig | AgentCheckConfig;

/** Forwarder modes: `proxy` runs in userspace, the others are kernel (nftables) modes. */
export type ForwarderMode = Static<typeof ModeSchema>;

/** A VIP's forwarder settings. */
export interface ForwarderConfig {
  readonly mode: ForwarderMode;
  readonly scheduler: SchedulerKind;
  /** network interface the forwarder uses (dsr: where real servers are reached) */
  readonly interface?: string;
  /** source persistence timeout in ms; 0 = none */
  readonly persistenceMs: number;
  /** l3dsr-dscp only (required there): 1-63 */
  readonly dscp?: number;
  /** l3dsr-tunnel only; default vxlan (ipip and gre fail at apply time on kernels without them) */
  readonly tunnel?: 'vxlan' | 'ipip' | 'gre';
  /** l3dsr-tunnel with vxlan only: 1..16777215, default DEFAULT_VNI */
  readonly vni?: number;
  /** nat only: also rewrite the source address (full NAT, default true); false = DNAT only, the LB must be the real servers' gateway */
  readonly snat?: boolean;
  /** how long an idle flow is remembered (kernel flow table, proxy UDP sessions); absent: the data plane's default */
  readonly flowTimeoutMs?: number;
  /** sh only: hash the source address and port (L3+L4) instead of the address (L3) */
  readonly shPorts?: boolean;
}

/** How long an agent that handed over lets its open proxy flows finish, unless `forwarder.drainTimeout` says. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

/** The modes the kernel (nftables) data plane serves. */
export const KERNEL_MODES: readonly ForwarderMode[] = ['dsr', 'l3dsr-dscp', 'l3dsr-tunnel', 'nat'];

/** One real server of a VIP with its effective check. */
export interface RealServerConfig {
  /** position in the VIP's `realServers` list */
  readonly index: number;
  /** canonical IPv4/IPv6 text */
  readonly address: string;
  readonly family: 4 | 6;
  readonly port: number;
  readonly weight: number;
  readonly backup: boolean;
  /** the VIP's check, or this server's override merged over it */
  readonly check: CheckConfig;
}

/** One VIP. */
export interface VipConfig {
  readonly name: string;
  /** canonical IPv4/IPv6 text: the pool member address in gslb-dns */
  readonly address: string;
  readonly family: 4 | 6;
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
  readonly capacity: number;
  /** healthy primary real servers needed for the VIP to be up; 1..number of primaries */
  readonly quorum: number;
  /** absent: the agent only checks and reports this VIP, it forwards nothing for it */
  readonly forwarder?: ForwarderConfig;
  /** the VIP-level check (real servers may override it) */
  readonly check: CheckConfig;
  /** a check of the VIP's own address and port (through the forwarder) */
  readonly vipCheck?: CheckConfig;
  readonly realServers: readonly RealServerConfig[];
}

/** The whole agent configuration, validated, with the secret resolved. */
export interface AgentConfig {
  readonly file: string;
  readonly site: string;
  readonly agent: string;
  /** the key reports are signed with: the first of `secret:` (a list keeps the others valid at gslb-dns while keys rotate) */
  readonly secret: Buffer;
  /** the reference as written (`env:NAME` / `file:/path`, or a list of them), safe to show */
  readonly secretRef: string | readonly string[];
  /** `file:line: path: reason` of what loads but should be fixed (a secret shorter than 32 bytes) */
  readonly warnings: readonly string[];
  /** gslb-dns API base URLs, without a trailing `/` */
  readonly dns: readonly string[];
  readonly report: { readonly intervalMs: number; readonly timeoutMs: number };
  readonly api: { readonly host: string; readonly port: number };
  /** agent-wide forwarder settings; drainTimeoutMs only when written (DEFAULT_DRAIN_TIMEOUT_MS) */
  readonly forwarder: { readonly cleanupOnExit: boolean; readonly drainTimeoutMs?: number };
  readonly vips: readonly VipConfig[];
  /** the MAC-keepalive pinger, when the file has a `pinger:` block */
  readonly pinger?: PingerConfig;
}

// ---------------------------------------------------------------------------------------------
// Schema: the shape of the file. Values that need parsing (durations, addresses, secrets, URLs)
// are strings here and are checked in code below, with their own wording.

const Port = Type.Integer({ minimum: 1, maximum: 65535 });
/** A union of string literals; Static<> of it is the union of `xs` (so no cast is needed downstream). */
const lits = <T extends string>(xs: readonly T[]) => Type.Union(xs.map((x) => Type.Literal(x)));

const CHECK_TYPES = ['tcp', 'http', 'https', 'dns', 'icmp', 'exec', 'agent'] as const;
const CheckTypeSchema = lits(CHECK_TYPES);
const RcodeSchema = lits(['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED']);
const RCODE_VALUE: Record<DnsRcode, number> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 };
const QTYPES: Record<string, number> = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, NAPTR: 35, DS: 43,
  DNSKEY: 48, HTTPS: 65, SVCB: 64, CAA: 257, ANY: 255,
};
const ModeSchema = lits(['dsr', 'l3dsr-dscp', 'l3dsr-tunnel', 'nat', 'proxy']);

/** Every check key; which ones apply to which type is checked in code (for a clearer error). */
const CheckSchema = Type.Object({
  type: Type.Optional(CheckTypeSchema),
  interval: Type.Optional(Duration),
  timeout: Type.Optional(Duration),
  rise: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  fall: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  startState: Type.Optional(lits(['down', 'up'])),
  port: Type.Optional(Port),
  jitter: Type.Optional(Type.Number({ minimum: 0, maximum: 0.5 })),
  method: Type.Optional(lits(['GET', 'HEAD'])),
  path: Type.Optional(Type.String()),
  host: Type.Optional(Type.String()),
  expect: Type.Optional(Type.Array(Type.Integer({ minimum: 100, maximum: 599 }))),
  body: Type.Optional(Type.String()),
  insecure: Type.Optional(Type.Boolean()),
  reuseConnection: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
  name: Type.Optional(Type.String()),
  qtype: Type.Optional(Type.String()),
  rcode: Type.Optional(RcodeSchema),
  address: Type.Optional(Type.String()),
  command: Type.Optional(Type.Array(Type.String())),
}, { additionalProperties: false });

type CheckKey = keyof typeof CheckSchema.properties;
const COMMON_KEYS: readonly CheckKey[] = ['type', 'interval', 'timeout', 'rise', 'fall', 'startState', 'port', 'jitter'];
const TYPE_KEYS: Record<CheckType, readonly CheckKey[]> = {
  tcp: [],
  http: ['method', 'path', 'host', 'expect', 'body', 'reuseConnection'],
  https: ['method', 'path', 'host', 'expect', 'body', 'insecure'],
  dns: ['name', 'qtype', 'rcode', 'address'],
  icmp: [],
  exec: ['command'],
  agent: [],
};
/** Every check key (COMMON_KEYS and TYPE_KEYS name each key of CheckSchema), to walk a RawCheck by its typed keys. */
const CHECK_KEYS: readonly CheckKey[] = [...new Set([...COMMON_KEYS, ...CHECK_TYPES.flatMap((t) => TYPE_KEYS[t])])];

const ForwarderSchema = Type.Object({
  mode: Type.Optional(ModeSchema),
  scheduler: Type.Optional(lits(SCHEDULER_KINDS)),
  interface: Type.Optional(Type.String({ minLength: 1, maxLength: 15 })),
  persistence: Type.Optional(Duration),
  dscp: Type.Optional(Type.Integer({ minimum: 1, maximum: 63 })),
  tunnel: Type.Optional(lits(['vxlan', 'ipip', 'gre'])),
  vni: Type.Optional(Type.Integer({ minimum: 1, maximum: 16_777_215 })),
  snat: Type.Optional(Type.Boolean()),
  flowTimeout: Type.Optional(Duration),
  shPorts: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });

const RealServerSchema = Type.Object({
  address: Type.String(),
  port: Port,
  weight: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  backup: Type.Optional(Type.Boolean()),
  check: Type.Optional(CheckSchema),
}, { additionalProperties: false });

const VipSchema = Type.Object({
  name: Type.String(),
  address: Type.String(),
  port: Port,
  protocol: Type.Optional(lits(['tcp', 'udp'])),
  capacity: Type.Optional(Type.Integer({ minimum: 0 })),
  quorum: Type.Optional(Type.Integer({ minimum: 1 })),
  forwarder: Type.Optional(ForwarderSchema),
  check: Type.Optional(CheckSchema),
  vipCheck: Type.Optional(CheckSchema),
  realServers: Type.Array(RealServerSchema),
}, { additionalProperties: false });

/** The schema of an slb-agent YAML file (structure and ranges; the rest is checked by parseAgentConfig). */
export const AgentFileSchema = Type.Object({
  site: Type.String(),
  agent: Type.String(),
  secret: SecretSchema,
  dns: Type.Array(Type.String()),
  report: Type.Optional(Type.Object({
    interval: Type.Optional(Duration),
    timeout: Type.Optional(Duration),
  }, { additionalProperties: false })),
  api: Type.Optional(Type.String()),
  forwarder: Type.Optional(Type.Object({
    cleanupOnExit: Type.Optional(Type.Boolean()),
    drainTimeout: Type.Optional(Duration),
  }, { additionalProperties: false })),
  vips: Type.Array(VipSchema),
  pinger: Type.Optional(PingerSchema),
}, { additionalProperties: false });

const checkFile = TypeCompiler.Compile(AgentFileSchema);

/** A check as written: the schema's type, every key optional. */
type RawCheck = Static<typeof CheckSchema>;

// ---------------------------------------------------------------------------------------------
// Errors

/** One configuration error: where, and what was expected. */
export interface AgentConfigIssue {
  readonly file: string;
  readonly line?: number;
  /** `vips[0].check.timeout`; empty for errors about the whole file */
  readonly path: string;
  readonly reason: string;
}

/** One or more configuration errors; `message` has one `file:line: path: reason` per line. */
export class AgentConfigError extends Error {
  constructor(readonly errors: readonly AgentConfigIssue[]) {
    super(errors.map(formatIssue).join('\n'));
    this.name = 'AgentConfigError';
  }
}

function formatIssue(e: AgentConfigIssue): string {
  const where = e.line !== undefined && e.line > 0 ? `${e.file}:${e.line}` : e.file;
  return e.path === '' ? `${where}: ${e.reason}` : `${where}: ${e.path}: ${e.reason}`;
}










// ---------------------------------------------------------------------------------------------
// Values

/**
 * Canonical text and family of an IP address (no zone ids: they name an interface of one host).
 * The same parser as gslb-dns's pool files, so a VIP and its pool member print the same text.
 */
function parseIp(text: string): { text: string; family: 4 | 6 } | undefined {
  try {
    const a = parseAddress(text);
    return { text: a.canonical, family: a.family };
  } catch {
    return undefined;
  }
}





/** A DNS name as a checker sends it (absolute, no trailing dot), or undefined when not one. */
function parseDnsName(n: string): string | undefined {
  const s = n.endsWith('.') && n !== '.' ? n.slice(0, -1) : n;
  if (s === '.' ) return '';
  if (s === '' || s.length > 253) return undefined;
  const labels = s.split('.');
  return labels.every((l) => l.length >= 1 && l.length <= 63 && /^[\x21-\x7e]+$/.test(l)) ? s.toLowerCase() : undefined;
}

// ---------------------------------------------------------------------------------------------
// Checks

type Fail = (segs: readonly Seg[], reason: string) => void;

/**
 * Resolves a raw check whose keys may come from different places (the VIP's check, a real
 * server's override): `from(key)` is the path each key's error is reported at.
 */
function resolveCheck(raw: RawCheck, from: (key: CheckKey) => readonly Seg[], fail: Fail): CheckConfig | undefined {
  const type = raw.type ?? 'tcp';
  const allowed = new Set<CheckKey>([...COMMON_KEYS, ...TYPE_KEYS[type]]);
  let ok = true;
  const bad = (key: CheckKey, reason: string): void => { fail(from(key), reason); ok = false; };
  for (const k of CHECK_KEYS) {
    if (raw[k] === undefined || allowed.has(k)) continue;
    const users = CHECK_TYPES.filter((t) => TYPE_KEYS[t].includes(k));
    bad(k, `not used by ${type} checks (only by ${users.join(', ')})`);
  }
  const duration = (key: CheckKey, dflt: number): number => {
    return checkedDuration(raw[key], dflt, (reason) => bad(key, reason));
  };
  const intervalMs = duration('interval', 2000);
  const timeoutMs = duration('timeout', Math.min(1000, Math.max(1, Math.floor(intervalMs / 2))));
  if (timeoutMs >= intervalMs) {
    // name the key that was written: an explicit timeout, else the interval that undercut the default
    bad(raw.timeout !== undefined ? 'timeout' : 'interval', `the timeout (${timeoutMs}ms) must be below the interval (${intervalMs}ms)`);
  }
  const common = {
    intervalMs,
    timeoutMs,
    rise: raw.rise ?? 2,
    fall: raw.fall ?? 2,
    startState: raw.startState ?? 'down',
    jitter: raw.jitter ?? 0.1,
    ...(raw.port !== undefined ? { port: raw.port } : {}),
  };
  let check: CheckConfig;
  switch (type) {
    case 'tcp':
    case 'icmp':
      if (type === 'icmp' && raw.port !== undefined) bad('port', 'not used by icmp checks');
      check = { type, ...common };
      break;
    case 'http':
    case 'https': {
      const p = raw.path ?? '/';
      if (!p.startsWith('/')) bad('path', `must start with "/", got ${show(p)}`);
      else if (/[\s\x00-\x1f\x7f]/.test(p)) bad('path', `must not contain spaces or control characters, got ${show(p)}`);
      const expect = raw.expect ?? [200];
      if (expect.length === 0) bad('expect', 'needs at least one status code');
      const { host } = raw;
      if (host !== undefined && (host === '' || /[\s\x00-\x1f\x7f/]/.test(host))) bad('host', `not a Host header value: ${show(host)}`);
      const { body } = raw;
      if (body !== undefined) {
        try {
          new RegExp(body);
        } catch (err) {
          bad('body', `not a regular expression: ${(err as Error).message}`);
        }
      }
      check = {
        type, ...common,
        method: raw.method ?? 'GET',
        path: p,
        expect,
        insecure: raw.insecure ?? false,
        // https pays a TLS handshake per connection and keeps its per-probe form for now
        reuseConnection: type === 'http' ? raw.reuseConnection ?? DEFAULT_REUSE : 0,
        ...(host !== undefined ? { host } : {}),
        ...(body !== undefined ? { body } : {}),
      };
      if (check.method === 'HEAD' && body !== undefined) bad('body', 'a HEAD response has no body to match');
      break;
    }
    case 'dns': {
      const nameText = raw.name;
      let name = '';
      if (nameText === undefined) bad('type', 'a dns check needs "name" (the name to query)');
      else {
        const n = parseDnsName(nameText);
        if (n === undefined) bad('name', `not a domain name: ${show(nameText)}`);
        else name = n;
      }
      let address: string | undefined;
      let family: 4 | 6 | undefined;
      if (raw.address !== undefined) {
        const ip = parseIp(raw.address);
        if (!ip) bad('address', `not an IPv4 or IPv6 address: ${show(raw.address)}`);
        else { address = ip.text; family = ip.family; }
      }
      const qtype = (raw.qtype ?? (family === 6 ? 'AAAA' : 'A')).toUpperCase();
      let qtypeCode = QTYPES[qtype];
      const m = /^TYPE(\d{1,5})$/.exec(qtype);
      if (qtypeCode === undefined && m && Number(m[1]) <= 65535) qtypeCode = Number(m[1]);
      if (qtypeCode === undefined) bad('qtype', `expected one of ${Object.keys(QTYPES).join(' | ')} or TYPEnnn, got ${show(raw.qtype)}`);
      if (family !== undefined && qtype !== (family === 4 ? 'A' : 'AAAA')) {
        bad('address', `an IPv${family} address is only found in ${family === 4 ? 'A' : 'AAAA'} answers (qtype is ${qtype})`);
      }
      check = {
        type, ...common, name, qtype, qtypeCode: qtypeCode ?? 1,
        rcode: raw.rcode ?? 'NOERROR',
        ...(address !== undefined ? { address } : {}),
      };
      break;
    }
    case 'exec': {
      const { command } = raw;
      if (command === undefined) bad('type', 'an exec check needs "command" (a list: program and arguments)');
      else if (command.length === 0 || command[0] === '') bad('command', 'needs at least the program to run');
      check = { type, ...common, command: command ?? [] };
      break;
    }
    case 'agent':
      if (raw.port === undefined) bad('type', 'an agent check needs its own "port" (the agent\'s, not the service\'s)');
      check = { type, ...common, port: raw.port ?? 0 };
      break;
  }
  return ok ? check : undefined;
}

// ---------------------------------------------------------------------------------------------
// The parser

/**
 * A YAML file read for validation: the document (for line numbers), its line counter and its
 * plain value. Syntax errors throw AgentConfigError with their lines.
 */
export function loadYaml(text: string, file: string): { doc: ReturnType<typeof parseDocument>; lc: LineCounter; raw: unknown } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new AgentConfigError(doc.errors.map((e) =>
      ({ file, line: lc.linePos(e.pos[0]).line, path: '', reason: `invalid YAML: ${e.message}` })));
  }
  try {
    return { doc, lc, raw: doc.toJS() ?? {} };
  } catch (err) {
    throw new AgentConfigError([{ file, path: '', reason: `invalid YAML: ${(err as Error).message}` }]);
  }
}

/** The gslb-dns API base URLs the agent reports to: http(s), no query or credentials, no duplicates. */
function resolveDnsUrls(list: readonly string[], fail: Fail): string[] {
  const dns: string[] = [];
  if (list.length === 0) fail(['dns'], 'needs at least one gslb-dns API URL');
  list.forEach((u, i) => {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      return fail(['dns', i], `not a URL: ${show(u)} (expected e.g. http://127.0.0.1:8053)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return fail(['dns', i], `expected an http or https URL, got ${show(u)}`);
    if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
      return fail(['dns', i], `expected a base URL without query, fragment or credentials, got ${show(u)}`);
    }
    const base = url.href.replace(/\/+$/, '');
    const dup = dns.indexOf(base);
    if (dup >= 0) return fail(['dns', i], `${base} is listed twice (also dns[${dup}])`);
    dns.push(base);
  });
  return dns;
}

/** A VIP's forwarder block: the mode's required and forbidden keys, and one DSCP per VIP on an interface. */
function resolveForwarder(f: Static<typeof ForwarderSchema>, fAt: readonly Seg[], vi: number, dscpUsers: Map<string, number>,
  bad: Fail, duration: (segs: readonly Seg[], v: unknown, dflt: number) => number): ForwarderConfig {
  const mode = f.mode ?? 'proxy';
  const scheduler = f.scheduler ?? 'wrr';
  const tunnel = f.tunnel ?? 'vxlan';
  const kernel = KERNEL_MODES.includes(mode);
  if (kernel && f.interface === undefined) bad(fAt, `mode ${mode} needs "interface" (the network interface the VIP's packets arrive on)`);
  if (f.interface !== undefined && !/^[A-Za-z0-9_.:@-]{1,15}$/.test(f.interface)) {
    bad([...fAt, 'interface'], `not an interface name: ${show(f.interface)}`);
  }
  if (f.dscp !== undefined && mode !== 'l3dsr-dscp') bad([...fAt, 'dscp'], `only for mode l3dsr-dscp (mode is ${mode})`);
  if (f.dscp === undefined && mode === 'l3dsr-dscp') bad(fAt, 'mode l3dsr-dscp needs "dscp" (1-63)');
  if (f.dscp !== undefined && mode === 'l3dsr-dscp' && f.interface !== undefined) {
    // the real servers tell the VIPs apart by the DSCP alone
    const key = `${f.interface} ${f.dscp}`;
    const prev = dscpUsers.get(key);
    if (prev !== undefined) bad([...fAt, 'dscp'], `dscp ${f.dscp} on interface ${f.interface} is also used by vips[${prev}]`);
    else dscpUsers.set(key, vi);
  }
  if (f.tunnel !== undefined && mode !== 'l3dsr-tunnel') bad([...fAt, 'tunnel'], `only for mode l3dsr-tunnel (mode is ${mode})`);
  if (f.vni !== undefined && (mode !== 'l3dsr-tunnel' || tunnel !== 'vxlan')) {
    bad([...fAt, 'vni'], mode === 'l3dsr-tunnel' ? `only for tunnel vxlan (tunnel is ${tunnel})` : `only for mode l3dsr-tunnel with tunnel vxlan (mode is ${mode})`);
  }
  if (f.snat !== undefined && mode !== 'nat') bad([...fAt, 'snat'], `only for mode nat (mode is ${mode})`);
  if (f.shPorts !== undefined && scheduler !== 'sh') bad([...fAt, 'shPorts'], `only for scheduler sh (scheduler is ${scheduler})`);
  if ((scheduler === 'lc' || scheduler === 'wlc') && mode !== 'proxy' && mode !== 'nat') {
    bad([...fAt, 'scheduler'], `${scheduler} needs connection counts, which only modes proxy and nat see (mode is ${mode})`);
  }
  const persistenceMs = f.persistence === undefined ? 0 : duration([...fAt, 'persistence'], f.persistence, 0);
  const flowTimeoutMs = f.flowTimeout === undefined ? undefined : duration([...fAt, 'flowTimeout'], f.flowTimeout, 0);
  return {
    mode,
    scheduler,
    persistenceMs,
    ...(f.interface !== undefined ? { interface: f.interface } : {}),
    ...(f.dscp !== undefined ? { dscp: f.dscp } : {}),
    ...(mode === 'l3dsr-tunnel' ? { tunnel } : {}),
    ...(mode === 'l3dsr-tunnel' && tunnel === 'vxlan' ? { vni: f.vni ?? DEFAULT_VNI } : {}),
    ...(mode === 'nat' ? { snat: f.snat ?? true } : {}),
    ...(flowTimeoutMs !== undefined ? { flowTimeoutMs } : {}),
    ...(f.shPorts !== undefined ? { shPorts: f.shPorts } : {}),
  };
}

/**
 * A VIP's real servers, each with its check: the VIP's, or the VIP's merged with the server's
 * own keys (replaced whole when the type differs). `fixedMode`: a mode that cannot rewrite ports.
 */
function resolveRealServers(v: Static<typeof VipSchema>, at: readonly Seg[], vip: { raw: RawCheck; at: readonly Seg[]; check: CheckConfig | undefined },
  fixedMode: string | undefined, bad: Fail, fail: Fail): { realServers: RealServerConfig[]; ok: boolean } {
  let ok = true;
  const realServers: RealServerConfig[] = [];
  const rsSeen = new Map<string, number>();
  if (v.realServers.length === 0) bad([...at, 'realServers'], 'a VIP needs at least one real server');
  v.realServers.forEach((r, ri) => {
    const rAt = [...at, 'realServers', ri];
    const rip = parseIp(r.address);
    if (!rip) return bad([...rAt, 'address'], `not an IPv4 or IPv6 address: ${show(r.address)}`);
    const key = `${rip.text} ${r.port}`;
    const dup = rsSeen.get(key);
    if (dup !== undefined) return bad(rAt, `duplicate real server ${rip.family === 6 ? `[${rip.text}]` : rip.text}:${r.port} (also realServers[${dup}])`);
    rsSeen.set(key, ri);
    if (fixedMode !== undefined && r.port !== v.port) {
      bad([...rAt, 'port'], `mode ${fixedMode} cannot rewrite ports: must be the VIP's port ${v.port}, got ${r.port}`);
    }

    let check = vip.check;
    if (r.check !== undefined) {
      const own = r.check;
      const rcAt = [...rAt, 'check'];
      const sameType = own.type === undefined || own.type === (vip.raw.type ?? 'tcp');
      const merged: RawCheck = sameType ? { ...vip.raw, ...own } : { ...own };
      for (const k of CHECK_KEYS) if (merged[k] === undefined) delete merged[k];
      check = resolveCheck(merged, (k) => (own[k] !== undefined ? [...rcAt, k]
        : vip.raw[k] !== undefined ? [...vip.at, k] : rcAt), fail);
      if (!check) ok = false;
    }
    if (check) {
      realServers.push({
        index: ri,
        address: rip.text,
        family: rip.family,
        port: r.port,
        weight: r.weight ?? 1,
        backup: r.backup ?? false,
        check,
      });
    }
  });
  return { realServers, ok };
}

/**
 * Parses and validates an slb-agent YAML file, resolving the secret from `env` or the file
 * system. Throws AgentConfigError listing every error found.
 */
export function parseAgentConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const { doc, lc, raw } = loadYaml(text, file);
  const errors: AgentConfigIssue[] = [];
  const seen = new Set<string>();
  const fail: Fail = (segs, reason) => {
    const p = formatPath(segs);
    // merged checks may repeat a VIP-level error for every real server: say it once
    const key = `${p}\0${reason}`;
    if (seen.has(key)) return;
    seen.add(key);
    const line = lineAt(doc, lc, segs);
    errors.push(line === undefined ? { file, path: p, reason } : { file, line, path: p, reason });
  };

  if (!checkFile.Check(raw)) {
    for (const i of schemaIssues(checkFile, raw, doc, lc)) errors.push({ file, ...i });
    errors.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new AgentConfigError(errors);
  }
  const input = raw;

  const duration = (segs: readonly Seg[], v: unknown, dflt: number): number => checkedDuration(v, dflt, (reason) => fail(segs, reason));

  for (const key of ['site', 'agent'] as const) {
    if (!NAME_RE.test(input[key])) fail([key], `must be 1-63 letters, digits, "-" or "_", got ${show(input[key])}`);
  }
  const warnings: string[] = [];
  const secretAt = (i: number | undefined): Seg[] => (i === undefined ? ['secret'] : ['secret', i]);
  const secret = resolveSecrets(input.secret, file, env, (i, reason) => fail(secretAt(i), reason), (i, reason) => {
    const segs = secretAt(i);
    const line = lineAt(doc, lc, segs);
    warnings.push(formatIssue(line === undefined ? { file, path: formatPath(segs), reason } : { file, line, path: formatPath(segs), reason }));
  })?.[0];

  const dns = resolveDnsUrls(input.dns, fail);

  const report = {
    intervalMs: duration(['report', 'interval'], input.report?.interval, 1000),
    timeoutMs: duration(['report', 'timeout'], input.report?.timeout, 1000),
  };

  const drainTimeoutMs = input.forwarder?.drainTimeout === undefined ? undefined
    : duration(['forwarder', 'drainTimeout'], input.forwarder.drainTimeout, DEFAULT_DRAIN_TIMEOUT_MS);

  let api = { host: '127.0.0.1', port: 9100 };
  if (input.api !== undefined) {
    const hp = hostPortOrReason(input.api);
    if (typeof hp === 'string') fail(['api'], hp);
    else api = hp;
  }

  // ---- VIPs
  const vips: VipConfig[] = [];
  const vipNames = new Map<string, number>();
  const vipEndpoints = new Map<string, number>();
  /** `interface dscp` -> the VIP index using it */
  const dscpUsers = new Map<string, number>();
  input.vips.forEach((v, vi) => {
    const at: Seg[] = ['vips', vi];
    let ok = true;
    const bad = (segs: readonly Seg[], reason: string): void => { fail(segs, reason); ok = false; };
    if (!NAME_RE.test(v.name)) bad([...at, 'name'], `must be 1-63 letters, digits, "-" or "_", got ${show(v.name)}`);
    const prevName = vipNames.get(v.name);
    if (prevName !== undefined) bad([...at, 'name'], `duplicate VIP name "${v.name}" (also vips[${prevName}])`);
    else vipNames.set(v.name, vi);

    const ip = parseIp(v.address);
    if (!ip) bad([...at, 'address'], `not an IPv4 or IPv6 address: ${show(v.address)}`);
    const protocol = v.protocol ?? 'tcp';
    if (ip) {
      const ep = `${ip.text} ${v.port} ${protocol}`;
      const prev = vipEndpoints.get(ep);
      if (prev !== undefined) bad(at, `${protocol} ${ip.text} port ${v.port} is also vips[${prev}]`);
      else vipEndpoints.set(ep, vi);
    }

    // forwarder: only when the block is written (see the header)
    const forwarder = v.forwarder === undefined ? undefined : resolveForwarder(v.forwarder, [...at, 'forwarder'], vi, dscpUsers, bad, duration);
    // dsr and l3dsr deliver the client's packet itself: the destination port stays the VIP's
    const fixedMode = forwarder !== undefined && (forwarder.mode === 'dsr' || forwarder.mode.startsWith('l3dsr')) ? forwarder.mode : undefined;

    // the VIP's check
    const vipRaw: RawCheck = v.check ?? {};
    const cAt = [...at, 'check'];
    const vipCheck = resolveCheck(vipRaw, (k) => (v.check && vipRaw[k] !== undefined ? [...cAt, k] : cAt), fail);
    if (!vipCheck) ok = false;

    // the VIP's own check: up until proven down, unless the file says otherwise
    let ownCheck: CheckConfig | undefined;
    if (v.vipCheck !== undefined) {
      const vipCheckRaw = v.vipCheck;
      const ownRaw: RawCheck = { startState: 'up', ...vipCheckRaw };
      const vcAt = [...at, 'vipCheck'];
      ownCheck = resolveCheck(ownRaw, (k) => (vipCheckRaw[k] !== undefined ? [...vcAt, k] : vcAt), fail);
      if (!ownCheck) ok = false;
    }

    // real servers
    const rs = resolveRealServers(v, at, { raw: vipRaw, at: cAt, check: vipCheck }, fixedMode, bad, fail);
    const realServers = rs.realServers;
    if (!rs.ok) ok = false;

    const primaries = v.realServers.filter((r) => r.backup !== true).length;
    const quorum = v.quorum ?? 1;
    if (v.realServers.length > 0 && quorum > primaries) {
      bad([...at, 'quorum'], `quorum ${quorum} exceeds the ${primaries} primary (non-backup) real server${primaries === 1 ? '' : 's'}`);
    }

    if (ok && ip && vipCheck) {
      vips.push({
        name: v.name,
        address: ip.text,
        family: ip.family,
        port: v.port,
        protocol,
        capacity: v.capacity ?? 0,
        quorum,
        ...(forwarder !== undefined ? { forwarder } : {}),
        check: vipCheck,
        ...(ownCheck !== undefined ? { vipCheck: ownCheck } : {}),
        realServers,
      });
    }
  });

  const pinger = input.pinger === undefined ? undefined : resolvePinger(input.pinger, ['pinger'], fail);

  if (errors.length > 0 || secret === undefined) {
    errors.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new AgentConfigError(errors);
  }
  return {
    file,
    site: input.site,
    agent: input.agent,
    secret,
    secretRef: input.secret,
    warnings,
    dns,
    report,
    api,
    forwarder: {
      cleanupOnExit: input.forwarder?.cleanupOnExit ?? false,
      ...(drainTimeoutMs !== undefined ? { drainTimeoutMs } : {}),
    },
    vips,
    ...(pinger !== undefined ? { pinger } : {}),
  };
}

/** The text of a config file; an unreadable file is an AgentConfigError naming it. */
export async function readConfigText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new AgentConfigError([{ file, path: '', reason: `cannot read the file: ${e.code ?? e.message}` }]);
  }
}

/** Reads and parses an slb-agent YAML file; throws AgentConfigError (also when it cannot be read). */
export async function loadAgentConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<AgentConfig> {
  return parseAgentConfig(await readConfigText(file), file, env);
}

/**
 * The `pinger:` block (the agent's site file and the standalone `slb-agent pinger` file share it):
 * its schema and its resolution into PingerConfig, reporting errors through the caller's `fail`
 * so that they carry the caller's file:line and path.
 *
 *   pinger:
 *     interfaces:
 *       - name: eth0
 *         peers: [10.0.0.1, 10.0.0.254, auto]   # IPv4 addresses and/or `auto` (the neighbour table)
 *         interval: 60s                         # default 60s: well under a switch's 300 s ageing
 *         jitter: 0.1                           # 0..0.5, default 0.1
 *         method: arp                           # arp (default) | icmp | udp
 *         timeout: 1s                           # per probe; default min(1s, interval); <= interval
 *     source: 10.0.0.11                         # ARP sender address; default: the interface's first IPv4
 *     exclude: [10.0.0.100]                     # extension: never `auto`-probe these (the agent adds its VIPs)
 *     failAfter: 3                              # extension: consecutive failures before "not answering"
 *
 * The pinger is IPv4 only: ARP has no IPv6 counterpart here (neighbour discovery would be a
 * separate method).
 */
import { Type } from '@sinclair/typebox';
import type { TSchema } from '@sinclair/typebox';
import { parseAddress } from '../../shared/ip.js';
import { checkedDuration, DurationSchema as Duration } from '../../shared/config/values.js';
import { show } from '../../shared/config/yaml-errors.js';
import type { Seg } from '../../shared/config/yaml-errors.js';

/** How a peer is made to answer. */
export type PingerMethod = 'arp' | 'icmp' | 'udp';

/** One interface's probing, resolved with defaults. */
export interface PingerInterfaceConfig {
  readonly name: string;
  /** canonical IPv4 addresses listed explicitly */
  readonly peers: readonly string[];
  /** also probe every recently seen neighbour on this interface */
  readonly auto: boolean;
  readonly intervalMs: number;
  /** 0..0.5: each round's length is the interval +- this fraction */
  readonly jitter: number;
  readonly method: PingerMethod;
  /** at most intervalMs */
  readonly timeoutMs: number;
}

/** The resolved `pinger:` block. */
export interface PingerConfig {
  readonly interfaces: readonly PingerInterfaceConfig[];
  /** ARP sender address; absent: each interface's first IPv4 address */
  readonly source?: string;
  /** addresses `auto` never picks (the agent adds its VIPs to these) */
  readonly exclude: readonly string[];
  /** consecutive failures after which a peer is reported not answering */
  readonly failAfter: number;
}

const lits = <T extends string>(xs: readonly T[]): TSchema => Type.Union(xs.map((x) => Type.Literal(x)));

export const DEFAULT_INTERVAL_MS = 60_000;
export const DEFAULT_TIMEOUT_MS = 1_000;
export const DEFAULT_JITTER = 0.1;
export const DEFAULT_FAIL_AFTER = 3;
/** Shorter intervals would make the pinger a flood of its own. */
const MIN_INTERVAL_MS = 100;

/** The schema of the `pinger:` block (structure; values are checked by resolvePinger). */
export const PingerSchema = Type.Object({
  interfaces: Type.Array(Type.Object({
    name: Type.String(),
    peers: Type.Array(Type.String()),
    interval: Type.Optional(Duration),
    jitter: Type.Optional(Type.Number({ minimum: 0, maximum: 0.5 })),
    method: Type.Optional(lits(['arp', 'icmp', 'udp'])),
    timeout: Type.Optional(Duration),
  }, { additionalProperties: false })),
  source: Type.Optional(Type.String()),
  exclude: Type.Optional(Type.Array(Type.String())),
  failAfter: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
}, { additionalProperties: false });

type RawPinger = {
  interfaces: { name: string; peers: string[]; interval?: unknown; jitter?: number; method?: unknown; timeout?: unknown }[];
  source?: string;
  exclude?: string[];
  failAfter?: number;
};

function ipv4(text: string): string | undefined {
  try {
    const a = parseAddress(text);
    return a.family === 4 ? a.canonical : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Resolves a schema-valid `pinger:` block found at `at`; every problem goes to `fail` with its
 * path, and the result is only meaningful when `fail` was not called.
 */
export function resolvePinger(input: unknown, at: readonly Seg[], fail: (segs: readonly Seg[], reason: string) => void): PingerConfig {
  const raw = input as RawPinger;
  const duration = (segs: readonly Seg[], v: unknown, dflt: number): number => checkedDuration(v, dflt, (reason) => fail(segs, reason));
  const v4 = (segs: readonly Seg[], text: string): string | undefined => {
    const a = ipv4(text);
    if (a === undefined) fail(segs, `expected an IPv4 address (the pinger probes IPv4 neighbours), got ${show(text)}`);
    return a;
  };

  if (raw.interfaces.length === 0) fail([...at, 'interfaces'], 'needs at least one interface');
  const names = new Map<string, number>();
  const interfaces: PingerInterfaceConfig[] = raw.interfaces.map((f, i) => {
    const iAt = [...at, 'interfaces', i];
    if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(f.name)) fail([...iAt, 'name'], `not an interface name: ${show(f.name)}`);
    const prev = names.get(f.name);
    if (prev !== undefined) fail([...iAt, 'name'], `interface ${f.name} is listed twice (also interfaces[${prev}])`);
    else names.set(f.name, i);

    const peers: string[] = [];
    let auto = false;
    if (f.peers.length === 0) fail([...iAt, 'peers'], 'needs at least one peer address or "auto"');
    f.peers.forEach((p, pi) => {
      if (p === 'auto') {
        if (auto) fail([...iAt, 'peers', pi], '"auto" is listed twice');
        auto = true;
        return;
      }
      const a = v4([...iAt, 'peers', pi], p);
      if (a === undefined) return;
      const dup = peers.indexOf(a);
      if (dup >= 0) fail([...iAt, 'peers', pi], `${a} is listed twice`);
      else peers.push(a);
    });

    const intervalMs = duration([...iAt, 'interval'], f.interval, DEFAULT_INTERVAL_MS);
    if (intervalMs < MIN_INTERVAL_MS) fail([...iAt, 'interval'], `must be at least ${MIN_INTERVAL_MS}ms, got ${show(f.interval)}`);
    const timeoutMs = duration([...iAt, 'timeout'], f.timeout, Math.min(DEFAULT_TIMEOUT_MS, intervalMs));
    // a probe's answer is due before the next probe of the same peer
    if (timeoutMs > intervalMs) fail([...iAt, 'timeout'], `must not exceed the interval (${intervalMs} ms), got ${show(f.timeout)}`);
    return {
      name: f.name, peers, auto, intervalMs, timeoutMs,
      jitter: f.jitter ?? DEFAULT_JITTER,
      method: (f.method as PingerMethod | undefined) ?? 'arp',
    };
  });

  const source = raw.source === undefined ? undefined : v4([...at, 'source'], raw.source);
  const exclude: string[] = [];
  (raw.exclude ?? []).forEach((e, ei) => {
    const a = v4([...at, 'exclude', ei], e);
    if (a !== undefined && !exclude.includes(a)) exclude.push(a);
  });
  return {
    interfaces, exclude, failAfter: raw.failAfter ?? DEFAULT_FAIL_AFTER,
    ...(source !== undefined ? { source } : {}),
  };
}

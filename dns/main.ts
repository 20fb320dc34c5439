#!/usr/bin/env node
import { createLogger, exitCodeOf, helpOrVersion, UsageError } from '../shared/cli.js';
import type { CommandHelp } from '../shared/cli.js';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { parseListen, startDnsServer } from './server/server.js';
import type { ListenAddress } from './server/server.js';
import { DEFAULT_ENGINE_OPTIONS } from './server/engine.js';
import { DEFAULT_RRL_OPTIONS, MAX_RRL_TABLE_SIZE, createResponseRateLimiter } from './server/rrl.js';
import type { ResponseRateLimiter, RrlOptions } from './server/rrl.js';
import type { EngineOptions } from './server/engine.js';
import { PROTOS } from './server/query-counters.js';
import { DEFAULT_TCP_OPTIONS } from './server/tcp.js';
import type { TcpOptions } from './server/tcp.js';
import type { Engine, GslbSource } from './server/engine.js';
import { ctl } from './ctl.js';
import { DNSSEC_HELP, DNSSEC_USAGE, dnssecCommand } from './dnssec/cli.js';
import type { GslbConfig } from './gslb/model.js';
import { FailOpenWatch } from './gslb/fail-open.js';
import type { EtcdLocation } from './gslb/overrides-etcd.js';
import { startPersistence } from './gslb/persistence.js';
import { isLoopback, readTokenFile } from '../shared/api-auth.js';
import { connectionLimitsWarning, defaultConnectionLimits, readDescriptorLimit } from './http/connection-limit.js';
import type { ConnectionLimits } from './http/connection-limit.js';
import { durationFlag } from '../shared/config/values.js';
import { systemClock } from '../shared/clock.js';
import { parsePrefix } from '../shared/ip.js';
import { startProbes } from './gslb/probe.js';
import { startStaleTicker } from './gslb/stale-ticker.js';
import { GslbState } from './gslb/state.js';
import { createApiApp } from './http/app.js';
import type { DnsMetricsSnapshot } from './http/metrics.js';
import { loadServing } from './serving.js';
import type { Signing } from './dnssec/signer.js';
import { udpNativeStatus } from './wire/udp-transport.js';
import { DEFAULT_RELOAD_SETTLE_MS, startZoneReloading } from './zone-reload.js';
import { ZoneFileCache } from './zone/load.js';
import { createZoneWorker } from './zone/zone-worker.js';

/** The whole program's help: every command, the serve flags in full. */
const HELP: CommandHelp = {
  name: 'gslb-dns',
  usage: `  gslb-dns --zones DIR --listen HOST:PORT [--listen HOST:PORT ...] [--api HOST:PORT]
           [--admin-token-file FILE] [--read-token-file FILE] [--status-public]
           [--state-dir DIR] [--instance NAME]
           [--overrides etcd://HOST:PORT[,HOST:PORT...]/PREFIX] [--overrides-wait DURATION]
           [--api-max-connections N] [--api-max-per-source N]
           [--udp-size BYTES] [--cache-entries N] [--cache-negative-entries N] [--cache-negative-bytes BYTES]
           [--reload-settle DURATION] [--log-level LEVEL] [--metrics-request-duration on|off]
           [--tcp-max-clients N] [--tcp-max-per-source N] [--tcp-idle-timeout DURATION]
           [--tcp-message-timeout DURATION]
           [--rrl-rate N] [--rrl-slip N] [--rrl-ipv4-prefix LEN] [--rrl-ipv6-prefix LEN]
           [--rrl-exempt PREFIX[,PREFIX...]] [--rrl-table-size N]
  gslb-dns check --zones DIR
  gslb-dns drill --plan FILE [--json OUT] [--html OUT] [--dry-run]
${DNSSEC_USAGE}
  gslb-dns ctl --servers URL[,URL...] [--token-file FILE] [--reason TEXT] [--force] [--retry-for DURATION]
               <drain|undrain|force-down|release> site NAME | member SITE ADDRESS
  gslb-dns ctl --servers URL[,URL...] [--token-file FILE] state
  gslb-dns ctl --servers URL[,URL...] [--token-file FILE] explain NAME [--type A|AAAA] [--subnet PREFIX]
Every command also takes --help and --version.`,
  examples: [
    'gslb-dns --zones zones --listen 127.0.0.1:5300 --api 127.0.0.1:8053 --admin-token-file admin.token',
    'gslb-dns --zones /etc/gslb/zones --listen [::]:53 --listen 0.0.0.0:53 --tcp-idle-timeout 10s --rrl-exempt 10.0.0.0/8',
    'gslb-dns check --zones zones',
    'gslb-dns ctl --servers http://127.0.0.1:8053 --token-file admin.token drain site tokyo',
  ],
};

const CHECK_HELP: CommandHelp = {
  name: 'gslb-dns check',
  usage: `  gslb-dns check --zones DIR
Loads the zone files and pool definitions of DIR as the server would, prints what it found (and
warnings, such as short secrets), and exits 0, or 1 with one file:line: reason per error.`,
  examples: ['gslb-dns check --zones zones', 'gslb-dns check --zones /etc/gslb/zones && systemctl reload gslb-dns'],
};



async function check(args: string[]): Promise<number> {
  const asked = helpOrVersion(args, CHECK_HELP);
  if (asked !== undefined) return asked;
  const { values } = parseArgs({ args, options: { zones: { type: 'string' } }, strict: true });
  if (!values.zones) throw new UsageError('--zones DIR is required');
  try {
    const { zones, gslb, signing } = await loadServing(values.zones);
    for (const z of zones.zones) {
      const keys = signing.keysOf(z.origin);
      const signed = keys ? `, signed (keys ${keys.published.map((k) => `${k.tag}/${k.flags}`).join(' ')})` : '';
      process.stdout.write(`zone ${z.origin}: loaded serial ${z.serial}, ${z.recordCount} records${signed} (${z.file})\n`);
    }
    for (const p of gslb.pools.values()) {
      process.stdout.write(`pool ${p.name}: ${p.policy}, ${p.members.length} members, names ${p.names.join(' ')}\n`);
    }
    for (const w of gslb.warnings ?? []) process.stderr.write(`warning: ${w}\n`);
    process.stdout.write('OK\n');
    return 0;
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

/** The serve command's flags, checked (a bad one is a UsageError); the admin token file is read. */
interface ServeOptions {
  readonly zonesDir: string;
  readonly listens: ListenAddress[];
  readonly api: ListenAddress | undefined;
  /** --api as given, for the log line when the bound address is unknown */
  readonly apiText: string | undefined;
  readonly engine: EngineOptions;
  readonly tcp: TcpOptions;
  readonly rrl: RrlOptions;
  readonly adminToken: string | undefined;
  /** the read token file's text: reading the state, explain, events and the status page's data */
  readonly readToken: string | undefined;
  /** reading needs no token */
  readonly statusPublic: boolean;
  readonly etcd: EtcdLocation | undefined;
  readonly overridesWaitMs: number;
  readonly stateDir: string | undefined;
  readonly instance: string | undefined;
  readonly logLevel: string;
  readonly reloadSettleMs: number;
  readonly apiLimits: ConnectionLimits;
  /** the descriptor limit the caps were derived from (undefined: unknown) */
  readonly fdLimit: number | undefined;
}

async function parseServeOptions(args: string[]): Promise<ServeOptions> {
  const { values } = parseArgs({
    args,
    options: {
      zones: { type: 'string' },
      listen: { type: 'string', multiple: true },
      api: { type: 'string' },
      'admin-token-file': { type: 'string' },
      'read-token-file': { type: 'string' },
      'status-public': { type: 'boolean' },
      'state-dir': { type: 'string' },
      overrides: { type: 'string' },
      'overrides-wait': { type: 'string' },
      'reload-settle': { type: 'string' },
      instance: { type: 'string' },
      'udp-size': { type: 'string' },
      'cache-entries': { type: 'string' },
      'cache-negative-entries': { type: 'string' },
      'cache-negative-bytes': { type: 'string' },
      'tcp-max-clients': { type: 'string' },
      'tcp-max-per-source': { type: 'string' },
      'tcp-idle-timeout': { type: 'string' },
      'tcp-message-timeout': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      'api-max-connections': { type: 'string' },
      'api-max-per-source': { type: 'string' },
      'rrl-rate': { type: 'string' },
      'rrl-slip': { type: 'string' },
      'rrl-ipv4-prefix': { type: 'string' },
      'rrl-ipv6-prefix': { type: 'string' },
      'rrl-exempt': { type: 'string', multiple: true },
      'rrl-table-size': { type: 'string' },
      'metrics-request-duration': { type: 'string' },
    },
    strict: true,
  });
  if (!values.zones) throw new UsageError('--zones DIR is required');
  let listens: ListenAddress[];
  let api: ListenAddress | undefined;
  try {
    listens = (values.listen ?? []).map(parseListen);
    api = values.api === undefined ? undefined : parseListen(values.api);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (listens.length === 0) throw new UsageError('at least one --listen HOST:PORT is required');
  const udpCap = values['udp-size'] === undefined ? DEFAULT_ENGINE_OPTIONS.udpCap : Number(values['udp-size']);
  if (!Number.isInteger(udpCap) || udpCap < 512 || udpCap > 4096) throw new UsageError('--udp-size: expected an integer from 512 to 4096');
  const timing = values['metrics-request-duration'] ?? 'on';
  if (timing !== 'on' && timing !== 'off') throw new UsageError('--metrics-request-duration: expected on or off');
  const engine = { ...parseCacheFlags(values), udpCap, requestDuration: timing === 'on' };
  const tcp = parseTcpFlags(values);
  const rrl = parseRrlFlags(values);
  const adminToken = await readTokenFile('admin-token-file', values['admin-token-file']);
  const readToken = await readTokenFile('read-token-file', values['read-token-file']);
  let etcd: EtcdLocation | undefined;
  // only waited for with etcd
  let etcdStartTimeoutMs = 0;
  if (values.overrides !== undefined) {
    // etcd3 and its gRPC stack are loaded only when asked for: about 0.2 s of CPU at every start
    const { ETCD_START_TIMEOUT_MS, parseEtcdLocation } = await import('./gslb/overrides-etcd.js');
    etcdStartTimeoutMs = ETCD_START_TIMEOUT_MS;
    try {
      etcd = parseEtcdLocation(values.overrides);
    } catch (err) {
      throw new UsageError(`--overrides: ${(err as Error).message}`);
    }
  }
  const overridesWaitMs = values['overrides-wait'] === undefined ? etcdStartTimeoutMs : durationFlag('overrides-wait', values['overrides-wait']);
  const reloadSettleMs = values['reload-settle'] === undefined ? DEFAULT_RELOAD_SETTLE_MS : durationFlag('reload-settle', values['reload-settle']);
  const fdLimit = readDescriptorLimit();
  const defaults = defaultConnectionLimits(fdLimit);
  const cap = (flag: 'api-max-connections' | 'api-max-per-source', dflt: number): number => {
    const v = values[flag] === undefined ? dflt : Number(values[flag]);
    if (!Number.isInteger(v) || v < 1) throw new UsageError(`--${flag}: expected a positive integer`);
    return v;
  };
  const maxConnections = cap('api-max-connections', defaults.maxConnections);
  const maxPerSource = cap('api-max-per-source', Math.min(defaults.maxPerSource, maxConnections));
  if (maxPerSource > maxConnections) throw new UsageError('--api-max-per-source: must not exceed --api-max-connections');
  return {
    apiLimits: { maxConnections, maxPerSource }, fdLimit,
    zonesDir: values.zones, listens, api, apiText: values.api, engine, tcp, rrl, adminToken, readToken, statusPublic: values['status-public'] === true, etcd, overridesWaitMs,
    stateDir: values['state-dir'], instance: values.instance, logLevel: values['log-level']!, reloadSettleMs,
  };
}

/** An integer flag from `min` to `max`, or `dflt` when absent; anything else is a UsageError naming the flag. */
function integerFlag(values: Record<string, unknown>, flag: string, dflt: number, min: number, max: number): number {
  const v = values[flag];
  if (v === undefined) return dflt;
  const n = Number(v);
  // digits only: Number() would also take '1e3', '0x10' and ' 7'
  if (typeof v !== 'string' || !/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${flag}: expected an integer from ${min} to ${max}`);
  return n;
}

/** The --rrl-* flags over DEFAULT_RRL_OPTIONS. */
function parseRrlFlags(values: Record<string, unknown>): RrlOptions {
  const d = DEFAULT_RRL_OPTIONS;
  const exempt = ((values['rrl-exempt'] as string[] | undefined) ?? []).flatMap((v) => v.split(',')).map((text) => {
    try {
      return parsePrefix(text.trim());
    } catch (err) {
      throw new UsageError(`--rrl-exempt: ${(err as Error).message}`);
    }
  });
  return {
    rate: integerFlag(values, 'rrl-rate', d.rate, 0, 1_000_000_000),
    slip: integerFlag(values, 'rrl-slip', d.slip, 0, 100),
    ipv4Prefix: integerFlag(values, 'rrl-ipv4-prefix', d.ipv4Prefix, 0, 32),
    ipv6Prefix: integerFlag(values, 'rrl-ipv6-prefix', d.ipv6Prefix, 0, 64),
    tableSize: integerFlag(values, 'rrl-table-size', d.tableSize, 4, MAX_RRL_TABLE_SIZE),
    exempt,
  };
}

/**
 * The --cache-* flags over DEFAULT_ENGINE_OPTIONS. GSLB_DNS_CACHE=single (undocumented, for
 * bench:attack-cache) keeps every reply in one budget, as before the negative budget existed.
 */
function parseCacheFlags(values: Record<string, unknown>): Omit<EngineOptions, 'udpCap' | 'requestDuration'> {
  const d = DEFAULT_ENGINE_OPTIONS;
  return {
    cacheEntries: integerFlag(values, 'cache-entries', d.cacheEntries, 0, 10_000_000),
    cacheNegativeEntries: integerFlag(values, 'cache-negative-entries', d.cacheNegativeEntries, 0, 1_000_000),
    cacheNegativeBytes: integerFlag(values, 'cache-negative-bytes', d.cacheNegativeBytes, 0, 2 ** 30),
    cacheBudgets: process.env['GSLB_DNS_CACHE'] === 'single' ? 'single' : 'split',
  };
}

/** The --tcp-* flags over DEFAULT_TCP_OPTIONS. */
function parseTcpFlags(values: Record<string, unknown>): TcpOptions {
  const count = (flag: string, dflt: number): number => integerFlag(values, flag, dflt, 1, 1_000_000);
  const duration = (flag: string, dflt: number): number => {
    const v = values[flag];
    return v === undefined ? dflt : durationFlag(flag, String(v));
  };
  const d = DEFAULT_TCP_OPTIONS;
  return {
    ...d,
    maxConnections: count('tcp-max-clients', d.maxConnections),
    maxPerSource: count('tcp-max-per-source', d.maxPerSource),
    idleMs: duration('tcp-idle-timeout', d.idleMs),
    messageMs: duration('tcp-message-timeout', d.messageMs),
  };
}

async function serve(args: string[]): Promise<number> {
  const { zonesDir, listens, api, engine, tcp, rrl: rrlOptions, adminToken, stateDir, ...opts } = await parseServeOptions(args);
  const log = createLogger(opts.logLevel);

  let serving;
  const zoneCache = new ZoneFileCache();
  // GSLB_DNS_RELOAD=inline parses on the serving thread, as before the worker, =thread in a worker
  // thread (for bench:zone-reload). The first load goes through the worker too: a zone built on
  // this thread would be 100,000s of objects in the serving heap, and their mark-compact a long pause.
  const reloadMode = process.env['GSLB_DNS_RELOAD'];
  const zoneWorker = reloadMode === 'inline' ? undefined : createZoneWorker({ kind: reloadMode === 'thread' ? 'thread' : 'process' });
  const loadFile = zoneWorker ? { loadFile: (f: string) => zoneWorker.loadFile(f) } : {};
  try {
    serving = await loadServing(zonesDir, process.env, { cache: zoneCache, ...loadFile });
  } catch (err) {
    await zoneWorker?.close();
    const msg = err instanceof Error ? err.message : String(err);
    log.fatal({ errors: msg.split('\n') }, 'zones failed to load');
    process.stderr.write(`${msg}\n`);
    log.flush?.();
    return 1;
  }
  const state = new GslbState(serving.gslb, Date.now, (e) => log.info({ event: e }, `health: ${e.type} ${e.site}${e.address ? ` ${e.address}` : ''}`));
  // the current overrides and the saved health are in force before the first DNS answer
  const { overridesStore, saver } = await startPersistence(state, { etcd: opts.etcd, stateDir, overridesWaitMs: opts.overridesWaitMs, log });
  const failOpen = new FailOpenWatch(() => state.gslb, state.view, log);
  state.onChange((v) => failOpen.update(v));
  const source = (gslb: GslbConfig): GslbSource => ({ config: gslb, view: () => state.view });
  const native = udpNativeStatus();
  if (!native.available) log.warn({ reason: native.reason }, 'UDP batch addon unavailable; using node:dgram (slower)');
  const rrl = createResponseRateLimiter(rrlOptions, systemClock);
  const server = await startDnsServer(serving.zones, listens, {
    engine, tcp, logger: log, gslb: source(serving.gslb), rrl, signing: serving.signing,
  });
  if (rrl === undefined) log.info({ rrlRate: 0 }, 'response-rate limiting off (--rrl-rate 0)');
  else {
    const { exempt, ...rest } = rrlOptions;
    log.info({ rrl: { ...rest, tableSize: rrl.size, exempt: exempt.map((p) => p.text) } }, 'response-rate limiting on (UDP only)');
  }
  for (const z of serving.zones.zones) log.info({ zone: z.origin, serial: z.serial, records: z.recordCount, file: z.file, signed: serving.signing.keysOf(z.origin) !== undefined }, 'zone loaded');
  for (const w of serving.gslb.warnings ?? []) log.warn(w);
  for (const p of serving.gslb.pools.values()) log.info({ pool: p.name, names: p.names, policy: p.policy, members: p.members.length }, 'pool loaded');
  for (const b of server.bound) log.info({ host: b.host, udp: b.udp, tcp: b.tcp, udpTransport: b.udpKind }, 'listening');

  const staleTicker = startStaleTicker(state);
  let probes = startProbes(serving.gslb, (site, address, ok) => state.applyProbe(site, address, ok));
  let app: Awaited<ReturnType<typeof createApiApp>> | undefined;
  if (api) {
    const warning = connectionLimitsWarning(opts.apiLimits, opts.fdLimit);
    if (warning !== undefined) log.warn({ fdLimit: opts.fdLimit, ...opts.apiLimits }, warning);
    app = await createApiApp({
      limits: opts.apiLimits,
      state, adminToken, readToken: opts.readToken, statusPublic: opts.statusPublic, stateDir, overridesStore, overridesReady: () => overridesStore.ready(),
      instance: opts.instance ?? `${os.hostname()}:${process.pid}`,
      dnsMetrics: () => dnsMetrics(server.engine, state, rrl, engine.requestDuration ?? true), logger: log,
    });
    await app.listen({ host: api.host, port: api.port });
    const addr = app.server.address();
    if (opts.statusPublic && !isLoopback(api.host)) {
      log.warn({ api: opts.apiText }, '--status-public on a non-loopback address: anyone who reaches the API reads the state (use --read-token-file)');
    }
    log.info({ api: typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : opts.apiText, port: typeof addr === 'object' && addr ? addr.port : undefined, ...opts.apiLimits }, 'api listening');
  }

  // key timing (Publish, Activate, Inactive, Delete) takes effect by a load at that time
  let keyTimer: unknown;
  const atNextKeyEvent = (signing: Signing): void => {
    systemClock.clearTimeout(keyTimer);
    if (signing.nextKeyEvent === undefined) return;
    // timers take at most 2^31 - 1 ms: a later event is reached through intermediate loads
    const ms = Math.min(Math.max(0, signing.nextKeyEvent - Date.now()) + 1000, 2 ** 31 - 1);
    keyTimer = systemClock.setTimeout(() => reloading.reload('key timing'), ms);
  };
  const reloading = startZoneReloading(zonesDir, log, (next) => {
    state.setConfig(next.gslb);
    server.setZones(next.zones, source(next.gslb), next.signing);
    atNextKeyEvent(next.signing);
    probes.stop();
    probes = startProbes(next.gslb, (site, address, ok) => state.applyProbe(site, address, ok));
  }, {
    settleMs: opts.reloadSettleMs, cache: zoneCache, loopProbe: process.env['GSLB_DNS_RELOAD_PROBE'] === '1',
    ...loadFile,
  });
  atNextKeyEvent(serving.signing);
  const stop = async (sig: string): Promise<void> => {
    systemClock.clearTimeout(keyTimer);
    const signatureCache = server.engine.signatureCache();
    log.info({ sig, ...(signatureCache ? { signatureCache } : {}) }, 'shutting down');
    reloading.stop();
    await zoneWorker?.close();
    staleTicker.stop();
    probes.stop();
    await saver?.flush().catch(() => {});
    saver?.stop();
    await app?.close();
    await overridesStore.close();
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  return -1;
}

/** The DNS counters in the shape the metrics page wants. */
function dnsMetrics(engine: Engine, state: GslbState, rrl: ResponseRateLimiter | undefined, timed: boolean): DnsMetricsSnapshot {
  const s = engine.stats;
  const c = s.counters;
  const answers: DnsMetricsSnapshot['answers'][number][] = [];
  for (const [pool, counts] of s.answers) {
    const p = state.gslb.pools.get(pool);
    if (!p) continue;
    counts.forEach((count, i) => { const m = p.members[i]!; answers.push({ pool, site: m.site, address: m.address, count }); });
  }
  const size = engine.cacheSize();
  const cache: DnsMetricsSnapshot['cache'] = {
    positive: { ...s.cache.positive, entries: size.positive },
    negative: { ...s.cache.negative, entries: size.negative, bytes: size.negativeBytes },
  };
  const signatures = engine.signatureCache();
  const duration = timed ? PROTOS.map((proto, i) => ({ proto, ...c.histogram(i as 0 | 1) })) : undefined;
  return {
    requests: c.requestSeries(), responses: c.responseSeries(), ...(duration ? { duration } : {}),
    answers, fastPath: s.fast, cache, ...(rrl ? { rrl: { ...rrl.stats } } : {}),
    ...(signatures ? { signatures } : {}),
  };
}

/** Entry point: returns an exit code, or -1 while serving. */
export async function main(argv: string[]): Promise<number> {
  // a usage error repeats the help of the command that was given
  const help = argv[0] === 'check' ? CHECK_HELP : argv[0] === 'dnssec' ? DNSSEC_HELP : HELP;
  try {
    if (argv[0] === 'check') return await check(argv.slice(1));
    if (argv[0] === 'ctl') return await ctl(argv.slice(1));
    if (argv[0] === 'dnssec') return await dnssecCommand(argv.slice(1));
    const args = argv[0] === 'serve' ? argv.slice(1) : argv;
    return helpOrVersion(args, HELP) ?? await serve(args);
  } catch (err) {
    // e.g. EADDRINUSE: the message says it all
    return exitCodeOf(err, help);
  }
}

const code = await main(process.argv.slice(2));
if (code >= 0) process.exitCode = code;

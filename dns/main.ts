#!/usr/bin/env node
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { parseListen, startDnsServer } from './server/server.js';
import type { ListenAddress } from './server/server.js';
import { DEFAULT_ENGINE_OPTIONS } from './server/engine.js';
import { loadZoneDir, ZoneLoadError } from './zone/load.js';
import { udpNativeStatus } from './wire/udp-transport.js';

const USAGE = `usage:
  gslb-dns --zones DIR --listen HOST:PORT [--listen HOST:PORT ...] [--api HOST:PORT]
           [--udp-size BYTES] [--log-level LEVEL]
  gslb-dns check --zones DIR`;

class UsageError extends Error {}

function createLogger(level: string): Logger {
  if (process.stdout.isTTY) {
    return pino({ level, transport: { target: 'pino-pretty', options: { colorize: true } } });
  }
  return pino({ level });
}

async function check(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { zones: { type: 'string' } }, strict: true });
  if (!values.zones) throw new UsageError('check: --zones DIR is required');
  try {
    const zs = await loadZoneDir(values.zones);
    for (const z of zs.zones) {
      process.stdout.write(`zone ${z.origin}: loaded serial ${z.serial}, ${z.recordCount} records (${z.file})\n`);
    }
    process.stdout.write('OK\n');
    return 0;
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      zones: { type: 'string' },
      listen: { type: 'string', multiple: true },
      api: { type: 'string' },
      'udp-size': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
    },
    strict: true,
  });
  if (!values.zones) throw new UsageError('--zones DIR is required');
  let listens: ListenAddress[];
  try {
    listens = (values.listen ?? []).map(parseListen);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (listens.length === 0) throw new UsageError('at least one --listen HOST:PORT is required');
  const udpCap = values['udp-size'] === undefined ? DEFAULT_ENGINE_OPTIONS.udpCap : Number(values['udp-size']);
  if (!Number.isInteger(udpCap) || udpCap < 512 || udpCap > 4096) throw new UsageError('--udp-size: expected an integer from 512 to 4096');
  const log = createLogger(values['log-level']!);
  const zonesDir = values.zones;

  let zones;
  try {
    zones = await loadZoneDir(zonesDir);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    log.fatal({ errors: msg.split('\n') }, 'zones failed to load');
    process.stderr.write(`${msg}\n`);
    log.flush?.();
    return 1;
  }
  const native = udpNativeStatus();
  if (!native.available) log.warn({ reason: native.reason }, 'UDP batch addon unavailable; using node:dgram (slower)');
  const server = await startDnsServer(zones, listens, { engine: { ...DEFAULT_ENGINE_OPTIONS, udpCap }, logger: log });
  for (const z of zones.zones) log.info({ zone: z.origin, serial: z.serial, records: z.recordCount, file: z.file }, 'zone loaded');
  for (const b of server.bound) log.info({ host: b.host, udp: b.udp, tcp: b.tcp, udpTransport: b.udpKind }, 'listening');
  if (values.api) log.warn({ api: values.api }, '--api is reserved for the report API (not served by this version)');

  let reloading = false;
  let again = false;
  const reload = async (why: string): Promise<void> => {
    if (reloading) { again = true; return; }
    reloading = true;
    try {
      const next = await loadZoneDir(zonesDir);
      server.setZones(next);
      for (const z of next.zones) log.info({ zone: z.origin, serial: z.serial, records: z.recordCount, why }, 'zone reloaded');
    } catch (err) {
      const errors = err instanceof ZoneLoadError ? err.errors.map((e) => e.message) : [String(err)];
      for (const e of errors) log.error(e);
      log.error({ why }, 'reload failed; the previous zones keep serving');
    } finally {
      reloading = false;
      if (again) { again = false; void reload('changed during reload'); }
    }
  };
  process.on('SIGHUP', () => void reload('SIGHUP'));
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(zonesDir, () => {
      // editors write in several steps: wait for the burst to end
      clearTimeout(timer);
      timer = setTimeout(() => void reload('file changed'), 300);
    });
  } catch (err) {
    log.warn({ err }, 'cannot watch the zones directory; reload with SIGHUP');
  }
  const stop = async (sig: string): Promise<void> => {
    log.info({ sig }, 'shutting down');
    watcher?.close();
    clearTimeout(timer);
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  return -1;
}

/** Entry point: returns an exit code, or -1 while serving. */
export async function main(argv: string[]): Promise<number> {
  try {
    if (argv[0] === 'check') return await check(argv.slice(1));
    if (argv[0] === '--help' || argv[0] === '-h') { process.stdout.write(`${USAGE}\n`); return 0; }
    return await serve(argv[0] === 'serve' ? argv.slice(1) : argv);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`gslb-dns: ${(err as Error).message}\n${USAGE}\n`);
      return 2;
    }
    // e.g. EADDRINUSE: the message says it all; a stack only for what we did not expect
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`gslb-dns: ${e.code ? e.message : e.stack ?? String(err)}\n`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
if (code >= 0) process.exitCode = code;

/**
 * Listening sockets with SO_REUSEPORT for the proxy (native/reuseport_sock.c), so a new agent
 * can listen on a VIP while the old one still does and take its traffic over. Node 20 cannot ask
 * for SO_REUSEPORT itself. When the addon did not build, `loadReusePort()` says why and the proxy
 * listens exclusively (a restart then refuses connections until the new agent listens).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Opens a listening TCP (or bound UDP) socket with SO_REUSEADDR and SO_REUSEPORT; returns its fd. */
export type ReusePortOpen = (kind: 'tcp' | 'udp', host: string, port: number) => number;

interface Binding { open(kind: 'tcp' | 'udp', host: string, port: number, backlog: number): number }

let cached: { open?: ReusePortOpen; reason?: string } | undefined;

/** build/Release/reuseport_sock.node of the nearest ancestor package that has it. */
function addonPath(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 32; i++) {
    const candidate = join(dir, 'build', 'Release', 'reuseport_sock.node');
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

/** The addon's open(), or why there is none. `GSLB_REUSEPORT_ADDON=off` pretends it is missing (tests, benchmarks). */
export function loadReusePort(): { open?: ReusePortOpen; reason?: string } {
  if (process.env['GSLB_REUSEPORT_ADDON'] === 'off') return { reason: 'disabled by GSLB_REUSEPORT_ADDON=off' };
  if (cached !== undefined) return cached;
  const path = addonPath();
  if (path === undefined) {
    cached = { reason: 'build/Release/reuseport_sock.node is missing (npm ci builds it with node-gyp; see scripts/build-addons.js)' };
    return cached;
  }
  try {
    const b = createRequire(import.meta.url)(path) as Binding;
    cached = { open: (kind, host, port) => b.open(kind, host, port, 511) };
  } catch (err) {
    cached = { reason: `${path}: ${(err as Error).message}` };
  }
  return cached;
}

const MIGRATE = '/proc/sys/net/ipv4/tcp_migrate_req';

/**
 * Makes the kernel move connections waiting in a closing SO_REUSEPORT listener's accept queue to
 * another listener of the group instead of resetting them (net.ipv4.tcp_migrate_req, Linux 5.14+,
 * per network namespace). Returns what happened, for the log.
 */
export function enableTcpMigrateReq(): { ok: boolean; detail: string } {
  try {
    if (readFileSync(MIGRATE, 'utf8').trim() === '1') return { ok: true, detail: 'already 1' };
    writeFileSync(MIGRATE, '1\n');
    return { ok: true, detail: 'set to 1' };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { ok: false, detail: `${MIGRATE}: ${e.code ?? e.message}` };
  }
}

/**
 * Connection caps of the HTTP API, enforced on the raw `connection` event so that a flood of
 * idle or stalled sockets from one source cannot use up the process's descriptors (and with them
 * the agents' reports and TCP DNS).
 *
 *   | on a new socket from S                     | then                                          |
 *   |--------------------------------------------|-----------------------------------------------|
 *   | S holds maxPerSource                        | destroy the new socket (refused: per-source)  |
 *   | total < maxConnections                      | keep it                                       |
 *   | total full, the heaviest source H holds     | evict one of H's sockets (idle keep-alive     |
 *   |   more than S + 1                           |   first, else its oldest), keep the new one   |
 *   | total full otherwise                        | destroy the new socket (refused: total)       |
 *
 * A socket is idle when no request is in flight on it (between keep-alive requests, or before
 * its first request's headers are complete).
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { readDescriptorLimit } from '../fd-limit.js';

export { readDescriptorLimit };

/** The caps; both at least 1, maxPerSource <= maxConnections. */
export interface ConnectionLimits {
  readonly maxConnections: number;
  readonly maxPerSource: number;
}

/** Descriptors kept out of the API's share: DNS listeners and TCP clients, zone files, logs, etcd. */
export const DESCRIPTOR_RESERVE = 256;

/** What the caps did, for the metrics page. */
export interface ConnectionStats {
  open: number;
  refused: { 'per-source': number; total: number };
  evicted: number;
}

/** Caps that fit in `fdLimit` descriptors next to DESCRIPTOR_RESERVE (fixed ones when it is unknown). */
export function defaultConnectionLimits(fdLimit: number | undefined): ConnectionLimits {
  const maxConnections = fdLimit === undefined ? 1024 : Math.max(16, Math.min(4096, Math.floor((fdLimit - DESCRIPTOR_RESERVE) / 2)));
  return { maxConnections, maxPerSource: Math.max(4, Math.min(256, Math.floor(maxConnections / 8))) };
}

/** A warning when the caps do not fit under the descriptor limit with the reserve; undefined when they do. */
export function connectionLimitsWarning(limits: ConnectionLimits, fdLimit: number | undefined): string | undefined {
  if (fdLimit === undefined) return undefined;
  if (limits.maxConnections + DESCRIPTOR_RESERVE <= fdLimit) return undefined;
  return `ulimit -n is ${fdLimit}: too low for --api-max-connections ${limits.maxConnections} plus ${DESCRIPTOR_RESERVE} descriptors for DNS and files; ` +
    `raise it to at least ${limits.maxConnections + DESCRIPTOR_RESERVE} or lower the cap`;
}

function sourceOf(socket: Socket): string {
  const a = socket.remoteAddress ?? '?';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/** Applies `limits` to every connection `server` accepts from now on; returns live counts. */
export function limitConnections(server: Server, limits: ConnectionLimits): { stats(): ConnectionStats } {
  const bySource = new Map<string, Set<Socket>>();
  const busy = new WeakSet<Socket>();
  const stats: ConnectionStats = { open: 0, refused: { 'per-source': 0, total: 0 }, evicted: 0 };

  const heaviest = (): [string, Set<Socket>] | undefined => {
    let best: [string, Set<Socket>] | undefined;
    for (const e of bySource) if (best === undefined || e[1].size > best[1].size) best = e;
    return best;
  };

  server.on('connection', (socket: Socket) => {
    const source = sourceOf(socket);
    const mine = bySource.get(source);
    const count = mine?.size ?? 0;
    if (count >= limits.maxPerSource) {
      stats.refused['per-source']++;
      socket.destroy();
      return;
    }
    if (stats.open >= limits.maxConnections) {
      const h = heaviest();
      if (h === undefined || h[1].size <= count + 1) {
        stats.refused.total++;
        socket.destroy();
        return;
      }
      let victim: Socket | undefined;
      for (const s of h[1]) if (!busy.has(s)) { victim = s; break; }
      victim ??= h[1].values().next().value!;
      stats.evicted++;
      forget(victim, h[0]);
      victim.destroy();
    }
    const set = mine ?? new Set<Socket>();
    if (mine === undefined) bySource.set(source, set);
    set.add(socket);
    stats.open++;
    socket.once('close', () => forget(socket, source));
  });

  function forget(socket: Socket, source: string): void {
    const set = bySource.get(source);
    if (set === undefined || !set.delete(socket)) return;
    stats.open--;
    if (set.size === 0) bySource.delete(source);
  }

  server.on('request', (req, res) => {
    const socket = req.socket;
    busy.add(socket);
    res.once('close', () => busy.delete(socket));
  });

  return { stats: () => ({ open: stats.open, refused: { ...stats.refused }, evicted: stats.evicted }) };
}

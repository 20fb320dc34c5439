/**
 * Restart without a gap: a new agent for the same site and agent name takes over from the one
 * running, instead of racing it for the ports. The running agent listens on a unix socket in the
 * run dir (`<runDir>/<site>.<agent>.sock`); a new agent that can connect to it is a successor:
 *
 *   | step | successor                                  | predecessor                                     |
 *   |------|--------------------------------------------|-------------------------------------------------|
 *   | 1    | starts checks and its data plane (proxy    | serves as before (SO_REUSEPORT: the kernel      |
 *   |      | listeners beside the old ones)             | spreads new connections over both)              |
 *   | 2    | once ready (first apply): `handover\n`     | closes its API, answers `released\n`, stops     |
 *   |      |                                            | checking and reporting (no down report: it is   |
 *   |      |                                            | not a stop), closes its listeners, lets open    |
 *   |      |                                            | flows finish (drain deadline), exits 0          |
 *   | 3    | listens on the API and the control socket  |                                                 |
 *
 * A connection refused or a missing socket means no predecessor (a stale socket file is removed).
 */
import { mkdirSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** Where the control sockets live: SLB_AGENT_RUN_DIR, /run/slb-agent as root, else a per-user temp dir. */
export function defaultRunDir(): string {
  const env = process.env['SLB_AGENT_RUN_DIR'];
  if (env !== undefined && env !== '') return env;
  if (process.getuid?.() === 0) return '/run/slb-agent';
  return path.join(os.tmpdir(), `slb-agent-${process.getuid?.() ?? 'user'}`);
}

/** The control socket of one agent identity. */
export function controlPath(runDir: string, site: string, agent: string): string {
  return path.join(runDir, `${site}.${agent}.sock`);
}

/** A running predecessor found at the control socket. */
export interface Predecessor {
  /** asks it to hand over; resolves true once it released its API (false: it went away or did not answer in time) */
  handOver(timeoutMs: number): Promise<boolean>;
  close(): void;
}

/** Connects to the control socket; undefined when no agent listens there (a stale file is removed). */
export async function findPredecessor(file: string): Promise<Predecessor | undefined> {
  const sock = await new Promise<net.Socket | undefined>((resolve) => {
    const s = net.connect(file);
    s.once('connect', () => resolve(s));
    s.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') {
        try { unlinkSync(file); } catch { /* gone already */ }
      }
      resolve(undefined);
    });
  });
  if (sock === undefined) return undefined;
  sock.on('error', () => undefined);
  return {
    handOver: (timeoutMs) => new Promise<boolean>((resolve) => {
      let buf = '';
      const done = (ok: boolean): void => { clearTimeout(t); sock.off('data', onData); resolve(ok); };
      const onData = (d: Buffer): void => {
        buf += d.toString();
        if (buf.includes('released\n')) done(true);
      };
      const t = setTimeout(() => done(false), timeoutMs);
      sock.on('data', onData);
      sock.once('close', () => done(false));
      sock.write('handover\n');
    }),
    close: () => sock.destroy(),
  };
}

/** The predecessor's side: a successor asked to take over; call `released()` once the API is closed. */
export interface HandoverRequest { released(): void }

/** Listens on the control socket (replacing a file left there); `onHandover` hears each successor's request. */
export async function listenControl(file: string, onHandover: (req: HandoverRequest) => void): Promise<net.Server> {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  try { unlinkSync(file); } catch { /* none */ }
  const server = net.createServer((sock) => {
    sock.on('error', () => undefined);
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      if (!buf.includes('handover\n')) return;
      buf = '';
      onHandover({ released: () => { sock.end('released\n'); } });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(file, () => { server.off('error', reject); resolve(); });
  });
  server.on('error', () => undefined);
  return server;
}

/** Removes the control socket file (a stop, not a handover: no successor owns it). */
export function removeControl(file: string): void {
  try { unlinkSync(file); } catch { /* gone */ }
}

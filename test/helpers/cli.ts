import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { ROOT } from './server.js';
import { readJsonLines } from '../../shared/json-lines.js';

export const MAIN = path.join(ROOT, 'dist/dns/main.js');

/**
 * How long a started gslb-dns may take to listen: a bound, not a latency claim. The zones are
 * loaded by a child process (one more Node.js start-up), and CI shares both cores with other work:
 * a start has taken over 10 s there with nothing wrong.
 */
const START_WAIT_MS = 30_000;

/** A node program of this project (gslb-dns, slb-agent) running, with its JSON log lines collected. */
export interface NodeProc {
  proc: ChildProcess;
  lines: Record<string, unknown>[];
  stderr(): string;
  /** resolves with the first log line that matches; rejects after `ms` or when the process exits */
  waitLog(pred: (l: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
  /** SIGTERM, SIGKILL after 5 s; resolves with the exit code */
  stop(): Promise<number | null>;
}

/** Starts `node main ...args` and collects its pino JSON lines (other lines as `{ msg }`). */
export function startNode(main: string, args: string[], env: Record<string, string> = {}): NodeProc {
  const proc = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  return watchNode(proc, path.basename(main));
}

/**
 * Collects the pino JSON lines (other lines as `{ msg }`) of a node program already started
 * (e.g. inside a lab namespace); `stop()` sends SIGTERM and SIGKILL after `killAfterMs`.
 */
export function watchNode(proc: ChildProcess, name: string, killAfterMs = 5000): NodeProc {
  const lines: Record<string, unknown>[] = [];
  const waiters = new Set<{ pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  let stderr = '';
  const ended = (): boolean => proc.exitCode !== null || proc.signalCode !== null;
  readJsonLines(proc.stdout!, (l) => {
    lines.push(l);
    for (const w of [...waiters]) if (w.pred(l)) { waiters.delete(w); w.resolve(l); }
  });
  proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  proc.once('exit', (code) => {
    for (const w of waiters) w.reject(new Error(`${name} exited ${code}: ${stderr}`));
    waiters.clear();
  });
  const waitLog = (pred: (l: Record<string, unknown>) => boolean, ms = 10_000) => new Promise<Record<string, unknown>>((resolve, reject) => {
    const found = lines.find(pred);
    if (found) { resolve(found); return; }
    if (ended()) { reject(new Error(`${name} exited ${proc.exitCode}: ${stderr}`)); return; }
    const t = setTimeout(() => { waiters.delete(w); reject(new Error(`no such log line within ${ms} ms; stderr: ${stderr}; lines: ${JSON.stringify(lines)}`)); }, ms);
    const w = { pred, resolve: (l: Record<string, unknown>) => { clearTimeout(t); resolve(l); }, reject: (e: Error) => { clearTimeout(t); reject(e); } };
    waiters.add(w);
  });
  return {
    proc, lines, waitLog, stderr: () => stderr,
    stop: () => new Promise((resolve) => {
      if (ended()) { resolve(proc.exitCode); return; }
      const k = setTimeout(() => proc.kill('SIGKILL'), killAfterMs);
      proc.once('exit', (code) => { clearTimeout(k); resolve(code); });
      proc.kill('SIGTERM');
    }),
  };
}

/** The real gslb-dns process. */
export interface Cli extends NodeProc {
  port: number;
  /** the HTTP API port, when started with --api */
  apiPort: number;
}

/** Starts `gslb-dns` on an ephemeral port and waits until it listens. */
export async function startCli(args: string[], env: Record<string, string> = {}): Promise<Cli> {
  const p = startNode(MAIN, args, env);
  let listening: Record<string, unknown>;
  let api: Record<string, unknown> | undefined;
  try {
    listening = await p.waitLog((l) => l['msg'] === 'listening', START_WAIT_MS);
    api = args.includes('--api') ? await p.waitLog((l) => l['msg'] === 'api listening', START_WAIT_MS) : undefined;
  } catch (err) {
    // never leave a server behind when it did not come up as expected
    p.proc.kill('SIGKILL');
    throw err;
  }
  return Object.assign(p, { port: listening['udp'] as number, apiPort: (api?.['port'] as number | undefined) ?? 0 });
}

/** Runs gslb-dns to completion. */
export function runCli(args: string[], limitMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runNodeMain(MAIN, args, {}, limitMs);
}

/** Runs a program of bin/ (`gslb-dns`, `slb-agent`) to completion, as an operator would. */
export function runNodeBin(name: string, args: string[], env: Record<string, string> = {}, limitMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runNodeMain(path.join(ROOT, 'bin', `${name}.js`), args, env, limitMs);
}

function runNodeMain(main: string, args: string[], env: Record<string, string>, limitMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    // a command expected to exit that serves instead (a bad flag accepted) is killed, not leaked:
    // the test then fails on its exit code (null) instead of timing out with a server left running
    const guard = setTimeout(() => { stderr += `\n[runCli: still running after ${limitMs} ms; killed]\n`; proc.kill('SIGKILL'); }, limitMs);
    proc.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    proc.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    proc.on('exit', (code) => { clearTimeout(guard); resolve({ code, stdout, stderr }); });
  });
}

/**
 * What a test file of the command line starts and writes, undone after each test: the processes
 * it hands to `track` are stopped, the directories `tempDir` made are removed.
 */
export function cliScope(prefix: string): { track(cli: Cli): Cli; tempDir(files?: Record<string, string>): Promise<string> } {
  let clis: Cli[] = [];
  let dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(clis.map((c) => c.stop()));
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    clis = [];
    dirs = [];
  });
  return {
    track(cli) {
      clis.push(cli);
      return cli;
    },
    async tempDir(files = {}) {
      const d = await mkdtemp(path.join(os.tmpdir(), prefix));
      dirs.push(d);
      for (const [name, text] of Object.entries(files)) await writeFile(path.join(d, name), text);
      return d;
    },
  };
}

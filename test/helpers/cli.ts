import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './server.js';

export const MAIN = path.join(ROOT, 'dist/dns/main.js');

/** The real gslb-dns process, with its JSON log lines collected. */
export interface Cli {
  proc: ChildProcess;
  port: number;
  /** the HTTP API port, when started with --api */
  apiPort: number;
  lines: Record<string, unknown>[];
  /** resolves with the first log line that matches, or rejects after `ms` */
  waitLog(pred: (l: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** Starts `gslb-dns` on an ephemeral port and waits until it listens. */
export async function startCli(args: string[], env: Record<string, string> = {}): Promise<Cli> {
  const proc = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const lines: Record<string, unknown>[] = [];
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  let rest = '';
  proc.stdout!.on('data', (d: Buffer) => {
    rest += d.toString();
    const parts = rest.split('\n');
    rest = parts.pop()!;
    for (const p of parts) {
      if (!p.trim()) continue;
      let l: Record<string, unknown>;
      try { l = JSON.parse(p) as Record<string, unknown>; } catch { l = { msg: p }; }
      lines.push(l);
      for (const w of [...waiters]) if (w.pred(l)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(l); }
    }
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const waitLog = (pred: (l: Record<string, unknown>) => boolean, ms = 10_000) => new Promise<Record<string, unknown>>((resolve, reject) => {
    const found = lines.find(pred);
    if (found) { resolve(found); return; }
    const t = setTimeout(() => reject(new Error(`no such log line within ${ms} ms; stderr: ${stderr}; lines: ${JSON.stringify(lines)}`)), ms);
    waiters.push({ pred, resolve: (l) => { clearTimeout(t); resolve(l); } });
  });
  let listening: Record<string, unknown>;
  let api: Record<string, unknown> | undefined;
  try {
    listening = await waitLog((l) => l['msg'] === 'listening');
    api = args.includes('--api') ? await waitLog((l) => l['msg'] === 'api listening') : undefined;
  } catch (err) {
    // never leave a server behind when it did not come up as expected
    proc.kill('SIGKILL');
    throw err;
  }
  return {
    proc,
    port: listening['udp'] as number,
    apiPort: (api?.['port'] as number | undefined) ?? 0,
    lines,
    waitLog,
    stop: () => new Promise<void>((resolve) => {
      if (proc.exitCode !== null) { resolve(); return; }
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
      setTimeout(() => proc.kill('SIGKILL'), 5000).unref();
    }),
  };
}

/** Runs gslb-dns to completion. */
export function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    proc.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    proc.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

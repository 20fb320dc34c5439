/**
 * A program of the drill lab running inside a lab namespace (started with Lab.spawn, so the lab
 * kills it on close and on exit), with its output lines kept for readiness checks and reports.
 */
import type { ChildProcess } from 'node:child_process';
import type { Lab } from '../../lab/netns.js';
import { readJsonLines } from '../../shared/json-lines.js';

/** Output lines kept per process: enough to explain a failure, bounded for a long lab. */
const KEEP_LINES = 2_000;

export interface LabProcess {
  readonly name: string;
  readonly role: string;
  readonly proc: ChildProcess;
  /** the PID of the program itself (`ip netns exec` execs it) */
  readonly pid: number;
  /** stdout lines, pino JSON parsed (other lines as `{ msg }`) */
  readonly lines: Record<string, unknown>[];
  stderr(): string;
  exited(): boolean;
  /** resolves with the first line that matches; rejects after `ms` or when the process exits */
  waitLine(pred: (l: Record<string, unknown>) => boolean, ms: number): Promise<Record<string, unknown>>;
  /** signals the process and resolves once it exited (SIGKILL after 3 s) */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function startLabProcess(lab: Lab, role: string, name: string, argv: string[]): LabProcess {
  const proc = lab.spawn(role, argv);
  const lines: Record<string, unknown>[] = [];
  const waiters = new Set<{ pred: (l: Record<string, unknown>) => boolean; done: (l: Record<string, unknown> | Error) => void }>();
  let stderr = '';
  const exited = (): boolean => proc.exitCode !== null || proc.signalCode !== null;
  readJsonLines(proc.stdout!, (l) => {
    lines.push(l);
    if (lines.length > KEEP_LINES) lines.splice(0, lines.length - KEEP_LINES);
    for (const w of [...waiters]) if (w.pred(l)) { waiters.delete(w); w.done(l); }
  });
  proc.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-20_000); });
  proc.once('exit', (code, signal) => {
    for (const w of waiters) w.done(new Error(`${name} exited ${code ?? signal}: ${stderr.trim()}`));
    waiters.clear();
  });
  return {
    name, role, proc, lines, exited, pid: proc.pid ?? -1,
    stderr: () => stderr,
    waitLine: (pred, ms) => new Promise((resolve, reject) => {
      const found = lines.find(pred);
      if (found) { resolve(found); return; }
      if (exited()) { reject(new Error(`${name} exited ${proc.exitCode ?? proc.signalCode}: ${stderr.trim()}`)); return; }
      const t = setTimeout(() => { waiters.delete(w); reject(new Error(`${name}: no such line within ${ms} ms; stderr: ${stderr.trim()}`)); }, ms);
      const w = { pred, done: (l: Record<string, unknown> | Error) => { clearTimeout(t); if (l instanceof Error) reject(l); else resolve(l); } };
      waiters.add(w);
    }),
    stop: (signal = 'SIGTERM') => new Promise((resolve) => {
      if (exited()) { resolve(); return; }
      const k = setTimeout(() => { proc.kill('SIGKILL'); }, 3_000);
      proc.once('exit', () => { clearTimeout(k); resolve(); });
      proc.kill(signal);
    }),
  };
}

/**
 * Polls `waiting` (what is not there yet, [] when all is) every `everyMs` until it is empty;
 * rejects after `timeoutMs` with the last list, or at once when `waiting` throws.
 */
export async function waitUntilNoneWaiting(waiting: () => Promise<string[]>, timeoutMs: number, what: string, everyMs: number): Promise<void> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const left = await waiting();
    if (left.length === 0) return;
    if (performance.now() > end) throw new Error(`${what} within ${timeoutMs} ms: ${left.join('; ')}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

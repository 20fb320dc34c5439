/**
 * The demo's processes: each in a process group of its own (so a Ctrl-C on the terminal reaches
 * the launcher alone, which stops them in order), its output in <run dir>/<name>.log, and every
 * line handed to the launcher to pick what it shows. Stopping signals only these groups.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import type { ChildSpec } from './plan.js';

/** A started child. */
export interface Child {
  readonly spec: ChildSpec;
  readonly pid: number;
  readonly log: string;
  /** resolves when it has exited, with its code or signal */
  readonly exited: Promise<string>;
  /** true once it has exited */
  hasExited(): boolean;
  /** the last lines it wrote */
  tail(): string[];
}

const TAIL_LINES = 15;

/** Starts `node ...argv` in a new process group, logging to `<runDir>/<name>.log`. */
export function startChild(spec: ChildSpec, runDir: string, onLine: (child: Child, line: string) => void): Child {
  const log = path.join(runDir, `${spec.name}.log`);
  const out = createWriteStream(log);
  const proc: ChildProcess = spawn(process.execPath, [...spec.argv], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let exitedFlag = false;
  const lines: string[] = [];
  const exited = new Promise<string>((resolve) => {
    proc.once('exit', (code, signal) => { exitedFlag = true; resolve(signal ?? `code ${code}`); });
    proc.once('error', (err) => { exitedFlag = true; resolve(err.message); });
  });
  if (proc.pid === undefined) throw new Error(`${spec.name}: could not start ${process.execPath}`);
  const child: Child = { spec, pid: proc.pid, log, exited, hasExited: () => exitedFlag, tail: () => [...lines] };
  for (const stream of [proc.stdout!, proc.stderr!]) {
    let rest = '';
    stream.on('data', (d: Buffer) => {
      out.write(d);
      const parts = (rest + d.toString()).split('\n');
      rest = parts.pop()!;
      for (const line of parts) {
        if (line.trim() === '') continue;
        lines.push(line);
        if (lines.length > TAIL_LINES) lines.shift();
        onLine(child, line);
      }
    });
  }
  void exited.then(() => out.end());
  return child;
}

/** Signals a child's process group; a group already gone is not an error. */
export function signalGroup(child: Child, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: nothing of that group is left
  }
}

/**
 * Stops the children in stages (each stage after the one before has exited): SIGTERM, then
 * SIGKILL to the group of any child still there after `graceMs`.
 */
export async function stopChildren(stages: readonly (readonly Child[])[], graceMs: number): Promise<void> {
  for (const stage of stages) {
    const live = stage.filter((c) => !c.hasExited());
    for (const c of live) signalGroup(c, 'SIGTERM');
    await Promise.all(live.map(async (c) => {
      let timer: NodeJS.Timeout | undefined;
      const gone = await Promise.race([c.exited.then(() => true), new Promise<boolean>((r) => { timer = setTimeout(() => r(false), graceMs); })]);
      clearTimeout(timer);
      // SIGKILL also takes whatever the child left behind in its group
      signalGroup(c, 'SIGKILL');
      if (!gone) await c.exited;
    }));
  }
}

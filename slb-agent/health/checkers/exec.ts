/**
 * Exec check (keepalived MISC_CHECK): runs `command` (argv, no shell) with the real server in its
 * environment; exit code 0 passes. The command runs in its own process group, which is killed
 * when the check ends, so neither a hung command nor anything it started outlives the check.
 */
import { spawn } from 'node:child_process';
import type { ExecCheckConfig } from '../../config.js';
import { systemClock } from '../../../shared/clock.js';
import type { Clock } from '../../../shared/clock.js';
import { describeError, runProbe } from './deadline.js';
import type { ProbeOutcome } from './deadline.js';
import type { Checker } from './types.js';

/** Output kept for the failure reason: the last line of it is what an operator wants to see. */
const MAX_OUTPUT = 4096;

/** Kills a whole process group; it may be gone already. */
function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: nothing left to kill
  }
}

/** The last non-empty line of a command's output, shortened. */
function lastLine(out: string): string {
  const line = out.split('\n').map((l) => l.trim()).filter((l) => l !== '').pop() ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}...` : line;
}

/**
 * Runs `argv` in a new process group with `env`; resolves with the exit code (or signal) and the
 * tail of stdout+stderr. Aborting `signal` kills the group. Rejects only when it cannot start.
 */
export function runCommand(argv: readonly string[], env: NodeJS.ProcessEnv, signal: AbortSignal):
  Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = argv;
    if (file === undefined) return reject(new Error('empty command'));
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    const collect = (c: Buffer): void => {
      output = (output + c.toString('utf8')).slice(-MAX_OUTPUT);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const onAbort = (): void => killGroup(child.pid);
    signal.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      killGroup(child.pid);
      reject(err);
    });
    // 'exit', not 'close': a grandchild holding the pipes open must not delay the result
    child.once('exit', (code, sig) => {
      signal.removeEventListener('abort', onAbort);
      // whatever the command left running in its group goes with it
      killGroup(child.pid);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({ code, signal: sig, output });
    });
  });
}

/** A checker that runs the command once per probe. */
export function createExecChecker(check: ExecCheckConfig, vipName: string, clock: Clock = systemClock): Checker {
  return (target, signal) => runProbe(clock, check.timeoutMs, signal, async (s): Promise<ProbeOutcome> => {
    const env = {
      ...process.env,
      REAL_SERVER_ADDRESS: target.address,
      REAL_SERVER_PORT: String(check.port ?? target.port),
      VIP_NAME: vipName,
    };
    try {
      const r = await runCommand(check.command, env, s);
      if (r.code === 0) return { ok: true };
      const why = r.code !== null ? `exit code ${r.code}` : `killed by ${r.signal ?? 'a signal'}`;
      const tail = lastLine(r.output);
      return { ok: false, error: tail === '' ? why : `${why}: ${tail}` };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      return { ok: false, error: e.code === 'ENOENT' ? `command not found: ${check.command[0] ?? ''}` : describeError(err) };
    }
  });
}

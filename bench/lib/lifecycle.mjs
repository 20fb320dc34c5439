/**
 * How a benchmark starts and ends: a scratch directory removed at the end (kept with KEEP_TMP=1),
 * children in their own process groups killed by group, clean-up on exit and on signals, and a
 * whole-run deadline so no run outlives its budget.
 */
import fs from 'node:fs';
import os from 'node:os';

/** Removes `state.tmp` (unless KEEP_TMP=1) and clears it. */
export function removeTmp(state, log) {
  if (state.tmp === null) return;
  if (process.env.KEEP_TMP === '1') log(`keeping ${state.tmp}`);
  else fs.rmSync(state.tmp, { recursive: true, force: true });
  state.tmp = null;
}

/** True while the child has neither exited nor died of a signal (no child is not alive). */
export function alive(child) {
  return child !== null && child !== undefined && child.exitCode === null && child.signalCode === null;
}

/** Sends `signal` to the process group of a child spawned detached; a group already gone is ignored. */
export function killGroup(child, signal) {
  if (!alive(child) || child.pid === undefined) return;
  try { process.kill(-child.pid, signal); } catch { /* already gone */ }
}

/**
 * The clean-up of a benchmark whose `state` tracks `children` (a Set, killed by group),
 * `servers` (closed) and `timers` (cleared): all of them, then the scratch directory.
 */
export function releaseAll(state, log) {
  for (const t of state.timers) clearInterval(t);
  for (const c of state.children) killGroup(c, 'SIGKILL');
  state.children.clear();
  for (const s of state.servers) { s.closeAllConnections?.(); s.close(); }
  state.servers = [];
  removeTmp(state, log);
}

/** Runs `cleanupSync` when the process exits, and on SIGINT/SIGTERM/SIGHUP before exiting 128+n. */
export function cleanUpOnExit(cleanupSync, log) {
  process.on('exit', cleanupSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      log(`${sig}: cleaning up`);
      cleanupSync();
      process.exit(128 + os.constants.signals[sig]);
    });
  }
}

/**
 * Runs `main` (resolving with an exit code) under a deadline of `totalS` seconds; cleans up and
 * exits with its code, 1 on an error or when the deadline passes.
 */
export function runBench(main, { totalS, cleanupSync, log }) {
  const deadline = setTimeout(() => {
    log(`TOTAL_TIMEOUT (${totalS} s) reached: giving up`);
    cleanupSync();
    process.exit(1);
  }, totalS * 1000);
  deadline.unref();
  main().then((code) => {
    cleanupSync();
    process.exit(code);
  }, (err) => {
    log(`error: ${err?.stack ?? err}`);
    cleanupSync();
    process.exit(1);
  });
}

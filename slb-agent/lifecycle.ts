/**
 * How the agent's long-running commands (`slb-agent run`, `slb-agent pinger`) end: on SIGTERM or
 * SIGINT (or when `until` settles: a successor took over) they stop their parts in order; a
 * second signal during the stop, or a stop that hangs, must not keep the process alive. SIGHUP
 * runs `reload` (one at a time; a SIGHUP during a reload runs one more after it) and never ends
 * the process.
 */
import type { Logger } from 'pino';

const STOP_DEADLINE_MS = 5_000;

/** What ended the run: a signal, or the value `until` resolved with. */
export type StopCause<T> = { readonly signal: NodeJS.Signals } | { readonly by: T };

/** Options of runUntilSignal. */
export interface RunOptions<T> {
  /** SIGHUP: re-read the configuration (errors are the callee's to log) */
  readonly reload?: () => Promise<void>;
  /** another reason to stop (a handover); its value reaches `stop` */
  readonly until?: Promise<T>;
  /** the stop's deadline; default 5 s (a handover's drain needs longer) */
  readonly deadlineMs?: (cause: StopCause<T>) => number;
}

/** Waits for SIGTERM/SIGINT (or `until`), then runs `stop` (bounded); resolves with the exit code. */
export async function runUntilSignal<T = never>(log: Logger, stop: (cause: StopCause<T>) => Promise<void>, opts: RunOptions<T> = {}): Promise<number> {
  let reloading: Promise<void> | undefined;
  let again = false;
  const onHup = (): void => {
    if (opts.reload === undefined) return;
    if (reloading !== undefined) { again = true; return; }
    log.info({ signal: 'SIGHUP' }, 'reloading the configuration');
    const run = (): Promise<void> => opts.reload!().catch((err: unknown) => log.error({ err: (err as Error).message }, 'reload failed'))
      .then(() => {
        if (!again) return undefined;
        again = false;
        return run();
      });
    reloading = run().finally(() => { reloading = undefined; });
  };
  // without a reload, SIGHUP is still not fatal: it is logged and ignored
  const onHupIgnored = (): void => log.warn({ signal: 'SIGHUP' }, 'SIGHUP ignored: nothing to reload');
  process.on('SIGHUP', opts.reload ? onHup : onHupIgnored);
  const cause = await new Promise<StopCause<T>>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      log.info({ signal }, 'stopping');
      resolve({ signal });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    opts.until?.then((by) => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve({ by });
    }, () => undefined);
  });
  const deadline = opts.deadlineMs?.(cause) ?? STOP_DEADLINE_MS;
  const force = setTimeout(() => { log.warn('stop timed out; exiting'); process.exit(1); }, deadline);
  force.unref();
  await reloading;
  await stop(cause);
  clearTimeout(force);
  process.off('SIGHUP', opts.reload ? onHup : onHupIgnored);
  // keep ignoring SIGHUP until the process ends
  process.on('SIGHUP', () => undefined);
  log.info('stopped');
  return 0;
}

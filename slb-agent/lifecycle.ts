/**
 * How the agent's long-running commands (`slb-agent run`, `slb-agent pinger`) end: on SIGTERM or
 * SIGINT they stop their parts in order; a second signal during the stop, or a stop that hangs,
 * must not keep the process alive.
 */
import type { Logger } from 'pino';

const STOP_DEADLINE_MS = 5_000;

/** Waits for SIGTERM/SIGINT, then runs `stop` (bounded); resolves with the exit code. */
export async function runUntilSignal(log: Logger, stop: () => Promise<void>): Promise<number> {
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      log.info({ signal }, 'stopping');
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  const force = setTimeout(() => { log.warn('stop timed out; exiting'); process.exit(1); }, STOP_DEADLINE_MS);
  force.unref();
  await stop();
  clearTimeout(force);
  log.info('stopped');
  return 0;
}

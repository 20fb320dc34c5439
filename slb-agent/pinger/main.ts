/**
 * `slb-agent pinger --config pinger.yaml [--log-level LEVEL]`: the pinger alone, for a real server
 * that runs no agent. SIGHUP re-reads the file: a changed `pinger:` block restarts the pinger with
 * it (if the new one cannot start, the old config runs on); an invalid file is logged, every
 * `file:line: path: reason`, and changes nothing; a changed `api` needs a restart. Exit codes as the agent's: 0 clean stop, 1 bad config, a socket or port
 * that cannot be opened (the addon missing for arp/icmp included), 2 bad flags.
 */
import { createLogger, exitCodeOf, helpOrVersion, UsageError } from '../../shared/cli.js';
import type { CommandHelp } from '../../shared/cli.js';
import { parseArgs } from 'node:util';
import { AgentConfigError } from '../config.js';
import { createPingerApi } from './api.js';
import { loadPingerFile } from './file.js';
import type { PingerFileConfig } from './file.js';
import { checkPingerAddon, createPinger } from './pinger.js';
import type { Pinger } from './pinger.js';
import { runUntilSignal } from '../lifecycle.js';

/** The standalone pinger's help (--help, and after a usage error). */
export const PINGER_HELP: CommandHelp = {
  name: 'slb-agent pinger',
  usage: `  slb-agent pinger --config pinger.yaml [--log-level LEVEL]
The MAC keepalive alone, for a real server (file: pinger: {...}, api: HOST:PORT). Runs until
SIGTERM or SIGINT; SIGHUP reloads the file.`,
  examples: ['slb-agent pinger --config examples/rs-pinger.yaml', 'slb-agent pinger --config /etc/slb-agent/pinger.yaml --log-level debug'],
};


/** Runs the standalone pinger until SIGTERM/SIGINT; resolves with the exit code (2 and the help for bad flags). */
export async function pingerMain(args: string[]): Promise<number> {
  const asked = helpOrVersion(args, PINGER_HELP);
  if (asked !== undefined) return asked;
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: { config: { type: 'string' }, 'log-level': { type: 'string', default: 'info' } },
      strict: true,
    }));
    if (!values.config) throw new UsageError('--config FILE is required');
  } catch (err) {
    return exitCodeOf(err, PINGER_HELP);
  }
  let config: PingerFileConfig;
  try {
    config = await loadPingerFile(values.config);
  } catch (err) {
    if (!(err instanceof AgentConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 1;
  }
  const log = createLogger(values['log-level']!);
  let pinger: Pinger = createPinger({ config: config.pinger, logger: log });
  try {
    checkPingerAddon(config.pinger);
    await pinger.start();
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'pinger failed to start');
    process.stderr.write(`${(err as Error).message}\n`);
    return 1;
  }
  // the API reads whichever pinger runs now (a reload replaces it)
  const app = await createPingerApi({ start: () => pinger.start(), stop: () => pinger.stop(), status: () => pinger.status() }, log);
  try {
    await app.listen({ host: config.api.host, port: config.api.port });
  } catch (err) {
    await pinger.stop();
    log.fatal({ err: (err as Error).message }, 'api cannot listen');
    return 1;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.api.port;
  log.info({ api: `${config.api.host}:${port}`, port }, 'pinger: api listening');

  const file = values.config;
  const reload = async (): Promise<void> => {
    let next: PingerFileConfig;
    try {
      next = await loadPingerFile(file);
    } catch (err) {
      if (!(err instanceof AgentConfigError)) throw err;
      const lines = err.message.split('\n');
      err.errors.forEach((e, i) => log.error({ file: e.file, ...(e.line !== undefined ? { line: e.line } : {}), path: e.path, reason: e.reason }, lines[i] ?? e.reason));
      log.error({ file, errors: err.errors.length }, 'reload failed: the file is invalid; the running config stays');
      return;
    }
    if (next.api.host !== config.api.host || next.api.port !== config.api.port) {
      log.error({ from: config.api, to: next.api }, 'reload refused: api changed; restart the pinger to move its API; the running config stays');
      return;
    }
    if (JSON.stringify(next.pinger) === JSON.stringify(config.pinger)) {
      log.info({ pinger: false }, 'config reloaded');
      return;
    }
    const old = pinger;
    const fresh = createPinger({ config: next.pinger, logger: log });
    await old.stop();
    try {
      checkPingerAddon(next.pinger);
      await fresh.start();
    } catch (err) {
      log.error({ err: (err as Error).message }, 'reload failed: the new pinger cannot start; the running config stays');
      pinger = createPinger({ config: config.pinger, logger: log });
      await pinger.start().catch((e: unknown) => log.error({ err: (e as Error).message }, 'pinger failed to restart'));
      return;
    }
    pinger = fresh;
    config = next;
    log.info({ pinger: true }, 'config reloaded');
  };

  return runUntilSignal(log, async () => {
    await pinger.stop();
    await app.close();
  }, { reload });
}

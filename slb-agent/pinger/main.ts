/**
 * `slb-agent pinger --config pinger.yaml [--log-level LEVEL]`: the pinger alone, for a real server
 * that runs no agent. Exit codes as the agent's: 0 clean stop, 1 bad config, a socket or port
 * that cannot be opened (the addon missing for arp/icmp included), 2 bad flags.
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { AgentConfigError } from '../config.js';
import { createPingerApi } from './api.js';
import { loadPingerFile } from './file.js';
import type { PingerFileConfig } from './file.js';
import { checkPingerAddon, createPinger } from './pinger.js';
import { runUntilSignal } from '../lifecycle.js';

export const PINGER_USAGE = 'slb-agent pinger --config pinger.yaml [--log-level LEVEL]   (MAC keepalive only; file: pinger: {...}, api: HOST:PORT)';

function createLogger(level: string): Logger {
  if (process.stdout.isTTY) return pino({ level, transport: { target: 'pino-pretty', options: { colorize: true } } });
  return pino({ level });
}

/** Runs the standalone pinger until SIGTERM/SIGINT; resolves with the exit code (throws a parseArgs error for bad flags). */
export async function pingerMain(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { config: { type: 'string' }, 'log-level': { type: 'string', default: 'info' } },
    strict: true,
  });
  if (!values.config) {
    process.stderr.write(`slb-agent pinger: --config FILE is required\nusage: ${PINGER_USAGE}\n`);
    return 2;
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
  const pinger = createPinger({ config: config.pinger, logger: log });
  try {
    checkPingerAddon(config.pinger);
    await pinger.start();
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'pinger failed to start');
    process.stderr.write(`${(err as Error).message}\n`);
    return 1;
  }
  const app = await createPingerApi(pinger, log);
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

  return runUntilSignal(log, async () => {
    await pinger.stop();
    await app.close();
  });
}

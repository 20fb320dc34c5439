#!/usr/bin/env node
/**
 * slb-agent CLI wiring only: parse flags, load the config, build the agent and its API, run until
 * SIGTERM/SIGINT (final report, then stop); SIGHUP reloads the file (an invalid one is logged,
 * every `file:line: path: reason`, and the running config stays). Exit codes: 0 clean stop or
 * valid config, 1 bad config or a port that cannot be bound, 2 bad flags.
 */
import { createLogger, exitCodeOf, helpOrVersion, UsageError } from '../shared/cli.js';
import type { CommandHelp } from '../shared/cli.js';
import { isLoopback, readTokenFile } from '../shared/api-auth.js';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { AgentConfigError, DEFAULT_DRAIN_TIMEOUT_MS, loadAgentConfig } from './config.js';
import type { AgentConfig } from './config.js';
import { runUntilSignal } from './lifecycle.js';
import type { HandoverRequest } from './handover.js';

/** Longest a successor waits for its first apply before asking the running agent to hand over. */
const HANDOVER_READY_MAX_MS = 60_000;
/** Longest it waits for the running agent to release its API. */
const HANDOVER_ANSWER_MS = 5_000;

/** The whole program's help: every command. */
const HELP: CommandHelp = {
  name: 'slb-agent',
  usage: `  slb-agent --config site.yaml [--admin-token-file FILE] [--read-token-file FILE]
            [--log-level LEVEL] [--cleanup-on-exit] [--run-dir DIR]
      (SIGHUP reloads the file; started while an agent of the same site and name runs, it takes over;
       the API's drains need --admin-token-file, /status needs a token only with --read-token-file)
  slb-agent check --config site.yaml
  slb-agent pinger --config pinger.yaml [--log-level LEVEL]   (MAC keepalive alone, for a real server)
  slb-agent rs-setup --mode dsr|l3dsr-dscp|l3dsr-tunnel --vip ADDR [...] [--undo]   (prepare a real server; rs-setup --help)
Every command also takes --help and --version.`,
  examples: [
    'slb-agent --config /etc/slb-agent/site.yaml --admin-token-file /etc/slb-agent/admin.token',
    'slb-agent check --config /etc/slb-agent/site.yaml',
    'slb-agent pinger --config /etc/slb-agent/pinger.yaml',
    'sudo slb-agent rs-setup --mode dsr --vip 192.0.2.1',
  ],
};

const CHECK_HELP: CommandHelp = {
  name: 'slb-agent check',
  usage: `  slb-agent check --config site.yaml
Validates the file as the agent would load it, prints its VIPs (and warnings, such as a short
secret), and exits 0, or 1 with one file:line: path: reason per error.`,
  examples: ['slb-agent check --config site.yaml', 'slb-agent check --config site.yaml && kill -HUP "$(pidof slb-agent)"'],
};



async function load(file: string): Promise<AgentConfig | undefined> {
  try {
    return await loadAgentConfig(file);
  } catch (err) {
    if (!(err instanceof AgentConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return undefined;
  }
}

/** Logs every error of a config that failed to load, one `file:line: path: reason` line each. */
function logConfigErrors(log: Logger, err: AgentConfigError, msg: string): void {
  const lines = err.message.split('\n');
  err.errors.forEach((e, i) => log.error({ file: e.file, ...(e.line !== undefined ? { line: e.line } : {}), path: e.path, reason: e.reason }, lines[i] ?? e.reason));
  log.error({ file: err.errors[0]?.file, errors: err.errors.length }, msg);
}

async function check(args: string[]): Promise<number> {
  const asked = helpOrVersion(args, CHECK_HELP);
  if (asked !== undefined) return asked;
  const { values } = parseArgs({ args, options: { config: { type: 'string' } }, strict: true });
  if (!values.config) throw new UsageError('--config FILE is required');
  const config = await load(values.config);
  if (!config) return 1;
  const rs = config.vips.reduce((n, v) => n + v.realServers.length, 0);
  for (const v of config.vips) {
    const fw = v.forwarder ? `forwarder ${v.forwarder.mode}/${v.forwarder.scheduler}` : 'not forwarded';
    const own = v.vipCheck ? `, vip check ${v.vipCheck.type}` : '';
    process.stdout.write(`vip ${v.name}: ${v.address}:${v.port}/${v.protocol}, ${v.realServers.length} real servers, check ${v.check.type}${own}, ${fw}\n`);
  }
  for (const w of config.warnings) process.stderr.write(`warning: ${w}\n`);
  process.stdout.write(`OK: site ${config.site}, agent ${config.agent}, ${config.vips.length} VIPs, ${rs} real servers, ${config.dns.length} DNS instances\n`);
  return 0;
}

async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      // remove the kernel forwarding on exit (overrides forwarder.cleanupOnExit in the file)
      'cleanup-on-exit': { type: 'boolean' },
      // where the control socket of a running agent is found (handover); see handover.ts
      'run-dir': { type: 'string' },
      // state changes through the API need one of its tokens; without the flag they are refused
      'admin-token-file': { type: 'string' },
      // reading /status needs a read (or admin) token; without the flag reading is open
      'read-token-file': { type: 'string' },
    },
    strict: true,
  });
  if (!values.config) throw new UsageError('--config FILE is required');
  const adminToken = await readTokenFile('admin-token-file', values['admin-token-file']);
  const readToken = await readTokenFile('read-token-file', values['read-token-file']);
  const log = createLogger(values['log-level']!);
  // until the run loop takes SIGHUP over (start-up, a handover's wait), it must not end the process
  const earlyHup = (): void => log.warn({ signal: 'SIGHUP' }, 'SIGHUP during start-up ignored; send it again once the agent runs');
  process.on('SIGHUP', earlyHup);
  const loaded = await load(values.config);
  if (!loaded) {
    log.fatal({ file: values.config }, 'config failed to load');
    return 1;
  }
  for (const w of loaded.warnings) log.warn(w);
  const config: AgentConfig = values['cleanup-on-exit'] === true ? { ...loaded, forwarder: { ...loaded.forwarder, cleanupOnExit: true } } : loaded;
  // loaded here, not at the top: `rs-setup` and `pinger` runs need neither the agent nor fastify
  const { createAgent } = await import('./agent.js');
  const { createAgentApi } = await import('./api/app.js');
  const { controlPath, defaultRunDir, findPredecessor, listenControl, removeControl } = await import('./handover.js');
  const ctlPath = controlPath(values['run-dir'] ?? defaultRunDir(), config.site, config.agent);
  const predecessor = await findPredecessor(ctlPath);
  if (config.vips.some((v) => v.forwarder?.mode === 'proxy')) {
    const { enableTcpMigrateReq, loadReusePort } = await import('./forwarder/proxy/reuseport.js');
    if (loadReusePort().open !== undefined) {
      // without it, connections queued on the listener a handing-over agent closes are reset
      const m = enableTcpMigrateReq();
      if (m.ok) log.info({ detail: m.detail }, 'net.ipv4.tcp_migrate_req is 1: queued connections move to the successor on a handover');
      else log.warn({ detail: m.detail }, 'cannot set net.ipv4.tcp_migrate_req=1: on a handover, connections queued on the old listener are reset');
    }
  }
  const agent = createAgent({ config, logger: log });
  const app = await createAgentApi({ agent, logger: log, adminToken, readToken });
  if (readToken === undefined && !isLoopback(config.api.host)) {
    log.warn({ api: `${config.api.host}:${config.api.port}` }, 'the API listens on a non-loopback address without --read-token-file: anyone who reaches it reads /status');
  }
  if (adminToken === undefined) log.info('no --admin-token-file: the API refuses every state change (drain, undrain) with 403');
  const listenApi = async (): Promise<void> => {
    // after a handover the predecessor has just closed the port: a few tries, not one
    for (let i = 0; ; i++) {
      try {
        await app.listen({ host: config.api.host, port: config.api.port });
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || predecessor === undefined || i >= 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : config.api.port;
    log.info({ api: `${config.api.host}:${port}`, port }, 'api listening');
  };
  let handover: (req: HandoverRequest) => void = () => undefined;
  const handedOver = new Promise<HandoverRequest>((resolve) => { handover = resolve; });
  if (predecessor === undefined) {
    await listenApi();
    agent.start();
  } else {
    // the successor's side of handover.ts: serve beside the old agent, then take over
    log.info({ control: ctlPath }, 'a running agent found: taking over once ready');
    agent.start();
    let readyTimer: NodeJS.Timeout | undefined;
    await Promise.race([agent.ready(), new Promise((r) => { readyTimer = setTimeout(r, HANDOVER_READY_MAX_MS); })]);
    clearTimeout(readyTimer);
    const released = await predecessor.handOver(HANDOVER_ANSWER_MS);
    predecessor.close();
    if (!released) log.warn('the running agent did not confirm the handover; going on');
    // the old agent is going away: failing now would leave nobody serving, so the API is optional here
    await listenApi().catch((err: unknown) => log.error({ err: (err as Error).message }, 'api cannot listen after the handover; running without the local API'));
  }
  // without its control socket the agent still runs; only a later restart cannot take over from it
  const control = await listenControl(ctlPath, (req) => handover(req)).catch((err: unknown) => {
    log.warn({ control: ctlPath, err: (err as Error).message }, 'no control socket: a restart will not be able to take over from this agent');
    return undefined;
  });
  if (predecessor !== undefined) log.info({ control: ctlPath }, 'handover complete');
  const drainMs = config.forwarder.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;

  const reload = async (): Promise<void> => {
    let next: AgentConfig;
    try {
      next = await loadAgentConfig(values.config!);
    } catch (err) {
      if (!(err instanceof AgentConfigError)) throw err;
      logConfigErrors(log, err, 'reload failed: the file is invalid; the running config stays');
      return;
    }
    for (const w of next.warnings) log.warn(w);
    if (values['cleanup-on-exit'] === true) next = { ...next, forwarder: { ...next.forwarder, cleanupOnExit: true } };
    const r = agent.reload(next);
    if (!r.ok) log.error({ reason: r.reason }, `reload refused: ${r.reason}; the running config stays`);
    else log.info(r.summary, 'config reloaded');
  };

  process.off('SIGHUP', earlyHup);
  return runUntilSignal<HandoverRequest>(log, async (cause) => {
    if ('by' in cause) {
      // a handover is not a stop: no final report; the successor gets the API port at once
      log.info({ drainMs: agent.config.forwarder.drainTimeoutMs ?? drainMs }, 'handover: a successor took over; draining open flows');
      control?.close();
      await app.close();
      cause.by.released();
      await agent.stop({ kind: 'handover', drainMs: agent.config.forwarder.drainTimeoutMs ?? drainMs });
      return;
    }
    if (control !== undefined) {
      control.close();
      removeControl(ctlPath);
    }
    await agent.stop();
    await app.close();
  }, {
    reload,
    until: handedOver,
    deadlineMs: (cause) => ('by' in cause ? (agent.config.forwarder.drainTimeoutMs ?? drainMs) + 5_000 : 5_000),
  });
}

/** Entry point: returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  // a usage error repeats the help of the command that was given (pinger and rs-setup answer their own)
  const help = argv[0] === 'check' ? CHECK_HELP : HELP;
  try {
    if (argv[0] === 'check') return await check(argv.slice(1));
    if (argv[0] === 'rs-setup') return await (await import('./rs-setup.js')).rsSetupMain(argv.slice(1));
    if (argv[0] === 'pinger') return await (await import('./pinger/main.js')).pingerMain(argv.slice(1));
    const args = argv[0] === 'run' ? argv.slice(1) : argv;
    return helpOrVersion(args, HELP) ?? await run(args);
  } catch (err) {
    return exitCodeOf(err, help);
  }
}

const code = await main(process.argv.slice(2));
process.exitCode = code;

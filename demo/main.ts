#!/usr/bin/env node
/**
 * `npm start`: the whole system on loopback, without root. Two gslb-dns instances serve zones/;
 * each site of demo/*.agent.yaml gets an slb-agent (userspace proxy VIP) in front of its demo
 * backends (lab/backend-server.ts), reporting to both instances. Waits until both answer from
 * health, prints what to try, and on SIGINT/SIGTERM stops everything it started (agents first,
 * so their final report reaches DNS), by the process groups it created.
 * Exit codes: 0 after a clean stop, 1 a port taken or a child failed at start, 2 bad flags.
 */
import { exitCodeOf, helpOrVersion, UsageError } from '../shared/cli.js';
import type { CommandHelp } from '../shared/cli.js';
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { durationFlag } from '../shared/config/values.js';
import { signalGroup, startChild, stopChildren } from './children.js';
import type { Child } from './children.js';
import { planDemo } from './plan.js';
import type { DemoOptions, Plan } from './plan.js';
import { waitHealthy } from './ready.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The demo launcher's help (--help, and after a usage error). */
const HELP: CommandHelp = {
  name: 'npm start',
  usage: `  npm start [-- OPTIONS]    (or: node dist/demo/main.js OPTIONS)
  --ns1 ADDR --ns2 ADDR       loopback addresses of the two gslb-dns instances (127.0.0.1, 127.0.0.2)
  --dns-port N --api-port N   their DNS (UDP and TCP) and HTTP API ports (5300, 8053)
  --vip-port N --backend-port N --agent-api-port N
                              the sites' VIPs, demo backends and agent APIs (default: demo/*.agent.yaml)
  --run-dir DIR               logs, admin token, the agents' files of this run (./run)
  --ready-timeout DURATION    how long to wait for health-based answers (60s)
A port of 0 is a free port chosen at start (see <run dir>/demo.json).`,
  examples: ['npm start', 'npm start -- --ns1 127.0.0.1 --ns2 127.0.0.3 --dns-port 5301 --api-port 8054 --run-dir /tmp/demo2'],
};


/** Graceful stop of one stage of children before SIGKILL. */
const STOP_GRACE_MS = 8000;
/** A Ctrl-C reaches npm and the launcher, and npm forwards it: a repeat this soon is the same one. */
const SIGNAL_ECHO_MS = 1000;

function parsePort(flag: string, v: string | undefined, dflt?: number): number | undefined {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new UsageError(`--${flag}: expected a port 0-65535, got ${JSON.stringify(v)}`);
  return n;
}

function parseOptions(argv: string[]): DemoOptions & { readyTimeoutMs: number } {
  const { values } = parseArgs({
    args: argv,
    options: {
      ns1: { type: 'string', default: '127.0.0.1' },
      ns2: { type: 'string', default: '127.0.0.2' },
      'dns-port': { type: 'string' }, 'api-port': { type: 'string' }, 'vip-port': { type: 'string' },
      'backend-port': { type: 'string' }, 'agent-api-port': { type: 'string' },
      'run-dir': { type: 'string' }, 'ready-timeout': { type: 'string' },
    },
    strict: true,
  });
  const readyTimeoutMs = values['ready-timeout'] === undefined ? 60_000 : durationFlag('ready-timeout', values['ready-timeout']);
  return {
    root: ROOT,
    runDir: path.resolve(values['run-dir'] ?? path.join(ROOT, 'run')),
    instances: [{ name: 'ns1', host: values.ns1 }, { name: 'ns2', host: values.ns2 }],
    dnsPort: parsePort('dns-port', values['dns-port'], 5300)!,
    apiPort: parsePort('api-port', values['api-port'], 8053)!,
    vipPort: parsePort('vip-port', values['vip-port']),
    backendPort: parsePort('backend-port', values['backend-port']),
    agentApiPort: parsePort('agent-api-port', values['agent-api-port']),
    readyTimeoutMs,
  };
}

/** Log lines worth showing on the terminal: errors always; health and operator actions once running. */
function shown(line: string, running: boolean): string | undefined {
  let j: { level?: number; msg?: string; action?: string; site?: string; address?: string; actor?: string; err?: string };
  try {
    j = JSON.parse(line) as typeof j;
  } catch {
    // not a log line (a crash, a usage error): shown, but for a backend's `ready`
    return line === 'ready' ? undefined : line;
  }
  const msg = j.msg ?? '';
  if ((j.level ?? 0) >= 50) return j.err === undefined ? msg : `${msg}: ${j.err}`;
  if (!running) return undefined;
  if (msg.startsWith('admin action')) return `${msg}: ${j.action} ${j.site}${j.address === undefined ? '' : ` ${j.address}`} by ${j.actor}`;
  return /^(health: |real server |vip |pool )/.test(msg) ? msg : undefined;
}

/** The block printed once the demo answers from health. */
/** The shipped drill plan names the default addresses and run dir: offered only when this run has them. */
const DEMO_DRILL = 'demo/drills/tokyo-drain.yaml';
const DEMO_DRILL_ENDPOINTS = ['127.0.0.1:5300 http://127.0.0.1:8053', '127.0.0.2:5300 http://127.0.0.2:8053'];

function drillLine(plan: Plan): string[] {
  const root = path.dirname(path.dirname(plan.tokenFile));
  const endpoints = plan.instances.map((i) => `${i.host}:${i.dnsPort} ${i.api}`);
  const defaults = path.basename(path.dirname(plan.tokenFile)) === 'run' && existsSync(path.join(root, DEMO_DRILL))
    && endpoints.join('|') === DEMO_DRILL_ENDPOINTS.join('|') && plan.sites.every((s) => s.vips.every((v) => v.port === 8080));
  return defaults ? [`  npx gslb-dns drill --plan ${DEMO_DRILL} --html run/tokyo-drain.html   # a failover drill: drain tokyo, see clients move, roll back`] : [];
}

export function tryThis(plan: Plan, pids: ReadonlyMap<string, number>, token: string, readyMs: number): string {
  const ns1 = plan.instances[0]!;
  const servers = plan.instances.map((i) => i.api).join(',');
  const dig = `dig @${ns1.host} -p ${ns1.dnsPort} www.gslb.example.test`;
  const vipPort = plan.sites[0]?.vips[0]?.port ?? 8080;
  const firstSite = plan.sites[0]!;
  const backend = firstSite.backends[0]!;
  const rel = (p: string): string => (path.relative(process.cwd(), p).startsWith('..') ? p : path.relative(process.cwd(), p));
  const tokenFile = rel(plan.tokenFile);
  const ctl = `npx gslb-dns ctl --servers ${servers} --token-file ${tokenFile}`;
  return [
    '',
    `gslb demo ready after ${(readyMs / 1000).toFixed(1)} s: both gslb-dns instances answer www.gslb.example.test from the sites' health`,
    ...plan.instances.map((i) => `  ${i.name.padEnd(6)} DNS ${i.host}:${i.dnsPort}  API ${i.api}/`),
    ...plan.sites.map((s) => `  ${s.site.padEnd(6)} VIP ${s.vips.map((v) => `${v.address}:${v.port}`).join(' ')} -> ${s.backends.map((b) => b.endpoint).join(', ')}  (agent page ${s.agentApi}/)`),
    '',
    'Try this:',
    `  ${dig}`,
    `  curl http://$(${dig} +short | head -1):${vipPort}/     # a backend says which site and backend answered`,
    `  kill ${pids.get(backend.name)}      # stop ${backend.name} (${backend.endpoint}): its agent takes it out, the VIP still answers; stop both backends of a site and DNS answers the other site`,
    `  ${ctl} drain site ${firstSite.site}`,
    `  ${ctl} undrain site ${firstSite.site}`,
    `  ${ctl} state`,
    `  ${ctl} explain www.gslb.example.test      # what each instance answers and why, and whether they agree`,
    `  curl -H "Authorization: Bearer $(cat ${tokenFile})" ${ns1.api}/api/v1/state`,
    ...drillLine(plan),
    `Status page: ${ns1.api}/   (live, no token needed to read; paste the admin token to drain, undrain, force down or release; ${plan.instances.slice(1).map((i) => `${i.name}: ${i.api}/`).join(', ')})`,
    `Admin token of this run: ${token}   (in ${tokenFile})`,
    `Processes: ${[...pids].map(([name, pid]) => `${name} ${pid}`).join(', ')}`,
    `Logs: ${rel(path.dirname(plan.tokenFile))}/<name>.log`,
    'Ctrl-C stops everything.',
    '',
  ].join('\n');
}

async function run(opts: DemoOptions & { readyTimeoutMs: number }): Promise<number> {
  const planned = await planDemo(opts);
  if (!planned.ok) {
    process.stderr.write(`npm start: ${planned.message}\n`);
    return 1;
  }
  const { plan } = planned;
  await mkdir(path.join(opts.runDir, 'agents'), { recursive: true });
  const demoJson = path.join(opts.runDir, 'demo.json');
  await rm(demoJson, { force: true }); // the last run's pids
  const token = randomBytes(24).toString('hex');
  await writeFile(plan.tokenFile, `${token}\n`, { mode: 0o600 });
  for (const s of plan.sites) await writeFile(s.configFile, s.configText);

  const t0 = Date.now();
  let running = false;
  let stopping = false;
  let failed: string | undefined;
  const say = (text: string): void => { process.stdout.write(`${text}\n`); };
  const children: Child[] = [];
  const killAll = (): void => { for (const c of children) signalGroup(c, 'SIGKILL'); };
  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    say(`npm start: ${why}: stopping ${children.filter((c) => !c.hasExited()).length} processes`);
    // agents first: their final report takes their VIPs out of DNS while DNS still listens
    const of = (kind: string): Child[] => children.filter((c) => c.spec.kind === kind);
    await stopChildren([of('agent'), [...of('backend'), ...of('dns')]], STOP_GRACE_MS);
    say('npm start: stopped');
  };
  // before the first child starts, so that no signal finds a child without its launcher's care
  let signalledAt: number | undefined;
  const stopped = new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals): void => {
      // a second Ctrl-C: no more waiting; not the copy npm forwards of the terminal's first one
      if (signalledAt !== undefined) { if (Date.now() - signalledAt > SIGNAL_ECHO_MS) killAll(); return; }
      signalledAt = Date.now();
      void stop(sig).then(resolve);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  // leave nothing behind on an unexpected exit of the launcher either (SIGKILL aside)
  process.on('exit', killAll);

  for (const spec of plan.children) {
    const c = startChild(spec, opts.runDir, (child, line) => {
      const text = shown(line, running);
      if (text !== undefined) say(`[${child.spec.name}] ${text}`);
    });
    children.push(c);
    void c.exited.then((how) => {
      if (stopping) return;
      if (!running) failed ??= `${c.spec.name} exited (${how}) during the start; its last lines (${c.log}):\n${c.tail().map((l) => `  ${l}`).join('\n')}`;
      else say(`[${c.spec.name}] exited (${how})`);
    });
  }
  // written whole and renamed into place: a reader (the test) never sees half of it
  await writeFile(`${demoJson}.tmp`, `${JSON.stringify({
    launcher: process.pid,
    children: children.map((c) => ({ name: c.spec.name, kind: c.spec.kind, pid: c.pid, log: c.log })),
    instances: plan.instances, sites: plan.sites.map(({ configText: _t, ...s }) => s), tokenFile: plan.tokenFile,
  }, null, 2)}\n`);
  await rename(`${demoJson}.tmp`, demoJson);

  say(`npm start: ${children.length} processes starting (logs in ${opts.runDir})...`);
  const ready = await waitHealthy(plan.instances.map((i) => ({ name: i.name, url: i.api })), token, {
    timeoutMs: opts.readyTimeoutMs, everyMs: 100, stop: () => stopping || failed !== undefined,
  });
  if (failed !== undefined && !stopping) {
    process.stderr.write(`npm start: ${failed}\n`);
    await stop('a process failed');
    return 1;
  }
  if (stopping) {
    await stopped;
    return 0;
  }
  running = true;
  if (ready.ok) say(tryThis(plan, new Map(children.map((c) => [c.spec.name, c.pid])), token, Date.now() - t0));
  else say(`npm start: not answering from health after ${opts.readyTimeoutMs / 1000} s, still waiting for:\n${ready.waiting.map((w) => `  ${w}`).join('\n')}\n(logs in ${opts.runDir}; Ctrl-C stops everything)`);
  await stopped;
  return 0;
}

/** Entry point: the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    return helpOrVersion(argv, HELP) ?? await run(parseOptions(argv));
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) return exitCodeOf(err, HELP);
    // a site file that does not load says file:line: path: reason; anything else is a bug: its stack
    const e = err as Error;
    process.stderr.write(`npm start: ${e.name === 'AgentConfigError' ? e.message : e.stack ?? String(err)}\n`);
    return 1;
  }
}

// exit explicitly: the API client's kept-alive sockets must not hold the launcher after its children are gone
process.exit(await main(process.argv.slice(2)));

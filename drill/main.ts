/**
 * `gslb-dns drill --plan FILE [--json OUT] [--html OUT] [--dry-run]`: runs a failover drill plan
 * against the gslb-dns instances it names (bin/gslb-dns.js dispatches here, so dns/ never
 * imports drill/). Exit codes: 0 SUCCEEDED, 1 FAILED, 2 ERROR (bad plan or usage), 3 INTERRUPTED.
 * Ctrl-C stops the drill and rolls back; a second Ctrl-C stops the rollback.
 */
import { helpOrVersion, helpText } from '../shared/cli.js';
import type { CommandHelp } from '../shared/cli.js';
import { constants } from 'node:fs';
import { access, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { systemClock } from '../shared/clock.js';
import { createProgress } from './progress.js';
import { renderDrillHtml } from './report-html.js';
import { loadPlan, PlanError } from './plan.js';
import type { Plan } from './plan.js';
import { OUTCOME_EXIT } from './result.js';
import type { DrillResult } from './result.js';
import { describeStep, runDrill } from './runner.js';
import { createTransport } from './transport.js';

/** drill's help: usage and examples (--help, and after a usage error). */
export const DRILL_HELP: CommandHelp = {
  name: 'gslb-dns drill',
  usage: `  gslb-dns drill --plan FILE [--json OUT] [--html OUT] [--dry-run]
Runs the failover drill of the plan (YAML) against the gslb-dns instances it names: its actions
and commands in order, checking its expectations and guards, then its rollback.
  --json OUT   write the drill's record (outcome, steps, rollback, guards, samples) as JSON
  --html OUT   write it as an HTML report
  --dry-run    validate the plan and print what would be done; change nothing
Exit: 0 SUCCEEDED, 1 FAILED (an expectation missed its deadline), 2 ERROR (could not run),
3 INTERRUPTED (a guard tripped or Ctrl-C).`,
  examples: [
    'gslb-dns drill --plan demo/drills/tokyo-drain.yaml --dry-run',
    'gslb-dns drill --plan demo/drills/tokyo-drain.yaml --json run/drill.json --html run/drill.html',
  ],
};

/** What the command writes to and listens on; the process's by default. */
export interface DrillIo {
  readonly stdout: { write(s: string): void; isTTY?: boolean };
  readonly stderr: { write(s: string): void };
  readonly env: Readonly<Record<string, string | undefined>>;
  /** registers the Ctrl-C handler; returns its removal */
  readonly onSigint: (fn: () => void) => () => void;
}

const processIo: DrillIo = {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  onSigint: (fn) => {
    process.on('SIGINT', fn);
    return () => { process.off('SIGINT', fn); };
  },
};

/** The plan in words, for --dry-run. */
export function describePlan(plan: Plan): string {
  const lines = [`drill ${plan.name} (${plan.file}): dry run, nothing is changed`];
  lines.push(`instances: ${plan.instances.map((i) => `${i.name} (dns ${i.dns.host}:${i.dns.port}, api ${i.api ?? 'none'})`).join(', ')}`);
  for (const v of plan.vantages) {
    lines.push(`vantage ${v.name}: ${v.type} ${v.names.join(', ')}${v.subnet !== undefined ? ` with ECS ${v.subnet.address}/${v.subnet.prefix}` : ''} asking ${v.server !== undefined ? v.server.text : 'every instance'}${v.http !== undefined ? `, fetching ${v.http}` : ''}, every ${plan.probeEveryMs} ms`);
  }
  for (const g of plan.guards) lines.push(`guard ${g.name}: ${g.serving} served with at least ${g.atLeast} address${g.atLeast === 1 ? '' : 'es'}${g.from !== undefined ? ` to ${g.from}` : ''}`);
  plan.steps.forEach((s, i) => lines.push(`step ${i}: ${describeStep(s)}${s.kind === 'action' ? ` on ${plan.instances.map((x) => x.name).join(', ')}` : ''}`));
  plan.rollback.forEach((s, i) => lines.push(`rollback ${i}: ${describeStep(s)}${s.kind === 'action' ? ` on ${plan.instances.map((x) => x.name).join(', ')}` : ''}`));
  return `${lines.join('\n')}\n`;
}

/** Writes the record as JSON and the report as HTML where asked; false when one could not be written. */
async function writeOutputs(r: DrillResult, out: { json?: string | undefined; html?: string | undefined }, io: DrillIo): Promise<boolean> {
  let ok = true;
  for (const [flag, file, text] of [['--json', out.json, () => `${JSON.stringify(r, null, 2)}\n`], ['--html', out.html, () => renderDrillHtml(r)]] as const) {
    if (file === undefined) continue;
    try {
      await writeFile(file, text());
    } catch (err) {
      io.stderr.write(`gslb-dns drill: ${flag}: cannot write ${file}: ${(err as Error).message}\n`);
      ok = false;
    }
  }
  return ok;
}

/** Runs `gslb-dns drill` with the arguments after `drill`; resolves with the exit code. */
export async function drill(argv: string[], io: DrillIo = processIo): Promise<number> {
  const asked = helpOrVersion(argv, DRILL_HELP, (t) => io.stdout.write(t));
  if (asked !== undefined) return asked;
  let values: { plan?: string; json?: string; html?: string; 'dry-run'?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { plan: { type: 'string' }, json: { type: 'string' }, html: { type: 'string' }, 'dry-run': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true, allowPositionals: false,
    }));
  } catch (err) {
    io.stderr.write(`gslb-dns drill: ${(err as Error).message}\n${helpText(DRILL_HELP)}`);
    return OUTCOME_EXIT.ERROR;
  }
  if (values.help === true) { io.stdout.write(helpText(DRILL_HELP)); return 0; }
  if (values.plan === undefined) { io.stderr.write(`gslb-dns drill: --plan FILE is required\n${helpText(DRILL_HELP)}`); return OUTCOME_EXIT.ERROR; }
  let plan: Plan;
  try {
    plan = await loadPlan(values.plan, io.env);
  } catch (err) {
    if (!(err instanceof PlanError)) throw err;
    io.stderr.write(`${err.message}\n`);
    return OUTCOME_EXIT.ERROR;
  }
  if (values['dry-run'] === true) { io.stdout.write(describePlan(plan)); return 0; }
  // a record that cannot be written is found out before anything changes, not after the drill
  for (const [flag, file] of [['--json', values.json], ['--html', values.html]] as const) {
    if (file === undefined) continue;
    try {
      await access(path.dirname(path.resolve(file)), constants.W_OK);
    } catch (err) {
      io.stderr.write(`gslb-dns drill: ${flag}: cannot write into the directory of ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
      return OUTCOME_EXIT.ERROR;
    }
  }

  const interrupt = new AbortController();
  const abortRollback = new AbortController();
  const removeSigint = io.onSigint(() => {
    if (!interrupt.signal.aborted) {
      io.stderr.write('gslb-dns drill: interrupted; rolling back (Ctrl-C again to stop the rollback)\n');
      interrupt.abort();
    } else {
      io.stderr.write('gslb-dns drill: rollback stopped\n');
      abortRollback.abort();
    }
  });
  // a redrawn status block on a terminal, one line per change otherwise (CI logs, pipes)
  const observer = createProgress(io.stdout);
  let result: DrillResult;
  try {
    result = await runDrill(plan, { clock: systemClock, transport: createTransport(systemClock), observer, interrupt: interrupt.signal, abortRollback: abortRollback.signal });
  } finally {
    removeSigint();
  }
  const written = await writeOutputs(result, { json: values.json, html: values.html }, io);
  return written ? OUTCOME_EXIT[result.outcome] : OUTCOME_EXIT.ERROR;
}

// run as the program (bin/gslb-dns.js imports this module with `drill` as argv[2])
if (process.argv[2] === 'drill') {
  process.exitCode = await drill(process.argv.slice(3));
}

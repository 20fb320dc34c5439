#!/usr/bin/env node
/**
 * `npm run lab:flooding`: runs the unicast-flooding lab (lab/flooding.ts) once and prints its
 * report: topology, ageing, frames D receives with the pinger off and on, the FDBs. Needs root.
 *   --ageing DURATION   bridge ageing time, whole seconds from 6s to 300s (default 10s)
 *   --pinger KIND       slb-agent (default) or arping (a stand-in, for comparison)
 * Exit codes: 0 flooding seen with the pinger off and none with it on, 1 otherwise, 2 bad flags.
 */
import { parseArgs } from 'node:util';
import { exitCodeOf, helpOrVersion, UsageError } from '../shared/cli.js';
import type { CommandHelp } from '../shared/cli.js';
import { durationFlag } from '../shared/config/values.js';
import { formatFloodingReport, runFloodingLab } from './flooding.js';
import type { PingerKind } from './flooding.js';

const HELP: CommandHelp = {
  name: 'lab:flooding',
  usage: '  npm run lab:flooding -- [--ageing DURATION] [--pinger slb-agent|arping]   (as root)',
  examples: ['sudo npm run lab:flooding', 'sudo npm run lab:flooding -- --ageing 20s --pinger arping'],
};

async function main(argv: string[]): Promise<number> {
  const asked = helpOrVersion(argv, HELP);
  if (asked !== undefined) return asked;
  let ageingSec: number;
  let pinger: PingerKind;
  try {
    const { values } = parseArgs({ args: argv, options: { ageing: { type: 'string', default: '10s' }, pinger: { type: 'string', default: 'slb-agent' } }, strict: true });
    ageingSec = durationFlag('ageing', values.ageing) / 1000;
    if (!Number.isInteger(ageingSec) || ageingSec < 6 || ageingSec > 300) throw new UsageError('--ageing must be whole seconds from 6s to 300s');
    if (values.pinger !== 'slb-agent' && values.pinger !== 'arping') throw new UsageError('--pinger must be slb-agent or arping');
    pinger = values.pinger;
  } catch (err) {
    return exitCodeOf(err, HELP);
  }
  const report = await runFloodingLab({ ageingSec, pinger, log: (l) => { process.stderr.write(`lab:flooding: ${l}\n`); } });
  process.stdout.write(formatFloodingReport(report));
  const reproduced = report.controlsOk && report.off.floodedAtD > 0 && report.off.fromAIntoBeta === 0 && report.on.floodedAtD === 0;
  process.stdout.write(reproduced
    ? 'result: reproduced: with the pinger off beta floods C\'s replies to A (D sees them); with it on, D sees none\n'
    : 'result: NOT reproduced as expected (see the numbers above)\n');
  return reproduced ? 0 : 1;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: unknown) => {
  process.stderr.write(`lab:flooding: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});

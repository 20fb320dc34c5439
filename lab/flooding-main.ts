#!/usr/bin/env node
/**
 * `npm run lab:flooding`: runs the unicast-flooding lab (lab/flooding.ts) once and prints its
 * report: topology, ageing, frames D receives with the pinger off and on, the FDBs. Needs root.
 *   --ageing SEC        bridge ageing time (default 10)
 *   --pinger KIND       slb-agent (default) or arping (a stand-in, for comparison)
 * Exit codes: 0 flooding seen with the pinger off and none with it on, 1 otherwise, 2 bad flags.
 */
import { parseArgs } from 'node:util';
import { formatFloodingReport, runFloodingLab } from './flooding.js';
import type { PingerKind } from './flooding.js';

async function main(): Promise<number> {
  let ageingSec: number;
  let pinger: PingerKind;
  try {
    const { values } = parseArgs({ options: { ageing: { type: 'string', default: '10' }, pinger: { type: 'string', default: 'slb-agent' } }, strict: true });
    ageingSec = Number(values.ageing);
    if (!Number.isInteger(ageingSec) || ageingSec < 6 || ageingSec > 300) throw new Error('--ageing must be an integer from 6 to 300');
    if (values.pinger !== 'slb-agent' && values.pinger !== 'arping') throw new Error('--pinger must be slb-agent or arping');
    pinger = values.pinger;
  } catch (err) {
    process.stderr.write(`lab:flooding: ${(err as Error).message}\n`);
    return 2;
  }
  const report = await runFloodingLab({ ageingSec, pinger, log: (l) => { process.stderr.write(`lab:flooding: ${l}\n`); } });
  process.stdout.write(formatFloodingReport(report));
  const reproduced = report.controlsOk && report.off.floodedAtD > 0 && report.off.fromAIntoBeta === 0 && report.on.floodedAtD === 0;
  process.stdout.write(reproduced
    ? 'result: reproduced: with the pinger off beta floods C\'s replies to A (D sees them); with it on, D sees none\n'
    : 'result: NOT reproduced as expected (see the numbers above)\n');
  return reproduced ? 0 : 1;
}

main().then((code) => { process.exitCode = code; }, (err: unknown) => {
  process.stderr.write(`lab:flooding: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});

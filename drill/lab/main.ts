/**
 * `npm run drill:lab`: builds the drill lab, prints its topology (and writes it as JSON with
 * `--json OUT`) once both instances answer from health, and keeps it until Ctrl-C, then tears
 * it down. Scenarios (`--scenario`, `--all`) are the drill runner's; this entry only hosts the lab.
 * Exit codes: 0 after Ctrl-C, 1 the lab failed to build or get ready, 2 bad flags.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { createDrillLab } from './topology.js';
import type { DrillLab } from './topology.js';

const READY_TIMEOUT_MS = 60_000;

function summary(d: Record<string, unknown>): string {
  const desc = d as {
    zone: string; hostAddress: string | null; adminTokenFile: string;
    parent?: { address: string; namespace: string } | null;
    instances: { name: string; dns: string; api: string; namespace: string; pid: number | null }[];
    sites: { name: string; vip: string; namespace: string; agentPid: number | null; realServers: { address: string; body: string }[] }[];
    regions: { name: string; subnet: string; resolver?: string | null; client: { address: string; namespace: string } }[];
  };
  return [
    `zone ${desc.zone}; admin token in ${desc.adminTokenFile}; host on the service segment: ${desc.hostAddress ?? 'no'}`,
    ...(desc.parent ? [`parent zone server ${desc.parent.address} (${desc.parent.namespace})`] : []),
    ...desc.instances.map((i) => `instance ${i.name}: dns ${i.dns}, api ${i.api} (${i.namespace}, pid ${i.pid})`),
    ...desc.sites.map((s) => `site ${s.name}: vip ${s.vip} (agent pid ${s.agentPid} in ${s.namespace}); real servers ${s.realServers.map((r) => r.address).join(', ')}`),
    ...desc.regions.map((r) => `region ${r.name} ${r.subnet}: client ${r.client.address} (${r.client.namespace})${r.resolver ? `, resolver ${r.resolver}` : ''}`),
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { json: { type: 'string' }, scenario: { type: 'string' }, all: { type: 'boolean' }, runs: { type: 'string' } }, strict: true }));
  } catch (err) {
    process.stderr.write(`drill:lab: ${(err as Error).message}\n`);
    return 2;
  }
  if (values.scenario !== undefined || values.all === true || values.runs !== undefined) {
    process.stderr.write('drill:lab: --scenario/--all/--runs need the drill runner (drill/), which does not drive the lab yet; without them the lab starts and waits for Ctrl-C\n');
    return 2;
  }
  let lab: DrillLab | undefined;
  let stopping = false;
  const stop = new Promise<void>((resolve) => {
    const on = (): void => { stopping = true; resolve(); };
    // `on`, not `once`: lab/netns.ts re-raises a signal nobody else listens to, which would end
    // the process before the tear-down below removes the run's files
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
  try {
    lab = await createDrillLab({ hostAccess: true, log: (m) => { process.stderr.write(`drill:lab: ${m}\n`); } });
    await Promise.race([lab.waitReady(READY_TIMEOUT_MS), stop]);
    if (!stopping) {
      const d = lab.describe();
      if (values.json !== undefined) await writeFile(values.json, `${JSON.stringify(d, null, 2)}\n`);
      process.stdout.write(`${summary(d)}\nready; Ctrl-C tears the lab down\n`);
      await stop;
    }
    return 0;
  } catch (err) {
    process.stderr.write(`drill:lab: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await lab?.close();
  }
}

process.exit(await main(process.argv.slice(2)));

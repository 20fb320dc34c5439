/**
 * `npm run drill:lab`: builds the drill lab, prints its topology (and writes it as JSON with
 * `--json OUT`) once both instances answer from health, and keeps it until Ctrl-C, then tears
 * it down.
 *
 * `--scenario NAME` (repeatable) or `--all` runs failover scenarios (drill/lab/scenarios.ts) on
 * the lab instead, `--runs N` times each (default 3), prints a table of medians next to the
 * targets and writes `{ scenarios: [...] }` with `--json OUT`; `--html DIR` writes each run's
 * drill report. With `--peers`, the scenarios that have a peer form also run against PowerDNS and
 * gdnsd started in the same lab (drill/lab/peers.ts), printed as `NAME (pdns)` / `NAME (gdnsd)`
 * rows after ours (`server` in `--json`); a peer not installed is skipped with a note. Exit
 * codes: 0 done (every run SUCCEEDED), 1 the lab failed or a run did not succeed, 2 bad flags.
 */
import { helpOrVersion } from '../../shared/cli.js';
import type { CommandHelp } from '../../shared/cli.js';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { renderDrillHtml } from '../report-html.js';
import { startLabControl } from './control.js';
import { CHECK, POOL_TTL_S as LAB_TTL_S } from './files.js';
import { isInstalled, PEERS, startPeers, waitPeersServing } from './peers.js';
import type { RunningPeer } from './peers.js';
import { summarize } from './scenario-stats.js';
import type { RunStats, ScenarioSummary } from './scenario-stats.js';
import { runScenario } from './scenario-run.js';
import { scenario, SCENARIOS } from './scenarios.js';
import type { Scenario } from './scenarios.js';
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

/**
 * The spec's targets, printed next to the numbers (a benchmark: nothing is asserted). The lab's
 * agents check every 500 ms with fall 2 and rise 1 and report every second; staleAfter is 3 s.
 */
const TARGETS: Readonly<Record<string, string>> = {
  'real-server-dies': 'site stays answered (no change); no healthy site excluded',
  'site-servers-die': 'all instances < 1.5 s (+ report interval); after rise < 2 s',
  'site-lost': 'all instances < staleAfter + 0.5 s = 3.5 s; after rise < 2 s',
  'agent-cut': 'ns2 < 3.5 s, ns1 unchanged; disagreement = the cut (expected)',
  'instance-dies': 'clients keep succeeding via ns2; no healthy site excluded',
  drain: 'all instances < 1 probe round; recovered likewise',
  flap: 'chg/window <= 1 (answers change at most once per rise/fall window)',
};

const fmt = (ms: number | null): string => (ms === null ? '-' : `${ms}`);

/** Clients behind a resolver can fail for up to one TTL after every instance changed: the bound printed next to theirs. */
const behindBound = (r: ScenarioSummary): string => (r.medianMs.allInstances === null ? '' : ` (<= ${LAB_TTL_S * 1000 + r.medianMs.allInstances})`);

function table(rows: readonly ScenarioSummary[], notes: readonly string[]): string {
  const head = ['scenario', 'runs', 'first ms', 'all ms', 'clients ms', 'behind resolver ms (TTL+all)', 'recovered ms', 'after rise ms', 'failed req', 'healthy excl',
    'max disagree ms', 'answer chg', 'chg/window', 'outcomes', 'target'];
  const ours = (r: ScenarioSummary): boolean => r.server === 'gslb-dns';
  const body = rows.map((r) => [ours(r) ? r.name : `${r.name} (${r.server})`, String(r.runs), fmt(r.medianMs.firstInstance), fmt(r.medianMs.allInstances),
    fmt(r.medianMs.clientsRecovered), ours(r) ? `${fmt(r.medianMs.resolverClients)}${behindBound(r)}` : '-', fmt(r.medianMs.recovered), fmt(r.medianMs.recoveredAfterRise),
    String(r.failedRequests), r.healthyExcluded ? 'YES' : 'no', String(r.maxDisagreementMs), String(r.maxAnswerChanges), String(r.maxChangesPerWindow),
    [...new Set(r.outcomes)].join(','), ours(r) ? TARGETS[r.name] ?? '' : scenario(r.name).peerNote ?? '']);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(head), ...body.map(line),
    '(medians over the runs; first/all: fault -> first/every instance answering differently; clients: fault -> every client fetch succeeding again,',
    ` direct and behind the east resolver; behind resolver: those behind the resolver only, next to TTL ${LAB_TTL_S} s + all; recovered: recovery step ->`,
    ' every instance back; after rise: the agent logging the VIP up -> every instance back; failed req and answer chg over/at worst in all runs;',
    ` chg/window: most answer changes of one instance lane within one rise/fall window of ${(CHECK.rise + CHECK.fall) * CHECK.intervalMs} ms)`,
    ...notes].join('\n');
}

/** The notes under the table when peers were asked for: what they run with, what their columns mean. */
function peerNotes(asked: boolean): string[] {
  if (!asked) return [];
  return [
    '(peer rows: the same faults through the same drill runner against the peer on both DNS instances\' namespaces, checking the VIPs\' port 80',
    ' from there; clients ms and failed req come from the direct east vantage fetching through the first answer only: the parent zone',
    ' delegates to gslb-dns, so no resolver sits in front of a peer; ours check every 500 ms, fall 2, rise 1, in the agents)',
    ...PEERS.map((p) => (isInstalled(p) ? `(${p.settings})` : `(${p.name}: not installed (${p.binary}), its rows are skipped)`)),
  ];
}

async function runScenarios(lab: DrillLab, list: readonly Scenario[], runs: number, html: string | undefined, peers: readonly RunningPeer[]): Promise<ScenarioSummary[]> {
  const control = await startLabControl(lab);
  try {
    const out: ScenarioSummary[] = [];
    for (const s of list) {
      for (const peer of [undefined, ...(s.peerSteps !== undefined ? peers : [])]) {
        const label = `${s.name}${peer !== undefined ? `-${peer.spec.name}` : ''}`;
        const stats: RunStats[] = [];
        for (let k = 1; k <= runs; k++) {
          const { result, stats: st } = await runScenario(lab, control.url, s, k, READY_TIMEOUT_MS, peer);
          stats.push(st);
          process.stderr.write(`drill:lab: ${label} run ${k}/${runs}: ${result.outcome} (${result.reason}); first ${fmt(st.firstInstanceMs)} all ${fmt(st.allInstancesMs)} clients ${fmt(st.clientsRecoveredMs)} recovered ${fmt(st.recoveredMs)} ms\n`);
          if (html !== undefined) await writeFile(path.join(html, `${label}-${k}.html`), renderDrillHtml(result));
        }
        out.push(summarize(s.name, stats, peer?.spec.name ?? 'gslb-dns'));
      }
    }
    return out;
  } finally {
    await control.close();
  }
}

const HELP: CommandHelp = {
  name: 'drill:lab',
  usage: `  npm run drill:lab -- [--scenario NAME ... | --all] [--runs N] [--json OUT] [--html DIR]   (as root)
Without a scenario: starts the lab and waits (Ctrl-C stops it); with one: runs it N times and
prints the numbers.`,
  examples: ['sudo npm run drill:lab', 'sudo npm run drill:lab -- --all --runs 5 --json run/drill-lab.json'],
};

async function main(argv: string[]): Promise<number> {
  const asked = helpOrVersion(argv, HELP);
  if (asked !== undefined) return asked;
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { json: { type: 'string' }, scenario: { type: 'string', multiple: true }, all: { type: 'boolean' }, runs: { type: 'string' }, html: { type: 'string' }, peers: { type: 'boolean' } }, strict: true }));
  } catch (err) {
    process.stderr.write(`drill:lab: ${(err as Error).message}\n`);
    return 2;
  }
  const runs = values.runs === undefined ? 3 : Number(values.runs);
  let chosen: Scenario[] = [];
  try {
    if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: a positive integer, not "${values.runs}"`);
    chosen = values.all === true ? [...SCENARIOS] : (values.scenario ?? []).map(scenario);
    if ((values.runs !== undefined || values.html !== undefined || values.peers === true) && chosen.length === 0) throw new Error('--runs, --html and --peers go with --scenario NAME or --all');
  } catch (err) {
    process.stderr.write(`drill:lab: ${(err as Error).message}\n`);
    return 2;
  }
  if (chosen.length > 0) {
    let lab: DrillLab | undefined;
    try {
      if (values.html !== undefined) await mkdir(values.html, { recursive: true });
      lab = await createDrillLab({ hostAccess: true, log: (m) => { process.stderr.write(`drill:lab: ${m}\n`); } });
      const peers = values.peers === true && chosen.some((s) => s.peerSteps !== undefined) ? await startPeers(lab, PEERS.filter(isInstalled)) : [];
      if (peers.length > 0) {
        process.stderr.write(`drill:lab: peers ${peers.map((p) => p.spec.name).join(', ')} on both instances\n`);
        await waitPeersServing(lab, peers, READY_TIMEOUT_MS);
      }
      const rows = await runScenarios(lab, chosen, runs, values.html, peers);
      process.stdout.write(`${table(rows, peerNotes(values.peers === true))}\n`);
      if (values.json !== undefined) await writeFile(values.json, `${JSON.stringify({ scenarios: rows }, null, 2)}\n`);
      return rows.every((r) => r.outcomes.every((o) => o === 'SUCCEEDED')) ? 0 : 1;
    } catch (err) {
      process.stderr.write(`drill:lab: ${(err as Error).message}\n`);
      return 1;
    } finally {
      await lab?.close();
    }
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

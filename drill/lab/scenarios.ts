/**
 * The drill lab's failover scenarios as real drill plans: each is YAML text in the drill plan
 * schema (drill/plan.ts), written to the lab's run directory and loaded with loadPlan, so a
 * scenario is exactly what `gslb-dns drill --plan` would run. Faults and their recovery are
 * `run` steps calling the lab's control endpoint (drill/lab/control.ts) with curl, or the drill's
 * own drain/undrain actions.
 *
 * Every fault hits site-a, the site that serves the `east` region under the topology pool: the
 * east vantage's `geo` answer is then site-a exactly while site-a serves, and one of the other
 * sites while it does not, which an expectation (a subset of sites) can tell apart both ways.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadPlan } from '../plan.js';
import type { Plan } from '../plan.js';
import { POOLS } from './files.js';
import { PORT } from './plan.js';
import type { DrillLab } from './topology.js';

/** The site every scenario's fault is aimed at, and the region it serves. */
export const TARGET_SITE = 'site-a';
export const TARGET_REGION = 'east';
/** The vantage asking the east resolver (the client-observed view); its "instance" is the resolver. */
export const RESOLVER_VANTAGE = 'east-res';

export interface Scenario {
  readonly name: string;
  readonly title: string;
  /** sites the fault may rightly take out of answers (any other missing site is a healthy one excluded) */
  readonly faulted: readonly string[];
  /** in the short form `npm test` runs */
  readonly ci: boolean;
  /** the YAML of its steps and rollback, given the names it may use */
  steps(x: ScenarioContext): string;
  /**
   * The same fault against a peer server (drill/lab/peers.ts), expecting by addresses (a peer
   * has no state API), when the scenario runs against peers; the fault and recovery steps are
   * the same `run` commands, so the numbers compare.
   */
  peerSteps?(x: PeerContext): string;
  /** the table's note on what a peer can see of this fault */
  readonly peerNote?: string;
}

export interface PeerContext {
  readonly control: string;
  readonly www: string;
  /** the VIPs of every site, and of every site but the target */
  readonly all: readonly string[];
  readonly others: readonly string[];
}

export interface ScenarioContext {
  readonly control: string;
  readonly geo: string;
  readonly www: string;
  readonly others: readonly string[];
}

/** Deadlines are bounds for convergence on a shared CI box, not targets (those are in main.ts). */
const WITHIN = '20s';

const post = (x: { readonly control: string }, route: string): string => `curl -sf -X POST ${x.control}/${route}`;
const run = (cmd: string): string => `  - run: ${JSON.stringify(cmd)}`;
const left = (x: ScenarioContext, on?: string): string =>
  `  - expect: { name: ${x.geo}, from: ${TARGET_REGION}${on !== undefined ? `, on: ${on}` : ''}, sites: [${x.others.join(', ')}] }\n    within: ${WITHIN}`;
const back = (x: ScenarioContext, on?: string): string =>
  `  - expect: { name: ${x.geo}, from: ${TARGET_REGION}${on !== undefined ? `, on: ${on}` : ''}, sites: [${TARGET_SITE}] }\n    within: ${WITHIN}`;
const wait = (d: string): string => `  - wait: ${d}`;
/** the direct vantage's `www` answers only these VIPs (a subset: addresses cannot say "includes") */
const only = (x: PeerContext, vips: readonly string[]): string =>
  `  - expect: { name: ${x.www}, from: ${TARGET_REGION}, addresses: [${vips.join(', ')}] }\n    within: ${WITHIN}`;
const killSite = (x: { readonly control: string }): string => run(`${post(x, `kill-rs/${TARGET_SITE}/0`)} && ${post(x, `kill-rs/${TARGET_SITE}/1`)}`);
const startSite = (x: { readonly control: string }): string => run(`${post(x, `start-rs/${TARGET_SITE}/0`)} && ${post(x, `start-rs/${TARGET_SITE}/1`)}`);

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'real-server-dies', title: 'one real server of site-a dies (the site stays at half capacity)', faulted: [], ci: true,
    // fall 2 at 500 ms plus a report: 3 s is past the agent noticing, so the site must still be answered
    steps: (x) => ['steps:', run(post(x, `kill-rs/${TARGET_SITE}/0`)), wait('3s'), back(x), run(post(x, `start-rs/${TARGET_SITE}/0`)), wait('2s'), back(x),
      'rollback:', run(post(x, `start-rs/${TARGET_SITE}/0`))].join('\n'),
    peerSteps: (x) => ['steps:', run(post(x, `kill-rs/${TARGET_SITE}/0`)), wait('3s'), only(x, x.all), run(post(x, `start-rs/${TARGET_SITE}/0`)), wait('2s'), only(x, x.all),
      'rollback:', run(post(x, `start-rs/${TARGET_SITE}/0`))].join('\n'),
    peerNote: 'the VIP keeps answering: no change expected',
  },
  {
    name: 'site-servers-die', title: 'every real server of site-a dies', faulted: [TARGET_SITE], ci: false,
    steps: (x) => ['steps:', killSite(x), left(x), wait('6s'), startSite(x), back(x), wait('6s'), 'rollback:', startSite(x)].join('\n'),
    // "back" cannot be an addresses expectation (a subset): the wait covers the peers' rise, and
    // the next run first waits until every peer answers every VIP again
    peerSteps: (x) => ['steps:', killSite(x), only(x, x.others), wait('6s'), startSite(x), wait('8s'), 'rollback:', startSite(x)].join('\n'),
    peerNote: 'the VIP stops answering: the peers\' checks see it',
  },
  {
    name: 'site-lost', title: 'site-a\'s agent is killed (kill -9; the kernel keeps forwarding)', faulted: [TARGET_SITE], ci: true,
    steps: (x) => ['steps:', run(post(x, `kill-agent/${TARGET_SITE}`)), left(x), wait('6s'), run(post(x, `start-agent/${TARGET_SITE}`)), back(x), wait('6s'),
      'rollback:', run(post(x, `start-agent/${TARGET_SITE}`))].join('\n'),
    // the kernel keeps forwarding to the VIP, so a peer checking the VIP has nothing to see
    peerSteps: (x) => ['steps:', run(post(x, `kill-agent/${TARGET_SITE}`)), wait('6s'), only(x, x.all), run(post(x, `start-agent/${TARGET_SITE}`)), wait('6s'),
      'rollback:', run(post(x, `start-agent/${TARGET_SITE}`))].join('\n'),
    peerNote: 'the VIP keeps forwarding: nothing for a VIP check to see; ours drops the silent site after staleAfter (it trusts the agent\'s reports)',
  },
  {
    name: 'agent-cut', title: 'site-a\'s agent is cut off from ns2 only', faulted: [TARGET_SITE], ci: false,
    steps: (x) => ['steps:', run(post(x, `cut-agent/${TARGET_SITE}/ns2`)), left(x, 'ns2'), back(x, 'ns1'), run(post(x, `heal-agent/${TARGET_SITE}/ns2`)), back(x, 'ns2'), wait('3s'),
      'rollback:', run(post(x, `heal-agent/${TARGET_SITE}/ns2`))].join('\n'),
  },
  {
    name: 'instance-dies', title: 'DNS instance ns1 dies (resolvers fail over to ns2)', faulted: [], ci: true,
    // past the TTL the resolver must have asked again, and only ns2 can have answered
    steps: (x) => ['steps:', run(post(x, 'kill-instance/ns1')), back(x, 'ns2'), wait('6s'),
      `  - expect: { name: ${x.geo}, from: ${RESOLVER_VANTAGE}, sites: [${[TARGET_SITE, ...x.others].join(', ')}] }\n    within: ${WITHIN}`,
      run(post(x, 'start-instance/ns1')), back(x, 'ns1'), wait('3s'),
      'rollback:', run(post(x, 'start-instance/ns1'))].join('\n'),
  },
  {
    name: 'drain', title: 'an operator drains site-a, then undrains it', faulted: [TARGET_SITE], ci: true,
    steps: (x) => ['steps:', `  - action: drain\n    site: ${TARGET_SITE}\n    reason: drill lab scenario`, left(x), wait('6s'),
      `  - action: undrain\n    site: ${TARGET_SITE}`, back(x), wait('3s'),
      'rollback:', `  - action: undrain\n    site: ${TARGET_SITE}`].join('\n'),
  },
  {
    name: 'flap', title: 'a real server of site-a flaps (down and up every second for 20 s)', faulted: [], ci: false,
    steps: (x) => ['steps:',
      run(`for i in 1 2 3 4 5 6 7 8 9 10; do ${post(x, `kill-rs/${TARGET_SITE}/0`)} && sleep 1 && ${post(x, `start-rs/${TARGET_SITE}/0`)} && sleep 1 || exit 1; done`),
      back(x), wait('2s'),
      'rollback:', run(post(x, `start-rs/${TARGET_SITE}/0`))].join('\n'),
  },
];

export function scenario(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (s === undefined) throw new Error(`no scenario "${name}" (scenarios: ${SCENARIOS.map((x) => x.name).join(', ')})`);
  return s;
}

/** The plan's YAML: both instances, a direct vantage per region (east also fetches), the east resolver. */
export function scenarioYaml(lab: DrillLab, s: Scenario, control: string): string {
  const zone = lab.plan.zone;
  const x: ScenarioContext = { control, geo: `${POOLS.geo}.${zone}`, www: `${POOLS.all}.${zone}`, others: lab.sites.map((y) => y.name).filter((n) => n !== TARGET_SITE) };
  const subnet = (region: string): string => `${lab.plan.regions.find((r) => r.name === region)!.net.base}.0/24`;
  const east = lab.regions.find((r) => r.name === TARGET_REGION)!;
  if (east.resolver === null) throw new Error('drill lab scenarios need the lab built with resolution (resolvers)');
  const http = `http://{address}:${PORT.http}/`;
  return [
    `name: ${s.name}`,
    'probeEvery: 200ms',
    'probeTimeout: 1s',
    'instances:',
    ...lab.instances.map((i) => `  - { name: ${i.name}, dns: "${i.address}:${i.dnsPort}", api: "${i.api}", tokenFile: ${JSON.stringify(lab.adminTokenFile)} }`),
    'vantages:',
    `  - { name: ${TARGET_REGION}, subnet: ${subnet(TARGET_REGION)}, names: [${x.geo}, ${x.www}], http: "${http}" }`,
    ...lab.regions.filter((r) => r.name !== TARGET_REGION).map((r) => `  - { name: ${r.name}, subnet: ${subnet(r.name)}, names: [${x.geo}, ${x.www}] }`),
    `  - { name: ${RESOLVER_VANTAGE}, subnet: ${subnet(TARGET_REGION)}, server: "${east.resolver}:53", names: [${x.geo}], http: "${http}" }`,
    // one site is faulted at a time: fewer than two sites in the answer means a healthy one left
    'guards:',
    `  - { name: two-sites-serving, serving: ${x.www}, atLeast: 2, from: ${TARGET_REGION} }`,
    s.steps(x),
    '',
  ].join('\n');
}

/**
 * The plan of a scenario against a peer: its two instances (no api), one direct vantage without
 * ECS (the peers' config has no topology) that asks `www` and fetches through the answer.
 */
export function peerScenarioYaml(lab: DrillLab, s: Scenario, control: string, peer: { readonly name: string; readonly port: number }): string {
  if (s.peerSteps === undefined) throw new Error(`scenario ${s.name} does not run against peers`);
  const www = `${POOLS.all}.${lab.plan.zone}`;
  const all = lab.sites.map((y) => y.vip);
  const x: PeerContext = { control, www, all, others: lab.sites.filter((y) => y.name !== TARGET_SITE).map((y) => y.vip) };
  return [
    `name: ${s.name}-${peer.name}`,
    'probeEvery: 200ms',
    'probeTimeout: 1s',
    'instances:',
    ...lab.instances.map((i) => `  - { name: ${i.name}, dns: "${i.address}:${peer.port}" }`),
    'vantages:',
    `  - { name: ${TARGET_REGION}, names: [${www}], http: "http://{address}:${PORT.http}/" }`,
    'guards:',
    `  - { name: two-sites-serving, serving: ${www}, atLeast: 2, from: ${TARGET_REGION} }`,
    s.peerSteps(x),
    '',
  ].join('\n');
}

/** Writes the scenario's plan (against gslb-dns, or a peer) into the lab's run directory and loads it like any plan file. */
export async function scenarioPlan(lab: DrillLab, s: Scenario, control: string, run = 1, peer?: { readonly name: string; readonly port: number }): Promise<Plan> {
  const file = path.join(lab.dir, `scenario-${s.name}${peer !== undefined ? `-${peer.name}` : ''}-${run}.yaml`);
  await writeFile(file, peer === undefined ? scenarioYaml(lab, s, control) : peerScenarioYaml(lab, s, control, peer));
  return loadPlan(file, {});
}

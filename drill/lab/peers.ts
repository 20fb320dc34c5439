/**
 * Peer GSLB servers in the drill lab (issue 13): PowerDNS 4.7 with a LUA `ifportup` record and
 * gdnsd 3.8 with a `multifo` resource checked by `http_status`, each running next to gslb-dns in
 * both instance namespaces on its own port, serving the lab's zone with the three VIPs as one
 * health-checked name (`www`, every member that is up, like our `all` pool).
 *
 * They check the VIPs themselves, from the DNS side: they see a site only through its VIP, never
 * its agent. Check timing is as close to the agents' (500 ms, fall 2, rise 1) as each allows; the
 * settings used are in PEER_CHECKS and printed under the table.
 *
 * The config text is pure (generated from the lab plan, like files.ts); startPeers runs them.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { POOL_TTL_S as TTL, POOLS, zoneText } from './files.js';
import type { InstancePlan, LabPlan } from './plan.js';
import { PORT } from './plan.js';
import { startLabProcess, waitUntilNoneWaiting } from './process.js';
import type { LabProcess } from './process.js';
import type { DrillLab } from './topology.js';

export type PeerName = 'pdns' | 'gdnsd';

/** The check settings each peer runs with, chosen from what it accepts (see the notes). */
export const PEER_CHECKS = {
  /**
   * lua-health-checks-interval is whole seconds (min 1), one global checker thread; 4.7 has no
   * fall/rise: one failed check is DOWN, one good check is UP. ifportup's timeout is whole seconds.
   */
  pdns: { intervalS: 1, timeoutS: 1 },
  /** interval and timeout are whole seconds and the timeout must be below the interval: 2 s / 1 s at best */
  gdnsd: { intervalS: 2, timeoutS: 1, downThresh: 2, okThresh: 1, upThresh: 1 },
} as const;

export interface PeerSpec {
  readonly name: PeerName;
  readonly binary: string;
  /** its DNS port in each instance namespace */
  readonly port: number;
  /** one line for the table's notes: what it checks and how often */
  readonly settings: string;
  /** file name (relative to its run directory) -> text */
  files(plan: LabPlan, instance: InstancePlan, dir: string): Readonly<Record<string, string>>;
  argv(dir: string): string[];
}

const vipsOf = (plan: LabPlan): string[] => plan.sites.map((s) => s.vip);

/** The PowerDNS zone: ours (SOA, NS, glue) plus the LUA record of the health-checked name. */
export function pdnsZoneText(plan: LabPlan): string {
  const list = vipsOf(plan).map((v) => `'${v}'`).join(',');
  // selector 'all': every member that is up, like our `all` pool
  return `${zoneText(plan)}${POOLS.all} ${TTL} IN LUA A "ifportup(${PORT.http}, {${list}}, {selector='all', timeout=${PEER_CHECKS.pdns.timeoutS}})"\n`;
}

export function pdnsConf(instance: InstancePlan, dir: string): string {
  return [
    '# written by the drill lab (drill/lab/peers.ts)',
    'launch=bind',
    `bind-config=${path.join(dir, 'named.conf')}`,
    'bind-check-interval=0',
    'enable-lua-records=yes',
    `lua-health-checks-interval=${PEER_CHECKS.pdns.intervalS}`,
    `local-address=${instance.address}`,
    `local-port=${PORT.pdns}`,
    `socket-dir=${dir}`,
    'daemon=no',
    'guardian=no',
    'disable-syslog=yes',
    'loglevel=4',
    'webserver=no',
    'api=no',
    'primary=no',
    'secondary=no',
    // no outbound DNS in the lab
    'security-poll-suffix=',
    'receiver-threads=1',
    'distributor-threads=1',
    '',
  ].join('\n');
}

/** The gdnsd zone: ours plus the DYNA record of the health-checked name. */
export function gdnsdZoneText(plan: LabPlan): string {
  return `${zoneText(plan)}${POOLS.all} ${TTL} DYNA multifo!${POOLS.all}\n`;
}

export function gdnsdConfig(plan: LabPlan, instance: InstancePlan, dir: string): string {
  const c = PEER_CHECKS.gdnsd;
  return [
    '# written by the drill lab (drill/lab/peers.ts)',
    'options => {',
    `  listen => [ ${instance.address}:${PORT.gdnsd} ]`,
    `  run_dir => ${path.join(dir, 'run')}`,
    `  state_dir => ${path.join(dir, 'state')}`,
    '  udp_threads => 1',
    '  tcp_threads => 1',
    '}',
    'service_types => {',
    '  vip_http => {',
    `    plugin => http_status, port => ${PORT.http}, url_path => /, ok_codes => [ 200 ]`,
    `    interval => ${c.intervalS}, timeout => ${c.timeoutS}, down_thresh => ${c.downThresh}, ok_thresh => ${c.okThresh}, up_thresh => ${c.upThresh}`,
    '  }',
    '}',
    'plugins => {',
    '  multifo => {',
    `    ${POOLS.all} => {`,
    '      service_types => vip_http',
    // the name stays a resource while any member is up (below this gdnsd answers every member)
    '      up_thresh => 0.01',
    ...plan.sites.map((s) => `      ${s.name} => ${s.vip}`),
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
}

export const PEERS: readonly PeerSpec[] = [
  {
    name: 'pdns', binary: '/usr/sbin/pdns_server', port: PORT.pdns,
    settings: `pdns: LUA ifportup(${PORT.http}) on the VIPs, selector all; lua-health-checks-interval ${PEER_CHECKS.pdns.intervalS} s (whole seconds, min 1), timeout ${PEER_CHECKS.pdns.timeoutS} s, fall 1 / rise 1 (4.7 has no thresholds)`,
    files: (plan, instance, dir) => ({
      'pdns.conf': pdnsConf(instance, dir),
      'named.conf': `zone "${plan.zone}" { type master; file "${path.join(dir, `${plan.zone}.zone`)}"; };\n`,
      [`${plan.zone}.zone`]: pdnsZoneText(plan),
    }),
    argv: (dir) => ['/usr/sbin/pdns_server', `--config-dir=${dir}`, '--daemon=no', '--guardian=no'],
  },
  {
    name: 'gdnsd', binary: '/usr/sbin/gdnsd', port: PORT.gdnsd,
    settings: `gdnsd: multifo + http_status GET / on the VIPs; interval ${PEER_CHECKS.gdnsd.intervalS} s, timeout ${PEER_CHECKS.gdnsd.timeoutS} s (whole seconds, timeout < interval), down_thresh ${PEER_CHECKS.gdnsd.downThresh}, up_thresh ${PEER_CHECKS.gdnsd.upThresh}`,
    files: (plan, instance, dir) => ({
      config: gdnsdConfig(plan, instance, dir),
      [`zones/${plan.zone}`]: gdnsdZoneText(plan),
    }),
    argv: (dir) => ['/usr/sbin/gdnsd', '-c', dir, 'start'],
  },
];

export function isInstalled(p: PeerSpec): boolean {
  return existsSync(p.binary);
}

/** A peer running in every instance namespace. */
export interface RunningPeer {
  readonly spec: PeerSpec;
  readonly processes: readonly LabProcess[];
}

/** What a peer's instance answers for the health-checked name, asked from its own namespace. */
export function peerAnswer(lab: DrillLab, peer: RunningPeer, instance: string): Promise<string[]> {
  const i = lab.instance(instance);
  return lab.dig(i.plan.role, i.address, `${POOLS.all}.${lab.plan.zone}`, peer.spec.port);
}

/**
 * Resolves once every instance of every peer answers with all three VIPs (pdns registers a check
 * at the first question, so the first answers are its backup selector's); rejects with the last
 * answers, or when a peer exited.
 */
export function waitPeersServing(lab: DrillLab, peers: readonly RunningPeer[], timeoutMs: number): Promise<void> {
  const want = vipsOf(lab.plan).sort().join(',');
  const waiting = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const p of peers) {
      for (const [k, i] of lab.instances.entries()) {
        const proc = p.processes[k]!;
        if (proc.exited()) throw new Error(`${proc.name} exited: ${proc.stderr().slice(-1000)}`);
        const got = (await peerAnswer(lab, p, i.name)).sort().join(',');
        if (got !== want) out.push(`${proc.name}: ${got || 'no address'}`);
      }
    }
    return out;
  };
  return waitUntilNoneWaiting(waiting, timeoutMs, 'peers not answering every VIP', 250);
}

/** Writes each peer's files per instance under the lab's directory and starts it in the instance's namespace. */
export async function startPeers(lab: DrillLab, specs: readonly PeerSpec[]): Promise<RunningPeer[]> {
  const out: RunningPeer[] = [];
  for (const spec of specs) {
    const processes: LabProcess[] = [];
    for (const i of lab.instances) {
      const dir = path.join(lab.dir, 'peers', `${spec.name}-${i.name}`);
      for (const sub of ['zones', 'run', 'state']) await mkdir(path.join(dir, sub), { recursive: true });
      for (const [file, text] of Object.entries(spec.files(lab.plan, i.plan, dir))) await writeFile(path.join(dir, file), text);
      processes.push(startLabProcess(lab.lab, i.plan.role, `${spec.name} ${i.name}`, spec.argv(dir)));
    }
    out.push({ spec, processes });
  }
  return out;
}

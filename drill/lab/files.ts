/**
 * The text of the drill lab's configuration files (pure): the GSLB zone and pool file of the
 * gslb-dns instances and one slb-agent file per site.
 */
import type { LabPlan, SitePlan } from './plan.js';
import { PORT } from './plan.js';

/** The pools' TTL: what a resolver may keep an answer for. */
export const POOL_TTL_S = 5;

/** Pool names the lab's zone answers from health. */
export const POOLS = {
  /** every serving VIP (policy all): who answers what is easy to see */
  all: 'www',
  /** the client's region picks the site (policy topology, ECS-aware) */
  geo: 'geo',
} as const;

/** The GSLB zone: SOA, NS with in-zone addresses of the two instances, the pool names' TXT. */
export function zoneText(plan: LabPlan, serial = 1): string {
  return [
    `$ORIGIN ${plan.zone}.`,
    '$TTL 60',
    `@ IN SOA ${plan.instances[0]!.name} hostmaster ${serial} 3600 600 604800 5`,
    ...plan.instances.map((i) => `@ IN NS ${i.name}`),
    ...plan.instances.map((i) => `${i.name} IN A ${i.address}`),
    '',
  ].join('\n');
}

/** The pool file: one site per lab site (secret file next to it), both pools over the three VIPs. */
export function poolText(plan: LabPlan): string {
  const sites = plan.sites.map((s) => [
    `  ${s.name}:`,
    `    secret: file:secrets/${s.name}.key`,
    ...(s.region !== undefined ? [`    subnets: [${plan.regions.find((r) => r.name === s.region)!.net.base}.0/24]`] : []),
    // the agents report every second: three missed reports and the site's state is stale
    '    staleAfter: 3s',
  ].join('\n'));
  const members = plan.sites.map((s) => `      - { site: ${s.name}, address: ${s.vip} }`);
  return [
    '# written by the drill lab (drill/lab/files.ts)',
    'sites:', ...sites,
    'pools:',
    `  ${POOLS.all}:`, `    names: [${POOLS.all}]`, `    ttl: ${POOL_TTL_S}`, '    policy: all', '    maxAnswers: 3', '    allDown: nodata', '    members:', ...members,
    `  ${POOLS.geo}:`, `    names: [${POOLS.geo}]`, `    ttl: ${POOL_TTL_S}`, '    policy: topology', '    maxAnswers: 1', '    allDown: nodata', '    members:', ...members,
    '',
  ].join('\n');
}

/** The agents' HTTP check timing (the flap scenario's rise/fall window is read from it). */
export const CHECK = { intervalMs: 500, timeoutMs: 400, rise: 1, fall: 2 } as const;

/** A site's agent file: the VIP with the dsr forwarder and HTTP checks, reporting to every instance. */
export function agentText(plan: LabPlan, site: SitePlan, secretFile: string): string {
  return [
    '# written by the drill lab (drill/lab/files.ts)',
    `site: ${site.name}`,
    `agent: ${site.lbRole}`,
    `secret: file:${secretFile}`,
    `dns: [ ${plan.instances.map((i) => JSON.stringify(i.api)).join(', ')} ]`,
    'report: { interval: 1s }',
    `api: 127.0.0.1:${PORT.agentApi}`,
    'vips:',
    '  - name: web',
    `    address: ${site.vip}`,
    `    port: ${PORT.http}`,
    '    protocol: tcp',
    '    forwarder: { mode: dsr, interface: eth0, scheduler: maglev }',
    // a started backend is up at the first pass, a stopped one down after two failures
    `    check: { type: http, path: /, expect: [200], interval: ${CHECK.intervalMs}ms, timeout: ${CHECK.timeoutMs}ms, rise: ${CHECK.rise}, fall: ${CHECK.fall} }`,
    '    realServers:',
    ...site.realServers.map((a) => `      - { address: ${a}, port: ${PORT.http} }`),
    '',
  ].join('\n');
}

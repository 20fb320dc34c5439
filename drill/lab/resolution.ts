/**
 * The lab's path of a real client's lookup (pure: file texts and argv): the parent zone served by
 * Knot with NS and glue for the GSLB zone's two instances, and per client region an unbound
 * resolver that reaches the parent by a stub zone and sends the client's subnet (ECS) to the
 * instances. Both run in the foreground with their own config files, never the system ones.
 */
import path from 'node:path';
import type { LabPlan, RegionPlan } from './plan.js';
import { PORT } from './plan.js';

/** The parent zone: SOA, its own NS, and the delegation of the GSLB zone with glue. */
export function parentZoneText(plan: LabPlan, serial = 1): string {
  const child = plan.zone.endsWith(`.${plan.parentZone}`) ? plan.zone.slice(0, -plan.parentZone.length - 1) : undefined;
  if (child === undefined) throw new Error(`drill lab: ${plan.zone} is not below ${plan.parentZone}`);
  return [
    `$ORIGIN ${plan.parentZone}.`,
    '$TTL 300',
    `@ IN SOA ns hostmaster ${serial} 3600 600 604800 60`,
    '@ IN NS ns',
    `ns IN A ${plan.svc.parent}`,
    ...plan.instances.map((i) => `${child} IN NS ${i.name}.${child}`),
    ...plan.instances.map((i) => `${i.name}.${child} IN A ${i.address}`),
    '',
  ].join('\n');
}

/** knotd's configuration: one zone file in `dir`, everything else (run, journal) there too. */
export function knotConf(plan: LabPlan, dir: string): string {
  return [
    'server:',
    `  rundir: "${dir}"`,
    `  listen: ${plan.svc.parent}@${PORT.dns}`,
    'log:',
    '  - target: stderr',
    '    any: info',
    'database:',
    `  storage: "${dir}"`,
    'template:',
    '  - id: default',
    `    storage: "${dir}"`,
    '    file: "%s.zone"',
    'zone:',
    `  - domain: ${plan.parentZone}`,
    '',
  ].join('\n');
}

/** The argv of knotd in the foreground on a config file. */
export const knotArgv = (confFile: string): string[] => ['knotd', '-c', confFile];

/**
 * unbound for one region: listens on the region's resolver address, asks the parent server for
 * the parent zone (stub zone, no root servers in the lab), and sends the client's /24 as ECS to
 * the GSLB instances, answering from its subnet cache per client subnet. No validator: the lab's
 * zones are unsigned.
 */
export function unboundConf(plan: LabPlan, region: RegionPlan, dir: string): string {
  return [
    'server:',
    `  interface: ${region.resolver}`,
    `  port: ${PORT.dns}`,
    '  access-control: 0.0.0.0/0 allow',
    '  do-ip6: no',
    '  do-daemonize: no',
    '  use-syslog: no',
    '  logfile: ""',
    '  verbosity: 1',
    '  username: ""',
    '  chroot: ""',
    `  directory: "${dir}"`,
    `  pidfile: "${path.join(dir, `unbound-${region.name}.pid`)}"`,
    '  module-config: "subnetcache iterator"',
    ...plan.instances.map((i) => `  send-client-subnet: ${i.address}`),
    '  client-subnet-always-forward: yes',
    '  max-client-subnet-ipv4: 24',
    // the lab's addresses are private-use space and the parent's NS is a lab address
    '  do-not-query-localhost: no',
    '  qname-minimisation: no',
    // unbound answers the special-use TLDs (test., invalid., ...) itself unless told otherwise
    `  local-zone: "${plan.parentZone.split('.').pop()!}." nodefault`,
    'remote-control:',
    '  control-enable: no',
    'stub-zone:',
    `  name: "${plan.parentZone}"`,
    `  stub-addr: ${plan.svc.parent}@${PORT.dns}`,
    '',
  ].join('\n');
}

/** The argv of unbound in the foreground on a config file. */
export const unboundArgv = (confFile: string): string[] => ['unbound', '-d', '-c', confFile];

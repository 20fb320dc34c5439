/**
 * The drill lab's addressing, decided before anything starts (pure): which /24 each segment
 * gets and which host number each role takes on it. The core router is .1 on every segment.
 */

/** A /24 as the lab reserves it (lab/netns.ts Subnet). */
export interface SegmentNet {
  readonly base: string;
  host(n: number): string;
  cidr(n: number): string;
}

export const HOST = { core: 1, lb: 2, rs: [11, 12] as const, vip: 100, dns: [11, 12] as const, parent: 20, resolver: [31, 32] as const, client: 101 } as const;

/** Ports inside the lab's own namespaces: nothing else binds there, so they are fixed. */
export const PORT = { dns: 53, api: 8053, http: 80, agentApi: 9100, pdns: 5301, gdnsd: 5302 } as const;

export interface SitePlan {
  readonly name: string;
  /** the role names of its namespaces in the lab */
  readonly lbRole: string;
  readonly rsRoles: readonly string[];
  readonly bridge: string;
  readonly net: SegmentNet;
  readonly vip: string;
  readonly lb: string;
  readonly realServers: readonly string[];
  /** the client region whose subnet this site serves under the topology policy, if any */
  readonly region: string | undefined;
}

export interface InstancePlan {
  readonly name: string;
  readonly role: string;
  readonly address: string;
  /** base URL of its HTTP API */
  readonly api: string;
}

export interface RegionPlan {
  readonly name: string;
  readonly bridge: string;
  readonly net: SegmentNet;
  /** its resolver's namespace and address (on the service segment) */
  readonly resolverRole: string;
  readonly resolver: string;
  readonly clientRole: string;
  readonly client: string;
}

export interface LabPlan {
  readonly zone: string;
  readonly parentZone: string;
  readonly sites: readonly SitePlan[];
  readonly instances: readonly InstancePlan[];
  readonly regions: readonly RegionPlan[];
  /** the segment of the DNS instances and the parent zone's server */
  readonly svc: { readonly bridge: string; readonly net: SegmentNet; readonly parentRole: string; readonly parent: string };
}

export const SITE_NAMES = ['site-a', 'site-b', 'site-c'] as const;
export const INSTANCE_NAMES = ['ns1', 'ns2'] as const;
export const REGION_NAMES = ['east', 'west'] as const;

/**
 * The lab's plan on the given /24s: one per site, one for the services, one per region (in
 * that order: 3 + 1 + 2). Site i serves region i under the topology policy; the third site
 * serves no region (it is the others' spare).
 */
export function planLab(nets: readonly SegmentNet[], zone = 'gslb.drill.test', parentZone = 'drill.test'): LabPlan {
  if (nets.length < SITE_NAMES.length + 1 + REGION_NAMES.length) throw new Error(`drill lab: ${nets.length} subnets given, ${SITE_NAMES.length + 1 + REGION_NAMES.length} needed`);
  const at = (i: number): SegmentNet => nets[i]!;
  const sites = SITE_NAMES.map((name, i): SitePlan => {
    const net = at(i);
    const short = name.slice(-1);
    return {
      name, lbRole: `lb-${short}`, rsRoles: HOST.rs.map((_, k) => `rs-${short}${k + 1}`), bridge: `br-${short}`, net,
      vip: net.host(HOST.vip), lb: net.host(HOST.lb), realServers: HOST.rs.map((h) => net.host(h)), region: REGION_NAMES[i],
    };
  });
  const svcNet = at(SITE_NAMES.length);
  const instances = INSTANCE_NAMES.map((name, i): InstancePlan => {
    const address = svcNet.host(HOST.dns[i]!);
    return { name, role: `dns-${name}`, address, api: `http://${address}:${PORT.api}` };
  });
  const regions = REGION_NAMES.map((name, i): RegionPlan => {
    const net = at(SITE_NAMES.length + 1 + i);
    // the resolvers sit on the service segment, outside every site's subnet: a region's answers
    // can only follow its clients when the resolver passes their subnet on (ECS)
    return { name, bridge: `br-${name}`, net, resolverRole: `res-${name}`, resolver: svcNet.host(HOST.resolver[i]!), clientRole: `cl-${name}`, client: net.host(HOST.client) };
  });
  return { zone, parentZone, sites, instances, regions, svc: { bridge: 'br-svc', net: svcNet, parentRole: 'parent', parent: svcNet.host(HOST.parent) } };
}

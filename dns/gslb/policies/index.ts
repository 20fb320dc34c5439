/** The selection policies by name. */
import type { Policy, PolicyName, SiteConfig } from '../model.js';
import { all } from './all.js';
import { failover } from './failover.js';
import { hashed } from './hashed.js';
import { leastLoad } from './least-load.js';
import { createTopologyPolicy } from './topology.js';
import { weighted } from './weighted.js';

/** The policy called `name`; `topology` needs the sites (their subnets) and throws without them. */
export function policyFor(name: PolicyName, sites?: ReadonlyMap<string, SiteConfig>): Policy {
  switch (name) {
    case 'weighted': return weighted;
    case 'failover': return failover;
    case 'least-load': return leastLoad;
    case 'hashed': return hashed;
    case 'all': return all;
    case 'topology':
      if (sites === undefined) throw new Error('policy "topology" needs the sites map (their subnets)');
      return createTopologyPolicy(sites);
    default: {
      const unknown: never = name;
      throw new Error(`unknown policy "${String(unknown)}"`);
    }
  }
}

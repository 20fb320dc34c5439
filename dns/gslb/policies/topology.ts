/** Policy `topology`: clients go to the site whose subnet matches them most specifically. */
import type { Policy, Prefix, SiteConfig } from '../model.js';
import { prefixContains } from '../prefix.js';
import { answerLimit, failover, isCandidate } from './failover.js';

interface SubnetEntry {
  readonly prefix: Prefix;
  readonly site: string;
  /**
   * another site's subnet lies strictly inside this one, so clients under this prefix do not
   * all get this site and the prefix length is not a safe ECS scope
   */
  readonly hasNestedOtherSite: boolean;
}

const policies = new WeakMap<ReadonlyMap<string, SiteConfig>, Policy>();

/** Every site subnet, longest first (ties keep site order), so the first match is the longest. */
function buildTable(sites: ReadonlyMap<string, SiteConfig>): SubnetEntry[] {
  const flat: { prefix: Prefix; site: string }[] = [];
  for (const s of sites.values()) for (const prefix of s.subnets) flat.push({ prefix, site: s.name });
  flat.sort((a, b) => b.prefix.length - a.prefix.length);
  return flat.map((e) => ({
    prefix: e.prefix,
    site: e.site,
    hasNestedOtherSite: flat.some((o) => o.site !== e.site && o.prefix.length > e.prefix.length
      && prefixContains(e.prefix, o.prefix.family, o.prefix.bytes, o.prefix.length)),
  }));
}

/**
 * The topology policy for `sites` (one instance and subnet table per sites map). The site whose
 * subnet is the longest match for the client subnet answers with its candidates in config order;
 * without a match, or when that site has no candidate, the failover rule over all candidates
 * answers. Scope: the matched prefix length, or the client's own prefix when no site matched or
 * another site's subnet is nested inside the match; 0 without a client.
 */
export function createTopologyPolicy(sites: ReadonlyMap<string, SiteConfig>): Policy {
  const cached = policies.get(sites);
  if (cached !== undefined) return cached;
  const table = buildTable(sites);
  const topology: Policy = (ctx, out) => {
    let match: SubnetEntry | undefined;
    if (ctx.hasClient) {
      for (let t = 0; t < table.length; t++) {
        const e = table[t]!;
        if (prefixContains(e.prefix, ctx.clientFamily, ctx.clientAddress, ctx.clientPrefix)) { match = e; break; }
      }
    }
    const scope = !ctx.hasClient ? 0
      : match === undefined || match.hasNestedOtherSite ? ctx.clientPrefix
        : match.prefix.length;
    let n = 0;
    if (match !== undefined) {
      const members = ctx.pool.members;
      const limit = answerLimit(ctx, out);
      for (let i = 0; i < members.length && n < limit; i++) {
        const m = members[i]!;
        if (m.site === match.site && isCandidate(ctx, m, i)) out[n++] = i;
      }
    }
    if (n === 0) n = failover(ctx, out);
    // after failover, which writes its own scope of 0
    ctx.scope = scope;
    return n;
  };
  policies.set(sites, topology);
  return topology;
}

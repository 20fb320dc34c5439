/**
 * Why a GSLB name answers what it answers: the pool, its policy, every member with whether the
 * policy may pick it and why not, the answer and its TTL. Pure: it runs the same PoolSelector the
 * DNS engine runs, on the same health view, so it cannot disagree with what DNS answers.
 *
 * A member is `eligible` when the policy would pick it given room for every member (the pool
 * selected again with maxAnswers lifted); `selected` when it is in this answer. Reasons, first
 * that applies:
 *
 *   | reason                                           | when                                          |
 *   |--------------------------------------------------|-----------------------------------------------|
 *   | other family (IPv6 / IPv4)                       | the member's family is not the type asked     |
 *   | forced down by operator / drained by operator,   | not up (health counts); the state's `why`,    |
 *   |   site stale, down, no report or probe yet, ...  |   with the override's actor and reason        |
 *   | not in the first tier (allDown: first-tier)      | fail-open to the first tier, other tier       |
 *   | weight 0 / reported weight 0%                    | weighted or hashed, no weight                 |
 *   | not in the client's topology (site S answers)    | topology: another site matched the client     |
 *   | other tier (N; tier M answers)                   | a lower tier has candidates                   |
 *   | eligible / eligible (fail-open: health ignored)  | the policy may pick it                        |
 */
import type { GslbConfig, PoolConfig } from './model.js';
import { isAllDownMode, Mode, PoolSelector } from './selector.js';
import type { HealthView, MemberWhy } from './state.js';
import { allDownText } from './fail-open.js';
import { parsePrefix } from '../../shared/ip.js';

/** What is asked: a canonical name, the type, and the client subnet (none: a query without ECS from an unknown source). */
export interface ExplainQuery {
  readonly name: string;
  readonly type: 'A' | 'AAAA';
  readonly subnet?: string;
}

/** One member of a pool, as the policy saw it for this query. */
export interface ExplainCandidate {
  readonly pool: string;
  readonly site: string;
  readonly address: string;
  readonly tier: number;
  readonly weight: number;
  readonly eligible: boolean;
  readonly selected: boolean;
  readonly reason: string;
  /** the operator override that holds it out */
  readonly override?: MemberWhy['override'];
}

/** normal: healthy; degraded: some member down (degradedTtl); failOpen: allDown answers; startup: SERVFAIL while the answer would need a pending member. */
export type ExplainMode = 'normal' | 'degraded' | 'failOpen' | 'startup';

/** The explanation of one name, type and client subnet. */
export interface Explanation {
  readonly name: string;
  readonly type: 'A' | 'AAAA';
  readonly subnet: string | null;
  readonly pool: string;
  readonly policy: string;
  /** the pool whose members answer (another one for allDown pool:<name>) */
  readonly answeredBy: string;
  readonly mode: ExplainMode;
  readonly failOpen: boolean;
  /** the pool's allDown as written */
  readonly allDown: string;
  /** NOERROR with answers, NODATA (no answers), or SERVFAIL (startup) */
  readonly rcode: 'NOERROR' | 'SERVFAIL';
  readonly answers: readonly string[];
  readonly ttl: number;
  /** the ECS scope prefix length of the answer */
  readonly scope: number;
  readonly epoch: number;
  readonly candidates: readonly ExplainCandidate[];
}

/** Why an explain query is refused: 400 names the parameter, 404 a name that is not a GSLB name. */
export class ExplainError extends Error {
  constructor(readonly status: 400 | 404, message: string) {
    super(message);
  }
}

/** Canonical (lower case, absolute) form of a name as given in a URL. */
export function canonicalName(name: string): string {
  const n = name.trim().toLowerCase();
  return n.endsWith('.') ? n : `${n}.`;
}

/** Validates the raw parameters (name, type default A, optional subnet); throws ExplainError(400) naming the one at fault. */
export function parseExplainQuery(raw: { name?: unknown; type?: unknown; subnet?: unknown }): ExplainQuery {
  const { name, type, subnet } = raw;
  if (typeof name !== 'string' || name.trim() === '' || name.length > 255) throw new ExplainError(400, 'name: required, a domain name (at most 255 characters)');
  const t = type === undefined ? 'A' : typeof type === 'string' ? type.toUpperCase() : '';
  if (t !== 'A' && t !== 'AAAA') throw new ExplainError(400, `type: expected A or AAAA, got ${JSON.stringify(type)}`);
  if (subnet !== undefined) {
    if (typeof subnet !== 'string') throw new ExplainError(400, 'subnet: expected one prefix such as 192.0.2.0/24');
    try {
      parsePrefix(subnet);
    } catch (err) {
      throw new ExplainError(400, `subnet: ${(err as Error).message}`);
    }
    return { name: canonicalName(name), type: t, subnet };
  }
  return { name: canonicalName(name), type: t };
}

/**
 * Explains `q` on `view`; `why` gives the state's reason for a member that is not up. Throws
 * ExplainError(404) when the name is no pool's name (static names and CNAMEs to GSLB names are
 * not followed: ask for the GSLB name itself).
 */
export function explain(config: GslbConfig, view: HealthView, q: ExplainQuery, why: (site: string, address: string) => MemberWhy | undefined): Explanation {
  const pool = config.byName.get(q.name);
  if (pool === undefined) throw new ExplainError(404, `${q.name} is not a GSLB name (no pool answers it; static names are answered from the zone files)`);
  const family = q.type === 'A' ? 4 : 6;
  const prefix = q.subnet !== undefined ? parsePrefix(q.subnet) : undefined;
  const selector = new PoolSelector(config);
  const setClient = (): void => {
    if (prefix) selector.client(true, prefix.family, prefix.bytes, prefix.length);
    else selector.client(false, 4, new Uint8Array(16), 0);
  };

  // the answer, exactly as the engine selects it
  setClient();
  selector.select(pool, view, family);
  const mode = selector.mode;
  const answeredBy = selector.pool ?? pool;
  const selected = new Set<number>(Array.from(selector.selected.subarray(0, selector.count)));
  const answers = [...selected].map((i) => answeredBy.members[i]!.address);
  const ttl = selector.ttl;
  const scope = selector.ctx.scope;
  const failOpen = isAllDownMode(mode);

  // eligibility: the same selection with room for every member, per pool that was consulted
  const consulted = answeredBy === pool ? [pool] : [pool, answeredBy];
  const candidates: ExplainCandidate[] = [];
  for (const p of consulted) {
    const wide: PoolConfig = { ...p, maxAnswers: selector.selected.length };
    setClient();
    selector.select(wide, view, family);
    const eligible = selector.pool?.name === p.name
      ? new Set<number>(Array.from(selector.selected.subarray(0, selector.count))) : new Set<number>();
    const ignoreHealth = selector.ctx.ignoreHealth && selector.pool?.name === p.name;
    const onlyTier = selector.pool?.name === p.name ? selector.ctx.onlyTier : 0;
    const health = view.pools.get(p.name);
    const eligibleSites = new Set([...eligible].map((i) => p.members[i]!.site));
    const eligibleTier = Math.min(...[...eligible].map((i) => p.members[i]!.tier));
    p.members.forEach((m, i) => {
      const h = health?.members[i];
      const w = h?.up === true ? undefined : why(m.site, m.address);
      let reason: string;
      if (eligible.has(i)) reason = h?.up === true ? 'eligible' : `eligible (fail-open: health ignored; ${w?.why ?? 'not up'})`;
      else if (m.family !== family) reason = `other family (IPv${m.family})`;
      else if (h?.up !== true && !(ignoreHealth && h?.forcedDown !== true)) reason = w?.why ?? 'not up';
      else if (onlyTier > 0 && m.tier !== onlyTier) reason = `not in the first tier (allDown: first-tier answers tier ${onlyTier})`;
      else if (!(m.weight > 0)) reason = 'weight 0';
      else if ((p.policy === 'weighted' || p.policy === 'hashed') && !ignoreHealth && !((h?.weightPct ?? 0) > 0)) reason = 'reported weight 0%';
      else if (p.policy === 'topology' && eligibleSites.size === 1 && !eligibleSites.has(m.site)) reason = `not in the client's topology (site ${[...eligibleSites][0]!} matches the client subnet)`;
      else if (eligible.size > 0 && m.tier !== eligibleTier) reason = `other tier (${m.tier}; tier ${eligibleTier} answers)`;
      else reason = p === pool && answeredBy !== pool ? 'not serving (the pool answers from its allDown pool)' : 'not picked by the policy';
      candidates.push({
        pool: p.name, site: m.site, address: m.address, tier: m.tier, weight: m.weight,
        eligible: eligible.has(i), selected: p === answeredBy && selected.has(i), reason,
        ...(w?.override !== undefined ? { override: w.override } : {}),
      });
    });
  }

  return {
    name: q.name, type: q.type, subnet: prefix ? prefix.text : null, pool: pool.name, policy: pool.policy,
    answeredBy: answeredBy.name,
    mode: mode === Mode.Startup ? 'startup' : failOpen ? 'failOpen' : view.pools.get(pool.name)?.degraded === true ? 'degraded' : 'normal',
    failOpen, allDown: allDownText(pool), rcode: mode === Mode.Startup ? 'SERVFAIL' : 'NOERROR',
    answers, ttl, scope, epoch: view.epoch, candidates,
  };
}

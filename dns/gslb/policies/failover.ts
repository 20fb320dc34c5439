/** Policy `failover`: the lowest tier that has a candidate answers. */
import type { MemberConfig, Policy, PolicyContext } from '../model.js';

/**
 * The candidate rule every policy shares: the member is of the asked family, in `ctx.onlyTier`
 * when that is set, and up (or health is ignored, which never includes a member an operator
 * forced down: that order holds even when the pool fails open). It lives here because failover
 * is the base rule the other policies fall back to.
 */
export function isCandidate(ctx: PolicyContext, m: MemberConfig, i: number): boolean {
  if (m.family !== ctx.family) return false;
  if (ctx.onlyTier > 0 && m.tier !== ctx.onlyTier) return false;
  const h = ctx.health.members[i];
  return ctx.ignoreHealth ? h?.forcedDown !== true : h?.up === true;
}

/** How many answers fit: pool.maxAnswers, bounded by the output buffer. */
export function answerLimit(ctx: PolicyContext, out: Int32Array): number {
  const max = ctx.pool.maxAnswers;
  return max < out.length ? max : out.length;
}

/** Candidates of the lowest tier number that has any, in config order, up to maxAnswers. Scope 0. */
export const failover: Policy = (ctx, out) => {
  ctx.scope = 0;
  const members = ctx.pool.members;
  const limit = answerLimit(ctx, out);
  let best = Infinity;
  for (let i = 0; i < members.length; i++) {
    const m = members[i]!;
    if (m.tier < best && isCandidate(ctx, m, i)) best = m.tier;
  }
  let n = 0;
  for (let i = 0; i < members.length && n < limit; i++) {
    const m = members[i]!;
    if (m.tier === best && isCandidate(ctx, m, i)) out[n++] = i;
  }
  return n;
};

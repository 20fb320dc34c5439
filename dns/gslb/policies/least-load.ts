/** Policy `least-load`: the candidates with the fewest connections per unit of capacity. */
import type { PolicyContext, Policy } from '../model.js';
import { answerLimit, isCandidate } from './failover.js';

/** connections / capacity; a member without capacity (0) counts as fully loaded (1). */
function load(ctx: PolicyContext, i: number): number {
  const h = ctx.health.members[i];
  if (h === undefined || !(h.capacity > 0)) return 1;
  return h.connections / h.capacity;
}

/** Up to maxAnswers candidates in ascending load, ties in config order. Deterministic; scope 0. */
export const leastLoad: Policy = (ctx, out) => {
  ctx.scope = 0;
  const members = ctx.pool.members;
  const limit = answerLimit(ctx, out);
  let n = 0;
  // insertion into the sorted top-`limit` prefix of out: O(members * maxAnswers), no scratch space
  for (let i = 0; i < members.length; i++) {
    if (!isCandidate(ctx, members[i]!, i)) continue;
    const l = load(ctx, i);
    let p = n;
    // strict > keeps an earlier member ahead of a later one with the same load
    while (p > 0 && load(ctx, out[p - 1]!) > l) p--;
    if (p >= limit) continue;
    const end = n < limit ? n : limit - 1;
    for (let q = end; q > p; q--) out[q] = out[q - 1]!;
    out[p] = i;
    if (n < limit) n++;
  }
  return n;
};

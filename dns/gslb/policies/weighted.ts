/** Policy `weighted`: random choice in proportion to configured weight times reported weight %. */
import type { Policy, PolicyContext } from '../model.js';
import { answerLimit, isCandidate } from './failover.js';

/** member.weight scaled by the reported weight % (by nothing when health is ignored); 0 = not a candidate. */
function effectiveWeight(ctx: PolicyContext, i: number): number {
  const m = ctx.pool.members[i]!;
  if (!isCandidate(ctx, m, i)) return 0;
  if (ctx.ignoreHealth) return m.weight > 0 ? m.weight : 0;
  const pct = ctx.health.members[i]?.weightPct ?? 0;
  const w = (m.weight * pct) / 100;
  return w > 0 ? w : 0;
}

function chosen(out: Int32Array, n: number, i: number): boolean {
  for (let k = 0; k < n; k++) if (out[k] === i) return true;
  return false;
}

/**
 * Up to maxAnswers distinct candidates drawn with ctx.random in proportion to their effective
 * weight, without replacement (each draw excludes the members already drawn). Scope 0.
 */
export const weighted: Policy = (ctx, out) => {
  ctx.scope = 0;
  const members = ctx.pool.members;
  const limit = answerLimit(ctx, out);
  let n = 0;
  while (n < limit) {
    // recomputed per draw rather than decremented, so rounding cannot accumulate
    let total = 0;
    for (let i = 0; i < members.length; i++) if (!chosen(out, n, i)) total += effectiveWeight(ctx, i);
    if (!(total > 0)) break;
    let r = ctx.random() * total;
    let pick = -1;
    for (let i = 0; i < members.length; i++) {
      const w = effectiveWeight(ctx, i);
      if (w === 0 || chosen(out, n, i)) continue;
      pick = i;
      r -= w;
      if (r < 0) break;
    }
    // when rounding leaves r at or just above 0, pick is the last eligible member
    out[n++] = pick;
  }
  return n;
};

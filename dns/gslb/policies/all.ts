/** Policy `all`: every candidate, rotated per query so that clients spread over them. */
import type { Policy } from '../model.js';
import { answerLimit, isCandidate } from './failover.js';

/** Every candidate up to maxAnswers in config order, starting at candidate `sequence mod count`. Scope 0. */
export const all: Policy = (ctx, out) => {
  ctx.scope = 0;
  const members = ctx.pool.members;
  const limit = answerLimit(ctx, out);
  let count = 0;
  for (let i = 0; i < members.length; i++) {
    if (isCandidate(ctx, members[i]!, i)) count++;
  }
  if (count === 0 || limit <= 0) return 0;
  // sequence may be any integer counter, including past 2^32 or negative
  const start = ((ctx.sequence % count) + count) % count;
  let n = 0;
  let rank = 0;
  // candidates from `start` to the end, then wrap around to those before it
  for (let i = 0; i < members.length && n < limit; i++) {
    if (!isCandidate(ctx, members[i]!, i)) continue;
    if (rank++ >= start) out[n++] = i;
  }
  rank = 0;
  for (let i = 0; i < members.length && n < limit; i++) {
    if (!isCandidate(ctx, members[i]!, i)) continue;
    if (rank++ >= start) break;
    out[n++] = i;
  }
  return n;
};

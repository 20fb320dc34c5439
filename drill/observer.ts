/**
 * What watches a drill as it runs. The runner tells a DrillObserver every sample, step and mark;
 * the plain-line observer here writes marks and outcomes only (no sample spam), one line each.
 *
 * TODO(merge): drill/progress.ts (live terminal progress, `createProgress(out)`) has this same
 * shape; main.ts should use it in place of createLineObserver once it is in this branch.
 */
import type { DrillResult, Mark, Sample } from './result.js';

export interface DrillObserver {
  sample(s: Sample): void;
  step(label: string): void;
  mark(m: Mark): void;
  done(r: DrillResult): void;
}

/** Writes one line per step, mark and the outcome; samples are counted, not printed. */
export function createLineObserver(out: { write(s: string): void }): DrillObserver {
  let samples = 0;
  return {
    sample() { samples++; },
    step(label) { out.write(`step: ${label}\n`); },
    // steps have their own line, and the end is the outcome line of done()
    mark(m) { if (m.kind !== 'step' && m.kind !== 'end') out.write(`${m.kind}: ${m.label}\n`); },
    done(r) {
      for (const s of [...r.steps.map((x) => ({ ...x, where: 'step' })), ...r.rollback.map((x) => ({ ...x, where: 'rollback' }))]) {
        out.write(`  ${s.where} ${s.index} ${s.kind.padEnd(6)} ${s.skipped === true ? 'SKIPPED' : s.ok ? 'ok' : 'FAILED'}  ${s.detail}\n`);
      }
      for (const g of r.guards) out.write(`  guard ${g.name}: ${g.tripped ? 'TRIPPED: ' : ''}${g.detail}\n`);
      out.write(`${r.outcome}: ${r.reason} (${samples} samples)\n`);
    },
  };
}

/** Observes nothing (tests, --json only runs that print elsewhere). */
export const silentObserver: DrillObserver = { sample() {}, step() {}, mark() {}, done() {} };

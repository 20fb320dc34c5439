/** The drill's end-of-run summary in plain lines: outcome, reason, steps, guards, measured intervals. */
import { formatMs, formatOffset } from './format.js';
import { measureIntervals } from './intervals.js';
import type { DrillIntervals } from './intervals.js';
import type { DrillResult, StepRecord } from './result.js';

/** Lines without colour or cursor codes, so they read the same in a terminal, a CI log or a file. */
export function summarizeDrill(r: DrillResult): string[] {
  const lines = [`${r.outcome}  ${r.name}  (${formatMs(r.endedAt - r.startedAt)})`, `reason: ${r.reason}`];
  lines.push(...stepLines('steps', r.steps, r.startedAt), ...stepLines('rollback', r.rollback, r.startedAt));
  if (r.guards.length > 0) {
    lines.push('guards:');
    for (const g of r.guards) {
      const at = g.at === null ? '' : ` at ${formatOffset(g.at - r.startedAt)}`;
      lines.push(`  ${g.tripped ? 'TRIPPED' : 'ok'}  ${g.name}${at}  ${g.detail}`);
    }
  }
  return [...lines, ...intervalLines(measureIntervals(r), r.startedAt)];
}

function stepLines(title: string, steps: readonly StepRecord[], start: number): string[] {
  if (steps.length === 0) return [];
  return [`${title}:`, ...steps.map((s) => {
    const status = s.skipped === true ? 'skipped' : s.ok ? 'ok' : 'FAILED';
    return `  ${status.padEnd(7)} ${String(s.index).padStart(2)} ${s.kind.padEnd(6)} ${formatOffset(s.startedAt - start).padStart(9)}  ${formatMs(s.elapsedMs).padStart(8)}  ${s.detail}`;
  })];
}

function intervalLines(m: DrillIntervals, start: number): string[] {
  const lines = ['intervals:'];
  const ms = (v: number | null): string => (v === null ? 'never' : formatMs(v));
  for (const c of m.changes) {
    const clients = c.clientFailures === 0 ? 'no client failures' : `${c.clientFailures} client failures, clients ok again after ${ms(c.clientsRecoveredMs)}`;
    lines.push(`  ${c.label} (${c.detail}): first instance moved after ${ms(c.firstChangeMs)}, all after ${ms(c.allChangedMs)}; ${clients}`);
  }
  const d = m.longestDisagreement;
  lines.push(d === null
    ? '  instances never disagreed'
    : `  longest disagreement: ${formatMs(d.ms)} for ${d.vantage} ${d.name} ${d.type} from ${formatOffset(d.start - start)}`);
  const worst = [...m.failures].sort((a, b) => b.count - a.count)[0];
  lines.push(worst === undefined
    ? '  no client failure windows'
    : `  client failure windows: ${m.failures.length}, longest ${worst.count} failures (${worst.instance} @ ${worst.vantage} from ${formatOffset(worst.start - start)})`);
  return lines;
}

/**
 * The drill's `--html OUT` report: one self-contained file (inline CSS and SVG, no script, a CSP
 * that forbids any fetch) that opens from disk. All text from the record is escaped.
 */
import { escapeHtml as esc, formatMs, formatOffset } from './format.js';
import { measureIntervals } from './intervals.js';
import type { DrillIntervals } from './intervals.js';
import { FAILED_COLOUR, HTTP_FAIL, HTTP_OK, MARK_COLOURS, NO_ADDRESS_COLOUR, renderTimelineSvg, siteColours } from './report-timeline.js';
import type { DrillOutcome, DrillResult, StepRecord } from './result.js';

const OUTCOME_COLOURS: Readonly<Record<DrillOutcome, string>> = { SUCCEEDED: '#15803d', FAILED: '#b91c1c', INTERRUPTED: '#b45309', ERROR: '#7f1d1d' };

const CSS = `
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#0f172a;background:#f8fafc}
main{max-width:1320px;margin:0 auto;padding:16px}
h1{font-size:1.4em;margin:0 0 6px;overflow-wrap:anywhere}
h2{font-size:1.1em;margin:22px 0 8px}
.badge{display:inline-block;padding:2px 10px;border-radius:999px;color:#fff;font-weight:600;font-size:.9em;vertical-align:middle}
.facts{display:flex;flex-wrap:wrap;gap:4px 20px;margin:6px 0;color:#334155}
.facts b{color:#0f172a}
.reason{margin:6px 0;overflow-wrap:anywhere}
.howto{color:#475569;font-size:.92em;margin:8px 0}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;font-size:.9em;margin:8px 0}
.legend span{display:inline-flex;align-items:center;gap:5px}
.sw{display:inline-block;width:14px;height:12px;border-radius:2px}
.sw.line{width:3px;height:14px}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:10px}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
svg.timeline{display:block;width:100%;min-width:760px;height:auto;font-size:12px;font-family:inherit}
svg .lane-label{fill:#0f172a}
svg .axis text{fill:#64748b;font-size:11px}
svg .mark text{font-size:11px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.93em}
th,td{border-bottom:1px solid #e2e8f0;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f1f5f9;white-space:nowrap}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.detail{overflow-wrap:anywhere;min-width:14em}
.ok{color:#15803d;font-weight:600}.bad{color:#b91c1c;font-weight:600}.muted{color:#64748b}
`;

/** The whole report as one HTML document. */
export function renderDrillHtml(r: DrillResult): string {
  const m = measureIntervals(r);
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    `<title>${esc(`${r.outcome}: drill ${r.name}`)}</title>`,
    `<style>${CSS}</style></head><body><main>`,
    header(r),
    '<h2>Timeline</h2>',
    legend(r),
    `<div class="card scroll">${renderTimelineSvg(r)}</div>`,
    '<h2>Measured intervals</h2>',
    intervalsSection(m, r.startedAt),
    '<h2>Steps</h2>',
    stepsTable(r.steps, r.startedAt, 'no steps ran'),
    '<h2>Rollback</h2>',
    stepsTable(r.rollback, r.startedAt, 'no rollback steps'),
    '<h2>Guards</h2>',
    guardsTable(r),
    '</main></body></html>',
    '',
  ].join('\n');
}

function header(r: DrillResult): string {
  const iso = (t: number): string => (Number.isFinite(t) ? new Date(t).toISOString() : String(t));
  return `<header>
<h1>Drill ${esc(r.name)} <span class="badge outcome" data-outcome="${esc(r.outcome)}" style="background:${OUTCOME_COLOURS[r.outcome]}">${esc(r.outcome)}</span></h1>
<p class="reason">${esc(r.reason)}</p>
<div class="facts"><span>start <b>${esc(iso(r.startedAt))}</b></span><span>end <b>${esc(iso(r.endedAt))}</b></span><span>duration <b>${esc(formatMs(r.endedAt - r.startedAt))}</b></span><span>${r.samples.length} answers observed</span></div>
<p class="howto">How to read this: time runs left to right from the start; each bar is one DNS instance answering one vantage, coloured by the site(s) it sent clients to (two colours stacked: both sites); the thin row under each vantage shows client fetches (green: ok, red: failed); yellow behind a vantage means its instances disagreed; vertical lines mark steps, faults, guard trips, rollback and the end. Hover for details.</p>
</header>`;
}

function legend(r: DrillResult): string {
  const sw = (colour: string, text: string, line = false): string => `<span><i class="sw${line ? ' line' : ''}" style="background:${colour}"></i>${esc(text)}</span>`;
  const sites = [...siteColours(r)].map(([site, colour]) => sw(colour, `site ${site}`));
  return `<div class="legend">${[
    ...sites, sw(NO_ADDRESS_COLOUR, 'no address'), sw(FAILED_COLOUR, 'SERVFAIL / timeout / error'),
    sw(HTTP_OK, 'client ok'), sw(HTTP_FAIL, 'client failed'), sw('#fde68a', 'instances disagree'),
    sw(MARK_COLOURS.step, 'step', true), sw(MARK_COLOURS.fault, 'fault (action / run)', true), sw(MARK_COLOURS.guard, 'guard trip / interrupt', true),
    sw(MARK_COLOURS.rollback, 'rollback', true), sw(MARK_COLOURS.end, 'end', true),
  ].join('')}</div>`;
}

function table(head: readonly string[], rows: readonly string[], empty: string): string {
  if (rows.length === 0) return `<p class="muted">${esc(empty)}</p>`;
  return `<div class="scroll"><table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table></div>`;
}

const ms = (v: number | null): string => (v === null ? '<span class="muted">never</span>' : esc(formatMs(v)));
const offset = (t: number, start: number): string => esc(formatOffset(t - start));

function intervalsSection(m: DrillIntervals, start: number): string {
  const changes = table(['fault', 'at', 'first instance moved', 'all instances moved', 'client failures', 'clients ok again', 'detail'],
    m.changes.map((c) => `<tr><td>${esc(c.label)}</td><td class="num">${offset(c.at, start)}</td><td class="num">${ms(c.firstChangeMs)}</td><td class="num">${ms(c.allChangedMs)}</td><td class="num">${c.clientFailures}</td><td class="num">${c.clientFailures === 0 ? '<span class="muted">-</span>' : ms(c.clientsRecoveredMs)}</td><td class="detail">${esc(c.detail)}</td></tr>`),
    'no action or run steps: nothing to measure');
  const d = m.longestDisagreement;
  const disagree = d === null
    ? '<p>Instances never disagreed.</p>'
    : `<p>Longest disagreement between instances: <b>${esc(formatMs(d.ms))}</b> for ${esc(`${d.vantage} ${d.name} ${d.type}`)} from ${offset(d.start, start)} (${m.disagreements.length} window${m.disagreements.length === 1 ? '' : 's'} in all).</p>`;
  const failures = table(['instance', 'vantage', 'from', 'last failure', 'failed fetches', 'ok again at'],
    m.failures.map((f) => `<tr><td>${esc(f.instance)}</td><td>${esc(f.vantage)}</td><td class="num">${offset(f.start, start)}</td><td class="num">${offset(f.end, start)}</td><td class="num">${f.count}</td><td class="num">${f.recoveredAt === null ? '<span class="bad">still failing</span>' : offset(f.recoveredAt, start)}</td></tr>`),
    'no client failures');
  return `${changes}\n${disagree}\n<h3>Client failure windows</h3>\n${failures}`;
}

function stepsTable(steps: readonly StepRecord[], start: number, empty: string): string {
  return table(['#', 'kind', 'ok', 'started', 'elapsed', 'detail'], steps.map((s) => {
    const status = s.skipped === true ? '<span class="muted">skipped</span>' : s.ok ? '<span class="ok">ok</span>' : '<span class="bad">FAILED</span>';
    return `<tr><td class="num">${s.index}</td><td>${esc(s.kind)}</td><td>${status}</td><td class="num">${offset(s.startedAt, start)}</td><td class="num">${esc(formatMs(s.elapsedMs))}</td><td class="detail">${esc(s.detail)}</td></tr>`;
  }), empty);
}

function guardsTable(r: DrillResult): string {
  return table(['guard', 'tripped', 'at', 'detail'], r.guards.map((g) => `<tr><td>${esc(g.name)}</td><td>${g.tripped ? '<span class="bad">TRIPPED</span>' : '<span class="ok">no</span>'}</td><td class="num">${g.at === null ? '' : offset(g.at, r.startedAt)}</td><td class="detail">${esc(g.detail)}</td></tr>`),
  'no guards');
}

/**
 * The drill report's timeline as inline SVG (no script): x is time since the start; per vantage,
 * one lane per instance (× name) coloured by the answered sites, then the clients' fetches; vertical
 * marks for steps, faults, guard trips, rollback and the end. Every shape has a <title> tooltip.
 */
import { describeAnswer, escapeHtml as esc, formatOffset } from './format.js';
import { answerKey, findDisagreements } from './intervals.js';
import type { DrillResult, Sample } from './result.js';

export const SITE_PALETTE = ['#3b82f6', '#a855f7', '#14b8a6', '#f59e0b', '#ec4899', '#84cc16', '#0ea5e9', '#78350f'] as const;
/** NOERROR without an address (or NXDOMAIN, NODATA) */
export const NO_ADDRESS_COLOUR = '#cbd5e1';
/** SERVFAIL, TIMEOUT, ERROR: no usable answer */
export const FAILED_COLOUR = '#64748b';
export const MARK_COLOURS = { step: '#475569', fault: '#ea580c', rollback: '#0f766e', guard: '#dc2626', interrupt: '#dc2626', end: '#111827' } as const;
export const HTTP_OK = '#16a34a';
export const HTTP_FAIL = '#dc2626';

const WIDTH = 1200;
const X0 = 190;
const X1 = 1185;
const MARK_ROW_H = 14;
const MARK_ROWS = 3;
const LANE_H = 20;
const CLIENT_H = 14;
const GAP = 6;
const GROUP_GAP = 16;
const AXIS_H = 28;

/** Each site its own colour, by sorted name, so a site has the same colour in every lane and legend. */
export function siteColours(r: DrillResult): Map<string, string> {
  const sites = [...new Set(r.samples.flatMap((s) => s.sites))].sort((a, b) => (a === '?' ? 1 : b === '?' ? -1 : a.localeCompare(b)));
  return new Map(sites.map((site, i) => [site, SITE_PALETTE[i % SITE_PALETTE.length] ?? FAILED_COLOUR]));
}

/** Lanes in the plan's order when the record has it, else in order of first appearance. */
export function laneOrder(r: DrillResult): { vantages: string[]; lanes: Map<string, { instance: string; name: string; type: string }[]> } {
  const seen = (pick: (s: Sample) => string, planned: readonly string[] = []): string[] =>
    [...new Set([...planned, ...r.samples.map(pick)])];
  const vantages = seen((s) => s.vantage, r.plan?.vantages);
  const instances = seen((s) => s.instance, r.plan?.instances);
  const queries = seen((s) => `${s.name} ${s.type}`);
  const lanes = new Map<string, { instance: string; name: string; type: string }[]>();
  for (const v of vantages) {
    const present = new Set(r.samples.filter((s) => s.vantage === v).map((s) => `${s.instance} ${s.name} ${s.type}`));
    const list = instances.flatMap((instance) => queries.map((q) => ({ instance, q })))
      .filter(({ instance, q }) => present.has(`${instance} ${q}`))
      .map(({ instance, q }) => { const [name = '', type = ''] = q.split(' '); return { instance, name, type }; });
    lanes.set(v, list);
  }
  return { vantages, lanes };
}

interface Scale { x(t: number): number; readonly start: number }

function scaleOf(r: DrillResult): Scale {
  const span = Math.max(1, r.endedAt - r.startedAt);
  return { start: r.startedAt, x: (t) => X0 + ((X1 - X0) * Math.min(Math.max(t - r.startedAt, 0), span)) / span };
}

const f1 = (n: number): string => n.toFixed(1);

/** The whole timeline: an <svg> that scales with its viewBox. */
export function renderTimelineSvg(r: DrillResult): string {
  const sc = scaleOf(r);
  const colours = siteColours(r);
  const { vantages, lanes } = laneOrder(r);
  const multiName = new Set(r.samples.map((s) => `${s.name} ${s.type}`)).size > 1;
  const short = shortNames(r.samples.map((s) => s.name));
  const top = MARK_ROWS * MARK_ROW_H + 8;
  const body: string[] = [];
  let y = top;
  for (const v of vantages) {
    const group = lanes.get(v) ?? [];
    const groupTop = y;
    for (const lane of group) {
      const samples = r.samples.filter((s) => s.vantage === v && s.instance === lane.instance && s.name === lane.name && s.type === lane.type);
      const label = `${lane.instance} @ ${v}${multiName ? ` ${lane.name} ${lane.type}` : ''}`;
      const shown = `${lane.instance} @ ${v}${multiName ? ` ${short(lane.name)} ${lane.type}` : ''}`;
      body.push(laneLabel(shown, y + LANE_H / 2, label), ...answerSegments(samples, sc, r.endedAt, y, colours, label));
      y += LANE_H + GAP;
    }
    body.unshift(...disagreementBands(r, v, sc, groupTop, y - GAP));
    const fetches = r.samples.filter((s) => s.vantage === v && s.http !== undefined);
    if (fetches.length > 0) {
      body.push(`<g class="lane clients" data-vantage="${esc(v)}">`, laneLabel(`clients @ ${v}`, y + CLIENT_H / 2), ...clientTicks(fetches, sc, y, v), '</g>');
      y += CLIENT_H + GAP;
    }
    y += GROUP_GAP - GAP;
  }
  const bottom = y;
  const height = bottom + AXIS_H;
  return [
    `<svg class="timeline" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="timeline of the drill" xmlns="http://www.w3.org/2000/svg">`,
    axis(r, sc, top, bottom),
    ...body,
    ...marks(r, sc, bottom),
    '</svg>',
  ].join('\n');
}

/** Room left of the lanes, in characters of the lane-label font. */
const LABEL_CHARS = Math.floor((X0 - 12) / 7.2);

/**
 * Names as lane labels: without the zone suffix every name shares (`geo.gslb.example.test` and
 * `www.gslb.example.test` become `geo` and `www`), so labels fit left of the lanes.
 */
function shortNames(names: readonly string[]): (name: string) => string {
  const split = [...new Set(names)].map((n) => n.replace(/\.$/, '').split('.'));
  let common = 0;
  while (split.length > 1 && split.every((l) => l.length > common + 1 && l[l.length - 1 - common] === split[0]![split[0]!.length - 1 - common])) common++;
  return (name) => (common === 0 ? name : name.replace(/\.$/, '').split('.').slice(0, -common).join('.'));
}

/** A lane's label, cut with an ellipsis when it would run off the left edge; the whole text on hover. */
function laneLabel(text: string, cy: number, full = text): string {
  const shown = text.length > LABEL_CHARS ? `${text.slice(0, LABEL_CHARS - 1)}…` : text;
  return `<text class="lane-label" x="${X0 - 8}" y="${f1(cy)}" text-anchor="end" dominant-baseline="middle"><title>${esc(full)}</title>${esc(shown)}</text>`;
}

interface Segment { first: Sample; from: number; to: number; count: number }

/** Consecutive samples with the same answer become one segment, from its first sample to the next different one. */
function segments(samples: readonly Sample[], endedAt: number): Segment[] {
  const sorted = [...samples].sort((a, b) => a.t - b.t);
  const out: Segment[] = [];
  for (const [i, s] of sorted.entries()) {
    const next = sorted[i + 1]?.t ?? Math.max(endedAt, s.t);
    const last = out[out.length - 1];
    if (last !== undefined && describeAnswer(last.first) === describeAnswer(s) && answerKey(last.first) === answerKey(s)) {
      last.to = next;
      last.count++;
    } else {
      out.push({ first: s, from: s.t, to: next, count: 1 });
    }
  }
  return out;
}

function answerSegments(samples: readonly Sample[], sc: Scale, endedAt: number, y: number, colours: Map<string, string>, label: string): string[] {
  const out = [`<g class="lane answers" data-lane="${esc(label)}">`];
  for (const seg of segments(samples, endedAt)) {
    const x = sc.x(seg.from);
    const w = Math.max(1, sc.x(seg.to) - x);
    const title = `${label}: ${describeAnswer(seg.first)} (${seg.first.rcode}) ${formatOffset(seg.from - sc.start)} to ${formatOffset(seg.to - sc.start)}, ${seg.count} answer${seg.count === 1 ? '' : 's'}`;
    const sites = [...new Set(seg.first.sites)].sort();
    const fills = seg.first.rcode !== 'NOERROR' ? [FAILED_COLOUR] : sites.length === 0 ? [NO_ADDRESS_COLOUR] : sites.map((s) => colours.get(s) ?? FAILED_COLOUR);
    const h = LANE_H / fills.length;
    out.push(`<g class="segment" data-answer="${esc(answerKey(seg.first))}"><title>${esc(title)}</title>`);
    fills.forEach((fill, i) => { out.push(`<rect x="${f1(x)}" y="${f1(y + i * h)}" width="${f1(w)}" height="${f1(h)}" fill="${fill}"/>`); });
    out.push('</g>');
  }
  out.push('</g>');
  return out;
}

function clientTicks(fetches: readonly Sample[], sc: Scale, y: number, vantage: string): string[] {
  return fetches.map((s) => {
    const ok = s.http?.ok === true;
    const what = ok ? `ok, HTTP ${s.http?.status ?? '?'} in ${s.http?.ms ?? '?'} ms` : `FAILED: ${s.http?.error ?? `HTTP ${s.http?.status ?? '?'}`}`;
    const title = `clients @ ${vantage} via ${s.instance} ${formatOffset(s.t - sc.start)}: ${what}`;
    return `<rect class="${ok ? 'http-ok' : 'http-fail'}" x="${f1(sc.x(s.t) - 1)}" y="${ok ? y + CLIENT_H / 2 : y}" width="2" height="${ok ? CLIENT_H / 2 : CLIENT_H}" fill="${ok ? HTTP_OK : HTTP_FAIL}"><title>${esc(title)}</title></rect>`;
  });
}

function disagreementBands(r: DrillResult, vantage: string, sc: Scale, y0: number, y1: number): string[] {
  return findDisagreements(r.samples.filter((s) => s.vantage === vantage), r.endedAt).map((d) => {
    const x = sc.x(d.start);
    const title = `instances disagree for ${vantage} ${d.name} ${d.type}: ${formatOffset(d.start - sc.start)} to ${formatOffset(d.end - sc.start)}`;
    return `<rect class="disagreement" x="${f1(x - 2)}" y="${f1(y0 - 3)}" width="${f1(Math.max(2, sc.x(d.end) - x) + 4)}" height="${f1(y1 - y0 + 6)}" fill="#fde68a"><title>${esc(title)}</title></rect>`;
  });
}

/** Ticks at 1, 2 or 5 × 10^n seconds, about ten across. */
function tickStep(spanMs: number): number {
  for (const exp of [-1, 0, 1, 2, 3, 4]) {
    for (const m of [1, 2, 5]) {
      const step = m * 10 ** exp * 1000;
      if (spanMs / step <= 12) return step;
    }
  }
  return spanMs;
}

function axis(r: DrillResult, sc: Scale, top: number, bottom: number): string {
  const span = Math.max(1, r.endedAt - r.startedAt);
  const step = tickStep(span);
  const out = ['<g class="axis">'];
  for (let t = 0; t <= span + 1e-6; t += step) {
    const x = f1(sc.x(r.startedAt + t));
    out.push(`<line x1="${x}" y1="${top - 4}" x2="${x}" y2="${bottom}" stroke="#e2e8f0"/>`,
      `<text x="${x}" y="${bottom + 16}" text-anchor="middle">+${Number((t / 1000).toFixed(1))} s</text>`);
  }
  out.push('</g>');
  return out.join('');
}

interface TimelineMark { t: number; kind: keyof typeof MARK_COLOURS; label: string }

/** The record's marks plus each action or run step as a fault, in time order. */
export function timelineMarks(r: DrillResult): TimelineMark[] {
  const faults = [...r.steps.map((s) => ({ s, what: 'step' })), ...r.rollback.map((s) => ({ s, what: 'rollback' }))]
    .filter(({ s }) => (s.kind === 'action' || s.kind === 'run') && s.skipped !== true)
    .map(({ s, what }) => ({ t: s.startedAt, kind: 'fault' as const, label: `${what} ${s.index} ${s.kind}: ${s.detail}` }));
  return [...r.marks.map((m) => ({ t: m.t, kind: m.kind, label: m.label })), ...faults].sort((a, b) => a.t - b.t);
}

const CHAR_W = 6.2;
const MAX_LABEL = 34;

/**
 * Vertical lines with labels in up to MARK_ROWS rows above the lanes, each label where it overlaps
 * none before it; a mark with no room (or a fault already labelled by its step's mark) keeps only
 * its line and tooltip.
 */
function marks(r: DrillResult, sc: Scale, bottom: number): string[] {
  const rowEnds: number[] = Array.from({ length: MARK_ROWS }, () => Number.NEGATIVE_INFINITY);
  const all = timelineMarks(r);
  const stepAt = new Set(all.filter((m) => m.kind === 'step').map((m) => m.t));
  return all.map((m) => {
    const x = sc.x(m.t);
    const colour = MARK_COLOURS[m.kind];
    const dash = m.kind === 'step' ? ' stroke-dasharray="4 3"' : '';
    const title = `${m.kind} ${formatOffset(m.t - sc.start)}: ${m.label}`;
    const label = m.kind === 'fault' && stepAt.has(m.t) ? '' : markLabel(m.label, x, colour, rowEnds);
    return `<g class="mark mark-${m.kind}"><title>${esc(title)}</title>`
      + `<line x1="${f1(x)}" y1="${MARK_ROW_H - 11}" x2="${f1(x)}" y2="${bottom}" stroke="${colour}" stroke-width="${m.kind === 'step' ? 1 : 2}"${dash}/>`
      + `${label}</g>`;
  });
}

/** The label's <text> in the first row free at x (updating rowEnds), or '' when every row is taken. */
function markLabel(text: string, x: number, colour: string, rowEnds: number[]): string {
  const anchorEnd = x > X1 - 120;
  const room = anchorEnd ? MAX_LABEL : Math.min(MAX_LABEL, Math.floor((X1 + 10 - x) / CHAR_W));
  const short = text.length > room ? `${text.slice(0, Math.max(1, room - 1))}…` : text;
  const left = anchorEnd ? x - short.length * CHAR_W - 6 : x;
  const row = rowEnds.findIndex((end) => end < left);
  if (row < 0) return '';
  rowEnds[row] = anchorEnd ? x + 4 : x + short.length * CHAR_W + 8;
  const y = (row + 1) * MARK_ROW_H - 2;
  return `<text x="${f1(anchorEnd ? x - 3 : x + 3)}" y="${y}" fill="${colour}"${anchorEnd ? ' text-anchor="end"' : ''}>${esc(short)}</text>`;
}

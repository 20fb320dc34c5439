/**
 * The drill's live progress in the terminal. On a TTY: a short status block redrawn in place (the
 * step, each instance × vantage's last answer, client success). Elsewhere (CI, pipes): one plain
 * line per change, so logs stay short. Both end with the summary of drill/summary.ts.
 */
import { describeAnswer, formatMs, formatOffset, formatRate } from './format.js';
import { answerKey, laneKey } from './intervals.js';
import type { DrillResult, Mark, Sample } from './result.js';
import { summarizeDrill } from './summary.js';

/** What the runner tells the progress (and anything else watching) as the drill goes. */
export interface DrillObserver {
  step(label: string): void;
  sample(s: Sample): void;
  mark(m: Mark): void;
  done(r: DrillResult): void;
}

export interface ProgressOutput {
  write(s: string): void;
  isTTY?: boolean;
  columns?: number;
}

/** Redraws of the status block are at least this far apart (a step change redraws at once). */
export const REDRAW_MS = 200;
/** The "recent" client success rate covers this much time before the latest sample. */
export const RECENT_MS = 5_000;
/** At most this many instance × vantage lines in the status block. */
export const MAX_LANES = 12;

interface Lane {
  readonly label: string;
  last: Sample;
  failures: number;
}

/** What both renderings track: the step, each lane's last answer, the client fetches. */
class ProgressState {
  step: string | null = null;
  readonly lanes = new Map<string, Lane>();
  readonly names = new Set<string>();
  recent: { t: number; ok: boolean }[] = [];
  ok = 0;
  total = 0;

  /** Records the sample; returns its lane and the lane's previous answer (undefined for a new lane). */
  add(s: Sample): { lane: Lane; previous: Sample | undefined } {
    this.names.add(`${s.name} ${s.type}`);
    if (s.http !== undefined) this.addHttp(s.t, s.http.ok);
    const key = laneKey(s);
    const lane = this.lanes.get(key);
    if (lane === undefined) {
      const created = { label: `${s.instance} @ ${s.vantage}`, last: s, failures: 0 };
      this.lanes.set(key, created);
      return { lane: created, previous: undefined };
    }
    const previous = lane.last;
    lane.last = s;
    return { lane, previous };
  }

  laneLabel(lane: Lane): string {
    return this.names.size > 1 ? `${lane.label} ${lane.last.name} ${lane.last.type}` : lane.label;
  }

  clients(): string {
    const recentOk = this.recent.filter((h) => h.ok).length;
    return `clients ok: last ${RECENT_MS / 1000} s ${formatRate(recentOk, this.recent.length)}, overall ${formatRate(this.ok, this.total)}`;
  }

  private addHttp(t: number, ok: boolean): void {
    this.total++;
    if (ok) this.ok++;
    this.recent.push({ t, ok });
    const latest = Math.max(...this.recent.map((h) => h.t));
    this.recent = this.recent.filter((h) => h.t > latest - RECENT_MS);
  }
}

/** A progress observer writing to `out`: a redrawn block when `out.isTTY`, plain change lines otherwise. */
export function createProgress(out: ProgressOutput, opts: { now?: () => number } = {}): DrillObserver {
  const now = opts.now ?? Date.now;
  return out.isTTY === true ? createTtyProgress(out, now) : createLineProgress(out, now);
}

function markLine(m: Mark): string | null {
  switch (m.kind) {
    case 'guard': return `guard tripped: ${m.label}`;
    case 'interrupt': return `interrupted: ${m.label}`;
    case 'rollback': return `rollback: ${m.label}`;
    case 'end': return `end: ${m.label}`;
    case 'step': return null;
  }
}

function createLineProgress(out: ProgressOutput, now: () => number): DrillObserver {
  const state = new ProgressState();
  const start = now();
  const line = (text: string): void => { out.write(`${formatOffset(now() - start)}  ${text}\n`); };
  return {
    step(label) { state.step = label; line(`step ${label}`); },
    sample(s) {
      const { lane, previous } = state.add(s);
      const was = previous === undefined ? undefined : describeAnswer(previous);
      if (previous === undefined || answerKey(previous) !== answerKey(s) || was !== describeAnswer(s)) {
        line(`${state.laneLabel(lane)}: ${describeAnswer(s)}${was === undefined ? '' : ` (was ${was})`}`);
      }
      clientTransition(lane, s, (text) => { line(`${state.laneLabel(lane)} ${text}`); });
    },
    mark(m) { const text = markLine(m); if (text !== null) line(text); },
    done(r) { out.write(`${summarizeDrill(r).join('\n')}\n`); },
  };
}

/** Says when a lane's clients start failing and when they are ok again. */
function clientTransition(lane: Lane, s: Sample, say: (text: string) => void): void {
  if (s.http === undefined) return;
  if (!s.http.ok) {
    if (lane.failures === 0) say(`clients failing: ${s.http.error ?? `HTTP ${s.http.status ?? '?'}`}`);
    lane.failures++;
  } else if (lane.failures > 0) {
    say(`clients ok again after ${lane.failures} failure${lane.failures === 1 ? '' : 's'}`);
    lane.failures = 0;
  }
}

const CLEAR_BELOW = '\x1b[J';
const up = (n: number): string => (n > 0 ? `\x1b[${n}A\r` : '\r');

function createTtyProgress(out: ProgressOutput, now: () => number): DrillObserver {
  const state = new ProgressState();
  const start = now();
  let drawn = 0;
  let lastDraw = Number.NEGATIVE_INFINITY;
  const width = (): number => Math.max(20, (out.columns ?? 80) - 1);
  const fit = (text: string): string => (text.length > width() ? `${text.slice(0, width() - 1)}…` : text);
  const clear = (): string => { const s = up(drawn) + CLEAR_BELOW; drawn = 0; return s; };
  const draw = (above: string[] = []): void => {
    const lines = blockLines(state, now());
    out.write(`${clear()}${above.map((l) => `${fit(l)}\n`).join('')}${lines.map((l) => `${fit(l)}\n`).join('')}`);
    drawn = lines.length;
    lastDraw = now();
  };
  const event = (text: string): void => { draw([`${formatOffset(now() - start)}  ${text}`]); };
  return {
    step(label) { state.step = label; event(`step ${label}`); },
    sample(s) {
      state.add(s);
      if (now() - lastDraw >= REDRAW_MS) draw();
    },
    mark(m) { const text = markLine(m); if (text !== null) event(text); },
    done(r) { out.write(`${clear()}${summarizeDrill(r).join('\n')}\n`); },
  };
}

/** The status block: the step, at most MAX_LANES lanes with their last answer and its age, and client success. */
function blockLines(state: ProgressState, now: number): string[] {
  const lanes = [...state.lanes.values()];
  const pad = Math.max(0, ...lanes.map((l) => state.laneLabel(l).length));
  const lines = [`step: ${state.step ?? '(starting)'}`];
  for (const lane of lanes.slice(0, MAX_LANES)) {
    const s = lane.last;
    const http = s.http === undefined ? '' : s.http.ok ? '  http ok' : '  http FAIL';
    lines.push(`  ${state.laneLabel(lane).padEnd(pad)}  ${describeAnswer(s)}${s.rcode === 'NOERROR' ? '  NOERROR' : ''}  ${formatMs(Math.max(0, now - s.t))} ago${http}`);
  }
  if (lanes.length > MAX_LANES) lines.push(`  … ${lanes.length - MAX_LANES} more`);
  lines.push(state.clients());
  return lines;
}

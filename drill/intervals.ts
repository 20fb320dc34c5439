/**
 * The measured intervals of a drill, computed from its record alone (pure): how long after each
 * fault the instances' answers moved, how long they disagreed, and when clients failed.
 */
import type { DrillResult, Sample, StepRecord } from './result.js';

/** What one observation answered, as a comparable key: the sorted site set, or the rcode when it is not NOERROR. */
export function answerKey(s: Sample): string {
  if (s.rcode !== 'NOERROR') return s.rcode;
  const sites = [...new Set(s.sites)].sort();
  return sites.length === 0 ? 'empty' : sites.join('+');
}

/** One timeline lane: an instance answering a vantage for a name and type. */
export function laneKey(s: Pick<Sample, 'instance' | 'vantage' | 'name' | 'type'>): string {
  return `${s.instance}\u0000${s.vantage}\u0000${s.name}\u0000${s.type}`;
}

/** A step that changes things (an action or a run command: a "fault"), and what followed it. */
export interface ChangeInterval {
  /** e.g. "step 2 action" or "rollback 0 run" */
  readonly label: string;
  readonly detail: string;
  /** unix ms when the step started */
  readonly at: number;
  /** ms from `at` to the first instance answering differently; null when none did before the next change */
  readonly firstChangeMs: number | null;
  /** ms from `at` until every instance that was answering had changed; null when some never did */
  readonly allChangedMs: number | null;
  /** http failures observed between this change and the next */
  readonly clientFailures: number;
  /** ms from `at` to the first http success after the last failure; null when no failure or no recovery */
  readonly clientsRecoveredMs: number | null;
}

/** A time window when instances' answer site sets for one vantage, name and type differed. */
export interface Disagreement {
  readonly vantage: string;
  readonly name: string;
  readonly type: string;
  /** unix ms */
  readonly start: number;
  readonly end: number;
  readonly ms: number;
}

/** Consecutive failed client fetches at one vantage, sent there by one instance. */
export interface FailureWindow {
  readonly instance: string;
  readonly vantage: string;
  /** unix ms of the first and last failed sample */
  readonly start: number;
  readonly end: number;
  readonly count: number;
  /** unix ms of the first success after the window; null when the drill ended still failing */
  readonly recoveredAt: number | null;
}

export interface DrillIntervals {
  readonly changes: readonly ChangeInterval[];
  readonly disagreements: readonly Disagreement[];
  readonly longestDisagreement: Disagreement | null;
  readonly failures: readonly FailureWindow[];
}

const CHANGING: ReadonlySet<string> = new Set(['action', 'run']);

/** Everything `intervals.ts` measures, for the progress summary and the HTML report. */
export function measureIntervals(r: DrillResult): DrillIntervals {
  const disagreements = findDisagreements(r.samples, r.endedAt);
  let longest: Disagreement | null = null;
  for (const d of disagreements) if (longest === null || d.ms > longest.ms) longest = d;
  return { changes: measureChanges(r), disagreements, longestDisagreement: longest, failures: findFailureWindows(r.samples) };
}

interface Fault { readonly label: string; readonly detail: string; readonly at: number }

function faults(r: DrillResult): Fault[] {
  const pick = (list: readonly StepRecord[], what: string): Fault[] => list
    .filter((s) => CHANGING.has(s.kind) && !s.skipped)
    .map((s) => ({ label: `${what} ${s.index} ${s.kind}`, detail: s.detail, at: s.startedAt }));
  return [...pick(r.steps, 'step'), ...pick(r.rollback, 'rollback')].sort((a, b) => a.at - b.at);
}

/** Each fault's window runs to the next fault (or the end), so a rollback is not counted as the drain's effect. */
export function measureChanges(r: DrillResult): ChangeInterval[] {
  const list = faults(r);
  const sorted = [...r.samples].sort((a, b) => a.t - b.t);
  return list.map((f, i) => {
    const until = list[i + 1]?.at ?? Number.POSITIVE_INFINITY;
    const inWindow = sorted.filter((s) => s.t >= f.at && s.t < until);
    // a sample recorded in the millisecond the step began was answered before it ran (the
    // baseline round often is, when a plan asks few questions): it is the state before
    const moved = firstChangePerInstance(sorted.filter((s) => s.t <= f.at), inWindow);
    const times = [...moved.values()];
    const changed = times.filter((t): t is number => t !== null);
    const first = changed.length === 0 ? null : Math.min(...changed) - f.at;
    const all = changed.length === 0 || changed.length < times.length ? null : Math.max(...changed) - f.at;
    const clients = clientRecovery(inWindow);
    return {
      label: f.label, detail: f.detail, at: f.at,
      firstChangeMs: first,
      allChangedMs: all,
      clientFailures: clients.failures,
      clientsRecoveredMs: clients.recoveredAt === null ? null : clients.recoveredAt - f.at,
    };
  });
}

/** Per instance that had answered before the fault: when any of its lanes first answered differently (null: never). */
function firstChangePerInstance(before: readonly Sample[], after: readonly Sample[]): Map<string, number | null> {
  const last = new Map<string, string>();
  for (const s of before) last.set(laneKey(s), answerKey(s));
  const result = new Map<string, number | null>();
  for (const s of before) result.set(s.instance, null);
  for (const s of after) {
    const was = last.get(laneKey(s));
    if (was === undefined || was === answerKey(s) || !result.has(s.instance)) continue;
    if (result.get(s.instance) === null) result.set(s.instance, s.t);
  }
  return result;
}

/** Per lane, the first success after its last failure; the slowest lane is when clients were all served again. */
function clientRecovery(window: readonly Sample[]): { failures: number; recoveredAt: number | null } {
  const withHttp = window.filter((s) => s.http !== undefined);
  const failures = withHttp.filter((s) => s.http?.ok === false).length;
  let recoveredAt: number | null = null;
  for (const lane of groupBy(withHttp, laneKey).values()) {
    let lastFailure = -1;
    lane.forEach((s, i) => { if (s.http?.ok === false) lastFailure = i; });
    if (lastFailure < 0) continue;
    const back = lane[lastFailure + 1];
    if (back === undefined) return { failures, recoveredAt: null };
    recoveredAt = Math.max(recoveredAt ?? back.t, back.t);
  }
  return { failures, recoveredAt };
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = groups.get(k);
    if (list === undefined) groups.set(k, [item]); else list.push(item);
  }
  return groups;
}

/** Windows when, for one vantage/name/type, the latest answers of the instances seen so far differ. */
export function findDisagreements(samples: readonly Sample[], endedAt: number): Disagreement[] {
  const groups = groupBy(samples, (s) => `${s.vantage}\u0000${s.name}\u0000${s.type}`);
  const out: Disagreement[] = [];
  for (const list of groups.values()) out.push(...disagreementsOf([...list].sort((a, b) => a.t - b.t), endedAt));
  return out.sort((a, b) => a.start - b.start);
}

function disagreementsOf(sorted: readonly Sample[], endedAt: number): Disagreement[] {
  const latest = new Map<string, string>();
  const out: Disagreement[] = [];
  let since: number | null = null;
  const close = (end: number, s: Sample): void => {
    if (since === null) return;
    out.push({ vantage: s.vantage, name: s.name, type: s.type, start: since, end, ms: end - since });
    since = null;
  };
  for (const s of sorted) {
    latest.set(s.instance, answerKey(s));
    const differ = new Set(latest.values()).size > 1;
    if (differ && since === null) since = s.t;
    else if (!differ) close(s.t, s);
  }
  const lastSample = sorted[sorted.length - 1];
  if (lastSample !== undefined) close(Math.max(endedAt, lastSample.t), lastSample);
  return out;
}

/** Runs of consecutive failed http samples per instance × vantage (each fetch goes where that instance sent the client). */
export function findFailureWindows(samples: readonly Sample[]): FailureWindow[] {
  const out: FailureWindow[] = [];
  for (const lane of groupBy(samples.filter((s) => s.http !== undefined), laneKey).values()) {
    let open = null as { start: number; end: number; count: number } | null;
    for (const s of [...lane].sort((a, b) => a.t - b.t)) {
      if (s.http?.ok === false) {
        open = open === null ? { start: s.t, end: s.t, count: 1 } : { ...open, end: s.t, count: open.count + 1 };
      } else if (open !== null) {
        out.push({ instance: s.instance, vantage: s.vantage, ...open, recoveredAt: s.t });
        open = null;
      }
    }
    const last = lane[lane.length - 1];
    if (open !== null && last !== undefined) out.push({ instance: last.instance, vantage: last.vantage, ...open, recoveredAt: null });
  }
  return out.sort((a, b) => a.start - b.start);
}

/**
 * What a scenario's runs measured (pure, from the drill records alone): per run the intervals of
 * drill/intervals.ts split into what the instances did and what clients saw, and per scenario
 * the medians and worst cases `npm run drill:lab -- --json` writes (keys are a contract).
 *
 * Instances vs clients: the resolver vantage's samples carry the resolver as their "instance";
 * they are left out of the instance intervals (a resolver follows only after its TTL) and kept
 * for the client failures.
 */
import { answerKey, findDisagreements, laneKey, measureChanges } from '../intervals.js';
import type { DrillOutcome, DrillResult, Sample, StepRecord } from '../result.js';
import { RESOLVER_VANTAGE } from './scenarios.js';
import type { Scenario } from './scenarios.js';

export interface RunStats {
  readonly outcome: DrillOutcome;
  readonly reason: string;
  /** fault step -> first instance answering differently / every instance; null: none did */
  readonly firstInstanceMs: number | null;
  readonly allInstancesMs: number | null;
  /** fault step -> every client lane succeeding again after its last failure; null: no failure (or no recovery) */
  readonly clientsRecoveredMs: number | null;
  /** the same for the clients behind the resolver only: the window an operator sizes TTLs by */
  readonly resolverClientsMs: number | null;
  /**
   * recovery step -> every instance that moved answering differently again (a fault that hit
   * one instance only, a cut or a killed instance, is undone when that one is back); null: no
   * recovery step, or none moved
   */
  readonly recoveredMs: number | null;
  /**
   * the faulted site's agent seeing its VIP up again (rise met, from the agent's log) -> every
   * instance answering differently again; null where no rise is involved (a drain, a cut)
   */
  readonly recoveredAfterRiseMs: number | null;
  /** failed HTTP fetches through an answer, direct and behind the resolver, in the whole run */
  readonly failedRequests: number;
  /** see healthyExcluded() */
  readonly healthyExcluded: boolean;
  /** longest time the answering instances' answers differed for one vantage and name */
  readonly maxDisagreementMs: number;
  /** how often an instance's answer to one vantage and name changed during the steps */
  readonly answerChanges: number;
  /** the most changes of one instance's answer to one vantage and name within any rise/fall window */
  readonly maxChangesPerWindow: number;
}

/** What the drill records alone do not say: the agent's rise moment and the rise/fall window. */
export interface RunContext {
  /** unix ms the faulted site's agent logged its VIP up after the recovery step; null: none */
  readonly riseMetAt?: number | null;
  /** (rise + fall) x check interval */
  readonly windowMs: number;
}

const answered = (s: Sample): boolean => s.rcode !== 'TIMEOUT' && s.rcode !== 'ERROR';

/**
 * A healthy site excluded: an instance (not the resolver) answered the `all` pool name
 * (`www`, every serving site) NOERROR to a direct vantage without a site the scenario did not
 * fault. Every lab site is healthy unless faulted, so each such answer left out a healthy site.
 */
export function healthyExcluded(samples: readonly Sample[], allName: string, sites: readonly string[], faulted: readonly string[]): boolean {
  const healthy = sites.filter((s) => !faulted.includes(s));
  return samples.some((s) => s.vantage !== RESOLVER_VANTAGE && s.name === allName && s.rcode === 'NOERROR' && healthy.some((h) => !s.sites.includes(h)));
}

/** When each instance lane's answer changed while the steps ran (not the rollback), per lane. */
function answerChangeTimes(samples: readonly Sample[], from: number, to: number): Map<string, number[]> {
  const last = new Map<string, string>();
  const times = new Map<string, number[]>();
  for (const s of [...samples].sort((a, b) => a.t - b.t)) {
    if (!answered(s)) continue;
    const k = laneKey(s);
    const was = last.get(k);
    if (was !== undefined && was !== answerKey(s) && s.t >= from && s.t < to) {
      const ts = times.get(k);
      if (ts === undefined) times.set(k, [s.t]);
      else ts.push(s.t);
    }
    last.set(k, answerKey(s));
  }
  return times;
}

/** The most changes of one lane inside any window of `windowMs` (sliding, from each change). */
export function maxPerWindow(times: ReadonlyMap<string, readonly number[]>, windowMs: number): number {
  let max = 0;
  for (const ts of times.values()) {
    for (let i = 0, j = 0; i < ts.length; i++) {
      while (ts[i]! - ts[j]! >= windowMs) j++;
      max = Math.max(max, i - j + 1);
    }
  }
  return max;
}

/** The steps that changed something (a fault, its recovery): runs and actions that ran. */
export function changeSteps(r: DrillResult): StepRecord[] {
  return r.steps.filter((x) => (x.kind === 'run' || x.kind === 'action') && x.skipped !== true);
}

export function runStats(r: DrillResult, s: Scenario, allName: string, sites: readonly string[], ctx: RunContext): RunStats {
  const direct = r.samples.filter((x) => x.vantage !== RESOLVER_VANTAGE);
  const changing = changeSteps(r);
  const label = (i: number | undefined): string | undefined => (i === undefined ? undefined : `step ${changing[i]!.index} ${changing[i]!.kind}`);
  const faultLabel = label(changing.length > 0 ? 0 : undefined);
  // the last change of the steps undoes the fault (a scenario with one change has no recovery step)
  const recoveryLabel = label(changing.length > 1 ? changing.length - 1 : undefined);
  const inst = measureChanges({ ...r, samples: direct });
  const all = measureChanges(r);
  const behind = measureChanges({ ...r, samples: r.samples.filter((x) => x.vantage === RESOLVER_VANTAGE) });
  const fault = inst.find((c) => c.label === faultLabel);
  const recovery = inst.find((c) => c.label === recoveryLabel);
  const recoveredMs = recovery?.allChangedMs ?? recovery?.firstChangeMs ?? null;
  const recoveryAt = changing.length > 1 ? changing[changing.length - 1]!.startedAt : null;
  const riseMetAt = ctx.riseMetAt ?? null;
  const rollbackAt = r.rollback[0]?.startedAt ?? r.endedAt;
  const disagreements = findDisagreements(direct.filter(answered), r.endedAt);
  const changes = answerChangeTimes(direct, r.steps[0]?.startedAt ?? r.startedAt, rollbackAt);
  return {
    outcome: r.outcome,
    reason: r.reason,
    firstInstanceMs: fault?.firstChangeMs ?? null,
    allInstancesMs: fault?.allChangedMs ?? null,
    clientsRecoveredMs: all.find((c) => c.label === faultLabel)?.clientsRecoveredMs ?? null,
    resolverClientsMs: behind.find((c) => c.label === faultLabel)?.clientsRecoveredMs ?? null,
    recoveredMs,
    recoveredAfterRiseMs: recoveredMs === null || recoveryAt === null || riseMetAt === null ? null : Math.max(0, Math.round(recoveryAt + recoveredMs - riseMetAt)),
    failedRequests: r.samples.filter((x) => x.http?.ok === false).length,
    healthyExcluded: healthyExcluded(r.samples, allName, sites, s.faulted),
    maxDisagreementMs: Math.max(0, ...disagreements.map((d) => d.ms)),
    answerChanges: [...changes.values()].reduce((n, ts) => n + ts.length, 0),
    maxChangesPerWindow: maxPerWindow(changes, ctx.windowMs),
  };
}

/** The median of the runs that measured something; null when none did. */
export function median(values: readonly (number | null)[]): number | null {
  const v = values.filter((x): x is number => x !== null).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  return Math.round(v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2);
}

/** One entry of `--json`'s `scenarios` (the contract's keys, then extensions). */
export interface ScenarioSummary {
  readonly name: string;
  /** which server answered: ours, or a peer run in the same lab (drill/lab/peers.ts) */
  readonly server: 'gslb-dns' | 'pdns' | 'gdnsd';
  readonly runs: number;
  readonly medianMs: {
    readonly firstInstance: number | null; readonly allInstances: number | null; readonly clientsRecovered: number | null; readonly recovered: number | null;
    /** extensions: clients behind the resolver only; recovery counted from the agent's rise */
    readonly resolverClients: number | null; readonly recoveredAfterRise: number | null;
  };
  /** over all runs */
  readonly failedRequests: number;
  /** in any run */
  readonly healthyExcluded: boolean;
  /** over all runs */
  readonly maxDisagreementMs: number;
  readonly outcomes: readonly DrillOutcome[];
  readonly maxAnswerChanges: number;
  /** the most answer changes of one lane within one rise/fall window, in any run (target: at most 1) */
  readonly maxChangesPerWindow: number;
}

export function summarize(name: string, runs: readonly RunStats[], server: ScenarioSummary['server'] = 'gslb-dns'): ScenarioSummary {
  return {
    name,
    server,
    runs: runs.length,
    medianMs: {
      firstInstance: median(runs.map((r) => r.firstInstanceMs)),
      allInstances: median(runs.map((r) => r.allInstancesMs)),
      clientsRecovered: median(runs.map((r) => r.clientsRecoveredMs)),
      recovered: median(runs.map((r) => r.recoveredMs)),
      resolverClients: median(runs.map((r) => r.resolverClientsMs)),
      recoveredAfterRise: median(runs.map((r) => r.recoveredAfterRiseMs)),
    },
    failedRequests: runs.reduce((n, r) => n + r.failedRequests, 0),
    healthyExcluded: runs.some((r) => r.healthyExcluded),
    maxDisagreementMs: Math.round(Math.max(0, ...runs.map((r) => r.maxDisagreementMs))),
    outcomes: runs.map((r) => r.outcome),
    maxAnswerChanges: Math.max(0, ...runs.map((r) => r.answerChanges)),
    maxChangesPerWindow: Math.max(0, ...runs.map((r) => r.maxChangesPerWindow)),
  };
}

/**
 * Runs a drill plan: probes every instance (or a vantage's own server) for every vantage and name
 * on an interval, checks the guards on every answer, runs the steps in order, then the rollback.
 * Time comes from the injected clock; the world from the injected transport.
 *
 *   step result           -> what happens next                         outcome
 *   expect missed          -> remaining steps skipped, rollback         FAILED
 *   action/run failed      -> remaining steps skipped, rollback         ERROR
 *   guard tripped          -> running step cut short, rest skipped, rb  INTERRUPTED
 *   interrupt (Ctrl-C)     -> same; a second one stops the rollback     INTERRUPTED
 *   state API unreachable  -> nothing is done, no rollback              ERROR
 *   every step ok          -> rollback                                  SUCCEEDED
 */
import { sleep } from '../shared/clock.js';
import type { Clock } from '../shared/clock.js';
import { answered, watchGuards } from './guards.js';
import type { DrillObserver } from './observer.js';
import type { Plan, Step } from './plan.js';
import type { DrillOutcome, DrillResult, GuardRecord, Mark, Sample, StepRecord } from './result.js';
import type { DrillTransport } from './transport.js';

export interface RunnerDeps {
  readonly clock: Clock;
  readonly transport: DrillTransport;
  readonly observer: DrillObserver;
  /** aborted on the first Ctrl-C: the drill stops and rolls back */
  readonly interrupt?: AbortSignal;
  /** aborted on the second Ctrl-C: the rollback stops too */
  readonly abortRollback?: AbortSignal;
  /** DNS questions (and their HTTP fetches) in flight at once; default 16 */
  readonly concurrency?: number;
}

/** The words a step is shown with (progress lines, --dry-run, marks). */
export function describeStep(s: Step): string {
  switch (s.kind) {
    case 'action':
      return `${s.action} ${s.address === undefined ? `site ${s.site}` : `member ${s.site} ${s.address}`}${s.force ? ' (force)' : ''}${s.reason !== undefined ? ` reason "${s.reason}"` : ''}`;
    case 'expect': {
      const w = 'sites' in s.want ? `sites ${s.want.sites.join(', ')}` : 'addresses' in s.want ? `addresses ${s.want.addresses.join(', ')}` : 'no address';
      return `expect ${s.name} from ${s.from}${s.on !== undefined ? ` on ${s.on}` : ''}: ${w} within ${s.withinMs} ms`;
    }
    case 'wait':
      return `wait ${s.ms} ms`;
    case 'run':
      return `run "${s.command}" (timeout ${s.timeoutMs} ms)`;
  }
}

/** A DNS rcode, as opposed to TIMEOUT or ERROR (no reply). */

function holds(s: Sample, want: Extract<Step, { kind: 'expect' }>['want']): boolean {
  if (!answered(s)) return false;
  if ('none' in want) return s.addresses.length === 0;
  if (s.rcode !== 'NOERROR' || s.addresses.length === 0) return false;
  if ('sites' in want) return s.sites.every((x) => want.sites.includes(x));
  return s.addresses.every((a) => want.addresses.includes(a));
}

function answerText(s: Sample | undefined): string {
  if (s === undefined) return 'no answer yet';
  if (!answered(s)) return s.rcode;
  if (s.addresses.length === 0) return `${s.rcode}, no address`;
  return s.addresses.map((a, i) => `${a} (${s.sites[i] ?? '?'})`).join(', ');
}

/** Runs `jobs` with at most `n` at once. */
async function bounded(jobs: readonly (() => Promise<void>)[], n: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) await jobs[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, worker));
}

interface Latest { readonly sample: Sample; /** monotonic ms the question was sent */ readonly sentAt: number }

type Stop = { readonly outcome: Exclude<DrillOutcome, 'SUCCEEDED'>; readonly reason: string };

/** Runs `plan` to its end (rollback included) and returns what happened; never throws for the drill's own failures. */
export async function runDrill(plan: Plan, deps: RunnerDeps): Promise<DrillResult> {
  const { clock, transport, observer } = deps;
  const startedAt = clock.wallNow();
  const marks: Mark[] = [];
  const samples: Sample[] = [];
  const mark = (kind: Mark['kind'], label: string): void => {
    const m = { t: clock.wallNow(), kind, label };
    marks.push(m);
    observer.mark(m);
  };
  const finish = (outcome: DrillOutcome, reason: string, steps: StepRecord[], rollback: StepRecord[], guards: GuardRecord[], rollbackOk?: boolean): DrillResult => {
    mark('end', `${outcome}: ${reason}`);
    const order = { instances: plan.instances.map((i) => i.name), vantages: plan.vantages.map((v) => v.name) };
    const r: DrillResult = { outcome, name: plan.name, startedAt, endedAt: clock.wallNow(), steps, rollback, guards, samples, marks, reason, plan: order, ...(rollbackOk !== undefined ? { rollbackOk } : {}) };
    observer.done(r);
    return r;
  };

  // site membership first: without it no expectation can be judged, so nothing is changed
  const sites = new Map<string, string>();
  try {
    // an instance without the state API (a peer server) adds no sites: its answers show addresses
    const maps = await Promise.all(plan.instances.filter((i) => i.api !== undefined).map((i) => transport.siteMap(i, Math.max(plan.probeTimeoutMs, 5000))));
    for (const m of maps) for (const [a, s] of m) sites.set(a, s);
  } catch (err) {
    return finish('ERROR', `cannot read the instances' state: ${(err as Error).message}`, [], [], plan.guards.map((g) => ({ name: g.name, tripped: false, at: null, detail: 'not checked: the drill did not start' })));
  }

  let stop: Stop | undefined;
  const stepAbort = new AbortController();
  const halt = (s: Stop): void => {
    stop ??= s;
    stepAbort.abort();
  };
  const onInterrupt = (): void => {
    mark('interrupt', 'interrupted (Ctrl-C)');
    halt({ outcome: 'INTERRUPTED', reason: 'interrupted (Ctrl-C)' });
  };
  if (deps.interrupt?.aborted) onInterrupt();
  else deps.interrupt?.addEventListener('abort', onInterrupt, { once: true });

  const guards = watchGuards(plan.guards, (s, atLeast) => servedElsewhere(s, atLeast), (name, detail) => {
    mark('guard', `guard ${name} tripped: ${detail}`);
    halt({ outcome: 'INTERRUPTED', reason: `guard ${name} tripped: ${detail}` });
  });

  // the prober
  const latest = new Map<string, Latest>();
  const listeners = new Set<() => void>();
  const key = (target: string, vantage: string, name: string): string => `${target}\0${vantage}\0${name}`;
  const targetsOf = (v: Plan['vantages'][number]): { name: string; dns: { host: string; port: number } }[] =>
    v.server !== undefined ? [{ name: v.server.text, dns: v.server }] : plan.instances.map((i) => ({ name: i.name, dns: i.dns }));
  const servedElsewhere = (s: Sample, atLeast: number): boolean => {
    const v = plan.vantages.find((x) => x.name === s.vantage);
    return v !== undefined && targetsOf(v).some((t) => {
      const other = t.name !== s.instance ? latest.get(key(t.name, s.vantage, s.name))?.sample : undefined;
      return other !== undefined && other.rcode === 'NOERROR' && other.addresses.length >= atLeast;
    });
  };
  const probeOnce = async (target: { name: string; dns: { host: string; port: number } }, v: Plan['vantages'][number], name: string): Promise<void> => {
    const sentAt = clock.now();
    const a = await transport.query(target.dns, name, v.type, v.subnet, plan.probeTimeoutMs, v.server !== undefined)
      .catch((err: Error) => ({ rcode: 'ERROR', addresses: [] as string[], ttl: null, error: err.message }));
    const first = a.addresses[0];
    const http = v.http !== undefined && first !== undefined
      ? await transport.fetchThrough(v.http.replaceAll('{address}', first.includes(':') ? `[${first}]` : first), plan.probeTimeoutMs)
      : undefined;
    const s: Sample = {
      t: clock.wallNow(), instance: target.name, vantage: v.name, name, type: v.type, rcode: a.rcode,
      addresses: a.addresses, sites: a.addresses.map((x) => sites.get(x) ?? '?'), ttl: a.ttl, ...(http !== undefined ? { http } : {}),
    };
    samples.push(s);
    latest.set(key(target.name, v.name, name), { sample: s, sentAt });
    observer.sample(s);
    guards.check(s);
    for (const l of [...listeners]) l();
  };
  const jobs = plan.vantages.flatMap((v) => targetsOf(v).flatMap((t) => v.names.map((n) => () => probeOnce(t, v, n))));
  const probeStop = new AbortController();
  const round = (): Promise<void> => bounded(jobs, deps.concurrency ?? 16);
  // the first round is the baseline (and the guards' first look) before anything changes
  await round();
  const prober = (async () => {
    while (!probeStop.signal.aborted) {
      await sleep(clock, plan.probeEveryMs, probeStop.signal);
      if (!probeStop.signal.aborted) await round();
    }
  })();

  const expectStep = (s: Extract<Step, { kind: 'expect' }>, signal: AbortSignal): Promise<{ ok: boolean; elapsedMs: number; detail: string }> => {
    const t0 = clock.now();
    const v = plan.vantages.find((x) => x.name === s.from)!;
    const targets = v.server !== undefined ? [v.server.text] : s.on !== undefined ? [s.on] : plan.instances.map((i) => i.name);
    return new Promise((resolve) => {
      const seen = (): (Latest | undefined)[] => targets.map((t) => {
        const l = latest.get(key(t, v.name, s.name));
        // only answers to questions asked after the step began count
        return l !== undefined && l.sentAt >= t0 ? l : undefined;
      });
      const end = (ok: boolean, detail: string): void => {
        listeners.delete(check);
        clock.clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve({ ok, elapsedMs: ok ? clock.now() - t0 : Math.min(clock.now() - t0, s.withinMs), detail });
      };
      const check = (): void => {
        if (seen().every((l) => l !== undefined && holds(l.sample, s.want))) end(true, `held after ${Math.round(clock.now() - t0)} ms on ${targets.join(', ')}`);
      };
      const last = (): string => targets.map((t) => `${t}: ${answerText(latest.get(key(t, v.name, s.name))?.sample)}`).join('; ');
      const timer = clock.setTimeout(() => end(false, `missed its ${s.withinMs} ms deadline; last answers: ${last()}`), s.withinMs);
      const onAbort = (): void => end(false, `cut short after ${Math.round(clock.now() - t0)} ms (${stop?.reason ?? 'stopped'}); last answers: ${last()}`);
      signal.addEventListener('abort', onAbort, { once: true });
      listeners.add(check);
      if (signal.aborted) onAbort();
    });
  };

  const runStep = async (s: Step, signal: AbortSignal): Promise<{ ok: boolean; elapsedMs?: number; detail: string }> => {
    switch (s.kind) {
      case 'action': {
        const body = { site: s.site, ...(s.address !== undefined ? { address: s.address } : {}), ...(s.reason !== undefined ? { reason: s.reason } : {}), ...(s.force ? { force: true } : {}) };
        const done = await Promise.all(plan.instances.map((i) => transport.act(i, s.action, body, s.timeoutMs)));
        const ok = done.every((d) => d.ok);
        return { ok, detail: `${describeStep(s)} on ${plan.instances.map((i, k) => `${i.name} (${done[k]!.detail})`).join(', ')}` };
      }
      case 'expect':
        return expectStep(s, signal);
      case 'wait': {
        await sleep(clock, s.ms, signal);
        return signal.aborted ? { ok: false, detail: `cut short (${stop?.reason ?? 'stopped'})` } : { ok: true, detail: `waited ${s.ms} ms` };
      }
      case 'run': {
        const r = await transport.run(s.command, plan.dir, s.timeoutMs, signal);
        return { ok: r.ok, detail: `${s.command}: ${r.detail}` };
      }
    }
  };

  const runList = async (list: readonly Step[], signal: AbortSignal, where: 'step' | 'rollback', shouldSkip: () => string | undefined): Promise<StepRecord[]> => {
    const out: StepRecord[] = [];
    for (const [index, s] of list.entries()) {
      const skip = shouldSkip();
      if (skip !== undefined) {
        out.push({ index, kind: s.kind, ok: false, startedAt: clock.wallNow(), elapsedMs: 0, detail: `skipped: ${skip}`, skipped: true });
        continue;
      }
      const label = `${where === 'rollback' ? 'rollback ' : ''}${index}: ${describeStep(s)}`;
      observer.step(label);
      mark('step', label);
      const startedAt = clock.wallNow();
      const t0 = clock.now();
      let r: { ok: boolean; elapsedMs?: number; detail: string };
      try {
        r = await runStep(s, signal);
      } catch (err) {
        r = { ok: false, detail: `failed: ${(err as Error).message}` };
      }
      out.push({ index, kind: s.kind, ok: r.ok, startedAt, elapsedMs: Math.round(r.elapsedMs ?? clock.now() - t0), detail: r.detail });
      if (where === 'step' && !r.ok && stop === undefined) {
        halt(s.kind === 'expect'
          ? { outcome: 'FAILED', reason: `step ${index} (${describeStep(s)}) ${r.detail}` }
          : { outcome: 'ERROR', reason: `step ${index} (${describeStep(s)}) failed: ${r.detail}` });
      }
    }
    return out;
  };

  const steps = await runList(plan.steps, stepAbort.signal, 'step', () => stop?.reason);
  guards.stop();
  deps.interrupt?.removeEventListener('abort', onInterrupt);

  const rbAbort = deps.abortRollback ?? new AbortController().signal;
  if (plan.rollback.length > 0) mark('rollback', 'rollback begins');
  const rollback = await runList(plan.rollback, rbAbort, 'rollback', () => (rbAbort.aborted ? 'rollback stopped (second Ctrl-C)' : undefined));
  probeStop.abort();
  await prober;

  const rollbackOk = rollback.every((r) => r.ok);
  const final: Stop | undefined = stop;
  const rbNote = rollbackOk ? '' : '; ROLLBACK INCOMPLETE';
  return final === undefined
    ? finish('SUCCEEDED', `all ${plan.steps.length} steps held${rbNote}`, steps, rollback, guards.records(), rollbackOk)
    : finish(final.outcome, `${final.reason}${rbNote}`, steps, rollback, guards.records(), rollbackOk);
}

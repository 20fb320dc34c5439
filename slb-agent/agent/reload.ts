/**
 * The SIGHUP reload diff: which VIPs and real servers a new config adds, removes, changes or keeps,
 * applied to the agent's runtimes. Kept real servers keep their health, drain and counters; a new
 * check starts from the current state. Another site, agent or API address is refused (a restart).
 */
import type { AgentConfig, VipConfig } from '../config.js';
import type { CheckScheduler } from '../health/scheduler.js';
import type { RsRuntime, VipRuntime } from './runtime.js';
import { realServerKey } from './runtime.js';
import type { ReloadSummary } from './types.js';
import type { VipTable } from './vip-table.js';

/** The runtimes a reload edits in place, and which timers already run. */
export interface ReloadTarget extends Pick<VipTable, 'vips' | 'byKey' | 'removedAddresses' | 'build'> {
  /** real-server checks run: new ones start at once */
  readonly started: boolean;
  /** reports (and with them VIP checks) run: new VIP checks start at once */
  readonly reporting: boolean;
}

/** What the VIP diff did: the summary's lists, the schedulers to stop, the VIPs to re-derive. */
export interface VipsReloaded {
  readonly vips: ReloadSummary['vips'];
  readonly realServers: ReloadSummary['realServers'];
  readonly stopped: CheckScheduler[];
  readonly touched: VipRuntime[];
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Why `next` cannot be applied to a running agent of `config`, or undefined when it can. */
export function refuseReload(config: AgentConfig, next: AgentConfig): string | undefined {
  for (const k of ['site', 'agent'] as const) {
    if (next[k] !== config[k]) return `${k} changed (${config[k]} -> ${next[k]}): that is another agent; restart it`;
  }
  if (next.api.host !== config.api.host || next.api.port !== config.api.port) {
    return `api changed (${config.api.host}:${config.api.port} -> ${next.api.host}:${next.api.port}): restart the agent to move its API`;
  }
  return undefined;
}

/** Which of the agent's services a reload must replace. */
export function servicesChanged(config: AgentConfig, next: AgentConfig): Pick<ReloadSummary, 'reporter' | 'pinger' | 'cleanupOnExit'> {
  return {
    reporter: !(config.secret.equals(next.secret) && same(config.dns, next.dns) && same(config.report, next.report)),
    // the pinger excludes the VIPs' addresses
    pinger: !same(config.pinger, next.pinger) || !same(config.vips.map((v) => v.address), next.vips.map((v) => v.address)),
    cleanupOnExit: config.forwarder.cleanupOnExit !== next.forwarder.cleanupOnExit,
  };
}

/** Applies `next.vips` to the target's runtimes; the returned schedulers are the caller's to stop. */
export function reloadVips(t: ReloadTarget, next: AgentConfig): VipsReloaded {
  const out: VipsReloaded = {
    vips: { added: [], removed: [], changed: [] },
    realServers: { added: [], removed: [], changed: [] },
    stopped: [],
    touched: [],
  };
  const nextNames = new Set(next.vips.map((v) => v.name));
  for (const [name, v] of [...t.vips]) {
    if (nextNames.has(name)) continue;
    out.vips.removed.push(name);
    for (const rs of v.realServers) { out.stopped.push(rs.scheduler); t.byKey.delete(rs.key); out.realServers.removed.push(rs.key); }
    if (v.vipCheck) out.stopped.push(v.vipCheck.scheduler);
    t.vips.delete(name);
    t.removedAddresses.add(v.config.address);
  }
  for (const vc of next.vips) {
    t.removedAddresses.delete(vc.address);
    const v = t.vips.get(vc.name);
    out.touched.push(v === undefined ? addVip(t, vc, out) : updateVip(t, v, vc, out));
  }
  return out;
}

function addVip(t: ReloadTarget, vc: VipConfig, out: VipsReloaded): VipRuntime {
  const fresh = t.build.newVip(vc);
  for (const rs of fresh.realServers) t.byKey.set(rs.key, rs);
  t.vips.set(vc.name, fresh);
  out.vips.added.push(vc.name);
  out.realServers.added.push(...fresh.realServers.map((rs) => rs.key));
  if (t.started) for (const rs of fresh.realServers) rs.scheduler.start();
  if (t.reporting) fresh.vipCheck?.scheduler.start();
  return fresh;
}

function updateVip(t: ReloadTarget, v: VipRuntime, vc: VipConfig, out: VipsReloaded): VipRuntime {
  const { realServers: _a, ...restOld } = v.config;
  const { realServers: _b, ...restNew } = vc;
  if (v.config.address !== vc.address) t.removedAddresses.add(v.config.address);
  // the VIP check probes the VIP's address and port: a moved VIP needs a new one
  const moved = v.config.address !== vc.address || v.config.port !== vc.port;
  v.config = vc;
  if (!same(restOld, restNew)) out.vips.changed.push(vc.name);
  if (moved || !same(v.vipCheck?.config, vc.vipCheck)) {
    if (v.vipCheck) out.stopped.push(v.vipCheck.scheduler);
    delete v.vipCheck;
    if (vc.vipCheck !== undefined) {
      v.vipCheck = t.build.newVipCheck(v, vc.vipCheck);
      if (t.reporting) v.vipCheck.scheduler.start();
    }
  }
  v.realServers = reloadRealServers(t, v, vc, out);
  return v;
}

/** The VIP's real servers under `vc`: kept ones (by address and port) updated, new ones built, gone ones dropped. */
function reloadRealServers(t: ReloadTarget, v: VipRuntime, vc: VipConfig, out: VipsReloaded): RsRuntime[] {
  const old = new Map(v.realServers.map((rs) => [rs.key, rs]));
  const list: RsRuntime[] = [];
  for (const rc of vc.realServers) {
    const key = realServerKey(vc.name, rc.address, rc.port);
    const had = old.get(key);
    old.delete(key);
    if (had === undefined) {
      const rs = t.build.newRealServer(v, rc);
      t.byKey.set(key, rs);
      if (t.started) rs.scheduler.start();
      list.push(rs);
      out.realServers.added.push(key);
      continue;
    }
    if (!same(had.config.check, rc.check)) {
      out.stopped.push(had.scheduler);
      t.build.recheck(had, rc);
      if (t.started) had.scheduler.start();
      out.realServers.changed.push(key);
    } else if (!same({ ...had.config, index: 0 }, { ...rc, index: 0 })) {
      out.realServers.changed.push(key);
    }
    had.config = rc;
    list.push(had);
  }
  for (const rs of old.values()) {
    out.stopped.push(rs.scheduler);
    t.byKey.delete(rs.key);
    out.realServers.removed.push(rs.key);
  }
  return list;
}

/**
 * The kernel data plane: programs nftables (its own `netdev slb_agent` and `inet slb_agent`
 * tables, nothing else on the host) so that dsr, l3dsr-dscp, l3dsr-tunnel and nat VIPs forward
 * at kernel speed. Each apply() is one atomic nft transaction computed as a difference from what
 * is programmed; on start it reads the tables back (marks, objects) and converges from there, so
 * a restarted agent keeps live flows. close() leaves the forwarding in place unless told to clean up.
 */
import type { Logger } from 'pino';
import type { BackendStats, DataPlane, RealServerSpec, VipSpec } from '../data-plane.js';
import { createSerial } from '../serial.js';
import { DEFAULT_VNI } from '../tunnel.js';
import { createHost, ensureAddress, ensureVxlan, isOurVipAddress, lbTunnelDevice, listTunnelDevices, nftJson, removeAddress, setSysctl } from './host.js';
import type { Host } from './host.js';
import { buildRuleset, familyOf, rsToken, TABLE } from './ruleset.js';
import type { Family, TableObject } from './ruleset.js';
import { tableScript } from './transaction.js';
import type { ProgrammedTable } from './transaction.js';

export interface NftablesOptions {
  readonly logger?: Logger;
  /** run every command inside this network namespace (`ip netns exec NAME`): labs and tests */
  readonly netns?: string;
  /** on close(): remove the forwarding (true) or leave it in place for the next start (false, default); read at close */
  readonly cleanupOnClose?: boolean | (() => boolean);
}

/** The kernel plane, plus what tests and benchmarks look at. */
export interface NftablesDataPlane extends DataPlane {
  /** the nft script of the last apply (for logs and tests) */
  lastScript(): string;
  /** duration of the last apply in ms (plan + nft transaction) */
  lastApplyMs(): number;
}

const FAMILIES: readonly Family[] = ['netdev', 'inet'];
/** how often nat lc/wlc VIPs get their slots rebuilt from conntrack counts */
const LC_REFRESH_MS = 500;

function signatureOf(obj: { type?: string | string[]; timeout?: number }): string {
  const type = Array.isArray(obj.type) ? obj.type.join('.') : obj.type ?? '';
  return obj.timeout === undefined ? type : `${type}/${obj.timeout}s`;
}

export function createNftablesDataPlane(opts: NftablesOptions = {}): NftablesDataPlane {
  const host: Host = createHost(opts.netns);
  const log = opts.logger;
  /** vip -> real-server token -> mark */
  const marks = new Map<string, Map<string, number>>();
  let programmed: Map<Family, ProgrammedTable> | undefined;
  let current: readonly VipSpec[] = [];
  const addedAddresses = new Map<string, { dev: string; address: string }>();
  const changedSysctls = new Map<string, string>();
  /** host state already ensured by this process (addresses, devices, sysctls): not re-read per apply */
  const ensured = new Set<string>();
  const serial = createSerial();
  /** nat lc/wlc: open connections per `vip|rsId`, read from conntrack before each apply */
  const loads = new Map<string, number>();
  let refresher: NodeJS.Timeout | undefined;
  let script = '';
  let applyMs = 0;
  let closed = false;

  async function readProgrammed(): Promise<Map<Family, ProgrammedTable>> {
    const out = new Map<Family, ProgrammedTable>();
    for (const family of FAMILIES) {
      const items = await nftJson(host, ['-t', 'list', 'table', family, TABLE]);
      if (!items.some((i) => 'table' in i)) continue;
      const chains = new Map<string, string | undefined>();
      const counters = new Set<string>();
      const maps = new Map<string, { kind: 'map' | 'set'; signature: string }>();
      for (const item of items) {
        if ('chain' in item) chains.set((item['chain'] as { name: string }).name, undefined);
        if ('counter' in item) counters.add((item['counter'] as { name: string }).name);
        for (const kind of ['map', 'set'] as const) {
          if (kind in item) {
            const m = item[kind] as { name: string; type?: string | string[]; timeout?: number };
            maps.set(m.name, { kind, signature: signatureOf(m) });
          }
        }
      }
      // marks live on in flow entries: take them back from the verdict maps
      for (const name of maps.keys()) {
        if (!name.startsWith('r-')) continue;
        const vip = name.slice(2);
        const elems = await mapElements<[number, { goto?: { target: string } }]>(host, family, name);
        const byToken = new Map<string, number>();
        for (const [mark, verdict] of elems) {
          const target = verdict.goto?.target;
          if (target?.startsWith(`r-${vip}-`) === true) byToken.set(target.slice(`r-${vip}-`.length), mark);
        }
        marks.set(vip, byToken);
      }
      out.set(family, { family, chains, counters, maps, slots: new Map() });
    }
    return out;
  }

  function markOf(vip: string, rsId: string): number {
    let m = marks.get(vip);
    if (m === undefined) marks.set(vip, (m = new Map()));
    const tok = rsToken(rsId);
    let mark = m.get(tok);
    if (mark === undefined) {
      mark = 1 + Math.max(0, ...m.values());
      m.set(tok, mark);
    }
    return mark;
  }

  const tunnelDevice = (_vip: VipSpec, rs: RealServerSpec): string => lbTunnelDevice(rs.address);

  async function prepareHost(vips: readonly VipSpec[]): Promise<void> {
    const once = async (key: string, f: () => Promise<void>): Promise<void> => {
      if (ensured.has(key)) return;
      await f();
      ensured.add(key);
    };
    for (const vip of vips) {
      if (vip.mode === 'l3dsr-tunnel' && vip.interface !== undefined) {
        const dev = vip.interface;
        const vni = vip.vni ?? DEFAULT_VNI;
        for (const rs of vip.realServers) {
          const name = tunnelDevice(vip, rs);
          await once(`dev|${name}|${rs.address}|${dev}`, () => ensureVxlan(host, name, rs.address, dev, vni));
        }
      }
      if (vip.mode === 'nat' || vip.mode === 'l3dsr-dscp') {
        const key = familyOf(vip.address) === 4 ? 'net.ipv4.ip_forward' : 'net.ipv6.conf.all.forwarding';
        await once(`sysctl|${key}`, async () => {
          const old = await setSysctl(host, key, '1');
          if (old !== undefined && !changedSysctls.has(key)) changedSysctls.set(key, old);
        });
      }
      if (vip.interface !== undefined) {
        const dev = vip.interface;
        const k = `${dev}|${vip.address}`;
        await once(`addr|${k}`, async () => {
          if (await ensureAddress(host, dev, vip.address)) addedAddresses.set(k, { dev, address: vip.address });
        });
      }
    }
  }

  async function tidyHost(vips: readonly VipSpec[]): Promise<void> {
    const wantAddr = new Set(vips.filter((v) => v.interface !== undefined).map((v) => `${v.interface}|${v.address}`));
    for (const [k, a] of addedAddresses) {
      if (wantAddr.has(k)) continue;
      await removeAddress(host, a.dev, a.address);
      addedAddresses.delete(k);
    }
    for (const key of ensured) if (key.startsWith('addr|') && !wantAddr.has(key.slice(5))) ensured.delete(key);
    const wantDev = new Set(vips.filter((v) => v.mode === 'l3dsr-tunnel').flatMap((v) => v.realServers.map((rs) => tunnelDevice(v, rs))));
    const devKey = [...wantDev].sort().join(',');
    if (ensured.has(`devset|${devKey}`)) return;
    for (const dev of await listTunnelDevices(host)) {
      if (!wantDev.has(dev)) await host.run(['ip', 'link', 'del', 'dev', dev]).catch(() => undefined);
    }
    for (const key of ensured) if (key.startsWith('dev|') && !wantDev.has(key.split('|')[1]!)) ensured.delete(key);
    for (const key of ensured) if (key.startsWith('devset|')) ensured.delete(key);
    ensured.add(`devset|${devKey}`);
  }

  async function applyNow(vips: readonly VipSpec[]): Promise<void> {
    if (closed) throw new Error('nftables data plane is closed');
    const started = performance.now();
    programmed ??= await readProgrammed();
    for (const vip of vips) {
      if (vip.mode !== 'nat' || (vip.scheduler !== 'lc' && vip.scheduler !== 'wlc')) continue;
      const byAddr = await natConnections(host, vip);
      for (const rs of vip.realServers) loads.set(`${vip.name}|${rs.id}`, byAddr.get(`${rs.address}|${rs.port}`) ?? 0);
    }
    const tables: TableObject[] = buildRuleset(vips, { mark: markOf, tunnelDevice, load: (v, id) => loads.get(`${v}|${id}`) ?? 0 });
    await prepareHost(vips);
    const desired = new Map(tables.map((t) => [t.family, t] as const));
    const lines: string[] = [];
    for (const family of FAMILIES) lines.push(...tableScript(family, programmed.get(family), desired.get(family)));
    script = `${lines.join('\n')}\n`;
    if (lines.length > 0) {
      try {
        await host.run(['nft', '-f', '-'], script);
      } catch (err) {
        // what is programmed is unknown now (the transaction did not commit): read it back next time
        programmed = undefined;
        throw new Error(`nftables data plane: the transaction was refused, nothing changed: ${(err as Error).message}`);
      }
    }
    const next = new Map<Family, ProgrammedTable>();
    for (const t of tables) {
      const slots = new Map<string, Int32Array>();
      for (const m of t.maps.values()) if (m.slots !== undefined) slots.set(m.name, m.slots);
      next.set(t.family, {
        family: t.family,
        chains: new Map([...t.chains.values()].map((c) => [c.name, c.rules.join('\n')] as const)),
        counters: t.counters,
        maps: new Map([...t.maps.values()].map((m) => [m.name, { kind: m.kind, signature: m.signature }] as const)),
        slots,
      });
    }
    programmed = next;
    const names = new Set(vips.map((v) => v.name));
    for (const vip of marks.keys()) if (!names.has(vip)) marks.delete(vip);
    current = vips;
    await tidyHost(vips);
    scheduleRefresh();
    applyMs = performance.now() - started;
    log?.debug({ vips: vips.length, lines: lines.length, ms: Math.round(applyMs * 10) / 10 }, 'nftables data plane applied');
  }

  /**
   * nat lc/wlc: conntrack changes without any apply, so while such a VIP exists the plane
   * re-applies every LC_REFRESH_MS with fresh counts (only the counter slots change).
   */
  function scheduleRefresh(): void {
    const wanted = current.some((v) => v.mode === 'nat' && (v.scheduler === 'lc' || v.scheduler === 'wlc'));
    if (wanted && refresher === undefined && !closed) {
      refresher = setInterval(() => {
        serial.run(() => applyNow(current)).catch((err: unknown) => log?.warn({ err: (err as Error).message }, 'nftables data plane: least-connection refresh failed'));
      }, LC_REFRESH_MS);
      refresher.unref();
    } else if (!wanted && refresher !== undefined) {
      clearInterval(refresher);
      refresher = undefined;
    }
  }

  async function activeFlows(vip: VipSpec): Promise<Map<number, number>> {
    const counts = new Map<number, number>();
    if (vip.mode === 'nat') {
      const byAddr = await natConnections(host, vip);
      for (const rs of vip.realServers) counts.set(markOf(vip.name, rs.id), byAddr.get(`${rs.address}|${rs.port}`) ?? 0);
      return counts;
    }
    const family: Family = vip.mode === 'l3dsr-dscp' ? 'inet' : 'netdev';
    const elems = await mapElements<[unknown, number]>(host, family, `f-${vip.name}`);
    for (const e of elems) counts.set(e[1], (counts.get(e[1]) ?? 0) + 1);
    return counts;
  }

  return {
    apply: (vips) => serial.run(() => applyNow(vips)),
    async stats() {
      await serial.idle();
      const packets = new Map<string, number>();
      for (const family of FAMILIES) {
        for (const item of await nftJson(host, ['-t', 'list', 'table', family, TABLE])) {
          if ('counter' in item) {
            const c = item['counter'] as { name: string; packets?: number };
            packets.set(c.name, c.packets ?? 0);
          }
        }
      }
      const out: BackendStats[] = [];
      for (const vip of current) {
        const active = await activeFlows(vip);
        for (const rs of vip.realServers) {
          out.push({ vip: vip.name, backend: rs.id, active: active.get(markOf(vip.name, rs.id)) ?? 0, total: packets.get(`n-${vip.name}-${rsToken(rs.id)}`) ?? 0 });
        }
      }
      return out;
    },
    async close() {
      await serial.idle();
      if (closed) return;
      closed = true;
      if (refresher !== undefined) clearInterval(refresher);
      const cleanup = typeof opts.cleanupOnClose === 'function' ? opts.cleanupOnClose() : opts.cleanupOnClose;
      if (cleanup !== true) return;
      for (const family of FAMILIES) await host.run(['nft', 'delete', 'table', family, TABLE]).catch(() => undefined);
      // VIP addresses an earlier agent process added look like ours: host prefix, never preferred
      for (const vip of current) {
        if (vip.interface === undefined) continue;
        const k = `${vip.interface}|${vip.address}`;
        if (!addedAddresses.has(k) && await isOurVipAddress(host, vip.interface, vip.address)) addedAddresses.set(k, { dev: vip.interface, address: vip.address });
      }
      await tidyHost([]);
      for (const [key, old] of changedSysctls) await setSysctl(host, key, old).catch(() => undefined);
    },
    lastScript: () => script,
    lastApplyMs: () => applyMs,
  };
}

/** The elements of one of our maps, as nft's JSON lists them ([key, value] pairs). */
async function mapElements<E>(host: Host, family: Family, name: string): Promise<E[]> {
  const listed = await nftJson(host, ['list', 'map', family, TABLE, name]);
  return (listed.find((i) => 'map' in i)?.['map'] as { elem?: E[] } | undefined)?.elem ?? [];
}

/** Open connections per real server (`addr|port`) of a nat VIP, from conntrack. */
async function natConnections(host: Host, vip: VipSpec): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let text: string;
  try {
    text = await host.run(['conntrack', '-L', '-p', vip.protocol, '--orig-dst', vip.address, '--orig-port-dst', String(vip.port)]);
  } catch {
    return out; // conntrack tool missing or no entries: nothing known
  }
  for (const line of text.split('\n')) {
    if (/TIME_WAIT|CLOSE/.test(line)) continue;
    const srcs = [...line.matchAll(/src=(\S+)/g)].map((m) => m[1]);
    const sports = [...line.matchAll(/sport=(\d+)/g)].map((m) => m[1]);
    if (srcs[1] === undefined || sports[1] === undefined) continue;
    const k = `${srcs[1]}|${sports[1]}`;
    out.set(k, (out.get(k) ?? 0) + 1);
  }
  return out;
}

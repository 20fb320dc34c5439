/**
 * What the kernel should hold for a set of VIPs, as nft objects (tables, chains with rule text,
 * sets and maps with elements). Pure: the plane diffs this against what is programmed and sends
 * the difference as one transaction.
 *
 * Layout, all in tables this agent owns (`netdev slb_agent`, `inet slb_agent`):
 *   netdev in-<dev>   ingress base chain per interface: VIP match -> goto v-<vip>   (dsr, l3dsr-tunnel)
 *   inet raw-pre      prerouting at raw priority, before conntrack                 (l3dsr-dscp)
 *   inet nat-pre / nat-post   DNAT and masquerade                                    (nat)
 *   v-<vip>  known flow whose real server is live -> r-<vip>-<rs>; else p-<vip> (x-<vip> for TCP
 *            that is not a bare SYN: forwarded by hash, not counted, not recorded)
 *   p-<vip>  new flow: persistence entry, else slot table -> n-<vip>-<rs>
 *   n-<vip>-<rs>  counts the new flow, goto r-<vip>-<rs>;  r-<vip>-<rs>  forwards
 *   f-<vip> flow table (source address.port -> mark), q-<vip> persistence (source -> mark),
 *   s-<vip> slots, e-<vip> marks eligible for new flows, l-<vip> marks whose flows may continue,
 *   n-<vip>/r-<vip> mark -> verdict.
 * A mark is a real server's number within its VIP, stable for its lifetime (flow entries hold it).
 * The packet path repairs stale flow and persistence entries itself (delete, then schedule anew),
 * so a health change only rewrites small sets and the changed slots, never the dynamic maps.
 */
import type { RealServerSpec, VipSpec } from '../data-plane.js';
import { eligibleBackends } from '../data-plane.js';
import type { Backend } from '../model.js';
import { TUNNEL_INNER_MAC } from '../tunnel.js';
import { buildSlotTable } from './slots.js';
import type { SlotTable } from './slots.js';

export const TABLE = 'slb_agent';
export type Family = 'netdev' | 'inet';

/** Dynamic maps hold live state and are only created or deleted, never rewritten. */
export interface MapObject {
  readonly kind: 'map' | 'set';
  readonly name: string;
  /** the declaration inside the braces, without elements */
  readonly decl: string;
  readonly dynamic: boolean;
  /** what the kernel reports for the key type and timeout, to see whether a kept map still fits */
  readonly signature: string;
  /** static only: key text -> value text ('' for sets) */
  readonly elements?: ReadonlyMap<string, string>;
  /** slot maps only, instead of elements: slot -> mark (0: no element); big, so kept typed */
  readonly slots?: Int32Array;
}

export interface ChainObject {
  readonly name: string;
  /** base chains: `type ... hook ...; policy accept;` */
  readonly head?: string;
  readonly rules: readonly string[];
}

export interface TableObject {
  readonly family: Family;
  /** named counters: they outlive the chain flushes of later applies */
  readonly counters: ReadonlySet<string>;
  readonly maps: ReadonlyMap<string, MapObject>;
  readonly chains: ReadonlyMap<string, ChainObject>;
}

/** What the ruleset needs beyond the VIPs: marks and the LB-side tunnel devices. */
export interface RulesetContext {
  /** the mark of a real server of a VIP */
  mark(vip: string, rsId: string): number;
  /** LB-side tunnel device towards a real server (l3dsr-tunnel) */
  tunnelDevice(vip: VipSpec, rs: RealServerSpec): string;
  /** open connections of a real server (nat, for lc/wlc); absent: lc/wlc are refused */
  load?(vip: string, rsId: string): number;
}

export const DEFAULT_FLOW_TIMEOUT_MS = { tcp: 900_000, udp: 300_000 } as const;
const MAP_SIZE = 1_048_576;
const JHASH_SEED = '0x736c6221';
const FLOW_SEED = '0x666c6f77';
/** the largest prime below 2^32: the flow-hash range */
const FLOW_HASH_MOD = 4294967291;

/** The token naming a real server in chain names: its id without brackets, `:` as `_`. */
export function rsToken(id: string): string {
  return id.replace(/[[\]]/g, '').replace(/:/g, '_');
}

export function familyOf(address: string): 4 | 6 {
  return address.includes(':') ? 6 : 4;
}

function seconds(ms: number): string {
  return `${Math.max(1, Math.ceil(ms / 1000))}s`;
}

function tableOf(mode: VipSpec['mode']): Family {
  return mode === 'dsr' || mode === 'l3dsr-tunnel' ? 'netdev' : 'inet';
}

class TableBuilder {
  readonly maps = new Map<string, MapObject>();
  readonly chains = new Map<string, ChainObject>();
  readonly counters = new Set<string>();
  constructor(readonly family: Family) {}
  map(m: MapObject): void {
    this.maps.set(m.name, m);
  }
  chain(c: ChainObject): void {
    this.chains.set(c.name, c);
  }
  rule(chain: string, head: string, rule: string): void {
    const c = this.chains.get(chain);
    this.chains.set(chain, { name: chain, head, rules: [...(c?.rules ?? []), rule] });
  }
  build(): TableObject {
    return { family: this.family, counters: this.counters, maps: this.maps, chains: this.chains };
  }
}

/** Fails on what the kernel plane cannot serve, naming the VIP. */
function check(vip: VipSpec): void {
  const where = `VIP ${vip.name}`;
  if (vip.mode === 'proxy') throw new Error(`${where}: mode proxy is served by the userspace proxy, not the kernel plane`);
  if (vip.mode !== 'nat' && vip.interface === undefined) throw new Error(`${where}: mode ${vip.mode} needs an interface`);
  if (vip.mode === 'l3dsr-dscp' && (vip.dscp === undefined || vip.dscp < 1 || vip.dscp > 63)) throw new Error(`${where}: l3dsr-dscp needs a dscp of 1-63`);
  if (vip.mode === 'l3dsr-tunnel' && (vip.tunnel ?? 'vxlan') !== 'vxlan') {
    throw new Error(`${where}: tunnel ${vip.tunnel} is not supported by the nftables plane (this build forwards L2 frames into the tunnel, which needs vxlan); use tunnel: vxlan`);
  }
  if (vip.mode !== 'nat') {
    for (const rs of vip.realServers) {
      if (rs.port !== vip.port) throw new Error(`${where}: real server ${rs.id} has port ${rs.port}, but ${vip.mode} cannot rewrite ports (the real server answers the client directly); use port ${vip.port}`);
    }
  }
  for (const rs of vip.realServers) {
    if (familyOf(rs.address) !== familyOf(vip.address)) throw new Error(`${where}: real server ${rs.id} is not in the VIP's address family`);
  }
}

/** The desired tables for `vips` (only the families in use). */
export function buildRuleset(vips: readonly VipSpec[], ctx: RulesetContext): TableObject[] {
  const tables = new Map<Family, TableBuilder>();
  const table = (f: Family): TableBuilder => {
    let t = tables.get(f);
    if (t === undefined) tables.set(f, (t = new TableBuilder(f)));
    return t;
  };
  const names = new Set<string>();
  const dscpByInterface = new Map<string, string>();
  for (const vip of vips) {
    if (names.has(vip.name)) throw new Error(`duplicate VIP name ${vip.name}`);
    names.add(vip.name);
    check(vip);
    if (vip.mode === 'l3dsr-dscp') {
      const k = `${vip.interface}/${vip.dscp}/${familyOf(vip.address)}`;
      const other = dscpByInterface.get(k);
      if (other !== undefined) throw new Error(`VIP ${vip.name}: dscp ${vip.dscp} on ${vip.interface} is already VIP ${other}'s; real servers could not tell them apart`);
      dscpByInterface.set(k, vip.name);
    }
    addVip(table(tableOf(vip.mode)), vip, ctx);
  }
  return [...tables.values()].map((t) => t.build());
}

function addVip(t: TableBuilder, vip: VipSpec, ctx: RulesetContext): void {
  const n = vip.name;
  const fam = familyOf(vip.address);
  const ip = fam === 4 ? 'ip' : 'ip6';
  const addrType = fam === 4 ? 'ipv4_addr' : 'ipv6_addr';
  const proto = vip.protocol;
  const src = `${ip} saddr`;
  const flowKey = `${src} . ${proto} sport`;
  // The flow table's key. nft 1.0.6 (Debian 12) aborts on a map update or delete whose key is a
  // concatenation over 16 bytes, which IPv6 address . port is; IPv6 flows are keyed by a 32-bit
  // hash of it instead. Two flows whose hashes collide share an entry: the later one follows the
  // earlier one's real server, a placement choice, never a broken flow.
  const tableKey = fam === 4 ? flowKey : `jhash ${flowKey} mod ${FLOW_HASH_MOD} seed ${FLOW_SEED}`;
  const kernelFlows = vip.mode !== 'nat'; // nat has conntrack; the DSR modes see one direction only
  const persist = vip.persistenceMs > 0;

  // Marks: every configured real server has a chain; only eligible ones get slots.
  const eligibleList = eligibleBackends(vip);
  const eligible = new Set(eligibleList.map((b) => b.id));
  const live = vip.realServers.filter((rs) => rs.healthy);
  const markOf = (rs: { id: string }): number => ctx.mark(n, rs.id);
  const load = ctx.load;
  const loadOf = vip.mode === 'nat' && load !== undefined ? (b: Backend): number => load(n, b.id) : undefined;
  const slotTable: SlotTable = buildSlotTable(vip.scheduler, eligibleList, (b: Backend) => markOf(b), vip.realServers.length, loadOf);

  const elems = (xs: Iterable<readonly [string, string]>): ReadonlyMap<string, string> => new Map(xs);
  t.map({ kind: 'set', name: `e-${n}`, decl: 'type mark;', dynamic: false, signature: 'mark', elements: elems(vip.realServers.filter((rs) => eligible.has(rs.id)).map((rs) => [String(markOf(rs)), ''] as const)) });
  t.map({ kind: 'set', name: `l-${n}`, decl: 'type mark;', dynamic: false, signature: 'mark', elements: elems(live.map((rs) => [String(markOf(rs)), ''] as const)) });
  t.map({ kind: 'map', name: `n-${n}`, decl: 'type mark : verdict;', dynamic: false, signature: 'mark', elements: elems(vip.realServers.map((rs) => [String(markOf(rs)), `goto n-${n}-${rsToken(rs.id)}`] as const)) });
  t.map({ kind: 'map', name: `r-${n}`, decl: 'type mark : verdict;', dynamic: false, signature: 'mark', elements: elems(vip.realServers.map((rs) => [String(markOf(rs)), `goto r-${n}-${rsToken(rs.id)}`] as const)) });
  t.map({ kind: 'map', name: `s-${n}`, decl: 'typeof numgen inc mod 2 : meta mark;', dynamic: false, signature: 'slots', slots: slotTable.slots });
  if (kernelFlows) {
    const timeout = seconds(vip.flowTimeoutMs ?? DEFAULT_FLOW_TIMEOUT_MS[proto]);
    const keyType = fam === 4 ? { decl: flowKey, signature: `${addrType}.inet_service` } : { decl: 'numgen inc mod 2', signature: 'integer' };
    t.map({ kind: 'map', name: `f-${n}`, decl: `typeof ${keyType.decl} : meta mark; flags dynamic,timeout; timeout ${timeout}; size ${MAP_SIZE};`, dynamic: true, signature: `${keyType.signature}/${timeout}` });
  }
  if (persist) {
    const timeout = seconds(vip.persistenceMs);
    t.map({ kind: 'map', name: `q-${n}`, decl: `typeof ${src} : meta mark; flags dynamic,timeout; timeout ${timeout}; size ${MAP_SIZE};`, dynamic: true, signature: `${addrType}/${timeout}` });
  }

  // Per real server: n- counts the new flow, r- forwards.
  for (const rs of vip.realServers) {
    const tok = rsToken(rs.id);
    t.counters.add(`n-${n}-${tok}`);
    t.counters.add(`r-${n}-${tok}`);
    t.chain({ name: `n-${n}-${tok}`, rules: [`counter name ${JSON.stringify(`n-${n}-${tok}`)} goto r-${n}-${tok}`] });
    t.chain({ name: `r-${n}-${tok}`, rules: [forwardRule(vip, rs, ctx, `counter name ${JSON.stringify(`r-${n}-${tok}`)}`)] });
  }

  const slotExpr = slotTable.key === 'counter'
    ? `numgen inc mod ${slotTable.size}`
    : slotTable.key === 'source-hash'
      ? `jhash ${vip.shPorts === true ? flowKey : src} mod ${slotTable.size} seed ${JHASH_SEED}`
      : `jhash ${flowKey} mod ${slotTable.size} seed ${JHASH_SEED}`;
  const vipChain: string[] = [];
  const pick: string[] = [];
  const stray: string[] = [];
  if (vip.mode === 'l3dsr-dscp') vipChain.push('notrack');
  // a flow entry naming a real server that is gone: forget it, then place the packet anew
  const forgetStale = `meta mark set ${tableKey} map @f-${n} delete @f-${n} { ${tableKey} : meta mark }`;
  if (kernelFlows) {
    vipChain.push(`meta mark set ${tableKey} map @f-${n} meta mark @l-${n} update @f-${n} { ${tableKey} : meta mark } meta mark vmap @r-${n}`);
    // TCP without a flow entry and without a bare SYN is not a new flow (a flow from before an
    // LB failover, or a late FIN or RST): it is forwarded by hash, neither counted nor recorded,
    // and it never advances the rr/wrr counter
    if (proto === 'tcp') vipChain.push(`tcp flags & (syn | ack) != syn goto x-${n}`);
    vipChain.push(`goto p-${n}`);
    pick.push(forgetStale);
    stray.push(forgetStale);
  }
  const recordFlow = kernelFlows ? ` update @f-${n} { ${tableKey} : meta mark }` : '';
  if (persist) {
    pick.push(`meta mark set ${src} map @q-${n} meta mark @e-${n}${recordFlow} update @q-${n} { ${src} : meta mark } meta mark vmap @n-${n}`);
    pick.push(`meta mark set ${src} map @q-${n} delete @q-${n} { ${src} : meta mark }`);
    stray.push(`meta mark set ${src} map @q-${n} meta mark @e-${n} meta mark vmap @r-${n}`);
  }
  pick.push('meta mark set 0');
  pick.push(`meta mark set ${slotExpr} map @s-${n}`);
  // separate rules: a full flow table must not stop the packet from being forwarded
  if (kernelFlows) pick.push(`meta mark != 0 update @f-${n} { ${tableKey} : meta mark }`);
  if (persist) pick.push(`meta mark != 0 update @q-${n} { ${src} : meta mark }`);
  pick.push(`meta mark != 0 meta mark vmap @n-${n}`);
  // no real server: leave the packet to the LB's own stack, which holds the VIP and refuses it
  pick.push('meta mark set 0');
  const strayExpr = slotTable.key === 'counter' ? `jhash ${flowKey} mod ${slotTable.size} seed ${JHASH_SEED}` : slotExpr;
  stray.push('meta mark set 0', `meta mark set ${strayExpr} map @s-${n}`, `meta mark != 0 meta mark vmap @r-${n}`, 'meta mark set 0');
  if (kernelFlows) {
    t.chain({ name: `v-${n}`, rules: vipChain });
    t.chain({ name: `p-${n}`, rules: pick });
    if (proto === 'tcp') t.chain({ name: `x-${n}`, rules: stray });
  } else {
    t.chain({ name: `v-${n}`, rules: pick });
  }

  const match = `${ip} daddr ${vip.address} ${proto} dport ${vip.port}`;
  switch (vip.mode) {
    case 'dsr':
    case 'l3dsr-tunnel': {
      const dev = vip.interface!;
      t.rule(`in-${dev}`, `type filter hook ingress device ${JSON.stringify(dev)} priority -300; policy accept;`, `${match} goto v-${n}`);
      break;
    }
    case 'l3dsr-dscp':
      t.rule('raw-pre', 'type filter hook prerouting priority raw; policy accept;', `${vip.interface !== undefined ? `iifname ${JSON.stringify(vip.interface)} ` : ''}${match} goto v-${n}`);
      break;
    case 'nat':
      t.rule('nat-pre', 'type nat hook prerouting priority dstnat; policy accept;', `${match} goto v-${n}`);
      if (vip.snat !== false) {
        t.rule('nat-post', 'type nat hook postrouting priority srcnat; policy accept;', `meta l4proto ${proto} ct status dnat ct original ${ip} daddr ${vip.address} ct original proto-dst ${vip.port} masquerade`);
      }
      break;
    default:
      break;
  }
}

/** The rule that sends one packet to `rs`; `counter` counts it (a named counter statement). */
function forwardRule(vip: VipSpec, rs: RealServerSpec, ctx: RulesetContext, counter: string): string {
  const fam = familyOf(vip.address);
  const ip = fam === 4 ? 'ip' : 'ip6';
  switch (vip.mode) {
    case 'dsr':
      // the kernel's neighbour code resolves (and re-probes) the real server's MAC; the frame
      // leaves with the LB's own MAC as source, so switches never learn the client behind the LB
      return `${counter} fwd ${ip} to ${rs.address} device ${JSON.stringify(vip.interface!)}`;
    case 'l3dsr-tunnel':
      return `${counter} ether daddr set ${TUNNEL_INNER_MAC} fwd to ${JSON.stringify(ctx.tunnelDevice(vip, rs))}`;
    case 'l3dsr-dscp':
      return `meta mark set 0 ${ip} dscp set ${vip.dscp} ${ip} daddr set ${rs.address} ${counter}`;
    case 'nat': {
      const to = fam === 4 ? `${rs.address}:${rs.port}` : `[${rs.address}]:${rs.port}`;
      return `meta mark set 0 meta l4proto ${vip.protocol} ${counter} dnat ${ip} to ${to}`;
    }
    default:
      throw new Error(`VIP ${vip.name}: mode ${vip.mode} has no kernel forwarding`);
  }
}

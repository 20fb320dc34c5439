/**
 * The pure half of the nftables plane: slot tables, the ruleset for a set of VIPs, and the
 * transaction that takes the kernel from one ruleset to the next (what it rewrites and what it
 * must leave alone). The lab tests prove the same scripts in a kernel.
 */
import { describe, expect, it } from 'vitest';
import type { RealServerSpec, VipSpec } from '../../../slb-agent/forwarder/data-plane.js';
import { buildRuleset } from '../../../slb-agent/forwarder/nftables/ruleset.js';
import type { TableObject } from '../../../slb-agent/forwarder/nftables/ruleset.js';
import { buildSlotTable, kernelMaglevSize, leastConnectionShares } from '../../../slb-agent/forwarder/nftables/slots.js';
import { tableScript } from '../../../slb-agent/forwarder/nftables/transaction.js';
import type { ProgrammedTable } from '../../../slb-agent/forwarder/nftables/transaction.js';
import { isPrime } from '../../../slb-agent/forwarder/schedulers/index.js';

const b = (id: string, weight = 1) => ({ id, address: id, port: 80, weight });
const rs = (n: number, o: Partial<RealServerSpec> = {}): RealServerSpec => ({ id: `10.0.0.${n}:80`, address: `10.0.0.${n}`, port: 80, weight: 1, backup: false, healthy: true, drained: false, ...o });
const vip = (o: Partial<VipSpec> = {}): VipSpec => ({
  name: 'web', address: '10.0.0.100', port: 80, protocol: 'tcp', scheduler: 'maglev', persistenceMs: 0, mode: 'dsr', interface: 'eth0',
  realServers: [rs(1), rs(2), rs(3)], ...o,
});
const ctx = { mark: (_v: string, id: string) => Number(/\.(\d+):/.exec(id)![1]), tunnelDevice: () => 'slbv00000000' };

/** What the plane records as programmed after applying `t`. */
function programmed(t: TableObject): ProgrammedTable {
  return {
    family: t.family,
    chains: new Map([...t.chains.values()].map((c) => [c.name, c.rules.join('\n')] as const)),
    counters: t.counters,
    maps: new Map([...t.maps.values()].map((m) => [m.name, { kind: m.kind, signature: m.signature }] as const)),
    slots: new Map([...t.maps.values()].filter((m) => m.slots !== undefined).map((m) => [m.name, m.slots!] as const)),
  };
}

describe('slot tables', () => {
  it('maglev: a prime of at least 1000 x configured servers (>= 1009), the proxy size beyond 65', () => {
    for (const n of [0, 1, 3, 10, 65, 66, 200]) {
      const m = kernelMaglevSize(n);
      expect(isPrime(m)).toBe(true);
      expect(m).toBeGreaterThanOrEqual(Math.max(1009, 100 * n));
    }
    expect(kernelMaglevSize(3)).toBe(3001);
    expect(kernelMaglevSize(66)).toBe(65537);
  });

  it('maglev keeps its size when a server goes down (sized by the configured count)', () => {
    const all = buildSlotTable('maglev', [b('a'), b('b'), b('c')], (x) => x.id.charCodeAt(0), 3);
    const two = buildSlotTable('maglev', [b('a'), b('c')], (x) => x.id.charCodeAt(0), 3);
    expect(two.size).toBe(all.size);
    let moved = 0;
    all.slots.forEach((m, s) => { if (two.slots[s] !== m) moved++; });
    // only b's slots move (plus Maglev's small extra churn)
    expect(moved / all.size).toBeLessThan(0.4);
  });

  it('wrr: one counter slot per weight unit, interleaved; rr ignores weights', () => {
    const t = buildSlotTable('wrr', [b('a', 3), b('b', 1)], (x) => (x.id === 'a' ? 1 : 2), 2);
    expect(t.key).toBe('counter');
    expect([...t.slots]).toEqual([1, 1, 2, 1]);
    expect([...buildSlotTable('rr', [b('a', 3), b('b', 1)], (x) => (x.id === 'a' ? 1 : 2), 2).slots]).toEqual([1, 2]);
    // fractional weights keep their ratio
    expect([...buildSlotTable('wrr', [b('a', 0.5), b('b', 1.5)], (x) => (x.id === 'a' ? 1 : 2), 2).slots].sort()).toEqual([1, 2, 2, 2]);
  });

  it('sh: the weighted list interleaved over ~1024 buckets (plain modulo hashing)', () => {
    const t = buildSlotTable('sh', [b('a', 2), b('b', 1)], (x) => (x.id === 'a' ? 1 : 2), 2);
    expect(t.key).toBe('source-hash');
    expect(t.size % 3).toBe(0);
    expect(t.size).toBeGreaterThanOrEqual(1024);
    expect([...t.slots.slice(0, 6)]).toEqual([1, 1, 2, 1, 1, 2]);
  });

  it('refuses lc/wlc without connection counts (outside nat)', () => {
    expect(() => buildSlotTable('lc', [b('a')], () => 1, 1)).toThrow(/connection counts.*mode nat or proxy/);
  });

  it('lc/wlc in nat: the next flows go to the servers below their share of the load', () => {
    const load: Record<string, number> = { a: 4, b: 0, c: 2 };
    const shares = leastConnectionShares([b('a'), b('b'), b('c')], false, (x) => load[x.id]!);
    // total 6 + 12 window = 18, 6 each: deficits a 2, b 6, c 4
    expect(shares.map((x) => x.weight)).toEqual([11, 32, 21]);
    const weighted = leastConnectionShares([b('a', 3), b('b', 1)], true, () => 0);
    expect(weighted[0]!.weight).toBeGreaterThan(weighted[1]!.weight * 2);
    // loads already in the weight ratio: the next flows keep that ratio
    expect(leastConnectionShares([b('a', 2), b('b', 1)], true, (x) => (x.id === 'a' ? 200 : 100)).map((x) => x.weight)).toEqual([43, 21]);
    // wlc: b holds more per unit of weight, so a takes everything until they meet
    expect(leastConnectionShares([b('a', 2), b('b', 1)], true, () => 100).map((x) => x.weight)).toEqual([64, 0]);
    const t = buildSlotTable('lc', [b('a'), b('b')], (x) => (x.id === 'a' ? 1 : 2), 2, (x) => load[x.id]!);
    expect(t.key).toBe('counter');
    expect([...t.slots].filter((m) => m === 2).length).toBeGreaterThan([...t.slots].filter((m) => m === 1).length);
  });
});

describe('ruleset', () => {
  it('dsr: ingress dispatch, flow table, forwarding via the neighbour table', () => {
    const [t] = buildRuleset([vip()], ctx);
    expect(t!.family).toBe('netdev');
    expect(t!.chains.get('in-eth0')).toMatchObject({ head: expect.stringContaining('hook ingress device "eth0"'), rules: ['ip daddr 10.0.0.100 tcp dport 80 goto v-web'] });
    expect(t!.chains.get('r-web-10.0.0.2_80')!.rules[0]).toBe('counter name "r-web-10.0.0.2_80" fwd ip to 10.0.0.2 device "eth0"');
    expect(t!.maps.get('f-web')).toMatchObject({ dynamic: true, decl: expect.stringContaining('timeout 900s') });
    expect(t!.maps.get('q-web')).toBeUndefined();
  });

  it('IPv6: forwards with fwd ip6, and keys the flow table by a 32-bit hash (nft 1.0.6 cannot update 20-byte keys)', () => {
    const v6 = (n: number): RealServerSpec => rs(n, { id: `[fd00::${n}]:80`, address: `fd00::${n}` });
    const [t] = buildRuleset([vip({ address: 'fd00::100', realServers: [v6(1), v6(2)] })], { ...ctx, mark: (_v, id) => Number(/::(\d+)\]/.exec(id)![1]) });
    expect(t!.maps.get('f-web')!.decl).toMatch(/^typeof numgen inc mod 2 : meta mark;/);
    expect(t!.chains.get('v-web')!.rules[0]).toContain('jhash ip6 saddr . tcp sport mod 4294967291');
    expect(t!.chains.get('r-web-fd00__2_80')!.rules[0]).toContain('fwd ip6 to fd00::2 device "eth0"');
    expect(t!.chains.get('in-eth0')!.rules[0]).toBe('ip6 daddr fd00::100 tcp dport 80 goto v-web');
  });

  it('down servers leave the eligible and live sets; drained ones stay live; backups only when no primary', () => {
    const [t] = buildRuleset([vip({ realServers: [rs(1, { healthy: false }), rs(2, { drained: true }), rs(3), rs(4, { backup: true })] })], ctx);
    expect([...t!.maps.get('e-web')!.elements!.keys()]).toEqual(['3']);
    expect([...t!.maps.get('l-web')!.elements!.keys()]).toEqual(['2', '3', '4']);
    const [down] = buildRuleset([vip({ realServers: [rs(1, { healthy: false }), rs(4, { backup: true })] })], ctx);
    expect([...down!.maps.get('e-web')!.elements!.keys()]).toEqual(['4']);
  });

  it('nat: DNAT per real server, masquerade unless snat is false, in the inet table', () => {
    const [t] = buildRuleset([vip({ mode: 'nat', scheduler: 'rr', realServers: [{ ...rs(1), id: '10.0.0.1:8080', port: 8080 }] })], ctx);
    expect(t!.family).toBe('inet');
    expect(t!.chains.get('r-web-10.0.0.1_8080')!.rules[0]).toContain('dnat ip to 10.0.0.1:8080');
    expect(t!.chains.get('nat-post')!.rules[0]).toContain('masquerade');
    const [noSnat] = buildRuleset([vip({ mode: 'nat', snat: false })], ctx);
    expect(noSnat!.chains.has('nat-post')).toBe(false);
  });

  it('persistence adds a source map consulted before the slot table', () => {
    const [t] = buildRuleset([vip({ persistenceMs: 300_000 })], ctx);
    expect(t!.maps.get('q-web')!.decl).toContain('timeout 300s');
    expect(t!.chains.get('p-web')!.rules.findIndex((r) => r.includes('@q-web'))).toBeLessThan(t!.chains.get('p-web')!.rules.findIndex((r) => r.includes('@s-web')));
  });

  it('refuses what the kernel cannot do, naming the VIP', () => {
    expect(() => buildRuleset([vip({ realServers: [{ ...rs(1), port: 8080 }] })], ctx)).toThrow(/VIP web: real server 10.0.0.1:80 has port 8080, but dsr cannot rewrite ports/);
    expect(() => buildRuleset([vip({ mode: 'l3dsr-tunnel', tunnel: 'ipip' })], ctx)).toThrow(/tunnel ipip is not supported.*use tunnel: vxlan/);
    expect(() => buildRuleset([vip({ mode: 'l3dsr-dscp', dscp: 5 }), vip({ name: 'api', port: 81, mode: 'l3dsr-dscp', dscp: 5, realServers: [{ ...rs(1), port: 81 }] })], ctx)).toThrow(/dscp 5 on eth0 is already VIP web/);
    expect(() => buildRuleset([vip(), vip()], ctx)).toThrow(/duplicate VIP name web/);
    expect(() => buildRuleset([vip({ mode: 'proxy' })], ctx)).toThrow(/userspace proxy/);
    expect(() => buildRuleset([vip({ realServers: [rs(1, { address: 'fd00::1', id: '[fd00::1]:80' })] })], ctx)).toThrow(/address family/);
  });
});

describe('transaction', () => {
  it('the first apply declares everything', () => {
    const [t] = buildRuleset([vip()], ctx);
    const lines = tableScript('netdev', undefined, t);
    expect(lines[0]).toBe('add table netdev slb_agent');
    expect(lines).toContain('add map netdev slb_agent f-web { typeof ip saddr . tcp sport : meta mark; flags dynamic,timeout; timeout 900s; size 1048576; }');
    expect(lines.some((l) => l.startsWith('delete'))).toBe(false);
  });

  it('a health change rewrites the small sets and only the changed slots; flow table, chains and counters stay', () => {
    const [t1] = buildRuleset([vip()], ctx);
    const [t2] = buildRuleset([vip({ realServers: [rs(1), rs(2, { healthy: false }), rs(3)] })], ctx);
    const lines = tableScript('netdev', programmed(t1!), t2);
    expect(lines.filter((l) => l.startsWith('flush chain'))).toEqual([]);
    expect(lines.filter((l) => /f-web|counter/.test(l))).toEqual([]);
    expect(lines).toContain('flush set netdev slb_agent e-web');
    const slotOps = lines.filter((l) => l.includes(' s-web ')).join(' ').split(/[{,]/).length;
    expect(slotOps).toBeLessThan(t1!.maps.get('s-web')!.slots!.length); // a diff, not a rewrite
  });

  it('the same spec again is an empty change but for the small sets', () => {
    const [t] = buildRuleset([vip()], ctx);
    const lines = tableScript('netdev', programmed(t!), t);
    expect(lines.filter((l) => /chain|s-web|f-web|counter/.test(l))).toEqual([]);
  });

  it('removing a VIP empties what references its objects before deleting them; no VIP left deletes the table', () => {
    const [both] = buildRuleset([vip(), vip({ name: 'api', address: '10.0.0.101' })], ctx);
    const [one] = buildRuleset([vip()], ctx);
    const lines = tableScript('netdev', programmed(both!), one);
    const flushIn = lines.indexOf('flush chain netdev slb_agent in-eth0');
    const delChain = lines.indexOf('delete chain netdev slb_agent v-api');
    const delMap = lines.indexOf('delete map netdev slb_agent f-api');
    expect(flushIn).toBeGreaterThanOrEqual(0);
    expect(delChain).toBeGreaterThan(flushIn);
    expect(delMap).toBeGreaterThan(delChain);
    expect(lines).toContain('delete counter netdev slb_agent n-api-10.0.0.1_80');
    expect(tableScript('netdev', programmed(one!), undefined)).toEqual(['delete table netdev slb_agent']);
  });

  it('a changed flow timeout recreates the flow table; after a restart (contents unknown) static maps are rewritten whole', () => {
    const [t1] = buildRuleset([vip()], ctx);
    const [t2] = buildRuleset([vip({ flowTimeoutMs: 60_000 })], ctx);
    const lines = tableScript('netdev', programmed(t1!), t2);
    expect(lines).toContain('delete map netdev slb_agent f-web');
    expect(lines.some((l) => l.startsWith('add map netdev slb_agent f-web') && l.includes('timeout 60s'))).toBe(true);
    const restarted: ProgrammedTable = { ...programmed(t1!), chains: new Map([...programmed(t1!).chains.keys()].map((k) => [k, undefined] as const)), slots: new Map() };
    const again = tableScript('netdev', restarted, t1);
    expect(again).toContain('flush map netdev slb_agent s-web');
    expect(again.some((l) => l.startsWith('delete') || /^(add|flush) map \S+ \S+ f-web/.test(l))).toBe(false);
  });
});

/**
 * VIP derivation: quorum, backups, drains (operator and agent words), weight % and counts; plus
 * the merge of VIPs sharing an address into one report member.
 */
import { describe, expect, it } from 'vitest';
import { deriveVip, mergeMembers } from '../../slb-agent/vip.js';
import type { RealServerInput, VipInput } from '../../slb-agent/vip.js';

const rs = (n: number, o: Partial<RealServerInput> = {}): RealServerInput => ({
  address: `127.0.0.${10 + n}`, port: 8080, weight: 1, backup: false, health: 'up', drained: false, ...o,
});
const vip = (realServers: RealServerInput[], o: Partial<VipInput> = {}): VipInput => ({
  name: 'web', address: '192.0.2.1', capacity: 1000, quorum: 1, drained: false, realServers, ...o,
});

describe('deriveVip', () => {
  const cases: { why: string; vip: VipInput; want: { state: string; weight: number; on: string; healthy: number; total: number } }[] = [
    { why: 'all primaries up', vip: vip([rs(1), rs(2)]), want: { state: 'up', weight: 100, on: 'primary', healthy: 2, total: 2 } },
    { why: 'half the primaries up: weight 50', vip: vip([rs(1), rs(2, { health: 'down' })]), want: { state: 'up', weight: 50, on: 'primary', healthy: 1, total: 2 } },
    { why: 'weights: 3 of 4 up by weight', vip: vip([rs(1, { weight: 3 }), rs(2, { health: 'down' })]), want: { state: 'up', weight: 75, on: 'primary', healthy: 1, total: 2 } },
    { why: 'quorum 2 met', vip: vip([rs(1), rs(2), rs(3, { health: 'down' })], { quorum: 2 }), want: { state: 'up', weight: 66.67, on: 'primary', healthy: 2, total: 3 } },
    { why: 'quorum 2 not met: down (a backup does not cover a lost quorum)', vip: vip([rs(1), rs(2, { health: 'down' }), rs(3, { backup: true })], { quorum: 2 }),
      want: { state: 'down', weight: 0, on: 'none', healthy: 2, total: 3 } },
    { why: 'no primary, a backup up: up on backups', vip: vip([rs(1, { health: 'down' }), rs(2, { backup: true }), rs(3, { backup: true, health: 'down' })]),
      want: { state: 'up', weight: 50, on: 'backup', healthy: 1, total: 3 } },
    { why: 'backups do not add to the weight while primaries serve', vip: vip([rs(1), rs(2, { health: 'down' }), rs(3, { backup: true })]),
      want: { state: 'up', weight: 50, on: 'primary', healthy: 2, total: 3 } },
    { why: 'nothing up: down', vip: vip([rs(1, { health: 'down' }), rs(2, { backup: true, health: 'down' })]), want: { state: 'down', weight: 0, on: 'none', healthy: 0, total: 2 } },
    { why: 'no real servers: down', vip: vip([]), want: { state: 'down', weight: 0, on: 'none', healthy: 0, total: 0 } },
    { why: 'operator drained one primary: out of the weight', vip: vip([rs(1), rs(2, { drained: true })]), want: { state: 'up', weight: 50, on: 'primary', healthy: 1, total: 2 } },
    { why: 'every healthy real server drained: drain, not down', vip: vip([rs(1, { drained: true }), rs(2, { drained: true })]),
      want: { state: 'drain', weight: 0, on: 'none', healthy: 0, total: 2 } },
    { why: 'drained primaries, a backup up: up on the backup', vip: vip([rs(1, { drained: true }), rs(2, { backup: true })]),
      want: { state: 'up', weight: 100, on: 'backup', healthy: 1, total: 2 } },
    { why: 'VIP drained by the operator: drain with the weight it would have', vip: vip([rs(1), rs(2, { health: 'down' })], { drained: true }),
      want: { state: 'drain', weight: 50, on: 'primary', healthy: 1, total: 2 } },
    { why: 'agent 75% scales that server', vip: vip([rs(1, { agent: { weightPct: 75 } }), rs(2)]), want: { state: 'up', weight: 87.5, on: 'primary', healthy: 2, total: 2 } },
    { why: 'agent 0% keeps it healthy with no weight', vip: vip([rs(1, { agent: { weightPct: 0 } })]), want: { state: 'up', weight: 0, on: 'primary', healthy: 1, total: 1 } },
    { why: 'agent drain word: not serving', vip: vip([rs(1, { agent: { state: 'drain' } }), rs(2)]), want: { state: 'up', weight: 50, on: 'primary', healthy: 1, total: 2 } },
    { why: 'agent maint word on all: drain', vip: vip([rs(1, { agent: { state: 'maint' } })]), want: { state: 'drain', weight: 0, on: 'none', healthy: 0, total: 1 } },
    { why: 'agent down word: down', vip: vip([rs(1, { agent: { state: 'down' } })]), want: { state: 'down', weight: 0, on: 'none', healthy: 0, total: 1 } },
    { why: 'agent up word with weight: serves at that weight', vip: vip([rs(1, { agent: { state: 'up', weightPct: 20 } }), rs(2, { health: 'down' })]),
      want: { state: 'up', weight: 10, on: 'primary', healthy: 1, total: 2 } },
    { why: 'weight 0 primaries only: up with weight 0', vip: vip([rs(1, { weight: 0 })]), want: { state: 'up', weight: 0, on: 'primary', healthy: 1, total: 1 } },
  ];
  for (const c of cases) {
    it(c.why, () => {
      expect(deriveVip(c.vip)).toMatchObject(c.want);
    });
  }

  it('reports capacity from config and connections (0 until the forwarder knows them)', () => {
    expect(deriveVip(vip([rs(1)]))).toMatchObject({ capacity: 1000, connections: 0, name: 'web', address: '192.0.2.1' });
    expect(deriveVip(vip([rs(1)], { connections: 42 })).connections).toBe(42);
  });
});

describe('mergeMembers', () => {
  it('one member per address: the weakest state and weight, summed counts', () => {
    const a = deriveVip(vip([rs(1), rs(2)]));
    const b = deriveVip(vip([rs(1), rs(2, { health: 'down' })], { name: 'tls' }));
    const c = deriveVip(vip([rs(1)], { name: 'other', address: '192.0.2.2' }));
    expect(mergeMembers([a, b, c])).toEqual([
      { address: '192.0.2.1', state: 'up', weight: 50, connections: 0, capacity: 1000, healthy: 3, total: 4 },
      { address: '192.0.2.2', state: 'up', weight: 100, connections: 0, capacity: 1000, healthy: 1, total: 1 },
    ]);
    const d = deriveVip(vip([rs(1, { health: 'down' })], { name: 'dead' }));
    expect(mergeMembers([a, d])[0]!.state).toBe('down');
  });
});

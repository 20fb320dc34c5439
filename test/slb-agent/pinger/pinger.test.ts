/**
 * The pinger engine with an injected clock, timers, randomness, neighbour table and transport:
 * scheduling (spread over the interval, jitter per round), per-peer state (failures, the
 * not-answering report and the recovery), `auto` peers and their exclusions, and the metrics.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { PingerConfig, PingerInterfaceConfig } from '../../../slb-agent/pinger/config.js';
import { createPingerMetrics } from '../../../slb-agent/pinger/metrics.js';
import { parseExposition } from '../../helpers/exposition.js';
import { autoPeers, parseProcArp } from '../../../slb-agent/pinger/neighbours.js';
import type { Neighbour } from '../../../slb-agent/pinger/neighbours.js';
import { PeerState } from '../../../slb-agent/pinger/peer-state.js';
import { checkPingerAddon, createPinger } from '../../../slb-agent/pinger/pinger.js';
import type { Answer, ProbeTransport, TransportFactory } from '../../../slb-agent/pinger/transport.js';
import { ManualClock } from '../../helpers/manual-clock.js';

/** The pinger's tests' clock: monotonic 1000 at start, the wall clock 1_700_000_000_000 + monotonic. */
const newClock = (): ManualClock => new ManualClock(1000, 1_700_000_000_000 + 1000);

interface Sent { at: number; address: string; seq: number; mac: string | undefined }

/** A transport whose peers answer after `rttMs` unless listed in `silent`. */
function fakeNet(clock: ManualClock, rttMs = 2) {
  const sent: Sent[] = [];
  const silent = new Set<string>();
  const macs = new Map<string, string>();
  let onAnswer: ((a: Answer) => void) | undefined;
  const factory: TransportFactory = async (o) => {
    onAnswer = o.onAnswer;
    const t: ProbeTransport = {
      method: o.method,
      send(address, seq, mac) {
        sent.push({ at: clock.now(), address, seq, mac });
        if (!silent.has(address)) {
          clock.setTimeout(() => onAnswer?.({ address, at: clock.now(), seq, ...(macs.has(address) ? { mac: macs.get(address)! } : {}) }), rttMs);
        }
        return undefined;
      },
      forget() {},
      close() {},
    };
    return t;
  };
  return { sent, silent, macs, factory };
}

function logCapture() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => { lines.push(JSON.parse(s) as Record<string, unknown>); } });
  return { lines, logger };
}

function iface(o: Partial<PingerInterfaceConfig> = {}): PingerInterfaceConfig {
  return { name: 'eth0', peers: [], auto: false, intervalMs: 1000, jitter: 0, method: 'arp', timeoutMs: 100, ...o };
}

function setup(cfg: Partial<PingerConfig> & { interfaces: PingerInterfaceConfig[] }, extra: { neighbours?: Neighbour[]; local?: string[]; exclude?: string[]; random?: () => number } = {}) {
  const clock = newClock();
  const net = fakeNet(clock);
  const log = logCapture();
  const pinger = createPinger({
    config: { exclude: [], failAfter: 3, ...cfg }, logger: log.logger, openTransport: net.factory,
    clock, random: extra.random ?? (() => 0.5),
    neighbours: () => extra.neighbours ?? [], localAddresses: () => new Set(extra.local ?? []),
    ...(extra.exclude ? { exclude: extra.exclude } : {}),
  });
  return { clock, net, log, pinger };
}

const peers10 = Array.from({ length: 10 }, (_, i) => `10.0.0.${i + 1}`);

describe('scheduling', () => {
  it('spreads one round of probes evenly over the interval, then repeats', async () => {
    const { clock, net, pinger, log } = setup({ interfaces: [iface({ peers: peers10 })] });
    await pinger.start();
    expect(log.lines.some((l) => l['msg'] === 'pinger: ready')).toBe(true);
    clock.advance(999);
    expect(net.sent.map((s) => s.address)).toEqual(peers10);
    // 10 peers over 1000 ms: one every 100 ms (the timer coalesces at most 20 ms)
    const gaps = net.sent.slice(1).map((s, i) => s.at - net.sent[i]!.at);
    for (const g of gaps) expect(g).toBe(100);
    clock.advance(1000);
    expect(net.sent).toHaveLength(20);
    expect(net.sent[10]!.at - net.sent[0]!.at).toBe(1000);
    await pinger.stop();
    const n = net.sent.length;
    clock.advance(5000);
    expect(net.sent).toHaveLength(n);
  });

  it('jitter changes each round length within +- jitter, never bursts', async () => {
    const rs = [0, 1, 0.5, 0]; // random() per round: -10 %, +10 %, 0, -10 %
    let i = 0;
    const { clock, net, pinger } = setup({ interfaces: [iface({ peers: ['10.0.0.1', '10.0.0.2'], jitter: 0.1 })] }, { random: () => rs[i++ % rs.length]! });
    await pinger.start();
    clock.advance(4000);
    const firstPeer = net.sent.filter((s) => s.address === '10.0.0.1').map((s) => s.at);
    const rounds = firstPeer.slice(1).map((t, k) => t - firstPeer[k]!);
    expect(rounds.slice(0, 3)).toEqual([900, 1100, 1000]);
    // within a round the second probe is half a round after the first
    const second = net.sent.filter((s) => s.address === '10.0.0.2').map((s) => s.at);
    expect(second[0]! - firstPeer[0]!).toBe(450);
    await pinger.stop();
  });

  it('many peers are sent in small batches, bounded by the 20 ms tick', async () => {
    const many = Array.from({ length: 1000 }, (_, k) => `10.1.${k >> 8}.${k & 255}`);
    const { clock, net, pinger } = setup({ interfaces: [iface({ peers: many })] });
    await pinger.start();
    clock.advance(1000);
    expect(net.sent).toHaveLength(1000);
    const perTick = new Map<number, number>();
    for (const s of net.sent) perTick.set(s.at, (perTick.get(s.at) ?? 0) + 1);
    expect(Math.max(...perTick.values())).toBeLessThanOrEqual(21);
    await pinger.stop();
  });
});

describe('per-peer state', () => {
  it('counts answers, round-trip times (last and smoothed) and learns the MAC', async () => {
    const { clock, net, pinger } = setup({ interfaces: [iface({ peers: ['10.0.0.1'] })] });
    net.macs.set('10.0.0.1', '02:00:00:00:00:01');
    await pinger.start();
    clock.advance(2500);
    const p = pinger.status().interfaces[0]!.peers[0]!;
    expect(p).toMatchObject({ address: '10.0.0.1', answering: true, sent: 3, answered: 3, consecutiveFailures: 0, lastRttMs: 2, srttMs: 2, mac: '02:00:00:00:00:01' });
    expect(p.lastAnswerAt).toBe(1_700_000_000_000 + 1000 + 2000 + 2);
    // the first probe was broadcast (no MAC known), later ones unicast to the learned MAC
    expect(net.sent.map((s) => s.mac)).toEqual([undefined, '02:00:00:00:00:01', '02:00:00:00:00:01']);
    await pinger.stop();
  });

  it('reports a peer not answering after failAfter misses, once, and its recovery, once', async () => {
    const { clock, net, pinger, log } = setup({ interfaces: [iface({ peers: ['10.0.0.1', '10.0.0.2'] })] });
    await pinger.start();
    clock.advance(1000);
    net.silent.add('10.0.0.2');
    clock.advance(2000);
    let p2 = pinger.status().interfaces[0]!.peers[1]!;
    expect(p2).toMatchObject({ consecutiveFailures: 2, answering: true });
    expect(log.lines.filter((l) => String(l['msg']).includes('not answering'))).toHaveLength(0);
    clock.advance(1000);
    p2 = pinger.status().interfaces[0]!.peers[1]!;
    expect(p2).toMatchObject({ consecutiveFailures: 3, answering: false, lastError: 'no answer' });
    clock.advance(3000);
    const warns = log.lines.filter((l) => String(l['msg']).includes('not answering'));
    expect(warns).toHaveLength(1);
    expect(warns[0]).toMatchObject({ level: 40, peer: '10.0.0.2', interface: 'eth0', failures: 3, msg: 'pinger: peer 10.0.0.2 on eth0 not answering' });
    // a peer that failed is asked by broadcast: its MAC may have changed
    expect(net.sent.filter((s) => s.address === '10.0.0.2').at(-1)!.mac).toBeUndefined();
    net.silent.delete('10.0.0.2');
    clock.advance(3000);
    p2 = pinger.status().interfaces[0]!.peers[1]!;
    expect(p2).toMatchObject({ consecutiveFailures: 0, answering: true });
    const recovered = log.lines.filter((l) => String(l['msg']).includes('answering again'));
    expect(recovered).toHaveLength(1);
    expect(recovered[0]).toMatchObject({ level: 30, peer: '10.0.0.2' });
    expect(pinger.status().interfaces[0]!.peers[0]).toMatchObject({ answering: true, consecutiveFailures: 0 });
    await pinger.stop();
  });

  it('PeerState: a late answer (after its deadline) does not count; an unknown peer is null', () => {
    const s = new PeerState('10.0.0.1', 2);
    expect(s.answering).toBeNull();
    const p = { seq: 1, sentAt: 0, deadline: 100 };
    s.onSent(p);
    expect(s.onExpired(p)).toBeUndefined();
    expect(s.onAnswer(150, undefined).matched).toBe(false);
    const p2 = { seq: 2, sentAt: 200, deadline: 300 };
    s.onSent(p2);
    expect(s.onAnswer(210, undefined, 1).matched).toBe(false); // wrong ICMP sequence
    expect(s.onExpired(p2)).toBe('down');
    const p3 = { seq: 3, sentAt: 400, deadline: 500 };
    s.onSent(p3, 'send failed: ENETDOWN');
    expect(s).toMatchObject({ sendErrors: 1, consecutiveFailures: 3, lastError: 'send failed: ENETDOWN', answering: false });
    const p4 = { seq: 4, sentAt: 600, deadline: 700 };
    s.onSent(p4);
    expect(s.onAnswer(610, '02:00:00:00:00:09', 4)).toEqual({ matched: true, event: 'recovered' });
    expect(s).toMatchObject({ answered: 1, sent: 4, lastRttMs: 10, srttMs: 10, mac: '02:00:00:00:00:09' });
  });
});

describe('auto peers', () => {
  const arp = `IP address       HW type     Flags       HW address            Mask     Device
10.0.0.1         0x1         0x2         02:00:00:00:00:01     *        eth0
10.0.0.2         0x1         0x0         00:00:00:00:00:00     *        eth0
10.0.0.3         0x1         0x6         02:00:00:00:00:03     *        eth0
10.0.0.4         0x1         0x2         02:00:00:00:00:04     *        eth1
10.0.0.100       0x1         0x2         02:00:00:00:00:64     *        eth0
10.0.0.11        0x1         0x2         02:00:00:00:00:0B     *        eth0
`;

  it('reads recent neighbours from /proc/net/arp: complete, not permanent', () => {
    expect(parseProcArp(arp).map((n) => `${n.address} ${n.dev}`)).toEqual(['10.0.0.1 eth0', '10.0.0.4 eth1', '10.0.0.100 eth0', '10.0.0.11 eth0']);
    expect(autoPeers(parseProcArp(arp), 'eth0', new Set(['10.0.0.100']), new Set(['10.0.0.11'])).map((n) => n.address)).toEqual(['10.0.0.1']);
  });

  it('probes the interface\'s neighbours, never the VIPs, excluded or local addresses, and follows the table each round', async () => {
    let table = parseProcArp(arp);
    const clock = newClock();
    const net = fakeNet(clock);
    const pinger = createPinger({
      config: { interfaces: [iface({ peers: ['10.0.0.9'], auto: true })], exclude: ['10.0.0.50'], failAfter: 3 },
      logger: logCapture().logger, openTransport: net.factory, clock, random: () => 0.5,
      neighbours: () => table, localAddresses: () => new Set(['10.0.0.11']), exclude: ['10.0.0.100'],
    });
    await pinger.start();
    clock.advance(999);
    expect(net.sent.map((s) => s.address)).toEqual(['10.0.0.9', '10.0.0.1']);
    // unicast to the MAC the neighbour table has
    expect(net.sent[1]!.mac).toBe('02:00:00:00:00:01');
    expect(pinger.status().interfaces[0]!.peers.map((p) => [p.address, p.auto])).toEqual([['10.0.0.9', false], ['10.0.0.1', true]]);
    table = [...table.filter((n) => n.address !== '10.0.0.1'), { address: '10.0.0.7', mac: '02:00:00:00:00:07', dev: 'eth0' }, { address: '10.0.0.50', mac: '02:00:00:00:00:32', dev: 'eth0' }];
    clock.advance(1000);
    expect(net.sent.slice(2).map((s) => s.address)).toEqual(['10.0.0.9', '10.0.0.7']);
    expect(pinger.status().interfaces[0]!.peers.map((p) => p.address)).toEqual(['10.0.0.9', '10.0.0.7']);
    await pinger.stop();
  });
});

describe('start-up', () => {
  it('a transport that cannot open fails start() and closes the ones already open', async () => {
    let closed = 0;
    const clock = newClock();
    const pinger = createPinger({
      config: { interfaces: [iface({ name: 'a', peers: ['10.0.0.1'] }), iface({ name: 'b', peers: ['10.0.0.1'] })], exclude: [], failAfter: 3 },
      logger: logCapture().logger, clock, neighbours: () => [], localAddresses: () => new Set(),
      openTransport: async (o) => {
        if (o.ifname === 'b') throw new Error('no such device');
        return { method: 'arp', send: () => undefined, forget() {}, close() { closed++; } };
      },
    });
    await expect(pinger.start()).rejects.toThrow('no such device');
    expect(closed).toBe(1);
    expect(clock.pending).toBe(0);
  });

  it('arp and icmp without the addon fail with a message naming the fix; udp needs none', () => {
    const prev = process.env['GSLB_PINGER_ADDON'];
    process.env['GSLB_PINGER_ADDON'] = 'off';
    try {
      const cfg = (method: 'arp' | 'icmp' | 'udp'): PingerConfig => ({ interfaces: [iface({ peers: ['10.0.0.1'], method })], exclude: [], failAfter: 3 });
      expect(() => checkPingerAddon(cfg('arp'))).toThrow(/method arp needs the native addon pinger_sock .*npm ci.*use method udp/);
      expect(() => checkPingerAddon(cfg('icmp'))).toThrow(/method icmp needs the native addon/);
      expect(() => checkPingerAddon(cfg('udp'))).not.toThrow();
    } finally {
      if (prev === undefined) delete process.env['GSLB_PINGER_ADDON']; else process.env['GSLB_PINGER_ADDON'] = prev;
    }
  });
});

describe('metrics', () => {
  it('renders every peer with counters, failures, answering and round-trip times', async () => {
    const { clock, net, pinger } = setup({ interfaces: [iface({ peers: ['10.0.0.1', '10.0.0.2'] })] });
    net.silent.add('10.0.0.2');
    await pinger.start();
    clock.advance(3999);
    const text = await createPingerMetrics(() => pinger.status()).metrics();
    expect(text).toContain('slb_pinger_probes_sent_total{interface="eth0",peer="10.0.0.1",method="arp"} 4');
    expect(text).toContain('slb_pinger_probes_answered_total{interface="eth0",peer="10.0.0.1",method="arp"} 4');
    expect(text).toContain('slb_pinger_probes_answered_total{interface="eth0",peer="10.0.0.2",method="arp"} 0');
    expect(text).toContain('slb_pinger_consecutive_failures{interface="eth0",peer="10.0.0.2",method="arp"} 4');
    expect(text).toContain('slb_pinger_peer_answering{interface="eth0",peer="10.0.0.2",method="arp"} 0');
    expect(text).toContain('slb_pinger_peer_answering{interface="eth0",peer="10.0.0.1",method="arp"} 1');
    expect(text).toContain('slb_pinger_rtt_seconds{interface="eth0",peer="10.0.0.1",method="arp"} 0.002');
    expect(text).toMatch(/slb_pinger_rtt_smoothed_seconds\{interface="eth0",peer="10.0.0.1",method="arp"\} 0.002/);
    expect(text).not.toContain('slb_pinger_rtt_seconds{interface="eth0",peer="10.0.0.2"');
    const m = parseExposition(text);
    expect(m.value('slb_pinger_peers_answering', { interface: 'eth0', method: 'arp' })).toBe(1);
    expect(m.value('slb_pinger_peers', { interface: 'eth0', method: 'arp' })).toBe(2);
    expect(m.value('slb_agent_build_info', { nodejs: process.version })).toBe(1);
    expect(m.types.get('process_cpu_seconds_total')).toBe('counter');
    await pinger.stop();
  });
});

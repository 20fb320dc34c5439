/**
 * The unicast-flooding lab of issue 6: the seed's two physical switches (alpha, beta) as Linux
 * bridges with a short ageing time, joined by a trunk; client A, the LB and the segment's router
 * on alpha; real server C and a bystander D on beta; the nftables plane forwards A's connection to
 * the VIP to C in `dsr` mode, and C answers A directly.
 *
 * ```
 *   A ──┐                                  ┌── C  (VIP on lo, backend :80)
 *   LB ─┼─ [alpha] ══════ trunk ══════ [beta] ─┤
 *   gw ─┘                                  └── D  (bystander: tcpdump `ether dst A`)
 * ```
 *
 * A sends only to the LB (on alpha), so beta learns A's MAC from nothing but ARP; once its entry
 * ages out, beta floods C's replies to A out of every port, D's included. A pinger on C (ARP to A
 * and to the router every few seconds) makes A answer across the trunk and keeps beta's entry warm.
 *
 * Stray traffic that could teach beta A's MAC on its own is switched off, and checked: frames with
 * A's source MAC arriving at beta over the trunk are counted in every phase (0 while the pinger is
 * off). IPv6 is off in every namespace (no RS, ND, MLD); STP and multicast snooping are off on both
 * bridges; A keeps one TCP connection, so TCP confirms A's neighbour entry for the VIP and C's for A,
 * and both have a 600 s base_reachable_time besides, so neither ARPs again during a run; no UDP is
 * sent (no ICMP port-unreachable), and what D receives is classified (tcp/arp/icmp). The LB's own
 * traffic (its ARP for C, the forwarded frames with the LB's MAC as source) never carries A's MAC.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Capture, Lab, Subnet } from './netns.js';
import { createLab } from './netns.js';
import { createNftablesDataPlane } from '../slb-agent/forwarder/nftables/index.js';
import type { NftablesDataPlane } from '../slb-agent/forwarder/nftables/index.js';

/** The pinger on C: the agent's (`slb-agent pinger`), or `arping` as a stand-in for comparisons. */
export type PingerKind = 'slb-agent' | 'arping';

export interface FloodingOptions {
  /** bridge ageing time of both switches (default 10 s) */
  ageingSec?: number;
  /** A's request interval on its one TCP connection (default 150 ms) */
  requestIntervalMs?: number;
  /** the pinger's interval (default 3 s; must stay below the ageing time) */
  pingerIntervalSec?: number;
  /** how long D listens once beta has forgotten A, pinger off (default 3 s) */
  offWindowSec?: number;
  /** how long D listens with the pinger on (default: ageing + 3 s, so an entry would expire in it) */
  onWindowSec?: number;
  pinger?: PingerKind;
  /** progress lines (default: none) */
  log?: (line: string) => void;
}

/** One dynamic entry of a bridge's forwarding database. */
export interface FdbEntry {
  readonly mac: string;
  /** the role whose MAC it is (A, LB, gw, C, D) or '?' */
  readonly owner: string;
  /** the bridge port: a role's port or `trunk` */
  readonly port: string;
  /** seconds since the entry was last refreshed by a frame from that MAC (it expires at the ageing time) */
  readonly updatedSec: number;
  /** seconds since a frame was last forwarded to it */
  readonly usedSec: number;
}

export interface FdbSnapshot {
  readonly alpha: FdbEntry[];
  readonly beta: FdbEntry[];
}

/** What one phase measured. */
export interface PhaseResult {
  /** unicast frames to A's MAC that D's port received during the window */
  readonly floodedAtD: number;
  /** the same frames by protocol (tcp, arp, icmp, other) */
  readonly floodedKinds: Record<string, number>;
  /** frames from A's MAC that entered beta over the trunk during the whole phase */
  readonly fromAIntoBeta: number;
  /** replies A's client got during the window: the traffic that was flowing meanwhile */
  readonly replies: number;
  /** length of D's window (ms, measured) */
  readonly windowMs: number;
  /** ms until beta forgot A (pinger off) or learned it again (pinger on) */
  readonly transitionMs: number;
  /** both bridges at the end of the phase */
  readonly fdb: FdbSnapshot;
  /** A's and C's neighbour tables at the end of the phase (`ip neigh show dev eth0`) */
  readonly neighbours: { readonly A: string[]; readonly C: string[] };
}

export interface FloodingReport {
  readonly ageingSec: number;
  readonly pinger: PingerKind;
  readonly pingerIntervalSec: number;
  readonly requestIntervalMs: number;
  readonly vip: string;
  /** role -> address and MAC */
  readonly hosts: Record<string, { address: string; mac: string }>;
  /** the stray-traffic controls that were verified in the namespaces, one line each */
  readonly controls: string[];
  /** true when every control held */
  readonly controlsOk: boolean;
  /** both bridges with traffic established, before anything aged */
  readonly fdbStart: FdbSnapshot;
  readonly off: PhaseResult;
  readonly on: PhaseResult;
  /** A's TCP connections to the VIP over the whole run (1: the one long connection held) */
  readonly connections: number;
}

const HOSTS = { a: 1, lb: 2, c: 3, d: 4, gw: 254 } as const;
/** role -> the name the report uses (the seed's server names; gw is the segment's router) */
const NAMES = { a: 'A', lb: 'LB', c: 'C', d: 'D', gw: 'gw' } as const;
const VIP_HOST = 100;
const VIP_PORT = 80;
/** neighbour timers on A and C: long enough that neither re-resolves the other during a run */
const NEIGH_REACHABLE_MS = 600_000;
const NEIGH_GC_STALE_SEC = 600;
const POLL_MS = 100;
const READY_TIMEOUT_MS = 10_000;

/**
 * A's client: one TCP connection to the VIP, a request every interval; prints `connected`, `r` per
 * reply chunk, `closed` when the connection ends (it never reconnects). Exits after maxMs at most.
 */
const CLIENT = `
const net = require('node:net');
const [host, port, intervalMs, maxMs] = process.argv.slice(1);
const out = (s) => process.stdout.write(s + '\\n');
const sock = net.connect({ host, port: Number(port) });
sock.setNoDelay(true);
let timer;
sock.on('connect', () => { out('connected'); timer = setInterval(() => sock.write('ping\\n'), Number(intervalMs)); });
sock.on('data', () => out('r'));
sock.on('error', (e) => out('error ' + e.message));
sock.on('close', () => { clearInterval(timer); out('closed'); process.exit(1); });
setTimeout(() => { clearInterval(timer); sock.destroy(); process.exit(0); }, Number(maxMs)).unref();
`;

function agentBin(): string {
  const candidates = [new URL('../bin/slb-agent.js', import.meta.url), new URL('../../bin/slb-agent.js', import.meta.url)];
  for (const c of candidates) {
    const file = fileURLToPath(c);
    if (existsSync(file)) return file;
  }
  throw new Error('flooding lab: bin/slb-agent.js not found');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until cond() holds; resolves with the elapsed ms, or undefined after timeoutMs. */
async function until(cond: () => Promise<boolean>, timeoutMs: number): Promise<number | undefined> {
  const started = Date.now();
  for (;;) {
    if (await cond()) return Date.now() - started;
    if (Date.now() - started >= timeoutMs) return undefined;
    await sleep(POLL_MS);
  }
}

/** Waits until a child prints a line matching re on stdout or stderr; rejects if it exits first. */
function waitForLine(child: ChildProcess, re: RegExp, what: string, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { done(new Error(`flooding lab: ${what} not ready within ${timeoutMs} ms: ${out.slice(-2000)}`)); }, timeoutMs);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (re.test(out)) done();
    };
    const onExit = (code: number | null): void => { done(new Error(`flooding lab: ${what} exited ${code}: ${out.slice(-2000)}`)); };
    const done = (err?: Error): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err); else resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

function kindOf(line: string): string {
  if (/ethertype ARP/.test(line)) return 'arp';
  if (/ethertype IPv4/.test(line)) {
    if (/ICMP/.test(line)) return 'icmp';
    if (/Flags \[/.test(line)) return 'tcp';
    if (/UDP/i.test(line)) return 'udp';
  }
  return 'other';
}

/** The lab, built and running: A's connection established through the LB to C. */
export interface FloodingLab {
  readonly lab: Lab;
  readonly net: Subnet;
  readonly vip: string;
  readonly hosts: Record<string, { address: string; mac: string }>;
  /** dynamic FDB entries of both bridges */
  fdb(): Promise<FdbSnapshot>;
  /** whether beta has an entry for A's MAC */
  betaKnowsA(): Promise<boolean>;
  /** `ip neigh show dev eth0` in a role's namespace, one entry a line */
  neighbours(role: 'a' | 'c'): Promise<string[]>;
  /** replies A's client has received so far */
  replies(): number;
  /** TCP connections A's client has opened */
  connections(): number;
  /** starts the pinger on C and waits until it runs */
  startPinger(kind: PingerKind, intervalSec: number): Promise<void>;
  /** the stray-traffic controls, checked in the namespaces */
  verifyControls(): Promise<{ lines: string[]; ok: boolean }>;
  /** D's capture of frames to A, and beta's trunk capture of frames from A */
  captureAtD(): Promise<Capture>;
  captureFromA(): Promise<Capture>;
  close(): Promise<void>;
}

/** Builds the topology, programs the LB, prepares C and starts A's client. */
export async function createFloodingLab(opts: { ageingSec: number; requestIntervalMs: number; maxRunMs: number }): Promise<FloodingLab> {
  const lab = await createLab();
  let plane: NftablesDataPlane | undefined;
  let tmp: string | undefined;
  try {
    const net = await lab.subnet();
    const vip = net.host(VIP_HOST);
    await lab.addBridge('alpha', { ageingSec: opts.ageingSec });
    await lab.addBridge('beta', { ageingSec: opts.ageingSec });
    // the trunk between the switches; bridge ports are named after what hangs on them
    await lab.link('sw-alpha', 'sw-beta', { a: { bridge: 'alpha', ifname: 'trunk' }, b: { bridge: 'beta', ifname: 'trunk' } });
    const hosts: Record<string, { address: string; mac: string }> = {};
    const ownerOf = new Map<string, string>();
    for (const [role, sw] of [['a', 'alpha'], ['lb', 'alpha'], ['gw', 'alpha'], ['c', 'beta'], ['d', 'beta']] as const) {
      await lab.addNamespace(role);
      const [ifc] = await lab.link(role, `sw-${sw}`, { a: { address: net.cidr(HOSTS[role]), ifname: 'eth0' }, b: { bridge: sw, ifname: role } });
      const name = NAMES[role];
      hosts[name] = { address: net.host(HOSTS[role]), mac: ifc.mac };
      ownerOf.set(ifc.mac, name);
    }
    const aMac = hosts['A']!.mac;
    // gw is the segment's router (the seed's gateway): the hosts' default route, nothing routed through it here
    await lab.sysctl('gw', 'net.ipv4.ip_forward', 1);
    for (const role of ['a', 'lb', 'c', 'd'] as const) await lab.exec(role, ['ip', 'route', 'add', 'default', 'via', net.host(HOSTS.gw)]);
    // A and C keep their neighbour entries for the run: no ARP of theirs refreshes a switch
    for (const role of ['a', 'c'] as const) {
      await lab.sysctl(role, 'net/ipv4/neigh/eth0/base_reachable_time_ms', NEIGH_REACHABLE_MS);
      await lab.sysctl(role, 'net/ipv4/neigh/eth0/gc_stale_time', NEIGH_GC_STALE_SEC);
    }
    await lab.sysctl('lb', 'net/ipv4/conf/all/send_redirects', 0);
    await lab.sysctl('lb', 'net/ipv4/conf/eth0/send_redirects', 0);

    await lab.exec('c', [process.execPath, agentBin(), 'rs-setup', '--mode', 'dsr', '--vip', vip, '--interface', 'eth0']);
    await lab.startBackend('c', { id: 'C', tcp: `0.0.0.0:${VIP_PORT}` });
    plane = createNftablesDataPlane({ netns: lab.ns('lb'), cleanupOnClose: true });
    await plane.apply([{
      name: 'web', address: vip, port: VIP_PORT, protocol: 'tcp', scheduler: 'maglev', persistenceMs: 0, mode: 'dsr', interface: 'eth0',
      realServers: [{ id: 'C', address: hosts['C']!.address, port: VIP_PORT, weight: 1, backup: false, healthy: true, drained: false }],
    }]);

    const client = lab.spawn('a', [process.execPath, '-e', CLIENT, vip, String(VIP_PORT), String(opts.requestIntervalMs), String(opts.maxRunMs)]);
    let replies = 0;
    let connections = 0;
    let rest = '';
    client.stdout!.on('data', (d: Buffer) => {
      rest += d.toString();
      const lines = rest.split('\n');
      rest = lines.pop()!;
      for (const l of lines) {
        if (l === 'r') replies++;
        else if (l === 'connected') connections++;
      }
    });
    await waitForLine(client, /^connected$/m, "A's client");
    if (await until(async () => replies >= 2, READY_TIMEOUT_MS) === undefined) throw new Error("flooding lab: A's client gets no replies through the VIP");

    const pingers: ChildProcess[] = [];
    const fdbOf = async (br: 'alpha' | 'beta'): Promise<FdbEntry[]> => {
      const { stdout } = await lab.exec(`sw-${br}`, ['bridge', '-j', '-s', 'fdb', 'show', 'br', br]);
      const raw = JSON.parse(stdout || '[]') as { mac: string; ifname: string; state?: string; flags?: string[]; updated?: number; used?: number; vlan?: number }[];
      return raw
        .filter((e) => e.state !== 'permanent' && e.state !== 'static' && !(e.flags ?? []).includes('self'))
        .map((e) => ({ mac: e.mac, owner: ownerOf.get(e.mac) ?? '?', port: e.ifname, updatedSec: e.updated ?? 0, usedSec: e.used ?? 0 }))
        .sort((x, y) => x.port.localeCompare(y.port) || x.mac.localeCompare(y.mac));
    };

    const fl: FloodingLab = {
      lab, net, vip, hosts,
      fdb: async () => ({ alpha: await fdbOf('alpha'), beta: await fdbOf('beta') }),
      betaKnowsA: async () => (await fdbOf('beta')).some((e) => e.mac === aMac),
      neighbours: async (role) => (await lab.exec(role, ['ip', 'neigh', 'show', 'dev', 'eth0'])).stdout.split('\n').map((l) => l.trim()).filter(Boolean),
      replies: () => replies,
      connections: () => connections,
      async startPinger(kind, intervalSec) {
        const peers = [hosts['A']!.address, hosts['gw']!.address];
        if (kind === 'arping') {
          // stand-in: one broadcast ARP request per peer every interval, like the agent's arp method
          for (const p of peers) pingers.push(lab.spawn('c', ['arping', '-q', '-i', 'eth0', '-W', String(intervalSec), '-c', '1000', p]));
          return;
        }
        tmp ??= await mkdtemp(path.join(tmpdir(), 'slb-flooding-'));
        const config = path.join(tmp, 'pinger.yaml');
        await writeFile(config, [
          'pinger:',
          '  interfaces:',
          '    - name: eth0',
          `      peers: [${peers.join(', ')}]`,
          `      interval: ${intervalSec}s`,
          '      jitter: 0.1',
          '      method: arp',
          '      timeout: 1s',
          '',
        ].join('\n'));
        const child = lab.spawn('c', [process.execPath, agentBin(), 'pinger', '--config', config]);
        pingers.push(child);
        await waitForLine(child, /pinger: ready/, 'slb-agent pinger');
      },
      async verifyControls() {
        const lines: string[] = [];
        let ok = true;
        const check = (good: boolean, line: string): void => {
          lines.push(`${good ? 'ok  ' : 'FAIL'} ${line}`);
          if (!good) ok = false;
        };
        const roles = ['sw-alpha', 'sw-beta', 'a', 'lb', 'gw', 'c', 'd'];
        const v6: string[] = [];
        for (const role of roles) {
          const { stdout: all } = await lab.exec(role, ['cat', '/proc/sys/net/ipv6/conf/all/disable_ipv6']);
          const { stdout: addrs } = await lab.exec(role, ['ip', '-6', '-o', 'addr', 'show']);
          if (all.trim() !== '1' || addrs.trim() !== '') v6.push(role);
        }
        check(v6.length === 0, `IPv6 disabled in every namespace, no IPv6 address anywhere (no RS/ND/MLD)${v6.length ? `: not in ${v6.join(', ')}` : ''}`);
        for (const br of ['alpha', 'beta'] as const) {
          const { stdout } = await lab.exec(`sw-${br}`, ['ip', '-j', '-d', 'link', 'show', 'dev', br]);
          const info = (JSON.parse(stdout) as { linkinfo?: { info_data?: { stp_state?: number; ageing_time?: number; mcast_snooping?: number } } }[])[0]?.linkinfo?.info_data;
          check(info?.stp_state === 0 && info.mcast_snooping === 0, `${br}: STP off, multicast snooping off (the bridge sends no BPDUs, no IGMP queries)`);
          check(info?.ageing_time === Math.round(opts.ageingSec * 100), `${br}: ageing ${(info?.ageing_time ?? 0) / 100} s`);
        }
        for (const role of ['a', 'c'] as const) {
          const { stdout } = await lab.exec(role, ['cat', '/proc/sys/net/ipv4/neigh/eth0/base_reachable_time_ms']);
          check(Number(stdout) === NEIGH_REACHABLE_MS, `${role.toUpperCase()}: neighbour base_reachable_time ${Number(stdout) / 1000} s (no ARP re-resolution during the run)`);
        }
        return { lines, ok };
      },
      captureAtD: () => lab.capture('d', 'eth0', `ether dst ${aMac}`),
      captureFromA: () => lab.capture('sw-beta', 'trunk', `ether src ${aMac}`),
      async close() {
        await Promise.all(pingers.map((p) => new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) { resolve(); return; }
          const t = setTimeout(() => { p.kill('SIGKILL'); resolve(); }, 3_000);
          p.once('exit', () => { clearTimeout(t); resolve(); });
          p.kill('SIGTERM');
        })));
        await plane?.close().catch(() => undefined);
        await lab.close();
        if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
      },
    };
    return fl;
  } catch (err) {
    await plane?.close().catch(() => undefined);
    await lab.close();
    if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Runs both phases: pinger off until beta has aged A out, D listens for a window; then the pinger
 * on until beta knows A again, D listens for longer than the ageing time. Always cleans up.
 */
export async function runFloodingLab(opts: FloodingOptions = {}): Promise<FloodingReport> {
  const ageingSec = opts.ageingSec ?? 10;
  const requestIntervalMs = opts.requestIntervalMs ?? 150;
  const pingerIntervalSec = opts.pingerIntervalSec ?? 3;
  const offWindowSec = opts.offWindowSec ?? 3;
  const onWindowSec = opts.onWindowSec ?? ageingSec + 3;
  const pinger = opts.pinger ?? 'slb-agent';
  const log = opts.log ?? ((): void => undefined);
  if (pingerIntervalSec * 1.1 + 1 >= ageingSec) throw new Error('flooding lab: the pinger interval (with jitter and timeout) must stay below the ageing time');
  const ageingMs = ageingSec * 1000;
  // a generous bound for the whole run; the client is killed by close() before it
  const maxRunMs = 4 * ageingMs + (offWindowSec + onWindowSec) * 1000 + 60_000;

  log(`building the lab (ageing ${ageingSec} s)`);
  const fl = await createFloodingLab({ ageingSec, requestIntervalMs, maxRunMs });
  try {
    const controls = await fl.verifyControls();
    const fdbStart = await fl.fdb();
    if (!fdbStart.beta.some((e) => e.owner === 'A')) throw new Error('flooding lab: beta never learned A from the initial ARP exchange');

    // ---- pinger off: beta ages A out, then D receives C's replies to A ----
    log('pinger off: waiting for beta to age out A');
    const fromAOff = await fl.captureFromA();
    const forgotMs = await until(async () => !(await fl.betaKnowsA()), ageingMs + 5_000);
    if (forgotMs === undefined) {
      const n = (await fromAOff.stop()).count;
      throw new Error(`flooding lab: beta still knows A after ${ageingSec + 5} s (${n} frames from A entered beta)`);
    }
    log(`beta forgot A after ${(forgotMs / 1000).toFixed(1)} s; D listens for ${offWindowSec} s`);
    const off = await listenAtD(fl, offWindowSec * 1000, fromAOff, forgotMs);

    // ---- pinger on: beta learns A again and keeps it for longer than the ageing time ----
    log(`pinger on (${pinger}, every ${pingerIntervalSec} s)`);
    const fromAOn = await fl.captureFromA();
    await fl.startPinger(pinger, pingerIntervalSec);
    const learnedMs = await until(() => fl.betaKnowsA(), pingerIntervalSec * 2000 + 5_000);
    if (learnedMs === undefined) {
      await fromAOn.stop();
      throw new Error('flooding lab: the pinger is on but beta does not learn A');
    }
    log(`beta learned A after ${(learnedMs / 1000).toFixed(1)} s; D listens for ${onWindowSec} s`);
    const on = await listenAtD(fl, onWindowSec * 1000, fromAOn, learnedMs);

    return {
      ageingSec, pinger, pingerIntervalSec, requestIntervalMs, vip: fl.vip, hosts: fl.hosts,
      controls: controls.lines, controlsOk: controls.ok, fdbStart, off, on, connections: fl.connections(),
    };
  } finally {
    await fl.close();
  }
}

/** D listens for windowMs; the phase's trunk capture (frames from A) stops with it. */
async function listenAtD(fl: FloodingLab, windowMs: number, fromA: Capture, transitionMs: number): Promise<PhaseResult> {
  const atD = await fl.captureAtD();
  const replies0 = fl.replies();
  const started = Date.now();
  await sleep(windowMs);
  const replies = fl.replies() - replies0;
  const measured = Date.now() - started;
  const d = await atD.stop();
  const a = await fromA.stop();
  const floodedKinds: Record<string, number> = {};
  for (const l of d.lines) floodedKinds[kindOf(l)] = (floodedKinds[kindOf(l)] ?? 0) + 1;
  const neighbours = { A: await fl.neighbours('a'), C: await fl.neighbours('c') };
  return { floodedAtD: d.count, floodedKinds, fromAIntoBeta: a.count, replies, windowMs: measured, transitionMs, fdb: await fl.fdb(), neighbours };
}

function fdbLines(s: FdbSnapshot, ageingSec: number): string[] {
  const out: string[] = [];
  for (const br of ['alpha', 'beta'] as const) {
    const entries = s[br];
    out.push(`    ${br}:${entries.length === 0 ? ' (no dynamic entries)' : ''}`);
    for (const e of entries) {
      const left = Math.max(0, ageingSec - e.updatedSec);
      out.push(`      ${e.mac}  ${e.owner.padEnd(2)}  port ${e.port.padEnd(5)}  updated ${String(e.updatedSec).padStart(2)} s ago (ages out in ~${left} s), used ${e.usedSec} s ago`);
    }
  }
  return out;
}

/** The report `npm run lab:flooding` prints. */
export function formatFloodingReport(r: FloodingReport): string {
  const h = (role: string): string => `${r.hosts[role]?.address ?? '?'} ${r.hosts[role]?.mac ?? '?'}`;
  const kinds = (k: Record<string, number>): string => Object.entries(k).map(([n, c]) => `${n} ${c}`).join(', ') || 'none';
  const phase = (p: PhaseResult): string[] => [
    `  D received ${p.floodedAtD} unicast frames to A's MAC in ${(p.windowMs / 1000).toFixed(1)} s (${kinds(p.floodedKinds)}); A got ${p.replies} replies meanwhile`,
    `  frames from A's MAC entering beta over the trunk: ${p.fromAIntoBeta}`,
    `  neighbours: A: ${p.neighbours.A.join('; ') || 'none'}`,
    `              C: ${p.neighbours.C.join('; ') || 'none'}`,
  ];
  return [
    'unicast flooding in DSR (issue 6)',
    '',
    'topology:',
    `  switch alpha: A (${h('A')}), LB (${h('LB')}), gw (${h('gw')}), trunk`,
    `  switch beta:  C (${h('C')}), D (${h('D')}), trunk`,
    `  VIP ${r.vip}:80 on the LB, nftables dsr -> C; C answers A directly`,
    `  ageing ${r.ageingSec} s on both bridges; A sends a request every ${r.requestIntervalMs} ms on one TCP connection (${r.connections} connection${r.connections === 1 ? '' : 's'} opened)`,
    '',
    'controls:',
    ...r.controls.map((l) => `  ${l}`),
    '',
    'FDB with traffic established:',
    ...fdbLines(r.fdbStart, r.ageingSec),
    '',
    `pinger off: beta aged A out after ${(r.off.transitionMs / 1000).toFixed(1)} s`,
    ...phase(r.off),
    '  FDB:',
    ...fdbLines(r.off.fdb, r.ageingSec),
    '',
    `pinger on (${r.pinger}, ARP to A and gw every ${r.pingerIntervalSec} s): beta learned A again after ${(r.on.transitionMs / 1000).toFixed(1)} s`,
    ...phase(r.on),
    '  FDB:',
    ...fdbLines(r.on.fdb, r.ageingSec),
    '',
  ].join('\n');
}

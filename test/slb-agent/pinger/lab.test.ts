/**
 * The pinger against real peers in network namespaces (root; CI runs as root): the standalone
 * `slb-agent pinger --config` in one namespace, peers in others on one bridge, its API reached
 * from the test through a host port on the same bridge.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab } from '../../../lab/netns.js';
import type { Lab, LabIface, Subnet } from '../../../lab/netns.js';
import type { PingerStatus } from '../../../slb-agent/pinger/pinger.js';
import { ROOT } from '../../helpers/server.js';
import { watchNode } from '../../helpers/cli.js';

const BIN = path.join(ROOT, 'bin/slb-agent.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Running {
  readonly proc: ChildProcess;
  readonly lines: Record<string, unknown>[];
  readonly api: string;
  status(): Promise<PingerStatus>;
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

let lab: Lab;
let net: Subnet;
let dir: string;
let a: LabIface;
let b: LabIface;
let port = 9300;

/** Polls `fn` until it returns a value (bounded by `ms`). */
async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

async function children(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const t of await readdir(`/proc/${pid}/task`)) {
    const text = await readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => '');
    out.push(...text.trim().split(/\s+/).filter(Boolean).map(Number));
  }
  return out;
}

async function startPinger(block: string): Promise<Running> {
  const p = port++;
  const file = path.join(dir, `pinger-${p}.yaml`);
  await writeFile(file, `${block}api: ${net.host(2)}:${p}\n`);
  const node = watchNode(lab.spawn('pinger', [process.execPath, BIN, 'pinger', '--config', file]), 'pinger');
  const { proc, lines } = node;
  const api = `http://${net.host(2)}:${p}`;
  await waitFor(`pinger ready (${node.stderr()})`, async () => {
    if (proc.exitCode !== null) throw new Error(`pinger exited ${proc.exitCode}: ${node.stderr()}`);
    return lines.some((l) => l['msg'] === 'pinger: api listening') ? true : undefined;
  });
  return {
    proc, lines, api,
    status: async () => ((await (await fetch(`${api}/status`)).json()) as { pinger: PingerStatus }).pinger,
    metrics: async () => (await fetch(`${api}/metrics`)).text(),
    stop: async () => { await node.stop(); },
  };
}

const peer = (s: PingerStatus, address: string) => s.interfaces[0]!.peers.find((p) => p.address === address);

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pinger-lab-'));
  lab = await createLab({ prefix: 'pgt' });
  net = await lab.subnet();
  await lab.addBridge('br0');
  for (const r of ['pinger', 'a', 'b']) await lab.addNamespace(r);
  await lab.attach('host', 'br0', { address: net.cidr(1) });
  await lab.attach('pinger', 'br0', { address: net.cidr(2) });
  a = await lab.attach('a', 'br0', { address: net.cidr(3) });
  b = await lab.attach('b', 'br0', { address: net.cidr(4) });
  // a second address on one interface answers ARP as well; .9 plays the VIP
  await lab.exec('b', ['ip', 'addr', 'add', net.cidr(5), 'dev', 'eth0']);
  await lab.exec('b', ['ip', 'addr', 'add', net.cidr(9), 'dev', 'eth0']);
});

afterAll(async () => {
  await lab?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('pinger in a lab', () => {
  it('arp: real peers answer with their MACs; no process per probe; /status and /metrics; a peer gone is reported and its recovery too', async () => {
    const run = await startPinger(`pinger:
  interfaces:
    - name: eth0
      peers: [${net.host(3)}, ${net.host(4)}, ${net.host(5)}]
      interval: 500ms
      timeout: 200ms
      method: arp
`);
    try {
      expect(run.lines.find((l) => l['msg'] === 'pinger: ready')).toMatchObject({ interfaces: [{ name: 'eth0', method: 'arp', source: net.host(2) }] });
      const s = await waitFor('answers from every peer', async () => {
        const st = await run.status();
        return st.interfaces[0]!.peers.every((p) => p.answered >= 2) ? st : undefined;
      });
      expect(peer(s, net.host(3))).toMatchObject({ mac: a.mac, answering: true, consecutiveFailures: 0 });
      expect(peer(s, net.host(4))).toMatchObject({ mac: b.mac, answering: true });
      expect(peer(s, net.host(5))).toMatchObject({ mac: b.mac, answering: true });
      for (const p of s.interfaces[0]!.peers) {
        expect(p.lastRttMs).toBeGreaterThanOrEqual(0);
        expect(p.srttMs).toBeGreaterThanOrEqual(0);
        expect(p.lastAnswerAt).toBeGreaterThan(0);
      }
      // probing runs in the process itself: it has no children, sampled across several rounds
      for (let i = 0; i < 10; i++) {
        expect(await children(run.proc.pid!)).toEqual([]);
        await sleep(100);
      }
      const text = await run.metrics();
      expect(text).toMatch(new RegExp(`slb_pinger_probes_answered_total\\{interface="eth0",peer="${net.host(3).replaceAll('.', '\\.')}",method="arp"\\} [1-9]`));
      expect(text).toContain(`slb_pinger_peer_answering{interface="eth0",peer="${net.host(4)}",method="arp"} 1`);

      await lab.exec('a', ['ip', 'link', 'set', 'eth0', 'down']);
      const down = await waitFor('peer a reported not answering', async () => {
        const p = peer(await run.status(), net.host(3));
        return p?.answering === false ? p : undefined;
      });
      expect(down.consecutiveFailures).toBeGreaterThanOrEqual(3);
      const warn = run.lines.find((l) => l['msg'] === `pinger: peer ${net.host(3)} on eth0 not answering`);
      expect(warn).toMatchObject({ level: 40, peer: net.host(3), interface: 'eth0' });
      expect(peer(await run.status(), net.host(4))?.answering).toBe(true);

      await lab.exec('a', ['ip', 'link', 'set', 'eth0', 'up']);
      await waitFor('recovery logged', async () => (run.lines.some((l) => l['msg'] === `pinger: peer ${net.host(3)} on eth0 answering again`) ? true : undefined));
      expect(peer(await run.status(), net.host(3))).toMatchObject({ answering: true, consecutiveFailures: 0, mac: a.mac });
      expect(run.lines.filter((l) => String(l['msg']).includes('not answering'))).toHaveLength(1);
    } finally {
      await run.stop();
    }
  });

  it.each(['icmp', 'udp'] as const)('%s: real peers answer', async (method) => {
    const run = await startPinger(`pinger:
  interfaces:
    - name: eth0
      peers: [${net.host(3)}, ${net.host(4)}]
      interval: 500ms
      timeout: 300ms
      method: ${method}
`);
    try {
      const s = await waitFor(`${method} answers`, async () => {
        const st = await run.status();
        return st.interfaces[0]!.peers.every((p) => p.answered >= 2) ? st : undefined;
      });
      for (const p of s.interfaces[0]!.peers) expect(p).toMatchObject({ answering: true, consecutiveFailures: 0 });
      expect(await children(run.proc.pid!)).toEqual([]);
    } finally {
      await run.stop();
    }
  });

  it('auto: probes the neighbours on the interface, never the VIP or the host\'s own addresses', async () => {
    // the pinger host has talked to .3, .4 and the VIP .9: all three are in its neighbour table
    for (const n of [3, 4, 9]) await lab.exec('pinger', ['ping', '-c', '1', '-W', '2', net.host(n)]);
    const { stdout } = await lab.exec('pinger', ['ip', '-j', 'neigh', 'show', 'dev', 'eth0']);
    const table = (JSON.parse(stdout) as { dst: string }[]).map((n) => n.dst);
    expect(table).toEqual(expect.arrayContaining([net.host(3), net.host(4), net.host(9)]));
    const run = await startPinger(`pinger:
  interfaces:
    - name: eth0
      peers: [auto]
      interval: 500ms
      timeout: 200ms
  exclude: [${net.host(9)}]
`);
    try {
      const s = await waitFor('auto peers answering', async () => {
        const st = await run.status();
        const ps = st.interfaces[0]!.peers;
        return [3, 4].every((n) => (ps.find((p) => p.address === net.host(n))?.answered ?? 0) >= 1) ? st : undefined;
      });
      const addrs = s.interfaces[0]!.peers.map((p) => p.address);
      expect(addrs).toEqual(expect.arrayContaining([net.host(3), net.host(4)]));
      expect(addrs).not.toContain(net.host(9));
      expect(addrs).not.toContain(net.host(2));
      for (const p of s.interfaces[0]!.peers) expect(p.auto).toBe(true);
    } finally {
      await run.stop();
    }
  });
});

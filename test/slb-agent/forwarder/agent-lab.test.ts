/**
 * The real slb-agent process forwarding a kernel VIP in a network-namespace lab: the agent runs
 * inside the LB namespace (its API on 127.0.0.1 there, read with curl in that namespace), checks
 * three real servers over TCP and programs nftables; the test process in the root namespace is the
 * client. A real server whose backend is killed gets no new connections once its check marks it
 * down while an open connection to a survivor keeps working, and gets them again after a restart
 * (dsr with maglev, and full nat). On SIGTERM the kernel forwarding stays and keeps serving, a
 * second agent on the same file converges without errors, and `--cleanup-on-exit` removes it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, Lab } from '../../../lab/netns.js';
import { watchNode } from '../../helpers/cli.js';
import type { NodeProc } from '../../helpers/cli.js';
import type { AgentStatus, VipFullStatus } from '../../../slb-agent/agent.js';
import { buildKernelLab } from './kernel-lab.js';
import type { KernelLab } from './kernel-lab.js';
import { connect, exchange, ping, tally } from './suite.js';
import type { Conn } from './suite.js';
import { poll as pollUntil } from '../../helpers/poll.js';

const BIN = fileURLToPath(new URL('../../../bin/slb-agent.js', import.meta.url));
/** not one of the kernel lab's own backend ports: these backends are killed and restarted */
const PORT = 9090;
const API = '127.0.0.1:9100';
const ROLES = ['rsa', 'rsb', 'rsc'] as const;
type Role = (typeof ROLES)[number];
const IDS = { rsa: 'A', rsb: 'B', rsc: 'C' } as const;
/** new connections per spread check: a server missed by chance is (2/3)^30 unlikely */
const SPREAD = 30;
const POLL_MS = 15_000;


/** The slb-agent process in the LB namespace, with its JSON log lines. */
type AgentProc = NodeProc;

function startAgent(lab: Lab, file: string, extra: string[] = []): AgentProc {
  return watchNode(lab.spawn('lb', [process.execPath, BIN, '--config', file, ...extra]), 'slb-agent', 10_000);
}

/** Polls every 100 ms until `ok` (bounded); the error carries the last value seen. */
function poll<T>(probe: () => Promise<T>, ok: (v: T) => boolean, what: string, ms = POLL_MS): Promise<T> {
  return pollUntil(probe, ok, what, ms, 100, 4000);
}

async function status(lab: Lab): Promise<AgentStatus> {
  const { stdout } = await lab.exec('lb', ['curl', '-sS', '--fail', '--max-time', '2', `http://${API}/status`], { timeoutMs: 5_000 });
  return JSON.parse(stdout) as AgentStatus;
}

const web = (s: AgentStatus): VipFullStatus => {
  const v = s.vips.find((x) => x.name === 'web');
  if (v === undefined) throw new Error('no VIP web in the status');
  return v;
};

/** The agent applied every change it knows of, and each real server serves as `serving` says. */
async function converged(kl: KernelLab, serving: Record<Role, boolean>, what: string): Promise<AgentStatus> {
  return poll(() => status(kl.lab), (s) => {
    const v = web(s);
    return s.forwarder?.pending === false && v.forwarder?.lastApply?.ok === true
      && ROLES.every((role) => v.realServers.find((rs) => rs.address === kl.rsAddress(role))?.serving === serving[role]);
  }, what);
}

const rsStatus = (kl: KernelLab, s: AgentStatus, role: Role) => web(s).realServers.find((rs) => rs.address === kl.rsAddress(role))!;

/** Opens `n` connections through the VIP, exchanges a line on each, closes; returns the ids. */
const traffic = (kl: KernelLab, n = SPREAD): Promise<string[]> => exchange(kl.vip, PORT, n);

/** A connection through the VIP that landed on `id` (bounded tries; the others are closed). */
async function connectionTo(kl: KernelLab, id: string): Promise<Conn> {
  for (let i = 0; i < 60; i++) {
    const c = await connect(kl.vip, PORT);
    if (c.id === id) return c;
    c.socket.destroy();
  }
  throw new Error(`no connection landed on ${id} in 60 tries`);
}

async function nftTables(lab: Lab): Promise<string> {
  return (await lab.exec('lb', ['nft', 'list', 'tables'])).stdout;
}

function agentYaml(kl: KernelLab, forwarder: string): string {
  return [
    'site: lab', 'agent: lb1', 'secret: file:secret',
    // nothing listens there inside the LB namespace: reports fail (a warning), which is fine here
    'dns: [ "http://127.0.0.1:1" ]',
    `api: ${API}`,
    'vips:',
    '  - name: web',
    `    address: ${kl.vip}`,
    `    port: ${PORT}`,
    `    forwarder: ${forwarder}`,
    '    check: { type: tcp, interval: 300ms, timeout: 200ms, rise: 1, fall: 1, jitter: 0 }',
    '    realServers:',
    ...ROLES.map((role) => `      - { address: ${kl.rsAddress(role)}, port: ${PORT} }`),
    '',
  ].join('\n');
}

const errorsOf = (a: AgentProc): Record<string, unknown>[] => a.lines.filter((l) => typeof l['level'] === 'number' && l['level'] >= 50);

describe.each([
  { mode: 'dsr' as const, forwarder: '{ mode: dsr, interface: eth0, scheduler: maglev }' },
  { mode: 'nat' as const, forwarder: '{ mode: nat, interface: eth0, scheduler: maglev }' },
])('the slb-agent process forwarding a $mode VIP', ({ mode, forwarder }) => {
  let kl: KernelLab;
  let dir: string;
  let file: string;
  const backends = new Map<Role, Backend>();
  const agents: AgentProc[] = [];
  const open: Conn[] = [];

  beforeAll(async () => {
    kl = await buildKernelLab(mode);
    for (const role of ROLES) backends.set(role, await kl.backend(role, { id: IDS[role], tcp: `0.0.0.0:${PORT}` }));
    dir = await mkdtemp(path.join(os.tmpdir(), 'slb-agent-lab-'));
    file = path.join(dir, 'site.yaml');
    await writeFile(path.join(dir, 'secret'), 'lab-secret-0123456789abcdef\n');
    await writeFile(file, agentYaml(kl, forwarder));
    agents.push(startAgent(kl.lab, file));
  }, 120_000);

  afterAll(async () => {
    for (const c of open) c.socket.destroy();
    for (const a of agents) a.proc.kill('SIGKILL');
    await kl?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('serves from all three; a killed backend gets no new connections once down, an open flow to a survivor keeps working; back after a restart', async () => {
    const agent = agents[0]!;
    const all = { rsa: true, rsb: true, rsc: true };
    await converged(kl, all, 'all three real servers up and applied');
    expect(new Set(await traffic(kl))).toEqual(new Set(['A', 'B', 'C']));

    const kept = await connectionTo(kl, 'A');
    open.push(kept);
    const dead = backends.get('rsc')!;
    dead.process.kill('SIGKILL');
    await poll(async () => dead.process.exitCode !== null || dead.process.signalCode !== null, (x) => x, 'backend C exited', 5_000);
    const down = await converged(kl, { ...all, rsc: false }, 'C marked down and applied');
    expect(rsStatus(kl, down, 'rsc').health.state).toBe('down');

    const after = tally(await traffic(kl));
    expect(after['C'], JSON.stringify(after)).toBeUndefined();
    expect(after['A'], JSON.stringify(after)).toBeGreaterThan(0);
    expect(after['B'], JSON.stringify(after)).toBeGreaterThan(0);
    expect(await ping(kept, 'survives C going down')).toBe('survives C going down');

    backends.set('rsc', await kl.backend('rsc', { id: 'C', tcp: `0.0.0.0:${PORT}` }));
    const up = await converged(kl, all, 'C back up and applied');
    expect(rsStatus(kl, up, 'rsc').health.state).toBe('up');
    expect(new Set(await traffic(kl))).toEqual(new Set(['A', 'B', 'C']));
    expect(await ping(kept, 'survives C coming back')).toBe('survives C coming back');

    expect(up.forwarder).toMatchObject({ planes: ['nftables'], applyErrors: 0, cleanupOnExit: false });
    expect(web(up).forwarder).toMatchObject({ mode, scheduler: 'maglev', plane: 'nftables' });
    expect(errorsOf(agent)).toEqual([]);
  });

  if (mode === 'dsr') {
    it('on SIGTERM the table stays and serves; a second agent converges on it; --cleanup-on-exit removes it', async () => {
      const first = agents[0]!;
      const all = { rsa: true, rsb: true, rsc: true };
      await converged(kl, all, 'all three up before the restart');
      expect(await first.stop()).toBe(0);
      expect(first.lines.some((l) => l['msg'] === 'stopped'), first.stderr()).toBe(true);
      expect(errorsOf(first)).toEqual([]);

      // without cleanupOnExit the kernel keeps forwarding with no agent running
      expect(await nftTables(kl.lab)).toContain('table netdev slb_agent');
      expect(new Set(await traffic(kl))).toEqual(new Set(['A', 'B', 'C']));

      // a busy flow and new flows while the second agent starts: its first apply waits for the
      // checks to settle, so it never programs the real servers as down (their start state)
      const live = await connect(kl.vip, PORT);
      let stop = false;
      const during: string[] = [];
      const busy = (async () => {
        for (let i = 0; !stop && i < 400; i++) {
          expect(await ping(live, `busy${i}`)).toBe(`busy${i}`);
          const c = await connect(kl.vip, PORT);
          during.push(c.id);
          c.socket.destroy();
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      const second = startAgent(kl.lab, file, ['--cleanup-on-exit']);
      agents.push(second);
      const s = await converged(kl, all, 'the second agent converged');
      stop = true;
      await busy;
      expect(await ping(live, 'after the restart')).toBe('after the restart');
      live.socket.destroy();
      expect(during.length).toBeGreaterThan(0);
      expect(s.forwarder).toMatchObject({ planes: ['nftables'], applyErrors: 0, consecutiveFailures: 0, cleanupOnExit: true });
      expect(new Set(await traffic(kl))).toEqual(new Set(['A', 'B', 'C']));
      expect(errorsOf(second)).toEqual([]);

      expect(await second.stop()).toBe(0);
      expect(errorsOf(second)).toEqual([]);
      expect(await nftTables(kl.lab)).not.toContain('slb_agent');
      // the VIP address the first agent put on the interface goes too (the second cleans up)
      expect((await kl.lab.exec('lb', ['ip', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout).not.toContain(`${kl.vip}/32`);
    });
  }
});

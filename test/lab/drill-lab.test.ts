/**
 * The drill lab (drill/lab/topology.ts) as a whole: three dsr sites, two gslb-dns instances fed
 * by every agent, the parent zone on Knot, an unbound resolver (ECS) and a client per region,
 * all behind a core router. Both instances come to answer the pool from health, clients fetch a
 * backend's body through the answer (direct and through their resolver, which follows the
 * region by ECS), a site whose real servers are both killed drops out of both instances'
 * answers and of its region's resolver once the TTL ran out, and tear-down leaves nothing.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../lab/netns.js';
import { createDrillLab, DRILL_LAB_PREFIX } from '../../drill/lab/topology.js';
import type { DrillLab, LabInstance, LabSite } from '../../drill/lab/topology.js';
import { POOLS } from '../../drill/lab/files.js';
import { removeStaleDrillLabs } from '../../drill/lab/stale.js';
import { poll as pollUntil } from '../helpers/poll.js';

/** A bound for convergence, not a latency claim: CI shares both cores with other lab tests. */
const WAIT_MS = 30_000;


/** Polls every 200 ms until `ok` (bounded); the error carries the last value seen. */
function poll<T>(probe: () => Promise<T>, ok: (v: T) => boolean, what: string, ms = WAIT_MS): Promise<T> {
  return pollUntil(probe, ok, what, ms, 200, 2000);
}

const namespacesOf = async (id: string): Promise<string[]> =>
  (await run(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(`${DRILL_LAB_PREFIX}-${id}-`));

describe('the drill lab', () => {
  let dl: DrillLab;

  beforeAll(async () => {
    dl = await createDrillLab({ hostAccess: true });
  }, 120_000);

  afterAll(async () => {
    await dl?.close();
  }, 60_000);

  it('both instances answer the pool from health; a client fetches a backend through the answer', async () => {
    await dl.waitReady(WAIT_MS);
    const name = `${POOLS.all}.${dl.plan.zone}`;
    const vips = dl.sites.map((s) => s.vip).sort();
    for (const i of dl.instances) {
      const answer = await poll(() => dl.dig(dl.regions[0]!.clientRole, i.address, name), (a) => a.length === 3, `${i.name} answering all three VIPs`);
      expect([...answer].sort()).toEqual(vips);
    }
    const client = dl.regions[0]!.clientRole;
    const [vip] = await dl.dig(client, dl.instances[0]!.address, name);
    const site = dl.sites.find((s) => s.vip === vip)!;
    const body = await poll(() => dl.httpGet(client, `http://${vip}/`), (b) => b !== '', `a body through ${vip}`);
    expect(site.realServers.map((rs) => `${rs.id}\n`)).toContain(body);
    // the root namespace reaches the instances' APIs (what a drill runner on the host uses)
    const res = await fetch(`${dl.instances[1]!.api}/api/v1/state`, { headers: { authorization: `Bearer ${dl.adminToken}` }, signal: AbortSignal.timeout(5_000) });
    expect(res.status).toBe(200);
  });

  it('clients resolve through their region\'s resolver (parent zone on Knot, delegation, ECS) and fetch from the answer', async () => {
    await dl.waitReady(WAIT_MS);
    const vips = dl.sites.map((s) => s.vip).sort();
    for (const r of dl.regions) {
      const answer = await poll(() => dl.resolve(r.name, `${POOLS.all}.${dl.plan.zone}`), (a) => a.length === 3, `${r.name}'s resolver answering all three VIPs`);
      expect([...answer].sort()).toEqual(vips);
    }
    // the resolvers are outside every site subnet: only the clients' subnet (ECS) picks the site
    for (const [k, r] of dl.regions.entries()) {
      const site = dl.sites[k]!;
      const [vip, ...more] = await poll(() => dl.resolve(r.name, `${POOLS.geo}.${dl.plan.zone}`), (a) => a.length === 1, `${r.name}'s geo answer`);
      expect({ region: r.name, vip, more }).toEqual({ region: r.name, vip: site.vip, more: [] });
      expect(await dl.httpGet(r.clientRole, `http://${vip}/`)).toMatch(new RegExp(`^${site.name} rs[12]\n$`));
    }
  });

  it('a site whose two real servers are killed drops out of both instances\' answers', async () => {
    await dl.waitReady(WAIT_MS);
    const gone = dl.sites[1]!;
    // a client of the region that site serves, fetching through its resolver as real ones do
    const west = dl.regions[1]!;
    const geo = `${POOLS.geo}.${dl.plan.zone}`;
    const client = dl.startClient(west.name, geo, { intervalMs: 100 });
    const fetched = (l: Record<string, unknown>, site: string): boolean => l['event'] === 'fetch' && l['ok'] === true && String(l['body']).startsWith(`${site} `);
    await client.waitLine((l) => fetched(l, gone.name), WAIT_MS);
    await dl.killRealServer(gone.name, 0);
    await dl.killRealServer(gone.name, 1);
    const name = `${POOLS.all}.${dl.plan.zone}`;
    const rest = dl.sites.filter((s) => s !== gone).map((s) => s.vip).sort();
    for (const i of dl.instances) {
      const answer = await poll(() => dl.dig(dl.regions[1]!.clientRole, i.address, name), (a) => a.length === 2 && !a.includes(gone.vip), `${i.name} without ${gone.vip}`);
      expect([...answer].sort()).toEqual(rest);
    }
    // the client re-resolves after the TTL and fetches from another site
    const after = await client.waitLine((l) => fetched(l, dl.sites[0]!.name) || fetched(l, dl.sites[2]!.name), WAIT_MS);
    const resolves = client.lines.filter((l) => l['event'] === 'resolve');
    expect(resolves.length).toBeGreaterThanOrEqual(2);
    expect(resolves[0]).toMatchObject({ addresses: [gone.vip], ttl: expect.any(Number) });
    expect(rest).toContain(after['address']);
    await client.stop();
    // the region whose site went gets another site through its resolver once the short TTL ran
    // out, and fetches from it
    const moved = await poll(() => dl.resolve(west.name, `${POOLS.geo}.${dl.plan.zone}`), (a) => a.length === 1 && a[0] !== gone.vip, `${west.name}'s geo answer leaving ${gone.vip}`);
    expect(rest).toContain(moved[0]);
    expect(await dl.httpGet(west.clientRole, `http://${moved[0]!}/`)).toMatch(/^site-[ac] rs[12]\n$/);
  });

  it('fault hooks: an agent cut from one instance, an agent killed, an instance killed; each undone', async () => {
    const name = `${POOLS.all}.${dl.plan.zone}`;
    const [a, , c] = dl.sites as [LabSite, LabSite, LabSite];
    const [ns1, ns2] = dl.instances as [LabInstance, LabInstance];
    const client = dl.regions[0]!.clientRole;
    const answers = (i: LabInstance): Promise<string[]> => dl.dig(client, i.address, name);
    // the site emptied above comes back first: every check below starts from a healthy lab
    for (const s of dl.sites) for (const k of s.realServers.keys()) await dl.startRealServer(s.name, k);
    await dl.waitReady(WAIT_MS);
    const has = (vip: string) => (x: string[]): boolean => x.includes(vip);
    const lacks = (vip: string) => (x: string[]): boolean => x.length > 0 && !x.includes(vip);

    // cut from ns2 only: ns2's view of the site goes stale, ns1 keeps hearing it
    await dl.cutAgent(c.name, ns2.name);
    await dl.cutAgent(c.name, ns2.name); // idempotent
    await poll(() => answers(ns2), lacks(c.vip), `ns2 without ${c.name} while cut`);
    expect(await answers(ns1)).toContain(c.vip);
    await dl.healAgent(c.name, ns2.name);
    await dl.healAgent(c.name, ns2.name); // idempotent
    await poll(() => answers(ns2), has(c.vip), `ns2 with ${c.name} again`);

    // kill -9: no goodbye, both instances drop the site once its reports stop
    const pid = a.agent!.pid;
    await dl.killAgent(a.name);
    expect(() => process.kill(pid, 0)).toThrow();
    for (const i of [ns1, ns2]) await poll(() => answers(i), lacks(a.vip), `${i.name} without ${a.name} after its agent was killed`);
    await dl.startAgent(a.name);
    for (const i of [ns1, ns2]) await poll(() => answers(i), has(a.vip), `${i.name} with ${a.name} after its agent restarted`);

    // an instance killed: it answers nothing, the resolver still gets the other's answer
    await dl.killInstance(ns1.name);
    expect(await answers(ns1)).toEqual([]);
    expect((await poll(() => dl.resolve(dl.regions[0]!.name, name), (x) => x.length > 0, 'an answer through the resolver with ns1 down')).length).toBeGreaterThan(0);
    await dl.startInstance(ns1.name);
    await dl.waitReady(WAIT_MS);
    await poll(() => answers(ns1), has(a.vip), 'ns1 answering again');
  });

  it('close() removes every namespace and process of the lab, and is idempotent', async () => {
    const pids = [...dl.instances.map((i) => i.process?.pid), dl.parent?.process.pid, ...dl.regions.map((r) => r.resolverProcess?.pid), ...dl.sites.flatMap((s) => [s.agent?.pid, ...s.realServers.map((rs) => rs.backend?.process.pid)])]
      .filter((p): p is number => p !== undefined && p > 0);
    // 2 instances, knotd, 2 resolvers, 3 agents, 6 real servers
    expect(pids.length).toBe(14);
    expect((await namespacesOf(dl.lab.id)).length).toBeGreaterThan(10);
    await dl.close();
    await dl.close();
    expect(await namespacesOf(dl.lab.id)).toEqual([]);
    const alive = pids.filter((pid) => { try { process.kill(pid, 0); return true; } catch { return false; } });
    expect(alive).toEqual([]);
  });
});

describe('removeStaleDrillLabs', () => {
  const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };
  let ns = '';
  let dir = '';
  let sleeper: ChildProcess | undefined;

  afterAll(async () => {
    sleeper?.kill('SIGKILL');
    if (ns !== '') await run(['ip', 'netns', 'del', ns]).catch(() => undefined);
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('removes a dead creator\'s namespace, the processes still in it and its run directory; a live one\'s stays', async () => {
    // a PID nobody has: the creator of the "crashed" lab
    const max = Number((await readFile('/proc/sys/kernel/pid_max', 'utf8')).trim());
    let dead = max - 1;
    while (alive(dead)) dead--;
    const id = `${dead.toString(36)}-0`;
    ns = `${DRILL_LAB_PREFIX}-${id}-core`;
    await run(['ip', 'netns', 'add', ns]);
    sleeper = spawn('ip', ['netns', 'exec', ns, 'sleep', '60'], { stdio: 'ignore' });
    await poll(async () => (await run(['ip', 'netns', 'pids', ns])).stdout.trim(), (s) => s !== '', 'the sleeper in the namespace');
    const prefix = path.join(os.tmpdir(), `drl-stale-test-${process.pid}-`);
    dir = `${prefix}${id}-abc`;
    const mine = `${prefix}${process.pid.toString(36)}-0-abc`;
    await mkdir(dir, { recursive: true });
    await mkdir(mine, { recursive: true });
    try {
      const removed = await removeStaleDrillLabs(DRILL_LAB_PREFIX, prefix);
      expect(removed).toEqual(expect.arrayContaining([ns, dir]));
      expect(removed).not.toContain(mine);
      expect((await run(['ip', 'netns', 'list'])).stdout).not.toContain(ns);
      await poll(async () => sleeper!.exitCode !== null || sleeper!.signalCode !== null, (x) => x, 'the sleeper killed', 5_000);
      expect(existsSync(dir)).toBe(false);
      expect(existsSync(mine)).toBe(true);
    } finally {
      await rm(mine, { recursive: true, force: true });
    }
  });
});

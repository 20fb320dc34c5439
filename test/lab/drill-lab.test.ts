/**
 * The drill lab (drill/lab/topology.ts) as a whole: three dsr sites, two gslb-dns instances fed
 * by every agent, the parent zone on Knot, an unbound resolver (ECS) and a client per region,
 * all behind a core router. Both instances come to answer the pool from health, clients fetch a
 * backend's body through the answer (direct and through their resolver, which follows the
 * region by ECS), a site whose real servers are both killed drops out of both instances'
 * answers and of its region's resolver once the TTL ran out, and tear-down leaves nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../lab/netns.js';
import { createDrillLab, DRILL_LAB_PREFIX } from '../../drill/lab/topology.js';
import type { DrillLab } from '../../drill/lab/topology.js';
import { POOLS } from '../../drill/lab/files.js';

/** A bound for convergence, not a latency claim: CI shares both cores with other lab tests. */
const WAIT_MS = 30_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls every 200 ms until `ok` (bounded); the error carries the last value seen. */
async function poll<T>(probe: () => Promise<T>, ok: (v: T) => boolean, what: string, ms = WAIT_MS): Promise<T> {
  const end = performance.now() + ms;
  for (;;) {
    let last: string;
    try {
      const v = await probe();
      if (ok(v)) return v;
      last = JSON.stringify(v);
    } catch (err) {
      last = (err as Error).message;
    }
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}; last: ${last.slice(0, 2000)}`);
    await sleep(200);
  }
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
    await dl.killRealServer(gone.name, 0);
    await dl.killRealServer(gone.name, 1);
    const name = `${POOLS.all}.${dl.plan.zone}`;
    const rest = dl.sites.filter((s) => s !== gone).map((s) => s.vip).sort();
    for (const i of dl.instances) {
      const answer = await poll(() => dl.dig(dl.regions[1]!.clientRole, i.address, name), (a) => a.length === 2 && !a.includes(gone.vip), `${i.name} without ${gone.vip}`);
      expect([...answer].sort()).toEqual(rest);
    }
    // the region whose site went gets another site through its resolver once the short TTL ran
    // out, and fetches from it
    const west = dl.regions[1]!;
    const moved = await poll(() => dl.resolve(west.name, `${POOLS.geo}.${dl.plan.zone}`), (a) => a.length === 1 && a[0] !== gone.vip, `${west.name}'s geo answer leaving ${gone.vip}`);
    expect(rest).toContain(moved[0]);
    expect(await dl.httpGet(west.clientRole, `http://${moved[0]!}/`)).toMatch(/^site-[ac] rs[12]\n$/);
  });

  it('close() removes every namespace and process of the lab, and is idempotent', async () => {
    const pids = [...dl.instances.map((i) => i.process?.pid), dl.parent?.process.pid, ...dl.regions.map((r) => r.resolverProcess?.pid), ...dl.sites.flatMap((s) => [s.agent?.pid, ...s.realServers.map((rs) => rs.backend?.process.pid)])]
      .filter((p): p is number => p !== undefined && p > 0);
    // 2 instances, knotd, 2 resolvers, 3 agents, 6 real servers less the 2 killed above
    expect(pids.length).toBe(12);
    expect((await namespacesOf(dl.lab.id)).length).toBeGreaterThan(10);
    await dl.close();
    await dl.close();
    expect(await namespacesOf(dl.lab.id)).toEqual([]);
    const alive = pids.filter((pid) => { try { process.kill(pid, 0); return true; } catch { return false; } });
    expect(alive).toEqual([]);
  });
});

/**
 * The etcd OverrideStore in process, against a real 3-member etcd cluster on loopback: two
 * stores (two instances' GslbStates) share one prefix; the guard holds across them when they
 * write at the same moment; the stored records carry actor and reason; bad records are ignored.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Etcd3 } from 'etcd3';
import { createEtcdOverrideStore, etcdKey, parseEtcdLocation } from '../../../dns/gslb/overrides-etcd.js';
import { loadOverrides } from '../../../dns/gslb/overrides-store.js';
import type { OverrideStore } from '../../../dns/gslb/overrides-store.js';
import type { GslbConfig, PoolConfig } from '../../../dns/gslb/model.js';
import { GslbState } from '../../../dns/gslb/state.js';
import { createGslbConfig, makeReport } from '../../helpers/gslb-state-fixture.js';
import { startEtcdCluster } from '../../helpers/etcd.js';
import type { EtcdCluster } from '../../helpers/etcd.js';

function guarded(minServing: number): GslbConfig {
  const c = createGslbConfig();
  const www = { ...c.pools.get('www')!, guard: { minServing } } satisfies PoolConfig;
  return { sites: c.sites, pools: new Map([['www', www]]), byName: new Map(www.names.map((n) => [n, www])) };
}

let cluster: EtcdCluster;
let dir: string;
const stores: OverrideStore[] = [];
let n = 0;

beforeAll(async () => {
  cluster = await startEtcdCluster(3);
  dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-etcd-store-'));
}, 120_000);

afterAll(async () => {
  for (const s of stores) await s.close();
  await cluster?.close();
  await rm(dir, { recursive: true, force: true });
});

/** `count` instances sharing a fresh prefix, every member of www reported up. */
async function instances(count: number, minServing = 2): Promise<{ prefix: string; nodes: { state: GslbState; store: OverrideStore; stateDir: string }[] }> {
  const prefix = `/store-test-${++n}/`;
  const nodes = [];
  for (let i = 0; i < count; i++) {
    const state = new GslbState(guarded(minServing));
    state.applyReport(makeReport('tokyo', 1));
    state.applyReport(makeReport('osaka', 1));
    const stateDir = path.join(dir, `${n}-${i}`);
    const store = createEtcdOverrideStore({ state, location: parseEtcdLocation(`etcd://${cluster.endpoints}${prefix}`), stateDir, log: pino({ level: 'silent' }) });
    stores.push(store);
    await store.start();
    nodes.push({ state, store, stateDir });
  }
  return { prefix, nodes };
}

async function eventually(check: () => void | Promise<void>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

describe('parseEtcdLocation', () => {
  it('reads hosts and a prefix', () => {
    expect(parseEtcdLocation('etcd://127.0.0.1:2379,[::1]:2479/gslb/overrides')).toEqual({ hosts: ['http://127.0.0.1:2379', 'http://[::1]:2479'], prefix: '/gslb/overrides/' });
  });

  it.each(['http://127.0.0.1:2379/x', 'etcd://127.0.0.1:2379', 'etcd://127.0.0.1:2379/', 'etcd://127.0.0.1/x', 'etcd://127.0.0.1:99999/x', 'etcd:///x'])('refuses %s', (text) => {
    expect(() => parseEtcdLocation(text)).toThrow(/expected|HOST:PORT|PREFIX/);
  });
});

describe('etcd override store', () => {
  it('one write per action, with actor and reason, applied by the other instance and cached', async () => {
    const { prefix, nodes: [a, b] } = await instances(2);
    expect(await a!.store.apply('drain', { site: 'tokyo', address: '192.0.2.1' }, { actor: 'alice', reason: 'patching' })).toEqual({ ok: true, changed: true });
    await eventually(() => expect(b!.state.listOverrides()).toMatchObject([{ action: 'drain', site: 'tokyo', address: '192.0.2.1', actor: 'alice', reason: 'patching' }]));
    const client = new Etcd3({ hosts: parseEtcdLocation(`etcd://${cluster.endpoints}/x`).hosts as string[] });
    try {
      const raw = JSON.parse((await client.get(etcdKey(prefix, { site: 'tokyo', address: '192.0.2.1' })).string())!) as Record<string, unknown>;
      expect(raw).toMatchObject({ action: 'drain', site: 'tokyo', address: '192.0.2.1', actor: 'alice', reason: 'patching' });

      // a record that does not fit its key or the schema is ignored, the rest stays in force
      await client.put(`${prefix}site/osaka`).value('{"action":"explode","site":"osaka"}');
      await client.put(`${prefix}site/nowhere-else`).value(JSON.stringify({ action: 'drain', site: 'tokyo', at: 'x' }));
      await new Promise((r) => setTimeout(r, 300));
      expect(b!.state.listOverrides().map((o) => `${o.action} ${o.site} ${o.address ?? ''}`)).toEqual(['drain tokyo 192.0.2.1']);
    } finally {
      client.close();
    }
    await eventually(async () => expect(await loadOverrides(b!.stateDir)).toMatchObject([{ action: 'drain', site: 'tokyo', actor: 'alice' }]));
    expect(b!.store.status()).toMatchObject({ kind: 'etcd', reachable: true, lastError: null, source: 'store' });
  }, 30_000);

  it('two instances draining at the same moment cannot both pass the guard', async () => {
    // www: tokyo .1, tokyo .2, osaka 198.51.100.1 all serving; minServing 2 allows one drain
    const { nodes: [a, b] } = await instances(2, 2);
    const [ra, rb] = await Promise.all([
      a!.store.apply('drain', { site: 'tokyo', address: '192.0.2.1' }, { actor: 'alice' }),
      b!.store.apply('drain', { site: 'osaka', address: '198.51.100.1' }, { actor: 'bob' }),
    ]);
    const results = [ra!, rb!];
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok && r.status === 409)).toHaveLength(1);
    await eventually(() => {
      expect(a!.state.listOverrides()).toHaveLength(1);
      expect(b!.state.listOverrides()).toEqual(a!.state.listOverrides());
    });
  }, 30_000);
});

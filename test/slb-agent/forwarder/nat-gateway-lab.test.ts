/**
 * The nftables plane's nat mode with the LB as the real servers' gateway, in a network-namespace
 * lab with two bridges: front (the test process in the root namespace is the client, and the LB's
 * eth0 with the VIP) and back (the LB's eth1 and two real servers whose default route is the LB).
 * With `snat: false` (DNAT only) the real servers see the client's own address, and the replies
 * find their way back through the LB's conntrack; with `snat: true` (full NAT) they see the LB's
 * back address instead. The VIP port differs from the real servers' port: nat rewrites both.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Lab, Subnet } from '../../../lab/netns.js';
import { createLab } from '../../../lab/netns.js';
import type { VipSpec } from '../../../slb-agent/forwarder/data-plane.js';
import { createNftablesDataPlane } from '../../../slb-agent/forwarder/nftables/index.js';
import { connect, ping, tally } from './suite.js';

const VIP_PORT = 8000;
const RS_PORT = 8080;
const RS = { rsa: { id: 'A', host: 11 }, rsb: { id: 'B', host: 12 } } as const;
const ROLES = ['rsa', 'rsb'] as const;

let lab: Lab;
let front: Subnet;
let back: Subnet;
let vip: string;
let client: string;
/** the LB's address on the back bridge: the real servers' gateway */
let lbBack: string;

beforeAll(async () => {
  lab = await createLab();
  try {
    front = await lab.subnet();
    back = await lab.subnet();
    vip = front.host(100);
    client = front.host(1);
    lbBack = back.host(1);
    const fsw = await lab.addBridge('front');
    const bsw = await lab.addBridge('back');
    await lab.attach('host', fsw, { address: front.cidr(1) });
    await lab.addNamespace('lb');
    await lab.attach('lb', fsw, { address: front.cidr(2), ifname: 'eth0' });
    await lab.attach('lb', bsw, { address: back.cidr(1), ifname: 'eth1' });
    for (const role of ROLES) {
      await lab.addNamespace(role);
      await lab.attach(role, bsw, { address: back.cidr(RS[role].host), ifname: 'eth0' });
      await lab.exec(role, ['ip', 'route', 'add', 'default', 'via', lbBack]);
      await lab.startBackend(role, { id: RS[role].id, tcp: `0.0.0.0:${RS_PORT}` });
    }
  } catch (err) {
    await lab.close();
    throw err;
  }
}, 120_000);

afterAll(() => lab?.close(), 60_000);

function spec(snat: boolean): VipSpec {
  return {
    name: 'web', address: vip, port: VIP_PORT, protocol: 'tcp', scheduler: 'rr', persistenceMs: 0,
    mode: 'nat', interface: 'eth0', snat,
    realServers: ROLES.map((role) => ({
      id: `${back.host(RS[role].host)}:${RS_PORT}`, address: back.host(RS[role].host), port: RS_PORT,
      weight: 1, backup: false, healthy: true, drained: false,
    })),
  };
}

/** Opens `n` connections through the VIP, exchanges a line on each, closes; returns the ids. */
async function traffic(n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = await connect(vip, VIP_PORT);
    expect(await ping(c, `x${i}`)).toBe(`x${i}`);
    ids.push(c.id);
    c.socket.end();
    await c.rest();
  }
  return ids;
}

/** Packets the real servers receive for their port, per source: the client's vs the LB's back address. */
async function sourcesSeen(run: () => Promise<void>): Promise<Record<(typeof ROLES)[number], { client: number; lb: number }>> {
  const caps = await Promise.all(ROLES.flatMap((role) => [
    lab.capture(role, 'eth0', `tcp and dst port ${RS_PORT} and src host ${client}`),
    lab.capture(role, 'eth0', `tcp and dst port ${RS_PORT} and src host ${lbBack}`),
  ]));
  await run();
  const counts = [];
  for (const c of caps) counts.push((await c.stop()).count);
  return { rsa: { client: counts[0]!, lb: counts[1]! }, rsb: { client: counts[2]!, lb: counts[3]! } };
}

describe('nat with the LB as the real servers\' gateway', () => {
  it('snat: false keeps the client\'s address towards the real servers; snat: true replaces it with the LB\'s', async () => {
    const dp = createNftablesDataPlane({ netns: lab.ns('lb'), cleanupOnClose: true });
    try {
      await dp.apply([spec(false)]);
      let ids: string[] = [];
      const dnatOnly = await sourcesSeen(async () => { ids = await traffic(6); });
      expect(new Set(ids), JSON.stringify(tally(ids))).toEqual(new Set(['A', 'B']));
      expect(dnatOnly.rsa.client, JSON.stringify(dnatOnly)).toBeGreaterThan(0);
      expect(dnatOnly.rsb.client, JSON.stringify(dnatOnly)).toBeGreaterThan(0);
      expect(dnatOnly.rsa.lb + dnatOnly.rsb.lb, JSON.stringify(dnatOnly)).toBe(0);

      await dp.apply([spec(true)]);
      const fullNat = await sourcesSeen(async () => { ids = await traffic(6); });
      expect(new Set(ids), JSON.stringify(tally(ids))).toEqual(new Set(['A', 'B']));
      expect(fullNat.rsa.lb, JSON.stringify(fullNat)).toBeGreaterThan(0);
      expect(fullNat.rsb.lb, JSON.stringify(fullNat)).toBeGreaterThan(0);
      expect(fullNat.rsa.client + fullNat.rsb.client, JSON.stringify(fullNat)).toBe(0);
    } finally {
      await dp.close();
    }
    expect((await lab.exec('lb', ['nft', 'list', 'tables'])).stdout).not.toContain('slb_agent');
  });
});

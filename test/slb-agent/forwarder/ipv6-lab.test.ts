/**
 * The nftables plane with IPv6 VIPs and real servers, in network-namespace labs: one ULA /64
 * (fd53:<random>:<random>::/64) per lab on a Linux bridge joining a client, the LB and two real
 * servers, each in its own IPv6-enabled namespace.
 *
 * The client is a namespace of its own, not the root namespace: the lab keeps IPv6 off on host
 * veths (router solicitations and ND would leak into captures and depend on the host's IPv6
 * settings, which may be off altogether in CI containers), so the test drives a small bounded
 * node client inside the client namespace with lab.exec and reads back which real server
 * answered each connection.
 *
 * Every address is added with nodad (and accept_dad is 0 in the lab namespaces, which covers the
 * link-local addresses too), so no address is tentative when traffic starts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { randomInt } from 'node:crypto';
import type { Lab } from '../../../lab/netns.js';
import { createLab } from '../../../lab/netns.js';
import type { RealServerSpec, VipSpec } from '../../../slb-agent/forwarder/data-plane.js';
import { realServerId } from '../../../slb-agent/forwarder/manager.js';
import { createNftablesDataPlane } from '../../../slb-agent/forwarder/nftables/index.js';
import type { NftablesDataPlane } from '../../../slb-agent/forwarder/nftables/index.js';
import { until } from './suite.js';

const BIN = fileURLToPath(new URL('../../../bin/slb-agent.js', import.meta.url));
const RS = ['rsa', 'rsb'] as const;
type RsRole = (typeof RS)[number];
const IDS: Record<RsRole, string> = { rsa: 'A', rsb: 'B' };
const HOST = { cl: 1, lb: 2, rsa: 0x11, rsb: 0x12, vip: 0x100 } as const;
/** where the backends listen; dsr VIPs use it too (DSR cannot rewrite ports) */
const RS_PORT = 8080;
/** the nat VIP's port: the LB rewrites it to RS_PORT */
const NAT_VIP_PORT = 8000;
/** connections per exchange: the chance that maglev puts all of them on one of two servers is 2^-15 */
const FLOWS = 16;

/**
 * The client, run with `node -e` in the client namespace: opens `n` TCP connections to
 * [host]:port one after another; on each reads the real server's id line, checks the echo of a
 * line, half-closes and waits for the server's end. Prints the ids as JSON. Every wait is bounded
 * (per connection and overall), and any failure exits non-zero with the reason.
 */
const CLIENT = String.raw`
const net = require('node:net');
const [host, port, n] = process.argv.slice(1);
const deadline = setTimeout(() => { console.error('client: overall deadline passed'); process.exit(3); }, 20000);
function one(i) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port: Number(port), allowHalfOpen: true });
    const timer = setTimeout(() => { s.destroy(); reject(new Error('connection ' + i + ': timed out, got ' + JSON.stringify(buf))); }, 5000);
    let buf = '';
    let id;
    s.setEncoding('utf8');
    s.on('error', (err) => { clearTimeout(timer); reject(new Error('connection ' + i + ': ' + err.message)); });
    s.on('data', (d) => {
      buf += d;
      const lines = buf.split('\n');
      if (id === undefined && lines.length > 1) { id = lines[0]; s.write('x' + i + '\n'); }
      if (id !== undefined && lines.length > 2 && lines[1] === 'x' + i && !s.writableEnded) s.end();
    });
    s.on('end', () => {
      clearTimeout(timer);
      s.destroy();
      const lines = buf.split('\n');
      if (id === undefined || lines[1] !== 'x' + i) reject(new Error('connection ' + i + ': bad exchange ' + JSON.stringify(buf)));
      else resolve(id);
    });
  });
}
(async () => {
  const ids = [];
  for (let i = 0; i < Number(n); i++) ids.push(await one(i));
  clearTimeout(deadline);
  process.stdout.write(JSON.stringify(ids) + '\n');
})().catch((err) => { console.error('client: ' + err.message); process.exit(2); });
`;

interface V6Lab {
  readonly lab: Lab;
  readonly prefix: string;
  readonly vip: string;
  readonly lbAddress: string;
  readonly lbMac: string;
  readonly clientAddress: string;
  rsAddress(role: RsRole): string;
  plane(): NftablesDataPlane;
  /** `n` connections from the client namespace to [vip]:port; the ids of the real servers that answered */
  exchange(port: number, n: number): Promise<string[]>;
  close(): Promise<void>;
}

type V6Mode = 'dsr' | 'nat';

async function buildV6Lab(mode: V6Mode): Promise<V6Lab> {
  const lab = await createLab();
  try {
    // a ULA /64 of its own per lab: fd53:XXXX:XXXX::/64
    const hex = (): string => randomInt(1, 0x10000).toString(16);
    const prefix = `fd53:${hex()}:${hex()}::`;
    const addr = (n: number): string => `${prefix}${n.toString(16)}`;
    const vip = addr(HOST.vip);
    const sw = await lab.addBridge('sw');
    const macs = new Map<string, string>();
    for (const role of ['cl', 'lb', ...RS] as const) {
      await lab.addNamespace(role, { ipv6: true });
      // no duplicate address detection in the lab: link-local addresses of new interfaces (which
      // inherit `default`) and the global ones below are usable at once instead of tentative
      await lab.sysctl(role, 'net.ipv6.conf.all.accept_dad', 0);
      await lab.sysctl(role, 'net.ipv6.conf.default.accept_dad', 0);
      // no router solicitations: there is no router, and they would only add stray packets
      await lab.sysctl(role, 'net.ipv6.conf.default.router_solicitations', 0);
      const iface = await lab.attach(role, sw);
      macs.set(role, iface.mac);
      await lab.exec(role, ['ip', '-6', 'addr', 'add', `${addr(HOST[role])}/64`, 'dev', 'eth0', 'nodad']);
    }
    for (const role of RS) {
      if (mode === 'dsr') await lab.exec(role, ['node', BIN, 'rs-setup', '--mode', 'dsr', '--vip', vip, '--interface', 'eth0']);
      await lab.startBackend(role, { id: IDS[role], tcp: `[::]:${RS_PORT}` });
    }
    // every address usable (not tentative, DAD failed) before any traffic
    for (const role of ['cl', 'lb', ...RS] as const) {
      await until(async () => {
        const { stdout } = await lab.exec(role, ['ip', '-6', '-j', 'addr', 'show']);
        const infos = (JSON.parse(stdout) as { addr_info?: { local: string; tentative?: boolean; dadfailed?: boolean }[] }[]).flatMap((l) => l.addr_info ?? []);
        return infos.some((a) => a.local === addr(HOST[role])) && infos.every((a) => a.tentative !== true && a.dadfailed !== true);
      }, `IPv6 addresses of ${role} ready`);
    }
    return {
      lab, prefix, vip,
      lbAddress: addr(HOST.lb),
      lbMac: macs.get('lb')!,
      clientAddress: addr(HOST.cl),
      rsAddress: (role) => addr(HOST[role]),
      plane: () => createNftablesDataPlane({ netns: lab.ns('lb'), cleanupOnClose: true }),
      async exchange(port, n) {
        const { stdout } = await lab.exec('cl', [process.execPath, '-e', CLIENT, vip, String(port), String(n)], { timeoutMs: 30_000 });
        return JSON.parse(stdout) as string[];
      },
      close: () => lab.close(),
    };
  } catch (err) {
    await lab.close();
    throw err;
  }
}

function vipSpec(l: V6Lab, mode: V6Mode, rsOpts: (role: RsRole) => Partial<RealServerSpec> = () => ({})): VipSpec {
  const port = mode === 'nat' ? NAT_VIP_PORT : RS_PORT;
  return {
    name: 'web6', address: l.vip, port, protocol: 'tcp', scheduler: 'maglev', persistenceMs: 0,
    mode, interface: 'eth0', ...(mode === 'nat' ? { snat: true } : {}),
    realServers: RS.map((role) => ({
      id: realServerId(l.rsAddress(role), RS_PORT), address: l.rsAddress(role), port: RS_PORT,
      weight: 1, backup: false, healthy: true, drained: false, ...rsOpts(role),
    })),
  };
}

/** new flows counted per real server (answering id), from the plane's counters */
async function totals(l: V6Lab, dp: NftablesDataPlane): Promise<Record<string, number>> {
  const byId = new Map(RS.map((role) => [realServerId(l.rsAddress(role), RS_PORT), IDS[role]] as const));
  return Object.fromEntries((await dp.stats()).map((s) => [byId.get(s.backend) ?? s.backend, s.total]));
}

describe('kernel lab, IPv6: dsr (maglev)', () => {
  let l: V6Lab;
  beforeAll(async () => { l = await buildV6Lab('dsr'); }, 120_000);
  afterAll(() => l?.close(), 60_000);

  it('both real servers serve; the replies bypass the LB and leave the real servers from the VIP', async () => {
    const dp = l.plane();
    try {
      await dp.apply([vipSpec(l, 'dsr')]);
      // the VIP sits on the LB's interface as a /128 that is neither tentative nor a source address
      const onLb = (JSON.parse((await l.lab.exec('lb', ['ip', '-6', '-j', 'addr', 'show', 'dev', 'eth0'])).stdout) as { addr_info: { local: string; prefixlen: number; tentative?: boolean }[] }[])[0]!.addr_info;
      expect(onLb.find((a) => a.local === l.vip)).toMatchObject({ prefixlen: 128 });
      expect(onLb.find((a) => a.local === l.vip)?.tentative).not.toBe(true);

      const toVip = await l.lab.capture('lb', 'eth0', `ip6 and tcp and dst host ${l.vip} and dst port ${RS_PORT}`);
      const fromVip = await l.lab.capture('lb', 'eth0', `ip6 and tcp and src host ${l.vip}`);
      // at the client: every reply comes from the VIP, none with the LB's MAC
      const repliesViaLb = await l.lab.capture('cl', 'eth0', `ether src ${l.lbMac} and ip6 and tcp and src host ${l.vip}`);
      const replies = await l.lab.capture('cl', 'eth0', `ip6 and tcp and src host ${l.vip} and src port ${RS_PORT}`);
      const ids = await l.exchange(RS_PORT, FLOWS);
      const [req, rep, viaLb, all] = [await toVip.stop(), await fromVip.stop(), await repliesViaLb.stop(), await replies.stop()];

      expect(new Set(ids)).toEqual(new Set(['A', 'B']));
      expect(req.count).toBeGreaterThan(0);
      expect(rep.count, rep.lines.join('\n')).toBe(0);
      expect(all.count).toBeGreaterThan(0);
      expect(viaLb.count, viaLb.lines.join('\n')).toBe(0);
      // every flow was counted once, on the server that answered it
      const t = await totals(l, dp);
      expect(t).toEqual({ A: ids.filter((x) => x === 'A').length, B: ids.filter((x) => x === 'B').length });
    } finally {
      await dp.close();
    }
    // cleanupOnClose: the VIP is off the LB again
    expect((await l.lab.exec('lb', ['ip', '-6', 'addr', 'show', 'dev', 'eth0'])).stdout).not.toContain(`${l.vip}/128`);
  });

  it('an unhealthy real server gets no new flows; back to healthy, it serves again', async () => {
    const dp = l.plane();
    try {
      await dp.apply([vipSpec(l, 'dsr', (role) => ({ healthy: role !== 'rsb' }))]);
      const toB = await l.lab.capture('rsb', 'eth0', `ip6 and tcp and dst host ${l.vip}`);
      expect(await l.exchange(RS_PORT, FLOWS)).toEqual(Array<string>(FLOWS).fill('A'));
      expect((await toB.stop()).count).toBe(0);
      expect(await totals(l, dp)).toEqual({ A: FLOWS, B: 0 });

      await dp.apply([vipSpec(l, 'dsr')]);
      expect(new Set(await l.exchange(RS_PORT, FLOWS))).toEqual(new Set(['A', 'B']));
    } finally {
      await dp.close();
    }
  });
});

describe('kernel lab, IPv6: nat (snat, maglev)', () => {
  let l: V6Lab;
  beforeAll(async () => { l = await buildV6Lab('nat'); }, 120_000);
  afterAll(() => l?.close(), 60_000);

  it(`both real servers serve; VIP port ${NAT_VIP_PORT} is rewritten to ${RS_PORT} and the source to the LB's address`, async () => {
    const dp = l.plane();
    try {
      await dp.apply([vipSpec(l, 'nat')]);
      // snat: the real servers see the LB's address, never the client's, on the rewritten port
      const fromLb = await l.lab.capture('rsa', 'eth0', `ip6 and tcp and src host ${l.lbAddress} and dst port ${RS_PORT}`);
      const fromClient = await l.lab.capture('rsa', 'eth0', `ip6 and tcp and src host ${l.clientAddress}`);
      // both directions pass the LB; the client only ever talks to the VIP's port
      const replies = await l.lab.capture('cl', 'eth0', `ether src ${l.lbMac} and ip6 and tcp and src host ${l.vip} and src port ${NAT_VIP_PORT}`);
      const elsewhere = await l.lab.capture('cl', 'eth0', `ip6 and tcp and not (host ${l.vip} and port ${NAT_VIP_PORT})`);
      const ids = await l.exchange(NAT_VIP_PORT, FLOWS);
      const [lb, cl, rep, other] = [await fromLb.stop(), await fromClient.stop(), await replies.stop(), await elsewhere.stop()];

      expect(new Set(ids)).toEqual(new Set(['A', 'B']));
      expect(lb.count).toBeGreaterThan(0);
      expect(cl.count, cl.lines.join('\n')).toBe(0);
      expect(rep.count).toBeGreaterThan(0);
      expect(other.count, other.lines.join('\n')).toBe(0);
      const t = await totals(l, dp);
      expect(t).toEqual({ A: ids.filter((x) => x === 'A').length, B: ids.filter((x) => x === 'B').length });
    } finally {
      await dp.close();
    }
    // the plane turned IPv6 forwarding on in the LB namespace for nat and puts it back on close
    expect((await l.lab.exec('lb', ['cat', '/proc/sys/net/ipv6/conf/all/forwarding'])).stdout.trim()).toBe('0');
  });

  it('an unhealthy real server gets no new flows', async () => {
    const dp = l.plane();
    try {
      await dp.apply([vipSpec(l, 'nat', (role) => ({ healthy: role !== 'rsa' }))]);
      expect(await l.exchange(NAT_VIP_PORT, FLOWS)).toEqual(Array<string>(FLOWS).fill('B'));
      expect(await totals(l, dp)).toEqual({ A: 0, B: FLOWS });
    } finally {
      await dp.close();
    }
  });
});

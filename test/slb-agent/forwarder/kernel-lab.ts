/**
 * A network-namespace lab for the nftables plane: the test process (root namespace) is the
 * client on a Linux bridge with the LB and three real servers, each real server prepared with
 * `slb-agent rs-setup` for the mode under test and running lab backends that answer with their id.
 */
import { fileURLToPath } from 'node:url';
import type { Backend, Lab, Subnet } from '../../../lab/netns.js';
import { createLab } from '../../../lab/netns.js';
import type { RealServerSpec, VipSpec } from '../../../slb-agent/forwarder/data-plane.js';
import { createNftablesDataPlane } from '../../../slb-agent/forwarder/nftables/index.js';
import type { NftablesDataPlane } from '../../../slb-agent/forwarder/nftables/index.js';
import type { BackendName, SuiteEnv } from './suite.js';

const BIN = fileURLToPath(new URL('../../../bin/slb-agent.js', import.meta.url));
export const TCP_PORTS: [number, number] = [8080, 8081];
export const UDP_PORT = 5353;
export const DSCP = 10;

export type KernelMode = 'dsr' | 'l3dsr-dscp' | 'l3dsr-tunnel' | 'nat';

/** Real-server namespaces and the suite's backends they run. */
const RS_ROLES = { A: 'rsa', B: 'rsb', C: 'rsc', U1: 'rsa', U2: 'rsb' } as const satisfies Record<BackendName, string>;
const RS_HOST = { rsa: 11, rsb: 12, rsc: 13 } as const;

export interface KernelLab {
  readonly lab: Lab;
  readonly net: Subnet;
  readonly mode: KernelMode;
  readonly vip: string;
  readonly lbMac: string;
  /** address of a real-server namespace */
  rsAddress(role: 'rsa' | 'rsb' | 'rsc'): string;
  plane(opts?: { cleanupOnClose?: boolean }): NftablesDataPlane;
  /** fields a VipSpec needs for this mode */
  readonly vipFields: Pick<VipSpec, 'mode'> & Partial<VipSpec>;
  /** starts one more backend in a real-server namespace */
  backend(role: 'rsa' | 'rsb' | 'rsc', opts: { id: string; tcp?: string; udp?: string }): Promise<Backend>;
  close(): Promise<void>;
}

export async function buildKernelLab(mode: KernelMode): Promise<KernelLab> {
  const lab = await createLab();
  try {
    const net = await lab.subnet();
    const vip = net.host(100);
    const sw = await lab.addBridge('sw');
    await lab.attach('host', sw, { address: net.cidr(1) });
    await lab.addNamespace('lb');
    const lbIf = await lab.attach('lb', sw, { address: net.cidr(2) });
    // the LB forwards some modes back out of the interface they came in on: no redirects to the client
    await lab.sysctl('lb', 'net/ipv4/conf/all/send_redirects', 0);
    await lab.sysctl('lb', 'net/ipv4/conf/eth0/send_redirects', 0);
    for (const role of ['rsa', 'rsb', 'rsc'] as const) {
      await lab.addNamespace(role);
      await lab.attach(role, sw, { address: net.cidr(RS_HOST[role]) });
      if (mode === 'dsr') await lab.exec(role, ['node', BIN, 'rs-setup', '--mode', 'dsr', '--vip', vip, '--interface', 'eth0']);
      if (mode === 'l3dsr-dscp') await lab.exec(role, ['node', BIN, 'rs-setup', '--mode', 'l3dsr-dscp', '--dscp', String(DSCP), '--vip', vip, '--interface', 'eth0']);
      if (mode === 'l3dsr-tunnel') await lab.exec(role, ['node', BIN, 'rs-setup', '--mode', 'l3dsr-tunnel', '--tunnel', 'vxlan', '--vip', vip, '--interface', 'eth0']);
    }
    // DSR modes cannot change ports, so every backend listens on the VIP ports on all addresses
    const started: Promise<Backend>[] = [];
    for (const id of ['A', 'B', 'C'] as const) {
      for (const p of TCP_PORTS) started.push(lab.startBackend(RS_ROLES[id], { id, tcp: `0.0.0.0:${p}` }));
    }
    for (const id of ['U1', 'U2'] as const) started.push(lab.startBackend(RS_ROLES[id], { id, udp: `0.0.0.0:${UDP_PORT}` }));
    await Promise.all(started);
    const vipFields: KernelLab['vipFields'] = mode === 'nat'
      ? { mode, interface: 'eth0', snat: true }
      : mode === 'l3dsr-dscp' ? { mode, interface: 'eth0', dscp: DSCP }
        : mode === 'l3dsr-tunnel' ? { mode, interface: 'eth0', tunnel: 'vxlan' } : { mode, interface: 'eth0' };
    return {
      lab, net, mode, vip, lbMac: lbIf.mac, vipFields,
      rsAddress: (role) => net.host(RS_HOST[role]),
      plane: (o = {}) => createNftablesDataPlane({ netns: lab.ns('lb'), cleanupOnClose: o.cleanupOnClose ?? true }),
      backend: (role, o) => lab.startBackend(role, o),
      close: () => lab.close(),
    };
  } catch (err) {
    await lab.close();
    throw err;
  }
}

/** The shared suite's environment on a kernel lab built in setup(). */
export function kernelEnv(mode: KernelMode, name = `nftables data plane: ${mode}`): SuiteEnv & { kl(): KernelLab } {
  let kl: KernelLab | undefined;
  const need = (): KernelLab => {
    if (kl === undefined) throw new Error('kernel lab not built');
    return kl;
  };
  let vipFields: SuiteEnv['vipFields'] = { mode };
  return {
    name,
    get host() {
      return need().vip;
    },
    can: { lc: false, flowsOutliveVip: false, activeIsOpen: mode === 'nat' },
    get vipFields() {
      return vipFields;
    },
    async setup() {
      kl = await buildKernelLab(mode);
      vipFields = kl.vipFields;
    },
    async teardown() {
      await kl?.close();
    },
    make: () => need().plane(),
    ports: async () => ({ tcp: TCP_PORTS, udp: UDP_PORT }),
    rs(id, backend, vipPort, opts = {}): RealServerSpec {
      return { id, address: need().rsAddress(RS_ROLES[backend]), port: vipPort, weight: 1, backup: false, healthy: true, drained: false, ...opts };
    },
    kl: need,
  };
}

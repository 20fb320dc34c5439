/**
 * Commands on the host (or inside a lab namespace): nft, ip, /proc/sys. Everything the kernel
 * plane does outside nft rules lives here: VIP addresses, forwarding switches, the LB side of
 * VXLAN tunnels.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { DEFAULT_VNI, VXLAN_PORT } from '../tunnel.js';

export interface Host {
  /** runs argv (in the namespace, if any); rejects with the command and its stderr */
  run(argv: readonly string[], input?: string): Promise<string>;
}

export function createHost(netns: string | undefined): Host {
  return {
    run(argv, input) {
      const full = netns === undefined ? [...argv] : ['ip', 'netns', 'exec', netns, ...argv];
      return new Promise((resolve, reject) => {
        const child = execFile(full[0]!, full.slice(1), { maxBuffer: 512 * 1024 * 1024, timeout: 60_000 }, (err, stdout, stderr) => {
          if (err !== null) {
            const text = stderr.trim() || err.message;
            reject(new Error(`${argv[0]} ${argv[1] ?? ''} failed: ${text.split('\n').slice(0, 12).join('\n')}`));
          } else resolve(stdout);
        });
        if (input !== undefined) child.stdin?.end(input);
      });
    },
  };
}

/** nft JSON listing, `[]` when the table does not exist. */
export async function nftJson(host: Host, args: readonly string[]): Promise<Record<string, unknown>[]> {
  try {
    const out = await host.run(['nft', '-j', ...args]);
    const parsed = JSON.parse(out) as { nftables?: Record<string, unknown>[] };
    return parsed.nftables ?? [];
  } catch (err) {
    if (/No such file or directory|does not exist/.test((err as Error).message)) return [];
    throw err;
  }
}

interface AddrInfo { local?: string; prefixlen?: number; deprecated?: boolean }

/** The addresses on `dev`, as `ip -j addr` reports them. */
async function addressesOn(host: Host, dev: string): Promise<AddrInfo[]> {
  const links = JSON.parse(await host.run(['ip', '-j', 'addr', 'show', 'dev', dev])) as { addr_info?: AddrInfo[] }[];
  return links.flatMap((l) => l.addr_info ?? []);
}

/** Adds `address` (host prefix) to `dev` unless present; true if it added it. */
export async function ensureAddress(host: Host, dev: string, address: string): Promise<boolean> {
  if ((await addressesOn(host, dev)).some((a) => a.local === address)) return false;
  const v6 = address.includes(':');
  // preferred_lft 0: the VIP answers ARP/ND and is local, but is never picked as a source address
  await host.run(['ip', 'addr', 'add', `${address}/${v6 ? 128 : 32}`, 'dev', dev, 'valid_lft', 'forever', 'preferred_lft', '0', ...(v6 ? ['nodad'] : [])]);
  return true;
}

/** Whether `address` is on `dev` the way ensureAddress puts it: host prefix, deprecated (preferred_lft 0). */
export async function isOurVipAddress(host: Host, dev: string, address: string): Promise<boolean> {
  const hostPrefix = address.includes(':') ? 128 : 32;
  const addresses = await addressesOn(host, dev).catch(() => [] as AddrInfo[]);
  return addresses.some((a) => a.local === address && a.prefixlen === hostPrefix && a.deprecated === true);
}

export async function removeAddress(host: Host, dev: string, address: string): Promise<void> {
  const v6 = address.includes(':');
  await host.run(['ip', 'addr', 'del', `${address}/${v6 ? 128 : 32}`, 'dev', dev]).catch(() => undefined);
}

/** Reads a /proc/sys value, sets it, returns the old one (undefined if unchanged). */
export async function setSysctl(host: Host, key: string, value: string): Promise<string | undefined> {
  const path = `/proc/sys/${key.replace(/\./g, '/')}`;
  const old = (await host.run(['cat', path])).trim();
  if (old === value) return undefined;
  await host.run(['sh', '-c', `echo ${value} > ${path}`]);
  return old;
}

const hex8 = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 8);

/** The LB-side VXLAN device towards one real server: a short name derived from its address. */
export function lbTunnelDevice(rsAddress: string): string {
  return `slbv${hex8(rsAddress)}`;
}

/** VNIs the LB tries for a real server, from `base`: one device per VNI and port is all Linux allows. */
function vniCandidates(rsAddress: string, base: number): number[] {
  const start = parseInt(hex8(rsAddress), 16) % 65536;
  return Array.from({ length: 8 }, (_, i) => 1 + ((base - 1 + start + i * 7919) % 0xfffffe));
}

/**
 * Creates (or keeps) the VXLAN device `name` towards `remote` over `underlay`, with a VNI of its
 * own (real servers take any VNI); tries the next candidate when another device holds the VNI.
 */
export async function ensureVxlan(host: Host, name: string, remote: string, underlay: string, baseVni = DEFAULT_VNI): Promise<void> {
  const existing = await host.run(['ip', '-j', '-d', 'link', 'show', 'dev', name]).catch(() => '');
  if (existing !== '') {
    const info = (JSON.parse(existing) as { linkinfo?: { info_data?: { remote?: string; remote6?: string; link?: string } } }[])[0]?.linkinfo?.info_data;
    if (info?.remote === remote || info?.remote6 === remote) return;
    await host.run(['ip', 'link', 'del', 'dev', name]);
  }
  let last: Error | undefined;
  for (const vni of vniCandidates(remote, baseVni)) {
    try {
      await host.run(['ip', 'link', 'add', name, 'type', 'vxlan', 'id', String(vni), 'dstport', String(VXLAN_PORT), 'remote', remote, 'dev', underlay, 'nolearning']);
      await host.run(['ip', 'link', 'set', 'dev', name, 'up']);
      return;
    } catch (err) {
      last = err as Error;
      if (!/VNI already exists|File exists/.test(last.message)) break;
    }
  }
  throw new Error(`cannot create the VXLAN device towards ${remote}: ${last?.message ?? 'no VNI left'}`);
}

/** Names of LB tunnel devices present (ours by name). */
export async function listTunnelDevices(host: Host): Promise<string[]> {
  const links = JSON.parse(await host.run(['ip', '-j', 'link', 'show'])) as { ifname: string }[];
  return links.map((l) => l.ifname).filter((n) => /^slbv[0-9a-f]{8}$/.test(n));
}

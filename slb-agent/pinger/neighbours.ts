/**
 * Where `auto` peers come from: the kernel's IPv4 neighbour table and the host's own addresses,
 * read without starting a process (the pinger never forks while it runs).
 *
 * /proc/net/arp is the IPv4 neighbour table of this network namespace (the same table as
 * `ip -j neigh show`). Its flags carry ATF_COM (0x2) exactly for the NUD_VALID states and ATF_PERM
 * (0x4) for PERMANENT, so `ATF_COM and not ATF_PERM` keeps REACHABLE, STALE, DELAY and PROBE (and
 * the rare NOARP) and drops INCOMPLETE, FAILED and static entries: the neighbours seen recently.
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';

/** A neighbour table entry. */
export interface Neighbour {
  readonly address: string;
  readonly mac: string;
  readonly dev: string;
}

const ATF_COM = 0x2;
const ATF_PERM = 0x4;

/** Parses /proc/net/arp text into the neighbours seen recently. */
export function parseProcArp(text: string): Neighbour[] {
  const out: Neighbour[] = [];
  for (const line of text.split('\n').slice(1)) {
    // IP address  HW type  Flags  HW address  Mask  Device
    const f = line.trim().split(/\s+/);
    if (f.length < 6) continue;
    const flags = parseInt(f[2] ?? '', 16);
    if (!(flags & ATF_COM) || (flags & ATF_PERM)) continue;
    out.push({ address: f[0]!, mac: f[3]!.toLowerCase(), dev: f[5]! });
  }
  return out;
}

/** The neighbour table now (empty when it cannot be read). */
export function readNeighbours(file = '/proc/net/arp'): Neighbour[] {
  try {
    return parseProcArp(readFileSync(file, 'utf8'));
  } catch {
    return [];
  }
}

/** Every IPv4 address of this host (network namespace). */
export function localAddresses(): Set<string> {
  const set = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4') set.add(a.address);
  return set;
}

/** The first IPv4 address of an interface, if any. */
export function firstIpv4(ifname: string): string | undefined {
  return networkInterfaces()[ifname]?.find((a) => a.family === 'IPv4')?.address;
}

/** The `auto` peers of an interface: recent neighbours on it, minus excluded and local addresses. */
export function autoPeers(neighbours: readonly Neighbour[], dev: string, exclude: ReadonlySet<string>, local: ReadonlySet<string>): Neighbour[] {
  return neighbours.filter((n) => n.dev === dev && !exclude.has(n.address) && !local.has(n.address));
}

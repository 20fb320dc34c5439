/**
 * `slb-agent rs-setup`: prepares a real server for a DSR mode, and `--undo` reverts exactly what it
 * did. The work is split in three: inspect (read what the kernel has), plan (pure: what to change,
 * and the state that records it), execute (ip, nft -f -, writes to /proc/sys).
 *
 * State lives in /run/slb-agent/rs-setup/<netns inode>-<vip>.json, so setups in different network
 * namespaces of one host do not clash. A sysctl's recorded old value is the one from before ANY
 * rs-setup in the namespace touched it (later setups inherit it), and undo restores it only when
 * no other setup in the namespace still needs it. /run is a tmpfs, so state does not outlive a boot
 * (nor do the addresses, devices and tables it describes).
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, readdir, readlink, rename, unlink, writeFile } from 'node:fs/promises';
import { addressFamily, parseAddress } from '../shared/ip.js';
import { helpOrVersion, helpText, UsageError } from '../shared/cli.js';
import type { CommandHelp } from '../shared/cli.js';
import { parseArgs } from 'node:util';
import { TUNNEL_INNER_MAC, VXLAN_PORT, rsTunnelDevice, vxlanOverhead } from './forwarder/tunnel.js';

/** rs-setup's help (--help, and after a usage error). */
export const RS_SETUP_HELP: CommandHelp = {
  name: 'slb-agent rs-setup',
  usage: `  slb-agent rs-setup --mode dsr|l3dsr-dscp|l3dsr-tunnel --vip ADDR [--dscp 1-63]
                     [--tunnel vxlan|ipip|gre] [--interface IF] [--mtu N] [--undo]
Prepares this real server for a VIP forwarded to it (as root), or undoes what it did (--undo).`,
  examples: [
    'sudo slb-agent rs-setup --mode dsr --vip 192.0.2.1',
    'sudo slb-agent rs-setup --mode l3dsr-dscp --vip 192.0.2.1 --dscp 10',
    'sudo slb-agent rs-setup --mode l3dsr-tunnel --vip 2001:db8::1 --tunnel vxlan --mtu 1450',
    'sudo slb-agent rs-setup --undo --vip 192.0.2.1',
  ],
};

export const STATE_DIR = '/run/slb-agent/rs-setup';
const CMD_TIMEOUT_MS = 15_000;

export type RsMode = 'dsr' | 'l3dsr-dscp' | 'l3dsr-tunnel';
export type TunnelKind = 'vxlan' | 'ipip' | 'gre';

export interface RsOptions {
  mode?: RsMode; // optional only with --undo (the state knows it)
  vip: string;
  family: 4 | 6;
  dscp?: number;
  tunnel?: TunnelKind;
  iface?: string;
  mtu?: number;
  undo: boolean;
}

/** Cannot do it (not root, missing kernel support, conflicting setup): exit 1. */
export class RsSetupError extends Error {}

// ---------- flags ----------

function intFlag(name: string, s: string | undefined, min: number, max: number): number | undefined {
  if (s === undefined) return undefined;
  if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(s)}`);
  return Number(s);
}

/** Canonical text of an address (IPv6 compressed, lower case), so state keys and comparisons agree. */
export function canonicalIp(a: string): string {
  try {
    return parseAddress(a).canonical;
  } catch {
    return a;
  }
}

export function parseRsSetupArgs(argv: string[]): RsOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        mode: { type: 'string' }, vip: { type: 'string' }, dscp: { type: 'string' }, tunnel: { type: 'string' },
        interface: { type: 'string' }, mtu: { type: 'string' }, undo: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const undo = values.undo === true;
  const mode = values.mode;
  if (mode !== undefined && mode !== 'dsr' && mode !== 'l3dsr-dscp' && mode !== 'l3dsr-tunnel') throw new UsageError(`--mode must be dsr, l3dsr-dscp or l3dsr-tunnel, got ${JSON.stringify(mode)}`);
  if (mode === undefined && !undo) throw new UsageError('--mode is required');
  if (!values.vip) throw new UsageError('--vip ADDR is required');
  const family = addressFamily(values.vip);
  if (family === 0) throw new UsageError(`--vip must be an IPv4 or IPv6 address, got ${JSON.stringify(values.vip)}`);
  const dscp = intFlag('dscp', values.dscp, 1, 63);
  if (mode === 'l3dsr-dscp' && dscp === undefined && !undo) throw new UsageError('--mode l3dsr-dscp needs --dscp 1-63');
  if (mode !== 'l3dsr-dscp' && dscp !== undefined) throw new UsageError('--dscp only goes with --mode l3dsr-dscp');
  const tunnel = values.tunnel;
  if (tunnel !== undefined && tunnel !== 'vxlan' && tunnel !== 'ipip' && tunnel !== 'gre') throw new UsageError(`--tunnel must be vxlan, ipip or gre, got ${JSON.stringify(tunnel)}`);
  if (tunnel !== undefined && mode !== 'l3dsr-tunnel') throw new UsageError('--tunnel only goes with --mode l3dsr-tunnel');
  const mtu = intFlag('mtu', values.mtu, family === 6 ? 1280 : 576, 65535);
  if (mtu !== undefined && mode !== 'l3dsr-tunnel') throw new UsageError('--mtu only goes with --mode l3dsr-tunnel');
  const iface = values.interface;
  if (iface !== undefined && (iface.length > 15 || !/^[a-zA-Z0-9_.:-]+$/.test(iface))) throw new UsageError(`--interface ${JSON.stringify(iface)} is not an interface name`);
  return {
    vip: canonicalIp(values.vip), family: family as 4 | 6, undo,
    ...(mode !== undefined ? { mode } : {}),
    ...(dscp !== undefined ? { dscp } : {}),
    ...(mode === 'l3dsr-tunnel' ? { tunnel: tunnel ?? 'vxlan' } : {}),
    ...(iface !== undefined ? { iface } : {}),
    ...(mtu !== undefined ? { mtu } : {}),
  };
}

// ---------- names ----------

export function tableName(vip: string): string {
  return `slb_rs_${canonicalIp(vip).replace(/[.:]/g, '_')}`;
}

export function tunnelDevice(kind: TunnelKind, family: 4 | 6): string {
  // one VXLAN device per underlay family (the VIP's family): slbvx, slbvx6
  if (kind === 'vxlan') return rsTunnelDevice(family);
  if (kind === 'ipip') return family === 4 ? 'slbipip' : 'slbip6ip6';
  return family === 4 ? 'slbgre' : 'slbip6gre';
}

/** Bytes the tunnel adds in front of the inner IP packet; the underlay has the VIP's family. */
function tunnelOverhead(kind: TunnelKind, family: 4 | 6): number {
  const outer = family === 4 ? 20 : 40;
  if (kind === 'vxlan') return vxlanOverhead(family);
  return kind === 'ipip' ? outer : outer + 4; // GRE: 4-byte base header, no key/sequence
}

// ---------- state ----------

export interface RsState {
  version: 1;
  vip: string;
  netns: string;
  mode: RsMode;
  /** the flags that shaped the setup; a rerun with other flags needs --undo first */
  options: { dscp?: number; tunnel?: TunnelKind; iface?: string; mtu?: number };
  addedAddress: boolean;
  /** /proc/sys path (relative) -> value before any rs-setup changed it */
  sysctls: Record<string, string>;
  table?: string;
  /** created: rs-setup made the device; addedAddress: rs-setup put the VIP on it (vxlan) */
  device?: { name: string; created: boolean; addedAddress?: boolean };
}

async function netnsId(): Promise<string> {
  return readlink('/proc/self/ns/net'); // e.g. net:[4026531840]
}

function stateFile(netns: string, vip: string): string {
  const inode = /\d+/.exec(netns)?.[0] ?? 'unknown';
  return `${STATE_DIR}/${inode}-${canonicalIp(vip).replace(/[.:]/g, '_')}.json`;
}

async function readStates(netns: string): Promise<RsState[]> {
  const inode = /\d+/.exec(netns)?.[0] ?? 'unknown';
  let files: string[];
  try {
    files = await readdir(STATE_DIR);
  } catch {
    return [];
  }
  const states: RsState[] = [];
  for (const f of files.filter((f) => f.startsWith(`${inode}-`) && f.endsWith('.json'))) {
    try {
      const s = JSON.parse(await readFile(`${STATE_DIR}/${f}`, 'utf8')) as RsState;
      if (s.version === 1 && s.netns === netns) states.push(s);
    } catch {
      // half-written or foreign: not ours to judge; it just does not count
    }
  }
  return states;
}

async function writeState(s: RsState): Promise<void> {
  await mkdir(STATE_DIR, { recursive: true });
  const file = stateFile(s.netns, s.vip);
  await writeFile(`${file}.tmp`, `${JSON.stringify(s, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}

// ---------- inspect ----------

export interface Facts {
  /** VIP is an address of lo */
  vipOnLo: boolean;
  /** current value of each sysctl the plan may touch (undefined: no such file) */
  sysctl: Record<string, string | undefined>;
  tableExists: boolean;
  device?: { kind: string; mac: string; external: boolean; addresses: string[] };
  ifaceMtu?: number;
}

function run(argv: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); }, CMD_TIMEOUT_MS);
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdin.on('error', () => { /* exited without reading */ });
    child.once('error', (err) => { clearTimeout(timer); reject(new RsSetupError(`${argv[0]}: ${err.message}`)); });
    child.once('close', (code) => { clearTimeout(timer); resolve({ code: code ?? -1, stdout, stderr }); });
    child.stdin.end(input ?? '');
  });
}

async function mustRun(argv: string[], input?: string): Promise<string> {
  const r = await run(argv, input);
  if (r.code !== 0) throw new RsSetupError(`${argv.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

async function readSysctl(key: string): Promise<string | undefined> {
  try {
    return (await readFile(`/proc/sys/${key}`, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/** The sysctls a setup wants: key -> [value, how: 'atLeast' keeps a stricter existing value]. */
function wantedSysctls(o: RsOptions, mode: RsMode, device: string | undefined): Map<string, { value: number; atLeast: boolean }> {
  const want = new Map<string, { value: number; atLeast: boolean }>();
  if (o.family === 4) {
    // arp_ignore=1: answer ARP only for addresses of the receiving interface (not the VIP on lo);
    // arp_announce=2: never use the VIP as ARP source. Effective value is max(all, dev).
    for (const dev of new Set(['all', o.iface ?? 'all'])) {
      want.set(`net/ipv4/conf/${dev}/arp_ignore`, { value: 1, atLeast: true });
      want.set(`net/ipv4/conf/${dev}/arp_announce`, { value: 2, atLeast: true });
    }
    // loose reverse-path check: the decapsulated client source is not routed via the tunnel
    // (effective value is max(all, dev), so a strict `all` becomes loose too)
    if (mode === 'l3dsr-tunnel' && device) want.set(`net/ipv4/conf/${device}/rp_filter`, { value: 2, atLeast: false });
  }
  // IPv6 needs nothing: Linux answers neighbour solicitations only for the receiving interface's addresses
  return want;
}

async function inspect(o: RsOptions, mode: RsMode | undefined, device: string | undefined): Promise<Facts> {
  const lo = JSON.parse(await mustRun(['ip', '-j', 'addr', 'show', 'dev', 'lo'])) as { addr_info?: { local: string }[] }[];
  const vipOnLo = (lo[0]?.addr_info ?? []).some((a) => canonicalIp(a.local) === o.vip);
  const sysctl: Record<string, string | undefined> = {};
  for (const key of wantedSysctls(o, mode ?? 'l3dsr-tunnel', device).keys()) sysctl[key] = await readSysctl(key);
  const family = o.family === 4 ? 'ip' : 'ip6';
  const tableExists = (await run(['nft', 'list', 'table', family, tableName(o.vip)])).code === 0;
  const facts: Facts = { vipOnLo, sysctl, tableExists };
  if (device) {
    const r = await run(['ip', '-d', '-j', 'link', 'show', 'dev', device]);
    if (r.code === 0) {
      const l = (JSON.parse(r.stdout) as { address?: string; linkinfo?: { info_kind?: string; info_data?: { external?: boolean } } }[])[0];
      const a = await run(['ip', '-j', 'addr', 'show', 'dev', device]);
      const addresses = a.code === 0 ? ((JSON.parse(a.stdout) as { addr_info?: { local: string }[] }[])[0]?.addr_info ?? []).map((x) => canonicalIp(x.local)) : [];
      facts.device = { kind: l?.linkinfo?.info_kind ?? '', mac: l?.address ?? '', external: l?.linkinfo?.info_data?.external === true, addresses };
    }
  }
  if (o.iface) {
    const r = await run(['ip', '-j', 'link', 'show', 'dev', o.iface]);
    if (r.code !== 0) throw new RsSetupError(`--interface ${o.iface}: no such interface`);
    const mtu = (JSON.parse(r.stdout) as { mtu?: number }[])[0]?.mtu;
    if (mtu !== undefined) facts.ifaceMtu = mtu;
  }
  return facts;
}

// ---------- plan ----------

export type Action =
  | { kind: 'sysctl'; key: string; value: string; from: string | undefined }
  | { kind: 'addr-add' | 'addr-del'; cidr: string; dev?: string }
  | { kind: 'link-add'; name: string; argv: string[]; tunnel: TunnelKind }
  | { kind: 'link-up' | 'link-del'; name: string }
  | { kind: 'nft'; script: string; what: string };

export interface Plan { actions: Action[]; state?: RsState; notes: string[] }

function nftScript(o: RsOptions, mode: RsMode, mtu: number): string | undefined {
  const fam = o.family === 4 ? 'ip' : 'ip6';
  const t = tableName(o.vip);
  const rules: string[] = [];
  if (mode === 'l3dsr-dscp') {
    // The LB sent the packet to our own address, marked with the VIP's DSCP; before conntrack (raw)
    // put the VIP back, so conntrack sees client->VIP and our reply leaves from the VIP.
    // DSCP is 6 bits: at most 63 VIPs per real-server set, and any other traffic to this server
    // carrying this DSCP value is taken as VIP traffic.
    rules.push(`chain prerouting {\n    type filter hook prerouting priority raw; policy accept;\n    fib daddr type local ${fam} dscp ${o.dscp} ${fam} daddr set ${o.vip}\n  }`);
  }
  if (mode === 'l3dsr-tunnel') {
    // Clients must send segments that still fit the underlay after encapsulation.
    const mss = mtu - tunnelOverhead(o.tunnel ?? 'vxlan', o.family) - (o.family === 4 ? 40 : 60);
    rules.push(`chain output {\n    type filter hook output priority mangle; policy accept;\n    ${fam} saddr ${o.vip} tcp flags syn tcp option maxseg size > ${mss} tcp option maxseg size set ${mss}\n  }`);
  }
  if (rules.length === 0) return undefined;
  // declare + delete + define: one transaction that replaces the table whether or not it existed
  return `table ${fam} ${t} {}\ndelete table ${fam} ${t}\ntable ${fam} ${t} {\n  ${rules.join('\n  ')}\n}\n`;
}

function deviceArgv(o: RsOptions, name: string): string[] {
  const kind = o.tunnel ?? 'vxlan';
  if (kind === 'vxlan') {
    // receive only, external (metadata) mode: no remote and no VNI, the device takes every VNI (the
    // LB gives each real server its own). `local ::` marks the IPv6-underlay device, so it does not
    // clash with the IPv4 one (the kernel allows one device per VNI, port and family).
    return ['ip', 'link', 'add', name, 'address', TUNNEL_INNER_MAC, 'type', 'vxlan', 'external',
      'dstport', String(VXLAN_PORT), ...(o.family === 6 ? ['local', '::'] : [])];
  }
  // external (collect_md): one receive-only device takes every packet of the protocol
  const type = kind === 'ipip' ? (o.family === 4 ? ['ipip'] : ['ip6tnl', 'mode', 'ip6ip6']) : [o.family === 4 ? 'gre' : 'ip6gre'];
  return ['ip', 'link', 'add', name, 'type', ...type, 'external'];
}

function optionsOf(o: RsOptions): RsState['options'] {
  return {
    ...(o.dscp !== undefined ? { dscp: o.dscp } : {}), ...(o.tunnel !== undefined ? { tunnel: o.tunnel } : {}),
    ...(o.iface !== undefined ? { iface: o.iface } : {}), ...(o.mtu !== undefined ? { mtu: o.mtu } : {}),
  };
}

/** Pure: what setting up `o` changes, given the kernel facts and the namespace's rs-setup states. */
export function planSetup(o: RsOptions, netns: string, facts: Facts, prior: RsState | undefined, others: RsState[]): Plan {
  const mode = o.mode;
  if (!mode) throw new UsageError('--mode is required');
  const options = optionsOf(o);
  if (prior && (prior.mode !== mode || JSON.stringify(prior.options) !== JSON.stringify(options))) {
    throw new RsSetupError(`VIP ${o.vip} is already set up as ${prior.mode} ${JSON.stringify(prior.options)}; run with --undo first`);
  }
  const actions: Action[] = [];
  const notes: string[] = [];
  const family = o.family;
  const device = mode === 'l3dsr-tunnel' ? tunnelDevice(o.tunnel ?? 'vxlan', family) : undefined;
  const state: RsState = { version: 1, vip: o.vip, netns, mode, options, addedAddress: prior?.addedAddress ?? !facts.vipOnLo, sysctls: {} };

  if (device) {
    const ownedElsewhere = [prior, ...others].some((s) => s?.device?.name === device && s.device.created);
    if (!facts.device) {
      actions.push({ kind: 'link-add', name: device, argv: deviceArgv(o, device), tunnel: o.tunnel ?? 'vxlan' });
      state.device = { name: device, created: true };
    } else {
      const kindOk = o.tunnel === 'vxlan' ? facts.device.kind === 'vxlan' && facts.device.external && facts.device.mac === TUNNEL_INNER_MAC : facts.device.kind !== '';
      if (!kindOk) throw new RsSetupError(`device ${device} exists but is not the ${o.tunnel} device rs-setup expects (${o.tunnel === 'vxlan' ? `vxlan, external mode, MAC ${TUNNEL_INNER_MAC}; ` : ''}found ${JSON.stringify(facts.device)}); remove it first`);
      state.device = { name: device, created: ownedElsewhere };
    }
    actions.push({ kind: 'link-up', name: device });
    // The reverse-path check fails on a device without any address, even in loose mode; with
    // the VIP on the tunnel device the decapsulated packets pass loose rp_filter. The address
    // goes with the device on --undo.
    if (o.tunnel === 'vxlan') {
      const onDevice = (facts.device?.addresses ?? []).includes(o.vip);
      if (!onDevice) actions.push({ kind: 'addr-add', cidr: `${o.vip}/${family === 4 ? 32 : 128}`, dev: device });
      state.device.addedAddress = prior?.device?.addedAddress ?? !onDevice;
    }
  }
  if (!facts.vipOnLo) actions.push({ kind: 'addr-add', cidr: `${o.vip}/${family === 4 ? 32 : 128}` });

  for (const [key, want] of wantedSysctls(o, mode, device)) {
    const current = facts.sysctl[key];
    const recorded = prior?.sysctls[key] ?? others.find((s) => key in s.sysctls)?.sysctls[key];
    const ok = current !== undefined && (want.atLeast ? Number(current) >= want.value : Number(current) === want.value);
    if (!ok) actions.push({ kind: 'sysctl', key, value: String(want.value), from: current });
    const old = recorded ?? (ok ? undefined : current);
    if (old !== undefined) state.sysctls[key] = old;
  }

  const mtu = o.mtu ?? facts.ifaceMtu ?? 1500;
  const script = nftScript(o, mode, mtu);
  if (script) {
    actions.push({ kind: 'nft', script, what: `nft table ${family === 4 ? 'ip' : 'ip6'} ${tableName(o.vip)}` });
    state.table = tableName(o.vip);
  }
  if (prior) notes.push(`VIP ${o.vip} was set up already; reapplied`);
  return { actions, state, notes };
}

/** Pure: what undoing the VIP's setup changes; without state, what can be identified. */
export function planUndo(o: RsOptions, facts: Facts, state: RsState | undefined, others: RsState[], device: string | undefined): Plan {
  const actions: Action[] = [];
  const notes: string[] = [];
  const fam = o.family === 4 ? 'ip' : 'ip6';
  const usedElsewhere = (name: string): boolean => others.some((s) => s.device?.name === name);
  if (facts.tableExists) actions.push({ kind: 'nft', script: `delete table ${fam} ${tableName(o.vip)}\n`, what: `delete nft table ${fam} ${tableName(o.vip)}` });
  if (facts.vipOnLo && (state?.addedAddress ?? true)) actions.push({ kind: 'addr-del', cidr: `${o.vip}/${o.family === 4 ? 32 : 128}` });
  const dev = state ? (state.device?.created ? state.device.name : undefined) : device;
  const deleting = dev !== undefined && facts.device !== undefined && !usedElsewhere(dev);
  if (dev && !deleting && facts.device) notes.push(`device ${dev} kept: ${usedElsewhere(dev) ? 'another VIP in this namespace uses it' : 'rs-setup did not create it'}`);
  if (deleting) actions.push({ kind: 'link-del', name: dev });
  // a kept device keeps no VIP of ours (a deleted one takes the address with it)
  const tunDev = state ? state.device?.name : device;
  if (tunDev && !(deleting && tunDev === dev) && (facts.device?.addresses ?? []).includes(o.vip) && (state ? state.device?.addedAddress === true : true)) {
    actions.push({ kind: 'addr-del', cidr: `${o.vip}/${o.family === 4 ? 32 : 128}`, dev: tunDev });
  }
  if (state) {
    for (const [key, old] of Object.entries(state.sysctls)) {
      if (others.some((s) => key in s.sysctls)) { notes.push(`${key} kept: another VIP in this namespace needs it`); continue; }
      if (deleting && key.startsWith(`net/ipv4/conf/${dev}/`)) continue; // goes away with the device
      if (facts.sysctl[key] !== undefined && facts.sysctl[key] !== old) actions.push({ kind: 'sysctl', key, value: old, from: facts.sysctl[key] });
    }
  } else {
    notes.push(`no rs-setup state for VIP ${o.vip} in this network namespace: reverted what could be identified (VIP on lo, nft table${device ? `, device ${device}` : ''}); sysctls left as they are`);
  }
  return { actions, notes };
}

// ---------- execute ----------

function describe(a: Action): string {
  switch (a.kind) {
    case 'sysctl': return `sysctl ${a.key.replaceAll('/', '.')}: ${a.from ?? '(none)'} -> ${a.value}`;
    case 'addr-add': return `add ${a.cidr} to ${a.dev ?? 'lo'}`;
    case 'addr-del': return `remove ${a.cidr} from ${a.dev ?? 'lo'}`;
    case 'link-add': return `create device ${a.name} (${a.tunnel})`;
    case 'link-up': return `set ${a.name} up`;
    case 'link-del': return `delete device ${a.name}`;
    case 'nft': return a.what;
  }
}

async function execute(a: Action): Promise<void> {
  switch (a.kind) {
    case 'sysctl':
      await writeFile(`/proc/sys/${a.key}`, a.value);
      return;
    case 'addr-add':
    case 'addr-del':
      await mustRun(['ip', 'addr', a.kind === 'addr-add' ? 'add' : 'del', a.cidr, 'dev', a.dev ?? 'lo']);
      return;
    case 'link-add': {
      const r = await run(a.argv);
      if (r.code === 0) return;
      if (a.tunnel !== 'vxlan' && /unknown device type|not supported|no such device|no such file/i.test(r.stderr)) {
        const cfg = a.tunnel === 'ipip' ? 'CONFIG_NET_IPIP / CONFIG_IPV6_TUNNEL (modules ipip, ip6_tunnel)' : 'CONFIG_NET_IPGRE / CONFIG_IPV6_GRE (modules ip_gre, ip6_gre)';
        throw new RsSetupError(`this kernel has no ${a.tunnel} tunnel support (${cfg}; ip said: ${r.stderr.trim()}); use --tunnel vxlan instead`);
      }
      throw new RsSetupError(`${a.argv.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
    }
    case 'link-up':
      await mustRun(['ip', 'link', 'set', 'dev', a.name, 'up']);
      return;
    case 'link-del':
      await mustRun(['ip', 'link', 'del', 'dev', a.name]);
      return;
    case 'nft':
      await mustRun(['nft', '-f', '-'], a.script);
      return;
  }
}

function say(msg: string): void {
  process.stdout.write(`rs-setup: ${msg}\n`);
}

/**
 * The records of this namespace that still describe something: the kernel reuses a deleted
 * namespace's inode, so a record whose VIP is no longer on lo belongs to a namespace that is
 * gone (every setup puts the VIP on lo) and is dropped.
 */
async function liveStates(netns: string): Promise<RsState[]> {
  const lo = JSON.parse(await mustRun(['ip', '-j', 'addr', 'show', 'dev', 'lo'])) as { addr_info?: { local: string }[] }[];
  const onLo = new Set((lo[0]?.addr_info ?? []).map((a) => canonicalIp(a.local)));
  const live: RsState[] = [];
  for (const st of await readStates(netns)) {
    if (onLo.has(st.vip)) live.push(st);
    else {
      await unlink(stateFile(netns, st.vip)).catch(() => undefined);
      say(`dropped a stale record of VIP ${st.vip} (not on lo: its namespace is gone or it was removed by hand)`);
    }
  }
  return live;
}

async function setup(o: RsOptions): Promise<void> {
  const netns = await netnsId();
  const states = await liveStates(netns);
  const prior = states.find((s) => s.vip === o.vip);
  const others = states.filter((s) => s !== prior);
  const device = o.mode === 'l3dsr-tunnel' ? tunnelDevice(o.tunnel ?? 'vxlan', o.family) : undefined;
  const facts = await inspect(o, o.mode, device);
  const plan = planSetup(o, netns, facts, prior, others);
  // state first: if a step fails, undo (below, or a later --undo) knows what may have changed
  await writeState(plan.state!);
  try {
    for (const a of plan.actions) {
      await execute(a);
      if (a.kind !== 'link-up') say(describe(a));
    }
  } catch (err) {
    await undo(o, plan.state!, others, netns, true).catch(() => undefined);
    throw err;
  }
  for (const n of plan.notes) say(n);
  say(`${o.mode} ready for VIP ${o.vip}`);
}

async function undo(o: RsOptions, state: RsState | undefined, others: RsState[], netns: string, quiet = false): Promise<void> {
  // without state, --mode/--tunnel (or their defaults) name the device to look for
  const mode = state?.mode ?? o.mode;
  const opt = state ? { ...o, ...state.options } : o;
  const device = mode === 'l3dsr-tunnel' ? tunnelDevice(opt.tunnel ?? 'vxlan', o.family) : undefined;
  const facts = await inspect({ ...o, ...(state?.options.iface !== undefined ? { iface: state.options.iface } : {}) }, mode, device)
    .catch(async () => inspect({ vip: o.vip, family: o.family, undo: true }, mode, device));
  // keys the state recorded that the wanted-set does not cover (e.g. an interface since renamed)
  for (const key of Object.keys(state?.sysctls ?? {})) if (!(key in facts.sysctl)) facts.sysctl[key] = await readSysctl(key);
  const plan = planUndo(o, facts, state, others, device);
  for (const a of plan.actions) {
    await execute(a);
    say(`${quiet ? 'rolled back: ' : ''}${describe(a)}`);
  }
  await unlink(stateFile(netns, o.vip)).catch(() => undefined);
  if (quiet) return;
  for (const n of plan.notes) say(n);
  if (plan.actions.length === 0 && state) say(`nothing was left to revert for VIP ${o.vip}`);
  say(`undone for VIP ${o.vip}`);
}

/** `slb-agent rs-setup ...`: returns the exit code (0 done, 1 could not, 2 bad flags). */
export async function rsSetupMain(argv: string[]): Promise<number> {
  try {
    const asked = helpOrVersion(argv, RS_SETUP_HELP);
    if (asked !== undefined) return asked;
    const o = parseRsSetupArgs(argv);
    if (process.getuid?.() !== 0) throw new RsSetupError('rs-setup must run as root: it changes addresses, sysctls, devices and nftables');
    if (o.undo) {
      const netns = await netnsId();
      const states = await readStates(netns);
      const state = states.find((s) => s.vip === o.vip);
      await undo(o, state, states.filter((s) => s !== state), netns);
    } else {
      await setup(o);
    }
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`slb-agent rs-setup: ${err.message}\n${helpText(RS_SETUP_HELP)}`);
      return 2;
    }
    if (err instanceof RsSetupError) {
      process.stderr.write(`slb-agent rs-setup: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

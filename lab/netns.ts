/**
 * Network-namespace labs for tests, benchmarks and `npm run lab:*`: namespaces joined by veth
 * pairs and Linux bridges, each bridge in its own "switch" namespace so that nothing of the lab
 * but the optional host attachments is visible in the root namespace.
 *
 * Naming: every name embeds the lab id `<pid base36>-<seq base36>`; namespaces are
 * `<prefix>-<id>-<role>`, host-side veths `<prefix><id>h<n>` (IFNAMSIZ: at most 15 characters).
 * The PID in the names lets `createLab` remove what crashed runs left behind, and makes labs of
 * parallel test workers (vitest forks) disjoint.
 *
 * IPv6 is disabled in lab namespaces (and on host-side veths) unless `ipv6: true` is asked for:
 * router solicitations and neighbour discovery would otherwise add stray packets to captures and
 * to switch MAC tables.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { unlinkSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface LabIface {
  readonly ns: string;
  readonly ifname: string;
  readonly mac: string;
  /** without prefix length */
  readonly address?: string;
}

export interface Capture {
  /** Stops tcpdump; resolves with the packet count it reported and the lines it printed. */
  stop(): Promise<{ count: number; lines: string[] }>;
}

export interface BackendOptions {
  id: string;
  /** ADDR:PORT ([v6]:PORT) */
  tcp?: string;
  udp?: string;
  http?: string;
}

export interface Backend {
  readonly id: string;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

export interface AttachOptions {
  /** CIDR, e.g. 10.0.0.2/24 */
  address?: string;
  mac?: string;
  /** name inside the role namespace; default eth0, eth1, ... (host role: a generated unique name) */
  ifname?: string;
}

export interface LinkEnd extends AttachOptions {
  /** enslave this end to a bridge living in this end's namespace */
  bridge?: string;
}

/** A /24 reserved for this lab among all live labs on the host (for host attachments). */
export interface Subnet {
  /** e.g. '198.18.7' */
  readonly base: string;
  /** address of host number n, e.g. host(1) = '198.18.7.1' */
  host(n: number): string;
  /** host(n) + '/24' */
  cidr(n: number): string;
}

export interface Lab {
  readonly id: string;
  /** namespace name of a role; role 'host' is the root namespace and returns '' */
  ns(role: string): string;
  addNamespace(role: string, opts?: { ipv6?: boolean }): Promise<string>;
  /** a bridge in its own namespace (role `sw-<name>`); resolves with the bridge name */
  addBridge(name: string, opts?: { ageingSec?: number }): Promise<string>;
  attach(role: string, bridge: string, opts?: AttachOptions): Promise<LabIface>;
  link(roleA: string, roleB: string, opts?: { a?: LinkEnd; b?: LinkEnd }): Promise<[LabIface, LabIface]>;
  exec(role: string, argv: string[], opts?: { input?: string; timeoutMs?: number }): Promise<{ stdout: string; stderr: string }>;
  spawn(role: string, argv: string[]): ChildProcess;
  sysctl(role: string, key: string, value: string | number): Promise<void>;
  capture(role: string, ifname: string, filter: string): Promise<Capture>;
  startBackend(role: string, opts: BackendOptions): Promise<Backend>;
  /** reserves a /24 (in 198.18.0.0/15) no other live lab holds; released by close() */
  subnet(): Promise<Subnet>;
  close(): Promise<void>;
}

const DEFAULT_PREFIX = 'slbt';
const EXEC_TIMEOUT_MS = 30_000;
const READY_TIMEOUT_MS = 10_000;
const KILL_GRACE_MS = 2_000;
const SUBNET_DIR = '/run/slb-lab/subnets';
const SUBNET_COUNT = 512; // 198.18.0.0/15 in /24s

let seq = 0;

/** Whether a process exists (EPERM: it does, owned by someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function nsArgv(ns: string, argv: string[]): string[] {
  return ns === '' ? argv : ['ip', 'netns', 'exec', ns, ...argv];
}

/** Runs a command; rejects with the command line, exit code and stderr. Bounded by timeoutMs. */
export function run(argv: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<{ stdout: string; stderr: string }> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return Promise.reject(new Error('run: empty argv'));
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timeoutMs = opts.timeoutMs ?? EXEC_TIMEOUT_MS;
    const timer = setTimeout(() => { child.kill('SIGKILL'); }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdin.on('error', () => { /* the command may exit without reading its input */ });
    child.once('error', (err) => { clearTimeout(timer); reject(new Error(`${argv.join(' ')}: ${err.message}`)); });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${argv.join(' ')} exited ${code ?? `by ${signal}${signal === 'SIGKILL' ? ` (timeout ${timeoutMs} ms?)` : ''}`}: ${stderr.trim()}`));
    });
    child.stdin.end(opts.input ?? '');
  });
}

function runSync(argv: string[]): void {
  const [cmd, ...args] = argv;
  if (cmd !== undefined) spawnSync(cmd, args, { stdio: 'ignore', timeout: 5_000 });
}

/** Waits for a child to exit, SIGKILL after the grace period. */
function terminate(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => { child.kill('SIGKILL'); }, KILL_GRACE_MS);
    const give = setTimeout(resolve, KILL_GRACE_MS * 2); // never hang close() on a zombie
    child.once('exit', () => { clearTimeout(kill); clearTimeout(give); resolve(); });
    child.kill(signal);
  });
}

function backendScript(): string {
  const candidates = [new URL('./backend-server.js', import.meta.url), new URL('../dist/lab/backend-server.js', import.meta.url)];
  for (const c of candidates) {
    const file = fileURLToPath(c);
    if (existsSync(file)) return file;
  }
  throw new Error('lab: dist/lab/backend-server.js not found; build first (npx tsc -p tsconfig.json)');
}

// ---- cleanup of everything open when the process goes away ----

interface Owned { namespaces: Set<string>; hostLinks: Set<string>; procs: Set<ChildProcess>; subnetFiles: Set<string> }
const openLabs = new Set<Owned>();
let hooksInstalled = false;

function cleanupSync(o: Owned): void {
  for (const p of o.procs) { try { p.kill('SIGKILL'); } catch { /* already gone */ } }
  for (const l of o.hostLinks) runSync(['ip', 'link', 'del', l]);
  for (const n of o.namespaces) runSync(['ip', 'netns', 'del', n]);
  for (const f of o.subnetFiles) { try { unlinkSync(f); } catch { /* gone */ } }
  o.procs.clear(); o.hostLinks.clear(); o.namespaces.clear(); o.subnetFiles.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => { for (const o of openLabs) cleanupSync(o); });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const handler = (): void => {
      for (const o of openLabs) cleanupSync(o);
      openLabs.clear();
      // keep the default meaning of the signal unless someone else handles it too
      if (process.listenerCount(sig) === 1) { process.off(sig, handler); process.kill(process.pid, sig); }
    };
    process.on(sig, handler);
  }
}

// ---- stale labs ----

async function removeStale(prefix: string): Promise<void> {
  const nsRe = new RegExp(`^${prefix}-([0-9a-z]+)-[0-9a-z]+-`);
  const linkRe = new RegExp(`^${prefix}([0-9a-z]+)-[0-9a-z]+h[0-9a-z]+$`);
  const dead = (pid36: string | undefined): boolean => pid36 !== undefined && !pidAlive(parseInt(pid36, 36));
  const { stdout: links } = await run(['ip', '-o', 'link', 'show']);
  for (const line of links.split('\n')) {
    const name = /^\d+: ([^:@ ]+)/.exec(line)?.[1];
    if (name && dead(linkRe.exec(name)?.[1])) await run(['ip', 'link', 'del', name]).catch(() => undefined);
  }
  for (const name of await listNamespaces()) {
    if (dead(nsRe.exec(name)?.[1])) await run(['ip', 'netns', 'del', name]).catch(() => undefined);
  }
}

/** Every network namespace's name (`ip netns list`). */
export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await run(['ip', 'netns', 'list']);
  return stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);
}

// ---- subnets ----

async function reserveSubnet(owned: Owned): Promise<Subnet> {
  await mkdir(SUBNET_DIR, { recursive: true });
  // start anywhere: a subnet just released may still draw packets from the root namespace
  // (retransmissions of sockets to the old lab's addresses), which would poison the next lab's
  // neighbour entries if it took the same /24 at once
  const start = Math.floor(Math.random() * SUBNET_COUNT);
  for (let k = 0; k < SUBNET_COUNT; k++) {
    const i = (start + k) % SUBNET_COUNT;
    const file = `${SUBNET_DIR}/${i}`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await open(file, 'wx');
        await fh.writeFile(String(process.pid));
        await fh.close();
        owned.subnetFiles.add(file);
        const base = `198.${18 + (i >> 8)}.${i & 255}`;
        return { base, host: (n) => `${base}.${n}`, cidr: (n) => `${base}.${n}/24` };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const holder = parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
        // an empty file is being written right now by its creator; a dead holder's is free
        if (Number.isNaN(holder) || pidAlive(holder)) break;
        await unlink(file).catch(() => undefined);
      }
    }
  }
  throw new Error(`lab: all ${SUBNET_COUNT} lab subnets are taken (${SUBNET_DIR})`);
}

// ---- rs-setup state of a namespace that goes away ----

const RS_SETUP_STATE = '/run/slb-agent/rs-setup';

/**
 * rs-setup keys its state files by the namespace's inode, which the kernel reuses for later
 * namespaces: a deleted lab namespace must not leave a setup that a later one would inherit.
 */
async function forgetRsSetup(ns: string): Promise<void> {
  const ino = await stat(`/run/netns/${ns}`).then((s) => String(s.ino), () => undefined);
  if (ino === undefined) return;
  const files = await readdir(RS_SETUP_STATE).catch(() => [] as string[]);
  for (const f of files) if (f.startsWith(`${ino}-`)) await unlink(`${RS_SETUP_STATE}/${f}`).catch(() => undefined);
}

// ---- the lab ----

export async function createLab(opts: { prefix?: string } = {}): Promise<Lab> {
  const prefix = opts.prefix ?? DEFAULT_PREFIX;
  if (!/^[a-z][a-z0-9]{0,3}$/.test(prefix)) throw new Error(`lab: prefix ${JSON.stringify(prefix)} must be 1-4 lowercase letters/digits starting with a letter`);
  if (process.getuid?.() !== 0) throw new Error('lab: network namespaces need root');
  installHooks();
  await removeStale(prefix);

  // a reused PID could meet names of an earlier process with the same PID: skip taken ids
  const existing = await listNamespaces();
  let id: string;
  do { id = `${process.pid.toString(36)}-${(seq++).toString(36)}`; } while (existing.some((n) => n.startsWith(`${prefix}-${id}-`)));

  const owned: Owned = { namespaces: new Set(), hostLinks: new Set(), procs: new Set(), subnetFiles: new Set() };
  openLabs.add(owned);
  const ipv6 = new Map<string, boolean>(); // role -> ipv6 enabled
  const ifCount = new Map<string, number>(); // role -> next ethN
  let hostCount = 0;
  let portCount = 0;
  let closed = false;

  const ns = (role: string): string => {
    if (role === 'host') return '';
    if (!/^[a-zA-Z0-9_.-]+$/.test(role)) throw new Error(`lab: bad role name ${JSON.stringify(role)}`);
    return `${prefix}-${id}-${role}`;
  };
  const known = (role: string): string => {
    const name = ns(role);
    if (role !== 'host' && !owned.namespaces.has(name)) throw new Error(`lab: no namespace for role ${role}; addNamespace it first`);
    return name;
  };
  const ipIn = (role: string, args: string[]): Promise<{ stdout: string; stderr: string }> => {
    const name = known(role);
    return run(name === '' ? ['ip', ...args] : ['ip', '-n', name, ...args]);
  };
  const checkIfname = (name: string): string => {
    if (name.length > 15 || !/^[a-zA-Z0-9_.-]+$/.test(name)) throw new Error(`lab: interface name ${JSON.stringify(name)} is not a valid (<= 15 character) name`);
    return name;
  };
  const sysctl = async (role: string, key: string, value: string | number): Promise<void> => {
    // a '/' in the key means '.' is literal (interface names like eth0.10), as sysctl(8) does
    const path = `/proc/sys/${key.includes('/') ? key : key.replaceAll('.', '/')}`;
    const name = known(role);
    if (name === '') { writeFileSync(path, String(value)); return; }
    await run(['ip', 'netns', 'exec', name, 'sh', '-c', 'printf %s "$1" > "$2"', 'sh', String(value), path]);
  };
  const nextIfname = (role: string): string => {
    if (role === 'host') return checkIfname(`${prefix}${id}h${(hostCount++).toString(36)}`);
    const n = ifCount.get(role) ?? 0;
    ifCount.set(role, n + 1);
    return `eth${n}`;
  };
  /** addresses, MAC, IPv6 policy and up for one end that already sits in its namespace */
  const configure = async (role: string, ifname: string, o: AttachOptions): Promise<LabIface> => {
    if (role === 'host') {
      owned.hostLinks.add(ifname);
      await sysctl('host', `net/ipv6/conf/${ifname}/disable_ipv6`, 1);
    }
    if (o.mac) await ipIn(role, ['link', 'set', 'dev', ifname, 'address', o.mac]);
    if (o.address) await ipIn(role, ['addr', 'add', o.address, 'dev', ifname]);
    await ipIn(role, ['link', 'set', 'dev', ifname, 'up']);
    const { stdout } = await ipIn(role, ['-j', 'link', 'show', 'dev', ifname]);
    const mac = (JSON.parse(stdout) as { address: string }[])[0]?.address ?? '';
    const address = o.address?.split('/')[0];
    return { ns: ns(role), ifname, mac, ...(address !== undefined ? { address } : {}) };
  };
  const vethPair = async (roleA: string, a: string, roleB: string, b: string): Promise<void> => {
    const nsA = known(roleA);
    const nsB = known(roleB);
    // created directly in their namespaces, so only host-side names meet in the root namespace
    await run(['ip', 'link', 'add', 'name', a, ...(nsA ? ['netns', nsA] : []), 'type', 'veth', 'peer', 'name', b, ...(nsB ? ['netns', nsB] : [])]);
    if (nsA === '') owned.hostLinks.add(a);
    if (nsB === '') owned.hostLinks.add(b);
  };

  const lab: Lab = {
    id,
    ns,
    async addNamespace(role, o = {}) {
      if (role === 'host') throw new Error("lab: 'host' is the root namespace; it cannot be added");
      const name = ns(role);
      if (owned.namespaces.has(name)) throw new Error(`lab: namespace for role ${role} exists already`);
      await run(['ip', 'netns', 'add', name]);
      owned.namespaces.add(name);
      // a new namespace has no rs-setup: state under its (reused) inode is a crashed lab's leftover
      await forgetRsSetup(name);
      ipv6.set(role, o.ipv6 ?? false);
      if (!o.ipv6) {
        await sysctl(role, 'net.ipv6.conf.all.disable_ipv6', 1);
        await sysctl(role, 'net.ipv6.conf.default.disable_ipv6', 1);
      }
      await ipIn(role, ['link', 'set', 'lo', 'up']);
      return name;
    },
    async addBridge(name, o = {}) {
      checkIfname(name);
      const role = `sw-${name}`;
      await lab.addNamespace(role);
      const ageing = o.ageingSec !== undefined ? ['ageing_time', String(Math.round(o.ageingSec * 100))] : [];
      await ipIn(role, ['link', 'add', 'name', name, 'type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0', ...ageing]);
      await ipIn(role, ['link', 'set', 'dev', name, 'up']);
      return name;
    },
    async attach(role, bridge, o = {}) {
      const sw = `sw-${bridge}`;
      known(sw);
      const ifname = checkIfname(o.ifname ?? nextIfname(role));
      const port = `p${(portCount++).toString(36)}`;
      await vethPair(role, ifname, sw, port);
      await ipIn(sw, ['link', 'set', 'dev', port, 'master', bridge]);
      await ipIn(sw, ['link', 'set', 'dev', port, 'up']);
      return configure(role, ifname, o);
    },
    async link(roleA, roleB, o = {}) {
      const a = o.a ?? {};
      const b = o.b ?? {};
      const nameA = checkIfname(a.ifname ?? nextIfname(roleA));
      const nameB = checkIfname(b.ifname ?? nextIfname(roleB));
      if (roleA === roleB && nameA === nameB) throw new Error('lab: link ends need different names in one namespace');
      await vethPair(roleA, nameA, roleB, nameB);
      if (a.bridge) await ipIn(roleA, ['link', 'set', 'dev', nameA, 'master', a.bridge]);
      if (b.bridge) await ipIn(roleB, ['link', 'set', 'dev', nameB, 'master', b.bridge]);
      return [await configure(roleA, nameA, a), await configure(roleB, nameB, b)];
    },
    exec(role, argv, o = {}) {
      return run(nsArgv(known(role), argv), o);
    },
    spawn(role, argv) {
      const full = nsArgv(known(role), argv);
      const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      owned.procs.add(child);
      child.once('exit', () => { owned.procs.delete(child); });
      child.once('error', () => { owned.procs.delete(child); });
      return child;
    },
    sysctl,
    async capture(role, ifname, filter) {
      const child = lab.spawn(role, ['tcpdump', '-n', '-e', '-l', '--immediate-mode', '-i', ifname, ...(filter ? [filter] : [])]);
      const lines: string[] = [];
      let rest = '';
      let stderr = '';
      let lastOutput = 0;
      child.stdout!.on('data', (d: Buffer) => {
        lastOutput = Date.now();
        rest += d.toString();
        const parts = rest.split('\n');
        rest = parts.pop()!;
        lines.push(...parts.filter((p) => p.trim() !== ''));
      });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`lab: tcpdump on ${ifname} not listening within ${READY_TIMEOUT_MS} ms: ${stderr}`)); }, READY_TIMEOUT_MS);
        child.stderr!.on('data', (d: Buffer) => {
          stderr += d.toString();
          if (/listening on/.test(stderr)) { clearTimeout(timer); resolve(); }
        });
        child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`lab: tcpdump exited ${code}: ${stderr.trim()}`)); });
      });
      return {
        async stop() {
          // let packets already on the wire reach tcpdump's output (bounded: 100 ms quiet, 2 s max)
          const until = Date.now() + 2_000;
          while (Date.now() < until && Date.now() - lastOutput < 100) await new Promise((r) => setTimeout(r, 20));
          await new Promise((r) => setTimeout(r, 50));
          await terminate(child, 'SIGINT');
          if (rest.trim()) lines.push(rest);
          rest = '';
          const reported = /(\d+) packets? captured/.exec(stderr)?.[1];
          return { count: reported !== undefined ? Number(reported) : lines.length, lines: [...lines] };
        },
      };
    },
    async startBackend(role, o) {
      const argv = [process.execPath, backendScript(), '--id', o.id];
      if (o.tcp) argv.push('--tcp', o.tcp);
      if (o.udp) argv.push('--udp', o.udp);
      if (o.http) argv.push('--http', o.http);
      const child = lab.spawn(role, argv);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
      await new Promise<void>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`lab: backend ${o.id} not ready within ${READY_TIMEOUT_MS} ms: ${stderr}`)); }, READY_TIMEOUT_MS);
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (/^ready$/m.test(out)) { clearTimeout(timer); resolve(); }
        });
        child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`lab: backend ${o.id} exited ${code}: ${stderr.trim()}`)); });
      });
      return { id: o.id, process: child, stop: () => terminate(child) };
    },
    subnet: () => reserveSubnet(owned),
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...owned.procs].map((p) => terminate(p)));
      for (const l of owned.hostLinks) await run(['ip', 'link', 'del', l]).catch(() => undefined);
      for (const n of owned.namespaces) {
        await forgetRsSetup(n);
        await run(['ip', 'netns', 'del', n]).catch(() => undefined);
      }
      for (const f of owned.subnetFiles) await unlink(f).catch(() => undefined);
      owned.hostLinks.clear(); owned.namespaces.clear(); owned.subnetFiles.clear();
      openLabs.delete(owned);
    },
  };
  return lab;
}

/** Names of the lab namespaces of a prefix that exist now (for tests and `lab:*` scripts). */
export async function labNamespaces(prefix = DEFAULT_PREFIX): Promise<string[]> {
  return (await listNamespaces()).filter((n) => n.startsWith(`${prefix}-`));
}

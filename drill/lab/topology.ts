/**
 * The drill lab: three sites (an LB namespace running slb-agent with the `dsr` forwarder and
 * HTTP checks, two real servers prepared with rs-setup on the site's bridge), two gslb-dns
 * instances fed by every agent, and a client namespace per region, all joined by a core router
 * namespace that is .1 on every segment. Built in network namespaces (lab/netns.ts) with the
 * prefix `drl`; `close()` is idempotent, and a new lab first removes what crashed runs left.
 *
 * Fault hooks act like the failures a drill plan injects: a real server's HTTP killed, an agent
 * killed with SIGKILL, an agent cut from one instance (nft drop in the agent's namespace), an
 * instance killed; each has its undo.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLab, run } from '../../lab/netns.js';
import type { Backend, Lab } from '../../lab/netns.js';
import { agentText, poolText, zoneText } from './files.js';
import { knotArgv, knotConf, parentZoneText, unboundArgv, unboundConf } from './resolution.js';
import { HOST, PORT, planLab } from './plan.js';
import type { InstancePlan, LabPlan, RegionPlan, SitePlan } from './plan.js';
import { startLabProcess, waitUntilNoneWaiting } from './process.js';
import type { LabProcess } from './process.js';
import { killNamespacePids, removeStaleDrillLabs } from './stale.js';

export const DRILL_LAB_PREFIX = 'drl';
const DRILL_LAB_DIR = 'drill-lab-';
const START_TIMEOUT_MS = 30_000;

/** The checkout: where dist/ and bin/ are, from the source (vitest) or the built file. */
function findRoot(): string {
  for (const up of ['../../', '../../../']) {
    const dir = fileURLToPath(new URL(up, import.meta.url));
    if (existsSync(path.join(dir, 'package.json'))) return dir;
  }
  throw new Error('drill lab: cannot find the checkout (package.json) above drill/lab');
}

export interface DrillLabOptions {
  /** attach the root namespace to the service segment (routes to every lab subnet via the core) */
  readonly hostAccess?: boolean;
  /** the parent zone on Knot and an unbound resolver per region (default true) */
  readonly resolution?: boolean;
  /** progress lines (the CLI prints them) */
  readonly log?: (msg: string) => void;
}

export interface LabRealServer {
  readonly site: string;
  readonly role: string;
  readonly address: string;
  /** the body it answers with, without the newline */
  readonly id: string;
  /** null while killed */
  backend: Backend | null;
}

export interface LabSite {
  readonly plan: SitePlan;
  readonly name: string;
  readonly vip: string;
  readonly realServers: readonly LabRealServer[];
  /** null while killed */
  agent: LabProcess | null;
  readonly agentConfig: string;
}

export interface LabInstance {
  readonly plan: InstancePlan;
  readonly name: string;
  readonly address: string;
  readonly dnsPort: number;
  readonly api: string;
  /** null while killed */
  process: LabProcess | null;
}

/** A client region: its client namespace and, with resolution, its resolver. */
export interface LabRegion {
  readonly plan: RegionPlan;
  readonly name: string;
  readonly clientRole: string;
  readonly client: string;
  /** the resolver's address; null without resolution */
  readonly resolver: string | null;
  readonly resolverProcess: LabProcess | null;
}

export interface DrillLab {
  readonly lab: Lab;
  readonly plan: LabPlan;
  /** the run's files: zones/, agent files, admin token */
  readonly dir: string;
  readonly adminToken: string;
  readonly adminTokenFile: string;
  readonly sites: readonly LabSite[];
  readonly instances: readonly LabInstance[];
  readonly regions: readonly LabRegion[];
  /** the parent zone's server (knotd); null without resolution */
  readonly parent: { readonly address: string; readonly process: LabProcess } | null;
  /** the root namespace's address on the service segment when hostAccess was asked for */
  readonly hostAddress: string | undefined;
  site(name: string): LabSite;
  instance(name: string): LabInstance;
  /** the A records of `name` as the region's client gets them through its resolver */
  resolve(region: string, name: string): Promise<string[]>;
  /** `dig +short` in a lab namespace: the A records of `name` from `server` (port 53 unless given; [] on no answer) */
  dig(role: string, server: string, name: string, port?: number): Promise<string[]>;
  /** an HTTP GET from a lab namespace (curl); resolves with the body */
  httpGet(role: string, url: string, headers?: Record<string, string>): Promise<string>;
  /** an instance's GET /api/v1/state, read from its own namespace */
  state(instance: string): Promise<unknown>;
  /** resolves once every instance answers every pool from health; rejects with what is missing */
  waitReady(timeoutMs: number): Promise<void>;
  /**
   * Starts a client in a region's namespace that resolves `name` through the region's resolver,
   * honours the TTL and fetches from the answer every `intervalMs` (drill/lab/client-main.ts).
   */
  startClient(region: string, name: string, opts?: { intervalMs?: number }): LabProcess;
  killRealServer(site: string, index: number): Promise<void>;
  startRealServer(site: string, index: number): Promise<void>;
  /** SIGKILL: no goodbye report, the kernel forwarding stays */
  killAgent(site: string): Promise<void>;
  startAgent(site: string): Promise<void>;
  /** drops the agent's reports to one instance (nft in the LB namespace) */
  cutAgent(site: string, instance: string): Promise<void>;
  healAgent(site: string, instance: string): Promise<void>;
  killInstance(name: string): Promise<void>;
  startInstance(name: string): Promise<void>;
  /** a JSON-able description of the topology (addresses, roles, PIDs) */
  describe(): Record<string, unknown>;
  close(): Promise<void>;
}

/** Builds the drill lab; on any failure it tears down what it built and rethrows. */
export async function createDrillLab(opts: DrillLabOptions = {}): Promise<DrillLab> {
  const log = opts.log ?? (() => undefined);
  const root = findRoot();
  const dist = (p: string): string => path.join(root, 'dist', p);
  const slbAgentBin = path.join(root, 'bin', 'slb-agent.js');
  await removeStaleDrillLabs(DRILL_LAB_PREFIX, path.join(os.tmpdir(), DRILL_LAB_DIR));
  const lab = await createLab({ prefix: DRILL_LAB_PREFIX });
  // the lab id in the name (its creator's PID) lets a later lab remove it after a crash
  const dir = await mkdtemp(path.join(os.tmpdir(), `${DRILL_LAB_DIR}${lab.id}-`));
  let closed = false;
  const sites: LabSite[] = [];
  const instances: LabInstance[] = [];

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    // no graceful stops: the namespaces go away with everything in them
    for (const s of sites) { s.agent?.proc.kill('SIGKILL'); for (const rs of s.realServers) rs.backend?.process.kill('SIGKILL'); }
    for (const i of instances) i.process?.proc.kill('SIGKILL');
    for (const role of allRoles) await killNamespacePids(lab.ns(role));
    await lab.close();
    await rm(dir, { recursive: true, force: true });
  };

  let plan: LabPlan;
  const allRoles: string[] = [];
  try {
    const nets = [];
    for (let i = 0; i < 6; i++) nets.push(await lab.subnet());
    plan = planLab(nets);
    const p = plan;
    allRoles.push('core', ...p.sites.flatMap((s) => [s.lbRole, ...s.rsRoles]), ...p.instances.map((i) => i.role), ...p.regions.flatMap((r) => [r.clientRole, r.resolverRole]), p.svc.parentRole);

    log(`lab ${lab.id}: namespaces and links`);
    await lab.addNamespace('core');
    await lab.sysctl('core', 'net/ipv4/ip_forward', 1);
    // DSR replies come from the VIP via the real servers, not from the LB the VIP routes to
    await lab.sysctl('core', 'net/ipv4/conf/all/rp_filter', 0);
    await lab.sysctl('core', 'net/ipv4/conf/default/rp_filter', 0);
    const segment = async (bridge: string, net: { cidr(n: number): string }): Promise<void> => {
      await lab.addBridge(bridge);
      await lab.attach('core', bridge, { address: net.cidr(HOST.core) });
    };
    const member = async (role: string, bridge: string, net: { cidr(n: number): string; host(n: number): string }, host: number): Promise<void> => {
      await lab.addNamespace(role);
      await lab.attach(role, bridge, { address: net.cidr(host) });
      await lab.exec(role, ['ip', 'route', 'add', 'default', 'via', net.host(HOST.core)]);
    };

    // sites: the LB and its real servers on the site's bridge, the core router as their gateway
    const rsSetup: Promise<unknown>[] = [];
    for (const s of p.sites) {
      await segment(s.bridge, s.net);
      await member(s.lbRole, s.bridge, s.net, HOST.lb);
      // the LB sends forwarded frames out of the interface they came in on: no redirects
      await lab.sysctl(s.lbRole, 'net/ipv4/conf/all/send_redirects', 0);
      await lab.sysctl(s.lbRole, 'net/ipv4/conf/eth0/send_redirects', 0);
      for (const [k, role] of s.rsRoles.entries()) {
        await member(role, s.bridge, s.net, HOST.rs[k]!);
        rsSetup.push(lab.exec(role, [process.execPath, slbAgentBin, 'rs-setup', '--mode', 'dsr', '--vip', s.vip, '--interface', 'eth0']));
      }
    }
    await segment(p.svc.bridge, p.svc.net);
    for (const [k, i] of p.instances.entries()) await member(i.role, p.svc.bridge, p.svc.net, HOST.dns[k]!);
    const resolution = opts.resolution ?? true;
    if (resolution) await member(p.svc.parentRole, p.svc.bridge, p.svc.net, HOST.parent);
    for (const r of p.regions) {
      await segment(r.bridge, r.net);
      await member(r.clientRole, r.bridge, r.net, HOST.client);
    }
    if (resolution) for (const [k, r] of p.regions.entries()) await member(r.resolverRole, p.svc.bridge, p.svc.net, HOST.resolver[k]!);
    let hostAddress: string | undefined;
    if (opts.hostAccess === true) {
      // the host end is a lab link: the routes through it go with it on close
      const ifc = await lab.attach('host', p.svc.bridge, { address: p.svc.net.cidr(2) });
      hostAddress = ifc.address;
      for (const net of [...p.sites.map((s) => s.net), ...p.regions.map((r) => r.net)]) {
        await run(['ip', 'route', 'add', `${net.base}.0/24`, 'via', p.svc.net.host(HOST.core), 'dev', ifc.ifname]);
      }
    }
    await Promise.all(rsSetup);

    // files
    const zones = path.join(dir, 'zones');
    await mkdir(path.join(zones, 'secrets'), { recursive: true });
    await writeFile(path.join(zones, `${p.zone}.zone`), zoneText(p));
    await writeFile(path.join(zones, `${p.zone}.gslb.yaml`), poolText(p));
    const adminToken = randomBytes(24).toString('hex');
    const adminTokenFile = path.join(dir, 'admin.token');
    await writeFile(adminTokenFile, `${adminToken}\n`, { mode: 0o600 });
    await writeFile(path.join(dir, 'auth-header'), `authorization: Bearer ${adminToken}\n`, { mode: 0o600 });
    for (const s of p.sites) {
      const secretFile = path.join(zones, 'secrets', `${s.name}.key`);
      await writeFile(secretFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
      await writeFile(path.join(dir, `${s.name}.agent.yaml`), agentText(p, s, secretFile));
    }

    // programs: instances first (the agents retry their reports until they listen)
    const startInstance = async (i: LabInstance): Promise<void> => {
      const proc = startLabProcess(lab, i.plan.role, i.name, [process.execPath, dist('dns/main.js'), '--zones', zones,
        '--listen', `${i.address}:${PORT.dns}`, '--api', `${i.address}:${PORT.api}`, '--admin-token-file', adminTokenFile, '--instance', i.name]);
      i.process = proc;
      await proc.waitLine((l) => l['msg'] === 'api listening', START_TIMEOUT_MS);
      await proc.waitLine((l) => l['msg'] === 'listening', START_TIMEOUT_MS);
    };
    const startBackend = async (rs: LabRealServer): Promise<void> => {
      rs.backend = await lab.startBackend(rs.role, { id: rs.id, http: `0.0.0.0:${PORT.http}` });
    };
    const startAgent = (s: LabSite): void => {
      s.agent = startLabProcess(lab, s.plan.lbRole, `${s.name} agent`, [process.execPath, dist('slb-agent/main.js'), '--config', s.agentConfig,
        '--run-dir', path.join(dir, 'run', s.name)]);
    };
    for (const ip of p.instances) instances.push({ plan: ip, name: ip.name, address: ip.address, dnsPort: PORT.dns, api: ip.api, process: null });
    for (const sp of p.sites) {
      sites.push({
        plan: sp, name: sp.name, vip: sp.vip, agent: null, agentConfig: path.join(dir, `${sp.name}.agent.yaml`),
        realServers: sp.rsRoles.map((role, k) => ({ site: sp.name, role, address: sp.realServers[k]!, id: `${sp.name} rs${k + 1}`, backend: null })),
      });
    }
    let parent: DrillLab['parent'] = null;
    const regions: LabRegion[] = p.regions.map((r) => ({ plan: r, name: r.name, clientRole: r.clientRole, client: r.client, resolver: null, resolverProcess: null }));
    if (resolution) {
      const knotDir = path.join(dir, 'knot');
      await mkdir(knotDir, { recursive: true });
      await writeFile(path.join(knotDir, `${p.parentZone}.zone`), parentZoneText(p));
      await writeFile(path.join(knotDir, 'knot.conf'), knotConf(p, knotDir));
      parent = { address: p.svc.parent, process: startLabProcess(lab, p.svc.parentRole, 'knotd', knotArgv(path.join(knotDir, 'knot.conf'))) };
      for (const [k, r] of p.regions.entries()) {
        const conf = path.join(dir, `unbound-${r.name}.conf`);
        await writeFile(conf, unboundConf(p, r, dir));
        regions[k] = { ...regions[k]!, resolver: r.resolver, resolverProcess: startLabProcess(lab, r.resolverRole, `unbound ${r.name}`, unboundArgv(conf)) };
      }
    }
    log('gslb-dns instances and real servers');
    await Promise.all([...instances.map(startInstance), ...sites.flatMap((s) => s.realServers.map(startBackend))]);
    log('slb-agents');
    for (const s of sites) startAgent(s);

    const site = (name: string): LabSite => {
      const s = sites.find((x) => x.name === name);
      if (s === undefined) throw new Error(`drill lab: no site ${name} (${sites.map((x) => x.name).join(', ')})`);
      return s;
    };
    const instance = (name: string): LabInstance => {
      const i = instances.find((x) => x.name === name);
      if (i === undefined) throw new Error(`drill lab: no instance ${name} (${instances.map((x) => x.name).join(', ')})`);
      return i;
    };
    const rsOf = (name: string, index: number): LabRealServer => {
      const rs = site(name).realServers[index];
      if (rs === undefined) throw new Error(`drill lab: site ${name} has no real server ${index}`);
      return rs;
    };
    const httpGet = async (role: string, url: string, headers: Record<string, string> = {}): Promise<string> => {
      const h = Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
      return (await lab.exec(role, ['curl', '-sS', '--fail', '--max-time', '3', ...h, url], { timeoutMs: 10_000 })).stdout;
    };
    const state = async (name: string): Promise<unknown> => {
      const i = instance(name);
      const { stdout } = await lab.exec(i.plan.role, ['curl', '-sS', '--fail', '--max-time', '3', '-H', `@${path.join(dir, 'auth-header')}`, `${i.api}/api/v1/state`], { timeoutMs: 10_000 });
      return JSON.parse(stdout) as unknown;
    };
    const missing = async (): Promise<string[]> => {
      const out: string[] = [];
      for (const i of instances) {
        try {
          const body = await state(i.name) as { pools?: { name: string; degraded: boolean; startupPending: boolean; members: { site: string; serving: boolean }[] }[] };
          for (const pool of body.pools ?? []) {
            const down = pool.members.filter((m) => !m.serving).map((m) => m.site);
            if (down.length > 0) out.push(`${i.name}: pool ${pool.name} waits for ${down.join(', ')}`);
            else if (pool.degraded || pool.startupPending) out.push(`${i.name}: pool ${pool.name} not answering from health yet`);
          }
        } catch (err) {
          out.push(`${i.name}: ${(err as Error).message}`);
        }
      }
      return out;
    };
    const dig = async (role: string, server: string, name: string, port?: number): Promise<string[]> => {
      const argv = ['dig', '+short', '+time=1', '+tries=1', ...(port !== undefined ? ['-p', String(port)] : []), `@${server}`, name, 'A'];
      // exit 9: no reply from the server, which is an answer of its own here (an instance killed)
      const { stdout } = await lab.exec(role, argv, { timeoutMs: 10_000 }).catch((err: Error) => {
        if (/ exited 9:/.test(err.message)) return { stdout: '' };
        throw err;
      });
      return stdout.split('\n').map((l) => l.trim()).filter((l) => /^\d+\.\d+\.\d+\.\d+$/.test(l));
    };
    const waitAnswers = async (role: string, server: string, name: string, what: string, timeoutMs: number): Promise<void> => {
      const end = performance.now() + timeoutMs;
      let last = '';
      for (;;) {
        const { stdout } = await lab.exec(role, ['dig', '+time=1', '+tries=1', `@${server}`, name, 'SOA'], { timeoutMs: 10_000 }).catch((err: Error) => ({ stdout: err.message }));
        if (/status: NOERROR/.test(stdout)) return;
        last = stdout;
        if (performance.now() > end) throw new Error(`drill lab: ${what} does not answer ${name} SOA within ${timeoutMs} ms: ${last.slice(0, 1000)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    if (parent !== null) {
      await waitAnswers(p.svc.parentRole, parent.address, p.parentZone, `knotd (${parent.process.stderr().slice(-500)})`, START_TIMEOUT_MS);
      for (const r of regions) if (r.resolver !== null) await waitAnswers(r.clientRole, r.resolver, p.parentZone, `unbound ${r.name}`, START_TIMEOUT_MS);
    }
    const cutTable = (instanceName: string): string => `drill_cut_${instanceName.replace(/[^a-z0-9]/gi, '_')}`;

    const drill: DrillLab = {
      lab, plan: p, dir, adminToken, adminTokenFile, sites, instances, regions, parent, hostAddress,
      site, instance, httpGet, state, dig,
      async resolve(regionName, name) {
        const r = regions.find((x) => x.name === regionName);
        if (r === undefined) throw new Error(`drill lab: no region ${regionName}`);
        if (r.resolver === null) throw new Error('drill lab: built without resolution (resolvers)');
        return dig(r.clientRole, r.resolver, name);
      },
      startClient(regionName, name, o = {}) {
        const r = regions.find((x) => x.name === regionName);
        if (r === undefined) throw new Error(`drill lab: no region ${regionName}`);
        if (r.resolver === null) throw new Error('drill lab: built without resolution (resolvers)');
        return startLabProcess(lab, r.clientRole, `client ${regionName}`, [process.execPath, dist('drill/lab/client-main.js'), '--resolver', r.resolver,
          '--name', name, '--port', String(PORT.http), '--interval-ms', String(o.intervalMs ?? 200)]);
      },
      waitReady: (timeoutMs) => waitUntilNoneWaiting(missing, timeoutMs, 'drill lab not ready', 200),
      async killRealServer(name, index) {
        const rs = rsOf(name, index);
        const b = rs.backend;
        rs.backend = null;
        if (b === null || b.process.exitCode !== null || b.process.signalCode !== null) return;
        await new Promise<void>((resolve) => { b.process.once('exit', () => { resolve(); }); b.process.kill('SIGKILL'); });
      },
      async startRealServer(name, index) {
        const rs = rsOf(name, index);
        if (rs.backend === null) await startBackend(rs);
      },
      async killAgent(name) {
        const s = site(name);
        const a = s.agent;
        s.agent = null;
        if (a !== null) await a.stop('SIGKILL');
      },
      async startAgent(name) {
        const s = site(name);
        if (s.agent === null || s.agent.exited()) startAgent(s);
      },
      async cutAgent(name, instanceName) {
        const s = site(name);
        const i = instance(instanceName);
        const t = cutTable(i.name);
        await lab.exec(s.plan.lbRole, ['nft', '-f', '-'], {
          input: [`add table ip ${t}`, `add chain ip ${t} out { type filter hook output priority 0; policy accept; }`, `flush chain ip ${t} out`,
            `add rule ip ${t} out ip daddr ${i.address} tcp dport ${PORT.api} drop`, ''].join('\n'),
        });
      },
      async healAgent(name, instanceName) {
        const s = site(name);
        const t = cutTable(instance(instanceName).name);
        const { stdout } = await lab.exec(s.plan.lbRole, ['nft', 'list', 'tables']);
        if (stdout.includes(`table ip ${t}\n`) || stdout.endsWith(`table ip ${t}`)) await lab.exec(s.plan.lbRole, ['nft', 'delete', 'table', 'ip', t]);
      },
      async killInstance(name) {
        const i = instance(name);
        const proc = i.process;
        i.process = null;
        if (proc !== null) await proc.stop('SIGKILL');
      },
      async startInstance(name) {
        const i = instance(name);
        if (i.process === null || i.process.exited()) await startInstance(i);
      },
      describe() {
        return {
          id: lab.id, dir, zone: p.zone, adminTokenFile, hostAddress: hostAddress ?? null,
          instances: instances.map((i) => ({ name: i.name, namespace: lab.ns(i.plan.role), dns: `${i.address}:${i.dnsPort}`, api: i.api, pid: i.process?.pid ?? null })),
          sites: sites.map((s) => ({
            name: s.name, vip: `${s.vip}:${PORT.http}`, namespace: lab.ns(s.plan.lbRole), agentPid: s.agent?.pid ?? null, region: s.plan.region ?? null,
            realServers: s.realServers.map((rs) => ({ address: rs.address, namespace: lab.ns(rs.role), body: rs.id, pid: rs.backend?.process.pid ?? null })),
          })),
          parent: parent === null ? null : { zone: p.parentZone, address: parent.address, namespace: lab.ns(p.svc.parentRole), pid: parent.process.pid },
          regions: regions.map((r) => ({
            name: r.name, subnet: `${r.plan.net.base}.0/24`, resolver: r.resolver, resolverPid: r.resolverProcess?.pid ?? null,
            client: { address: r.client, namespace: lab.ns(r.clientRole) },
          })),
        };
      },
      close,
    };
    return drill;
  } catch (err) {
    await close();
    throw err;
  }
}

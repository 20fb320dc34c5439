/**
 * What the demo runs, decided before anything starts: the two gslb-dns instances, one slb-agent
 * per site file (demo/*.agent.yaml) and one demo backend per real server of those files, with
 * every port resolved (ports.ts) and each agent's effective config for this run.
 */
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { Document } from 'yaml';
import { readFile } from 'node:fs/promises';
import { loadAgentConfig } from '../slb-agent/config.js';
import { resolvePorts } from './ports.js';
import type { PortUse } from './ports.js';

/** The launcher's settings; an absent port keeps the one of the agent file. */
export interface DemoOptions {
  /** the checkout: zones/, demo/*.agent.yaml, dist/ */
  readonly root: string;
  readonly runDir: string;
  /** the gslb-dns instances, by name and loopback address */
  readonly instances: readonly { readonly name: string; readonly host: string }[];
  readonly dnsPort: number;
  readonly apiPort: number;
  readonly vipPort?: number | undefined;
  readonly backendPort?: number | undefined;
  readonly agentApiPort?: number | undefined;
}

/** A process of the demo. */
export interface ChildSpec {
  /** also its log file: <run dir>/<name>.log */
  readonly name: string;
  readonly kind: 'dns' | 'agent' | 'backend';
  readonly argv: readonly string[];
}

/** A gslb-dns instance as started. */
export interface InstancePlan { readonly name: string; readonly host: string; readonly dnsPort: number; readonly api: string }

/** A site as started: its agent, VIP and backends. */
export interface SitePlan {
  readonly site: string;
  readonly agentApi: string;
  readonly vips: readonly { readonly name: string; readonly address: string; readonly port: number }[];
  readonly backends: readonly { readonly name: string; readonly endpoint: string }[];
  /** the agent file of this run and its text */
  readonly configFile: string;
  readonly configText: string;
}

export interface Plan {
  readonly instances: readonly InstancePlan[];
  readonly sites: readonly SitePlan[];
  readonly children: readonly ChildSpec[];
  readonly tokenFile: string;
}

/** The site files shipped with the demo, in the order they start. */
export const SITE_FILES = ['tokyo.agent.yaml', 'osaka.agent.yaml'];

interface Template {
  readonly file: string;
  readonly doc: Document;
  readonly config: Awaited<ReturnType<typeof loadAgentConfig>>;
}

/** The resolved port of a group's i-th endpoint. */
type PortOf = (i: number) => number;

/** `a:b` with IPv6 in brackets. */
const hostPort = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

/**
 * Loads the site files, resolves every port (or says which one is taken) and returns what to
 * start; nothing is written or started here.
 */
export async function planDemo(opts: DemoOptions): Promise<{ ok: true; plan: Plan } | { ok: false; message: string }> {
  const templates: Template[] = [];
  for (const f of SITE_FILES) {
    const file = path.join(opts.root, 'demo', f);
    templates.push({ file, doc: parseDocument(await readFile(file, 'utf8')), config: await loadAgentConfig(file) });
  }
  const hosts = opts.instances.map((i) => i.host);
  const vips = templates.flatMap((t) => t.config.vips);
  const servers = vips.flatMap((v) => v.realServers);
  // one use per flag (every address it applies to), else one per endpoint of the files
  const group = (what: string, flag: number | undefined, eps: readonly { address: string; port: number }[]): PortUse[] =>
    flag === undefined ? eps.map((e) => ({ what, hosts: [e.address], port: e.port, udp: false })) : [{ what, hosts: eps.map((e) => e.address), port: flag, udp: false }];
  const uses: PortUse[][] = [
    [{ what: 'DNS', hosts, port: opts.dnsPort, udp: true }],
    [{ what: 'DNS API', hosts, port: opts.apiPort, udp: false }],
    group('VIP', opts.vipPort, vips),
    group('demo backend', opts.backendPort, servers),
    group('agent API', opts.agentApiPort, templates.map((t) => ({ address: t.config.api.host, port: t.config.api.port }))),
  ];
  const resolved = await resolvePorts(uses.flat());
  if (!resolved.ok) return resolved;
  // each group's ports, in the order of `uses`: one for the whole group (a flag) or one per endpoint
  let at = 0;
  const portOf = uses.map((g) => {
    const ports = resolved.ports.slice(at, at += g.length);
    return (i: number): number => ports[g.length === 1 ? 0 : i]!;
  });
  const [dnsPort, apiPort, vipPort, serverPort, agentApiPort] = portOf as [PortOf, PortOf, PortOf, PortOf, PortOf];

  const instances: InstancePlan[] = opts.instances.map((i) => ({ ...i, dnsPort: dnsPort(0), api: `http://${hostPort(i.host, apiPort(0))}` }));
  const tokenFile = path.join(opts.runDir, 'admin.token');
  const dist = (p: string): string => path.join(opts.root, 'dist', p);
  const children: ChildSpec[] = [];
  // gslb-dns first: the answers wait for it, while the agents retry their reports until it listens
  for (const i of instances) {
    children.push({
      name: i.name, kind: 'dns', argv: [dist('dns/main.js'), '--zones', path.join(opts.root, 'zones'), '--listen', hostPort(i.host, i.dnsPort),
        '--api', hostPort(i.host, apiPort(0)), '--admin-token-file', tokenFile, '--instance', i.name,
        // the demo listens on loopback only: its status pages read without a token (the buttons still need the admin token)
        '--status-public'],
    });
  }
  const sites: SitePlan[] = [];
  let vipIndex = 0;
  let serverIndex = 0;
  templates.forEach((t, ti) => {
    const site = t.config.site;
    const doc = t.doc.clone();
    const agentApi = hostPort(t.config.api.host, agentApiPort(ti));
    const secret = doc.get('secret');
    // a file: secret is relative to the template, and the run's copy lives elsewhere
    if (typeof secret === 'string' && secret.startsWith('file:')) doc.set('secret', `file:${path.resolve(path.dirname(t.file), secret.slice(5))}`);
    doc.set('dns', doc.createNode(instances.map((i) => i.api), { flow: true }));
    doc.set('api', agentApi);
    const siteVips: SitePlan['vips'][number][] = [];
    const backends: SitePlan['backends'][number][] = [];
    t.config.vips.forEach((v, vi) => {
      const port = vipPort(vipIndex++);
      doc.setIn(['vips', vi, 'port'], port);
      siteVips.push({ name: v.name, address: v.address, port });
      v.realServers.forEach((rs, ri) => {
        const rsPort = serverPort(serverIndex++);
        const endpoint = hostPort(rs.address, rsPort);
        doc.setIn(['vips', vi, 'realServers', ri, 'port'], rsPort);
        const name = `${site}-backend-${backends.length + 1}`;
        backends.push({ name, endpoint });
        children.push({ name, kind: 'backend', argv: [dist('lab/backend-server.js'), '--id', `${site} backend ${backends.length} (${endpoint})`, '--http', endpoint] });
      });
    });
    doc.commentBefore = ` This run's copy of ${path.relative(opts.root, t.file)}, written by \`npm start\` (demo/main.ts) with its ports and gslb-dns instances.`;
    const configFile = path.join(opts.runDir, path.basename(t.file));
    sites.push({ site, agentApi: `http://${agentApi}`, vips: siteVips, backends, configFile, configText: doc.toString() });
    children.push({ name: `${site}-agent`, kind: 'agent', argv: [dist('slb-agent/main.js'), '--config', configFile, '--run-dir', path.join(opts.runDir, 'agents'), '--admin-token-file', tokenFile] });
  });
  return { ok: true, plan: { instances, sites, children, tokenFile } };
}

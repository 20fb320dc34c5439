/**
 * How a drill reaches the world, like an operator would: DNS questions over UDP (dns-packet, with
 * EDNS Client Subnet, TCP when the reply is truncated), the instances' public HTTP API (state for
 * site membership, admin actions), a client's HTTP fetch, and the operator's own shell commands.
 * The runner takes this as an interface so its timing logic can be tested without a network.
 */
import { addressFamily } from '../shared/ip.js';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { Answer, Packet } from 'dns-packet';
import type { Clock } from '../shared/clock.js';
import type { DrillAction, Endpoint, Instance, Vantage } from './plan.js';

/** An answer as the drill records it: rcode (or TIMEOUT / ERROR), addresses, smallest TTL. */
export interface ProbeAnswer {
  readonly rcode: string;
  readonly addresses: readonly string[];
  readonly ttl: number | null;
  readonly error?: string;
}

export interface HttpProbe { readonly ok: boolean; readonly status: number | null; readonly ms: number; readonly error?: string }

/** The outcome of an action on one instance, or of a command. */
export interface Done { readonly ok: boolean; readonly detail: string }

export interface DrillTransport {
  /** `recursive` sets RD: a vantage's own server is a resolver, which refuses RD=0 questions it has not cached */
  query(to: Endpoint, name: string, type: 'A' | 'AAAA', subnet: Vantage['subnet'], timeoutMs: number, recursive?: boolean): Promise<ProbeAnswer>;
  fetchThrough(url: string, timeoutMs: number): Promise<HttpProbe>;
  /** address -> site, from GET /api/v1/state */
  siteMap(instance: Instance, timeoutMs: number): Promise<Map<string, string>>;
  act(instance: Instance, action: DrillAction, body: ActionBody, timeoutMs: number): Promise<Done>;
  /** runs `command` through /bin/sh -c in `cwd`; killed (its process group) on timeout or abort */
  run(command: string, cwd: string, timeoutMs: number, signal: AbortSignal): Promise<Done>;
}

export interface ActionBody { readonly site: string; readonly address?: string; readonly reason?: string; readonly force?: boolean }

let nextId = 1;

function question(name: string, type: 'A' | 'AAAA', subnet: Vantage['subnet'], recursive: boolean): Packet {
  nextId = (nextId % 0xffff) + 1;
  return {
    type: 'query', id: nextId, flags: recursive ? dnsPacket.RECURSION_DESIRED : 0,
    questions: [{ type, name, class: 'IN' }],
    additionals: [{
      type: 'OPT', name: '.', udpPayloadSize: 1232,
      options: subnet === undefined ? [] : [{ code: 8, family: subnet.family === 4 ? 1 : 2, sourcePrefixLength: subnet.prefix, scopePrefixLength: 0, ip: subnet.address }],
    } as unknown as Answer],
  };
}

function toAnswer(p: Packet, type: 'A' | 'AAAA'): ProbeAnswer {
  const rr = (p.answers ?? []).filter((a): a is Answer & { data: string; ttl?: number } => a.type === type);
  const ttls = rr.map((a) => a.ttl ?? 0);
  return { rcode: (p as { rcode?: string }).rcode ?? 'NOERROR', addresses: rr.map((a) => a.data), ttl: ttls.length ? Math.min(...ttls) : null };
}

function queryTcp(to: Endpoint, q: Buffer, timeoutMs: number): Promise<Packet> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(to.port, to.host);
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('timeout')); }, timeoutMs);
    sock.on('connect', () => sock.write(dnsPacket.streamEncode(dnsPacket.decode(q))));
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        clearTimeout(timer);
        sock.destroy();
        try { resolve(dnsPacket.streamDecode(buf)); } catch (err) { reject(err as Error); }
      }
    });
    sock.on('error', (err) => { clearTimeout(timer); reject(err); });
  });
}

function queryUdp(to: Endpoint, q: Buffer, id: number, timeoutMs: number): Promise<Packet> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(addressFamily(to.host) === 6 ? 'udp6' : 'udp4');
    const finish = (err: Error | undefined, p?: Packet): void => {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err); else resolve(p!);
    };
    const timer = setTimeout(() => finish(new Error('timeout')), timeoutMs);
    sock.on('message', (msg) => {
      let p: Packet;
      try { p = dnsPacket.decode(msg); } catch { return; }
      // a stray or late datagram for another question is not our answer
      if (p.id === id) finish(undefined, p);
    });
    sock.on('error', (err) => finish(err));
    sock.send(q, to.port, to.host);
  });
}

async function query(to: Endpoint, name: string, type: 'A' | 'AAAA', subnet: Vantage['subnet'], timeoutMs: number, recursive = false): Promise<ProbeAnswer> {
  const packet = question(name, type, subnet, recursive);
  const q = dnsPacket.encode(packet);
  try {
    let p = await queryUdp(to, q, packet.id!, timeoutMs);
    if (((p.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE) !== 0) p = await queryTcp(to, q, timeoutMs);
    return toAnswer(p, type);
  } catch (err) {
    const msg = (err as Error).message;
    return msg === 'timeout' ? { rcode: 'TIMEOUT', addresses: [], ttl: null } : { rcode: 'ERROR', addresses: [], ttl: null, error: msg };
  }
}

function headers(instance: Instance, json: boolean): Record<string, string> {
  return { ...(instance.token !== undefined ? { authorization: `Bearer ${instance.token}` } : {}), ...(json ? { 'content-type': 'application/json' } : {}) };
}

function errorText(err: unknown, timeoutMs: number): string {
  const e = err as Error & { cause?: Error & { code?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return `timed out after ${timeoutMs} ms`;
  return e.cause?.code ?? e.cause?.message ?? e.message;
}

async function siteMap(instance: Instance, timeoutMs: number): Promise<Map<string, string>> {
  if (instance.api === undefined) throw new Error(`${instance.name}: no api in the plan`);
  let res: Response;
  try {
    res = await fetch(`${instance.api}/api/v1/state`, { headers: headers(instance, false), signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new Error(`${instance.name}: GET /api/v1/state: ${errorText(err, timeoutMs)}`);
  }
  const body = await res.json().catch(() => undefined) as { pools?: { members?: { site?: unknown; address?: unknown }[] }[]; error?: unknown } | undefined;
  if (res.status !== 200 || !Array.isArray(body?.pools)) throw new Error(`${instance.name}: GET /api/v1/state: ${res.status} ${String(body?.error ?? 'unexpected body')}`);
  const map = new Map<string, string>();
  for (const p of body.pools) for (const m of p.members ?? []) if (typeof m.address === 'string' && typeof m.site === 'string') map.set(m.address, m.site);
  return map;
}

async function act(instance: Instance, action: DrillAction, body: ActionBody, timeoutMs: number): Promise<Done> {
  if (instance.api === undefined) return { ok: false, detail: 'no api in the plan' };
  try {
    const res = await fetch(`${instance.api}/api/v1/admin/${action}`, {
      method: 'POST', headers: headers(instance, true), body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs),
    });
    const r = await res.json().catch(() => ({})) as { ok?: unknown; changed?: unknown; error?: unknown };
    if (res.status === 200 && r.ok === true) return { ok: true, detail: r.changed === true ? 'changed' : 'unchanged' };
    return { ok: false, detail: `${res.status} ${String(r.error ?? '')}`.trim() };
  } catch (err) {
    return { ok: false, detail: errorText(err, timeoutMs) };
  }
}

async function fetchThrough(url: string, timeoutMs: number): Promise<HttpProbe> {
  const t0 = performance.now();
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    await res.arrayBuffer();
    return { ok: res.status < 400, status: res.status, ms: Math.round(performance.now() - t0) };
  } catch (err) {
    return { ok: false, status: null, ms: Math.round(performance.now() - t0), error: errorText(err, timeoutMs) };
  }
}

/** The last `n` characters of a command's output, on one line. */
function tail(text: string, n = 200): string {
  const t = text.trim().replace(/\s*\n\s*/g, ' | ');
  return t.length > n ? `...${t.slice(-n)}` : t;
}

/** Runs commands with the given clock's timers (the timeout is a deadline like any other). */
function createRun(clock: Clock): DrillTransport['run'] {
  return (command, cwd, timeoutMs, signal) => new Promise((resolve) => {
    // its own process group, so a timeout stops what the shell started too
    const child = spawn('/bin/sh', ['-c', command], { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let why: string | undefined;
    const kill = (reason: string): void => {
      why ??= reason;
      try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* already gone */ }
    };
    const timer = clock.setTimeout(() => kill(`timed out after ${timeoutMs} ms`), timeoutMs);
    const onAbort = (): void => kill('stopped');
    signal.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-4096); });
    child.stderr.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-4096); });
    child.on('error', (err) => { why ??= err.message; });
    child.on('close', (code, sig) => {
      clock.clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      const output = tail(out);
      const status = why ?? (code === 0 ? 'exit 0' : code !== null ? `exit ${code}` : `killed by ${sig ?? 'a signal'}`);
      resolve({ ok: why === undefined && code === 0, detail: `${status}${output ? `: ${output}` : ''}` });
    });
  });
}

/** The real network and shell. */
export function createTransport(clock: Clock): DrillTransport {
  return { query, fetchThrough, siteMap, act, run: createRun(clock) };
}

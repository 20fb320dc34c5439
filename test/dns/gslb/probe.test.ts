/**
 * gslb-dns's own probes against real sockets on 127.0.0.1: probeOnce for tcp and http, then
 * startProbes feeding a GslbState (rise/fall applied by the state, not the probe) and stop().
 * Intervals and timeouts run on a manual clock the tests move (a clock that never moves cannot
 * time a probe out, so a pass or a fail is the server's answer); the sockets are real, and waits
 * for them poll with a deadline. No test asserts how long anything took.
 */
import http from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { mergeGslbConfigs, parseGslbYaml } from '../../../dns/gslb/config.js';
import type { GslbConfig, ProbeConfig } from '../../../dns/gslb/model.js';
import { probeOnce, startProbes } from '../../../dns/gslb/probe.js';
import { GslbState } from '../../../dns/gslb/state.js';
import type { MemberStatus } from '../../../dns/gslb/state.js';
import { ManualClock } from '../../helpers/manual-clock.js';

const HOST = '127.0.0.1';

/** Everything a test opened, closed after it whatever happened. */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const connections = new WeakMap<net.Server, Set<net.Socket>>();

/** Listens on 127.0.0.1 (an ephemeral port unless given) and registers the clean-up; resolves with the port. */
async function listen(server: net.Server, port = 0): Promise<number> {
  const open = new Set<net.Socket>();
  connections.set(server, open);
  server.on('connection', (s: net.Socket) => {
    open.add(s);
    s.on('close', () => open.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, HOST, () => { server.off('error', reject); resolve(); });
  });
  cleanups.push(() => close(server));
  return (server.address() as net.AddressInfo).port;
}

/** Stops listening and drops open connections. */
function close(server: net.Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  const done = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const s of connections.get(server) ?? []) s.destroy();
  return done;
}

/** A port that nothing listens on (it was just free and was closed again). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await close(s);
  return port;
}

interface Seen {
  url: string | undefined;
  method: string | undefined;
  headers: IncomingHttpHeaders;
}

/** An HTTP server answering `status` and recording each request. */
async function httpServer(status: number): Promise<{ port: number; seen: Seen[]; server: http.Server }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ url: req.url, method: req.method, headers: req.headers });
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end('probe reply\n');
  });
  return { port: await listen(server), seen, server };
}

function httpProbe(port: number, over: Partial<ProbeConfig> = {}): ProbeConfig {
  return { type: 'http', port, path: '/', expect: [200], intervalMs: 1000, timeoutMs: 500, ...over };
}

function tcpProbe(port: number): ProbeConfig {
  return { type: 'tcp', port, path: '', expect: [], intervalMs: 1000, timeoutMs: 500 };
}

/** Polls `cond` every 5 ms until it holds; fails with `what` after `ms`. */
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A clock that never moves: probeOnce then ends only on the server's answer, never on its timeout. */
const still = new ManualClock();

describe('probeOnce: tcp', () => {
  it('passes against a listening port, and hangs up', async () => {
    const closed: Promise<void>[] = [];
    const server = net.createServer((sock) => {
      closed.push(new Promise((resolve) => sock.on('close', () => resolve())));
      sock.on('error', () => {});
      sock.resume();
    });
    const port = await listen(server);
    expect(await probeOnce(tcpProbe(port), HOST, 4, still)).toBe(true);
    await until(() => closed.length === 1, 'the connection');
    await closed[0];
  });

  it('fails against a closed port', async () => {
    expect(await probeOnce(tcpProbe(await closedPort()), HOST, 4, still)).toBe(false);
  });
});

describe('probeOnce: http', () => {
  it('passes on 200', async () => {
    const { port } = await httpServer(200);
    expect(await probeOnce(httpProbe(port), HOST, 4, still)).toBe(true);
  });

  it('fails on 500 unless 500 is expected', async () => {
    const { port } = await httpServer(500);
    expect(await probeOnce(httpProbe(port), HOST, 4, still)).toBe(false);
    expect(await probeOnce(httpProbe(port, { expect: [200, 500] }), HOST, 4, still)).toBe(true);
  });

  it('fails on a status that is not expected, and follows no redirect', async () => {
    const { port, seen } = await httpServer(301);
    expect(await probeOnce(httpProbe(port), HOST, 4, still)).toBe(false);
    expect(seen).toHaveLength(1);
    expect(await probeOnce(httpProbe(port, { expect: [200] }), HOST, 4, still)).toBe(false);
    const ok = await httpServer(204);
    expect(await probeOnce(httpProbe(ok.port, { expect: [204] }), HOST, 4, still)).toBe(true);
  });

  it('fails against a closed port', async () => {
    expect(await probeOnce(httpProbe(await closedPort()), HOST, 4, still)).toBe(false);
  });

  it('sends a GET for the configured path with a Host header', async () => {
    const { port, seen } = await httpServer(200);
    expect(await probeOnce(httpProbe(port, { path: '/health/check?deep=1' }), HOST, 4, still)).toBe(true);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.method).toBe('GET');
    expect(seen[0]!.url).toBe('/health/check?deep=1');
    expect(seen[0]!.headers.host).toBe(`${HOST}:${port}`);
    expect(seen[0]!.headers['user-agent']).toBe('gslb-dns-probe');
  });

  it('fails after the timeout against a server that accepts and never answers, and hangs up', { timeout: 5000 }, async () => {
    const sockets: net.Socket[] = [];
    const closed: Promise<void>[] = [];
    // reads the request and never answers
    const server = net.createServer((sock) => {
      sockets.push(sock);
      closed.push(new Promise((resolve) => sock.on('close', () => resolve())));
      sock.on('error', () => {});
      sock.resume();
    });
    const port = await listen(server);
    const clock = new ManualClock();
    let result: boolean | undefined;
    const probing = probeOnce(httpProbe(port, { timeoutMs: 100 }), HOST, 4, clock).then((ok) => { result = ok; });
    await until(() => sockets.length === 1, 'the connection');
    await clock.tick(99);
    expect(result).toBeUndefined();
    await clock.tick(1);
    await probing;
    expect(result).toBe(false);
    expect(sockets).toHaveLength(1);
    // the probe closed its end: no connection is left behind
    await closed[0];
  });

  it('passes once the status line arrives, without waiting for a body that never ends', { timeout: 5000 }, async () => {
    const server = http.createServer((_req, res) => { res.writeHead(200); res.write('partial'); });
    const port = await listen(server);
    expect(await probeOnce(httpProbe(port, { timeoutMs: 2000 }), HOST, 4, still)).toBe(true);
  });
});

describe('startProbes with a GslbState', () => {
  function probeConfig(yaml: string): GslbConfig {
    return mergeGslbConfigs([parseGslbYaml(yaml, 'probe.gslb.yaml', 'probe.test.', { S_AGENT: 'agent-secret-0123456789' })]);
  }

  function statusOf(state: GslbState, site: string, address: string): MemberStatus {
    const m = state.memberStates().find((x) => x.site === site && x.address === address);
    if (!m) throw new Error(`no member ${site} ${address}`);
    return m.status;
  }

  it('a probe-only member goes up after rise passes and down after fall failures', async () => {
    const { port, server } = await httpServer(200);
    const config = probeConfig(`
sites:
  lab:
    probe: { type: http, port: ${port}, interval: 100ms, timeout: 50ms }
    rise: 2
    fall: 2
pools:
  web:
    names: [www]
    members: [{ site: lab, address: ${HOST} }]
`);
    const clock = new ManualClock();
    const state = new GslbState(config, clock.wallNow);
    /** each observation and the member's state right after the state applied it */
    const log: { pass: boolean; status: MemberStatus }[] = [];
    const probes = startProbes(config, (site, address, pass) => {
      expect([site, address]).toEqual(['lab', HOST]);
      state.applyProbe(site, address, pass);
      log.push({ pass, status: statusOf(state, site, address) });
    }, { clock });
    cleanups.push(() => probes.stop());
    const serving = () => state.view.pools.get('web')!.members[0]!.up;
    /** moves the clock to the next probe and waits for its observation */
    const round = async (): Promise<void> => {
      const n = log.length;
      await clock.next();
      await until(() => log.length === n + 1, `observation ${n + 1}`);
    };

    await round();
    expect(serving()).toBe(false);
    await round();
    expect(serving()).toBe(true);
    expect(log).toEqual([{ pass: true, status: 'unknown' }, { pass: true, status: 'up' }]);

    await close(server);
    await round();
    // the first failure leaves it up (fall 2), the second takes it down
    expect(serving()).toBe(true);
    await round();
    expect(serving()).toBe(false);
    expect(log.slice(2)).toEqual([{ pass: false, status: 'up' }, { pass: false, status: 'down' }]);
    expect(statusOf(state, 'lab', HOST)).toBe('down');
  });

  it('stop() stops every timer: no observation after it', async () => {
    const a = await httpServer(200);
    const b = net.createServer((s) => s.on('error', () => {}).resume());
    const portB = await listen(b);
    const config = probeConfig(`
sites:
  one: { probe: { type: http, port: ${a.port}, interval: 100ms, timeout: 50ms } }
  two: { probe: { type: tcp, port: ${portB}, interval: 100ms, timeout: 50ms } }
pools:
  web:
    names: [www]
    members: [{ site: one, address: ${HOST} }, { site: two, address: ${HOST} }]
`);
    const clock = new ManualClock();
    const seen: string[] = [];
    // random() = 0.5: both members' first probes at 50 ms, every next one 100 ms after a result
    const probes = startProbes(config, (site) => { seen.push(site); }, { clock, random: () => 0.5 });
    cleanups.push(() => probes.stop());
    for (const [i, ms] of [50, 100].entries()) {
      await clock.tick(ms);
      await until(() => seen.length === 2 * (i + 1), `round ${i + 1}`);
    }
    expect(seen.filter((x) => x === 'one')).toHaveLength(2);
    expect(clock.pending).toBe(2);
    probes.stop();
    // no timer is left to fire
    expect(clock.pending).toBe(0);
    await clock.tick(1000);
    expect(seen).toHaveLength(4);
    expect(a.seen).toHaveLength(2);
    probes.stop();
  });

  it('a probe under way when stopped reports nothing', async () => {
    const sockets: net.Socket[] = [];
    // accepts and never answers: the probe ends on its timeout
    const server = net.createServer((sock) => { sockets.push(sock); sock.on('error', () => {}); sock.resume(); });
    const port = await listen(server);
    const config = probeConfig(`
sites:
  lab: { probe: { type: http, port: ${port}, interval: 100ms, timeout: 50ms } }
pools:
  web: { names: [www], members: [{ site: lab, address: ${HOST} }] }
`);
    const clock = new ManualClock();
    const seen: boolean[] = [];
    const probes = startProbes(config, (_s, _a, pass) => { seen.push(pass); }, { clock, random: () => 0 });
    cleanups.push(() => probes.stop());
    await clock.tick(0);
    await until(() => sockets.length === 1, 'the probe connection');
    probes.stop();
    await clock.tick(50);
    expect(clock.pending).toBe(0);
    expect(seen).toEqual([]);
  });

  it('stop() right after start: no probe ever reports', async () => {
    const { port, seen: requests } = await httpServer(200);
    const config = probeConfig(`
sites:
  lab: { probe: { type: http, port: ${port}, interval: 100ms, timeout: 50ms } }
pools:
  web: { names: [www], members: [{ site: lab, address: ${HOST} }] }
`);
    const clock = new ManualClock();
    const seen: boolean[] = [];
    const probes = startProbes(config, (_s, _a, pass) => { seen.push(pass); }, { clock });
    expect(clock.pending).toBe(1);
    probes.stop();
    expect(clock.pending).toBe(0);
    await clock.tick(1000);
    expect(seen).toEqual([]);
    expect(requests).toEqual([]);
  });

  it('probes only probe-only sites, each member once even when it is in several pools', async () => {
    const server = net.createServer((s) => s.on('error', () => {}).resume());
    const port = await listen(server);
    const config = probeConfig(`
sites:
  lab: { probe: { type: tcp, port: ${port}, interval: 100ms, timeout: 50ms } }
  agent: { secret: env:S_AGENT }
pools:
  a: { names: [a], members: [{ site: lab, address: ${HOST} }, { site: agent, address: 127.0.0.2 }] }
  b: { names: [b], members: [{ site: lab, address: ${HOST} }] }
`);
    const clock = new ManualClock();
    const seen: string[] = [];
    // random() = 0: every member's first probe is due at once
    const probes = startProbes(config, (site, address, pass) => { seen.push(`${site} ${address} ${pass}`); }, { clock, random: () => 0 });
    cleanups.push(() => probes.stop());
    // one member probed: one timer (a duplicate would be a second one, due with the first)
    expect(clock.pending).toBe(1);
    await clock.tick(0);
    await until(() => seen.length >= 1, 'the first probe');
    expect(seen).toEqual([`lab ${HOST} true`]);
    expect(clock.pending).toBe(1);
    for (let k = 2; k <= 3; k++) {
      await clock.next();
      await until(() => seen.length === k, `round ${k}`);
    }
    expect(new Set(seen)).toEqual(new Set([`lab ${HOST} true`]));
  });
});

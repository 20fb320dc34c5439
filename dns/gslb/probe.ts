/**
 * gslb-dns's own health probes for sites without an agent (as gdnsd and PowerDNS do): a TCP
 * connect or an HTTP GET per member, every interval with jitter. A probe only reports pass or
 * fail; GslbState applies rise/fall (checkers report, state decides).
 */
import http from 'node:http';
import net from 'node:net';
import type { GslbConfig, MemberConfig, ProbeConfig } from './model.js';

/** Receives each probe result. */
export type ProbeSink = (site: string, address: string, pass: boolean) => void;

/** One probe attempt; resolves true on success. Never rejects. */
export function probeOnce(probe: ProbeConfig, address: string, family: 4 | 6): Promise<boolean> {
  return probe.type === 'tcp' ? tcpProbe(address, probe.port, probe.timeoutMs) : httpProbe(probe, address, family);
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => { clearTimeout(t); s.destroy(); resolve(ok); };
    const t = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

function httpProbe(probe: ProbeConfig, address: string, family: 4 | 6): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (ok: boolean) => { if (!settled) { settled = true; clearTimeout(t); req.destroy(); resolve(ok); } };
    const req = http.get({ host: address, family, port: probe.port, path: probe.path, agent: false, headers: { 'user-agent': 'gslb-dns-probe' } }, (res) => {
      res.resume();
      done(probe.expect.includes(res.statusCode ?? 0));
    });
    // a server that accepts and never answers is a failure after the timeout, not a hang
    const t = setTimeout(() => done(false), probe.timeoutMs);
    req.once('error', () => done(false));
  });
}

/** Runs the probes of every probe-only site until stopped. */
export function startProbes(config: GslbConfig, sink: ProbeSink, random: () => number = Math.random): { stop(): void } {
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;
  const seen = new Set<string>();
  for (const pool of config.pools.values()) {
    for (const m of pool.members) {
      const site = config.sites.get(m.site);
      const key = `${m.site}|${m.address}`;
      if (!site?.probe || seen.has(key)) continue;
      seen.add(key);
      schedule(site.probe, m, random() * site.probe.intervalMs);
    }
  }
  function schedule(probe: ProbeConfig, m: MemberConfig, delay: number): void {
    const t = setTimeout(async () => {
      timers.delete(t);
      const ok = await probeOnce(probe, m.address, m.family);
      if (stopped) return;
      try {
        sink(m.site, m.address, ok);
      } catch {
        // a failing sink must not end this member's probing; the next result tries again
      }
      // ±10% jitter keeps a thousand probes from firing together
      schedule(probe, m, probe.intervalMs * (0.9 + 0.2 * random()));
    }, delay);
    t.unref();
    timers.add(t);
  }
  return {
    stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
  };
}

/**
 * gslb-dns's own health probes for sites without an agent (as gdnsd and PowerDNS do): a TCP
 * connect or an HTTP GET per member, every interval with jitter. A probe only reports pass or
 * fail; GslbState applies rise/fall (checkers report, state decides).
 */
import http from 'node:http';
import net from 'node:net';
import { systemClock, unrefTimer } from '../../shared/clock.js';
import type { Clock, TimerHandle } from '../../shared/clock.js';
import type { GslbConfig, MemberConfig, ProbeConfig } from './model.js';

/** Receives each probe result. */
export type ProbeSink = (site: string, address: string, pass: boolean) => void;

/** How the probes run; the system's clock and Math.random by default. */
export interface ProbeOptions {
  /** the interval, jitter and timeout timers */
  readonly clock?: Clock;
  /** uniform [0, 1): the first probe's offset and each interval's jitter */
  readonly random?: () => number;
}

/** One probe attempt; resolves true on success, false on failure or after the probe's timeout on `clock`. Never rejects. */
export function probeOnce(probe: ProbeConfig, address: string, family: 4 | 6, clock: Clock = systemClock): Promise<boolean> {
  return probe.type === 'tcp' ? tcpProbe(address, probe.port, probe.timeoutMs, clock) : httpProbe(probe, address, family, clock);
}

function tcpProbe(host: string, port: number, timeoutMs: number, clock: Clock): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => { clock.clearTimeout(t); s.destroy(); resolve(ok); };
    const t = clock.setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

function httpProbe(probe: ProbeConfig, address: string, family: 4 | 6, clock: Clock): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (ok: boolean) => { if (!settled) { settled = true; clock.clearTimeout(t); req.destroy(); resolve(ok); } };
    const req = http.get({ host: address, family, port: probe.port, path: probe.path, agent: false, headers: { 'user-agent': 'gslb-dns-probe' } }, (res) => {
      res.resume();
      done(probe.expect.includes(res.statusCode ?? 0));
    });
    // a server that accepts and never answers is a failure after the timeout, not a hang
    const t = clock.setTimeout(() => done(false), probe.timeoutMs);
    req.once('error', () => done(false));
  });
}

/** Runs the probes of every probe-only site until stopped. */
export function startProbes(config: GslbConfig, sink: ProbeSink, opts: ProbeOptions = {}): { stop(): void } {
  const clock = opts.clock ?? systemClock;
  const random = opts.random ?? Math.random;
  const timers = new Set<TimerHandle>();
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
    const t = clock.setTimeout(async () => {
      timers.delete(t);
      const ok = await probeOnce(probe, m.address, m.family, clock);
      if (stopped) return;
      try {
        sink(m.site, m.address, ok);
      } catch {
        // a failing sink must not end this member's probing; the next result tries again
      }
      // ±10% jitter keeps a thousand probes from firing together
      schedule(probe, m, probe.intervalMs * (0.9 + 0.2 * random()));
    }, delay);
    unrefTimer(t);
    timers.add(t);
  }
  return {
    stop() {
      stopped = true;
      for (const t of timers) clock.clearTimeout(t);
      timers.clear();
    },
  };
}

/**
 * The pinger's metric families (prom-client), in the agent's registry and in the standalone
 * pinger's (`slb-agent pinger`). Read from the pinger's status at scrape time: the pinger counts
 * per peer already, and a probe path stays free of metric calls.
 */
import { Counter, Gauge, createRegistry } from '../../shared/metrics.js';
import type { Registry } from '../../shared/metrics.js';
import type { PeerStatus } from './peer-state.js';
import type { PingerStatus } from './pinger.js';

type PeerLabels = { interface: string; peer: string; method: string };

/** Registers the slb_pinger_* families; `status` undefined (no `pinger:` block) leaves them without samples. */
export function registerPingerMetrics(registers: Registry[], status: () => PingerStatus | undefined): void {
  // one status per scrape, shared by the families (the first family's collect takes it)
  let snap: PingerStatus | undefined;
  let taken = false;
  const peers = (): { l: PeerLabels; p: PeerStatus }[] => {
    if (!taken) { snap = status(); taken = true; }
    return (snap?.interfaces ?? []).flatMap((f) => f.peers.map((p) => ({ l: { interface: f.name, peer: p.address, method: f.method }, p })));
  };
  const perPeer = (kind: 'counter' | 'gauge', name: string, help: string, value: (p: PeerStatus) => number | null, first = false): void => {
    const labelNames = ['interface', 'peer', 'method'] as const;
    const collect = function (this: Counter<'interface' | 'peer' | 'method'> | Gauge<'interface' | 'peer' | 'method'>): void {
      if (first) taken = false;
      this.reset();
      for (const { l, p } of peers()) {
        const v = value(p);
        if (v === null || !Number.isFinite(v)) continue;
        if (this instanceof Counter) this.inc(l, v); else this.set(l, v);
      }
    };
    if (kind === 'counter') new Counter({ name, help, labelNames, registers, collect });
    else new Gauge({ name, help, labelNames, registers, collect });
  };
  perPeer('counter', 'slb_pinger_probes_sent_total', 'Probes sent to each peer.', (p) => p.sent, true);
  perPeer('counter', 'slb_pinger_probes_answered_total', 'Probes each peer answered in time.', (p) => p.answered);
  perPeer('counter', 'slb_pinger_send_errors_total', 'Probes the kernel refused to send.', (p) => p.sendErrors);
  perPeer('gauge', 'slb_pinger_consecutive_failures', 'Consecutive unanswered probes per peer.', (p) => p.consecutiveFailures);
  perPeer('gauge', 'slb_pinger_peer_answering', 'The peer answers (1), stopped answering (0); absent until known.', (p) => (p.answering === null ? null : p.answering ? 1 : 0));
  perPeer('gauge', 'slb_pinger_rtt_seconds', 'Round-trip time of the last answer per peer.', (p) => (p.lastRttMs === null ? null : p.lastRttMs / 1000));
  perPeer('gauge', 'slb_pinger_rtt_smoothed_seconds', 'Smoothed round-trip time per peer (RFC 6298 alpha 1/8).', (p) => (p.srttMs === null ? null : p.srttMs / 1000));
  perPeer('gauge', 'slb_pinger_last_answer_timestamp_seconds', 'Unix time of the last answer per peer.', (p) => (p.lastAnswerAt === null ? null : p.lastAnswerAt / 1000));
  new Gauge({
    name: 'slb_pinger_peers_answering', help: 'Peers that answer now, per interface (of slb_pinger_peers).', labelNames: ['interface', 'method'] as const, registers,
    collect() {
      this.reset();
      for (const f of snap?.interfaces ?? []) this.set({ interface: f.name, method: f.method }, f.peers.filter((p) => p.answering === true).length);
    },
  });
  new Gauge({
    name: 'slb_pinger_peers', help: 'Peers probed, per interface (listed and found by auto).', labelNames: ['interface', 'method'] as const, registers,
    collect() {
      this.reset();
      for (const f of snap?.interfaces ?? []) this.set({ interface: f.name, method: f.method }, f.peers.length);
    },
  });
}

/** The standalone pinger's registry: process metrics, slb_agent_build_info and the pinger families. */
export function createPingerMetrics(status: () => PingerStatus): Registry {
  const registry = createRegistry('slb_agent');
  registerPingerMetrics([registry], status);
  return registry;
}

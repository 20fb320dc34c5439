/** The pinger's Prometheus families (the agent's /metrics and the standalone pinger's). */
import type { PingerStatus } from './pinger.js';

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Prometheus text lines (no trailing newline) for every peer of every interface. */
export function renderPingerMetrics(s: PingerStatus): string {
  const out: string[] = [];
  const peers = s.interfaces.flatMap((f) => f.peers.map((p) => ({ l: `{interface="${esc(f.name)}",peer="${esc(p.address)}",method="${f.method}"}`, p })));
  const family = (name: string, type: 'gauge' | 'counter', help: string, value: (p: (typeof peers)[number]['p']) => number | null): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const { l, p } of peers) {
      const v = value(p);
      if (v !== null && Number.isFinite(v)) out.push(`${name}${l} ${v}`);
    }
  };
  family('slb_pinger_probes_sent_total', 'counter', 'Probes sent to each peer.', (p) => p.sent);
  family('slb_pinger_probes_answered_total', 'counter', 'Probes each peer answered in time.', (p) => p.answered);
  family('slb_pinger_send_errors_total', 'counter', 'Probes the kernel refused to send.', (p) => p.sendErrors);
  family('slb_pinger_consecutive_failures', 'gauge', 'Consecutive unanswered probes per peer.', (p) => p.consecutiveFailures);
  family('slb_pinger_peer_answering', 'gauge', 'The peer answers (1), stopped answering (0); absent until known.', (p) => (p.answering === null ? null : p.answering ? 1 : 0));
  family('slb_pinger_rtt_seconds', 'gauge', 'Round-trip time of the last answer.', (p) => (p.lastRttMs === null ? null : p.lastRttMs / 1000));
  family('slb_pinger_rtt_smoothed_seconds', 'gauge', 'Smoothed round-trip time (RFC 6298 alpha 1/8).', (p) => (p.srttMs === null ? null : p.srttMs / 1000));
  family('slb_pinger_last_answer_timestamp_seconds', 'gauge', 'Unix time of the last answer.', (p) => (p.lastAnswerAt === null ? null : p.lastAnswerAt / 1000));
  return out.join('\n');
}

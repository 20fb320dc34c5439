/**
 * slb-agent's metrics registry (prom-client), in the conventions of the HAProxy exporter and
 * gslb-dns: `_total` counters, base units, states as label values (1 for the current one).
 *
 * Read from the agent's status at scrape time (the agent counts already); the counters fed from
 * those cumulative counts are reset and set to them then (prom-client counters have no set()).
 * Only the check duration is observed as it happens, one observation per check result.
 */
import { BucketHistogram, Counter, Gauge, Histogram, createRegistry, perScrape } from '../../shared/metrics.js';
import type { Registry } from '../../shared/metrics.js';
import type { Agent, AgentStatus, RealServerStatus } from '../agent.js';
import { LATENCY_BUCKETS_S } from '../forwarder/manager.js';
import { registerPingerMetrics } from '../pinger/metrics.js';

/** The registry of one agent (one per API app). */
export interface AgentMetrics {
  readonly registry: Registry;
  /** The text exposition of one scrape (the caller refreshes the flow counters first). */
  render(): Promise<string>;
  /** Stops observing the agent's check results. */
  close(): void;
}

const CHECK_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const VIP_STATES = ['up', 'down', 'drain'] as const;
const RS_STATES = ['up', 'down', 'drain'] as const;

type Rs = { vip: string; r: RealServerStatus };
const rsKey = (vip: string, address: string, port: number): string => `${vip}\0${address}\0${port}`;
const rsLabels = ({ vip, r }: Rs) => ({ vip, address: r.address, port: r.port });

/** Builds the registry and its families over `agent`. */
export function createAgentMetrics(agent: Agent): AgentMetrics {
  const registry = createRegistry('slb_agent');
  const registers = [registry];
  const scrape = perScrape(registry, () => agent.status());
  const status = scrape.get;
  const realServers = (): Rs[] => status().vips.flatMap((v) => v.realServers.map((r) => ({ vip: v.name, r })));
  const rsNames = ['vip', 'address', 'port'] as const;

  new Counter({
    name: 'slb_agent_check_results_total', help: 'Health check results per real server, by result (pass, fail).',
    labelNames: [...rsNames, 'result'] as const, registers,
    collect() {
      this.reset();
      for (const x of realServers()) { this.inc({ ...rsLabels(x), result: 'pass' }, x.r.passes); this.inc({ ...rsLabels(x), result: 'fail' }, x.r.fails); }
    },
  });
  // the series observed so far, so that a real server a reload removed loses its series too
  const observed = new Map<string, { vip: string; address: string; port: number }>();
  const checkDuration = new Histogram({
    name: 'slb_agent_check_duration_seconds', help: 'Duration of each health check per real server (as its checker measured it, timeouts included).',
    labelNames: rsNames, buckets: CHECK_BUCKETS_S, registers,
    collect() {
      const live = new Set(realServers().map(({ vip, r }) => rsKey(vip, r.address, r.port)));
      for (const [key, labels] of observed) if (!live.has(key)) { this.remove(labels); observed.delete(key); }
    },
  });
  const unsubscribe = agent.onCheckResult((rs, result) => {
    const labels = { vip: rs.vip, address: rs.address, port: rs.port };
    observed.set(rsKey(rs.vip, rs.address, rs.port), labels);
    checkDuration.observe(labels, result.latencyMs / 1000);
  });
  new Gauge({
    name: 'slb_agent_realserver_status', help: 'State of the real server: 1 for its current one (drain: drained by the operator; else up or down after rise/fall).',
    labelNames: [...rsNames, 'state'] as const, registers,
    collect() {
      this.reset();
      for (const x of realServers()) {
        const now = x.r.drained ? 'drain' : x.r.health.state;
        for (const s of RS_STATES) this.set({ ...rsLabels(x), state: s }, s === now ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'slb_agent_realserver_serving', help: 'Whether the real server takes new flows (1: healthy, not drained) or not (0).', labelNames: rsNames, registers,
    collect() { this.reset(); for (const x of realServers()) this.set(rsLabels(x), x.r.serving ? 1 : 0); },
  });
  vipFamilies(registers, status);
  new Counter({
    name: 'slb_agent_reports_total', help: 'Report attempts per DNS instance, by result (accepted, failed).', labelNames: ['dns', 'result'] as const, registers,
    collect() { this.reset(); for (const d of status().dns) { this.inc({ dns: d.url, result: 'accepted' }, d.sent); this.inc({ dns: d.url, result: 'failed' }, d.failed); } },
  });
  new Gauge({
    name: 'slb_agent_report_consecutive_failures', help: 'Consecutive failed report attempts per DNS instance.', labelNames: ['dns'] as const, registers,
    collect() { this.reset(); for (const d of status().dns) this.set({ dns: d.url }, d.consecutiveFailures); },
  });
  forwarderFamilies(registers, status, realServers);
  registerPingerMetrics(registers, () => status().pinger);

  return {
    registry,
    render: scrape.render,
    close: unsubscribe,
  };
}

function vipFamilies(registers: Registry[], status: () => AgentStatus): void {
  const names = ['vip', 'address'] as const;
  new Gauge({
    name: 'slb_agent_vip_state', help: 'State of the VIP as reported to gslb-dns: 1 for its current one (up, down, drain).',
    labelNames: [...names, 'state'] as const, registers,
    collect() {
      this.reset();
      for (const v of status().vips) for (const s of VIP_STATES) this.set({ vip: v.name, address: v.address, state: s }, v.state === s ? 1 : 0);
    },
  });
  new Gauge({
    name: 'slb_agent_vip_weight_ratio', help: 'Weight of the VIP as reported, 0..1 (the share of its real servers\' weight that serves).', labelNames: names, registers,
    collect() { this.reset(); for (const v of status().vips) this.set({ vip: v.name, address: v.address }, v.weight / 100); },
  });
  new Gauge({
    name: 'slb_agent_vip_healthy_realservers', help: 'Real servers of the VIP that serve.', labelNames: names, registers,
    collect() { this.reset(); for (const v of status().vips) this.set({ vip: v.name, address: v.address }, v.healthy); },
  });
}

/** The data plane's families; without forwarded VIPs they are listed without samples. */
function forwarderFamilies(registers: Registry[], status: () => AgentStatus, realServers: () => Rs[]): void {
  const rsNames = ['vip', 'address', 'port'] as const;
  const flows = () => realServers().flatMap((x) => (x.r.forwarder ? [{ l: rsLabels(x), f: x.r.forwarder }] : []));
  new Counter({
    name: 'slb_forwarder_flows_total', help: 'Flows the data plane placed on each real server (the data plane counts flows, not packets).', labelNames: rsNames, registers,
    collect() { this.reset(); for (const { l, f } of flows()) this.inc(l, f.total); },
  });
  new Gauge({
    name: 'slb_forwarder_flows_active', help: 'Flows open now per real server.', labelNames: rsNames, registers,
    collect() { this.reset(); for (const { l, f } of flows()) this.set(l, f.active); },
  });
  new Gauge({
    name: 'slb_forwarder_apply_ok', help: 'Whether the last data plane apply of the VIP succeeded (1) or failed (0).', labelNames: ['vip'] as const, registers,
    collect() { this.reset(); for (const v of status().vips) if (v.forwarder?.lastApply) this.set({ vip: v.name }, v.forwarder.lastApply.ok ? 1 : 0); },
  });
  // the manager keeps the buckets (LATENCY_BUCKETS_S); they are exported as it counted them
  new BucketHistogram({
    name: 'slb_forwarder_apply_duration_seconds', help: 'From a health or drain change to the data plane having applied it.',
    buckets: LATENCY_BUCKETS_S, registers,
    read: () => {
      const h = status().forwarder?.applyLatency;
      return h === undefined ? [] : [{ labels: {}, counts: h.buckets.map((b) => b.count), sum: h.sum, count: h.count }];
    },
  });
  new Counter({
    name: 'slb_forwarder_apply_errors_total', help: 'Data plane applies that failed (one per plane and attempt).', registers,
    collect() { this.reset(); const fw = status().forwarder; if (fw) this.inc(fw.applyErrors); },
  });
}

/**
 * gslb-dns's metrics registry (prom-client), named in the conventions of CoreDNS and the HAProxy
 * exporter: `_total` counters, base units (`_seconds`), states as label values.
 *
 * Nothing here is counted on the query path: the engine's typed-array counters, the health
 * state and the connection caps are read when a scrape asks (`collect()`), and counters fed from
 * those cumulative sources are reset and set to the source's value then (prom-client counters
 * have no set()). Only the report apply latency is observed as it happens (one per report).
 */
import { Counter, Gauge, Histogram, BucketHistogram, METRICS_CONTENT_TYPE, createRegistry, perScrape } from '../../shared/metrics.js';
import type { Registry } from '../../shared/metrics.js';
import type { GslbState, MemberStatus } from '../gslb/state.js';
import type { OverrideStoreStatus } from '../gslb/overrides-store.js';
import { poolFailOpen } from '../gslb/fail-open.js';
import { DURATION_BUCKETS_S } from '../server/query-counters.js';
import type { ConnectionStats } from './connection-limit.js';

export { METRICS_CONTENT_TYPE };

/** What the DNS side counts, read on each scrape (see server/query-counters.ts). */
export interface DnsMetricsSnapshot {
  /** requests received (answered or dropped), by transport, client address family and query type */
  requests: readonly { proto: string; family: string; type: string; value: number }[];
  /** responses sent, by transport and rcode */
  responses: readonly { proto: string; rcode: string; value: number }[];
  /** per transport: cumulative counts per DURATION_BUCKETS_S bound; absent with --metrics-request-duration off */
  duration?: readonly { proto: string; counts: readonly number[]; sum: number; count: number }[];
  answers: readonly { pool: string; site: string; address: string; count: number }[];
  fastPath: number;
  /** UDP replies that response-rate limiting dropped or sent truncated; absent when RRL is off */
  rrl?: { dropped: number; slipped: number };
  /** the reply cache, per budget (see CacheBudget in server/engine.ts) */
  cache?: {
    positive: { hits: number; misses: number; entries: number };
    negative: { hits: number; misses: number; entries: number; bytes: number };
  };
  /** the DNSSEC signature cache; absent when no zone is signed */
  signatures?: { hits: number; misses: number; entries: number; bytes: number };
}

/** Where the registry reads from. */
export interface DnsMetricsSources {
  readonly dns: () => DnsMetricsSnapshot;
  readonly state: GslbState;
  readonly overridesStore: () => OverrideStoreStatus;
  readonly connections: () => ConnectionStats;
  /** admin requests refused (bad or missing token, API disabled), by HTTP status */
  readonly adminRefused: ReadonlyMap<string, number>;
  /** reads (page data, state, explain, events) refused for want of a read or admin token, by HTTP status */
  readonly readRefused?: ReadonlyMap<string, number>;
  /** unix ms, for the report apply latency */
  readonly now: () => number;
}

/** The registry of one gslb-dns process (one per API app). */
export interface DnsMetrics {
  readonly registry: Registry;
  /** A report signed at `signedAt` (its X-GSLB-Timestamp, unix ms) was applied now. */
  reportApplied(signedAt: number): void;
  /** The text exposition of one scrape. */
  render(): Promise<string>;
}

const STATUSES: readonly MemberStatus[] = ['unknown', 'up', 'down', 'drain'];
const REPORT_LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Builds the registry and its families. */
export function createDnsMetrics(src: DnsMetricsSources): DnsMetrics {
  const registry = createRegistry('gslb_dns');
  const registers = [registry];
  const scrape = perScrape(registry, src.dns);
  const dns = scrape.get;
  const { state } = src;

  new Counter({
    name: 'gslb_dns_requests_total', help: 'DNS requests received (answered or dropped), by transport, client address family and query type (other: any type not named).',
    labelNames: ['proto', 'family', 'type'] as const, registers,
    collect() { this.reset(); for (const r of dns().requests) this.inc({ proto: r.proto, family: r.family, type: r.type }, r.value); },
  });
  new Counter({
    name: 'gslb_dns_responses_total', help: 'DNS responses sent, by transport and response code.',
    labelNames: ['proto', 'rcode'] as const, registers,
    collect() { this.reset(); for (const r of dns().responses) this.inc({ proto: r.proto, rcode: r.rcode }, r.value); },
  });
  new BucketHistogram({
    name: 'gslb_dns_request_duration_seconds',
    help: 'Time spent answering one DNS request in the server (parse, look up or select, encode; socket I/O excluded), by transport. Not collected with --metrics-request-duration off.',
    buckets: DURATION_BUCKETS_S, registers,
    read: () => (dns().duration ?? []).map((d) => ({ labels: { proto: d.proto }, counts: d.counts, sum: d.sum, count: d.count })),
  });
  new Counter({
    name: 'gslb_dns_answers_total', help: 'GSLB answers that included a member, by pool and member.',
    labelNames: ['pool', 'site', 'address'] as const, registers,
    collect() { this.reset(); for (const a of dns().answers) this.inc({ pool: a.pool, site: a.site, address: a.address }, a.count); },
  });
  new Counter({
    name: 'gslb_dns_fast_path_total', help: 'DNS requests answered from precompiled reply bytes.', registers,
    collect() { this.reset(); this.inc(dns().fastPath); },
  });
  new Counter({
    name: 'gslb_dns_rrl_limited_total', help: 'UDP replies over the response rate limit, by action: dropped, or slipped (sent truncated, TC=1, so a real client retries over TCP). No series when RRL is off.',
    labelNames: ['action'] as const, registers,
    collect() {
      this.reset();
      const rrl = dns().rrl;
      if (rrl) { this.inc({ action: 'dropped' }, rrl.dropped); this.inc({ action: 'slipped' }, rrl.slipped); }
    },
  });
  cacheFamilies(registers, dns);

  new Counter({
    name: 'gslb_reports_total', help: 'Site reports received, by result (accepted, rejected) and, when rejected, reason.',
    labelNames: ['result', 'reason'] as const, registers,
    collect() {
      this.reset();
      this.inc({ result: 'accepted' }, state.counters.reportsAccepted);
      for (const [reason, n] of state.counters.reportsRejected) this.inc({ result: 'rejected', reason }, n);
    },
  });
  const applyLatency = new Histogram({
    name: 'gslb_report_apply_latency_seconds',
    help: 'From a report\'s signed X-GSLB-Timestamp to its health applied in this instance; includes the clock skew between agent and instance (clamped at 0).',
    buckets: REPORT_LATENCY_BUCKETS_S, registers,
  });
  new Gauge({
    name: 'gslb_site_report_age_seconds', help: 'Time since the last valid report of each agent-fed site (since the start, before its first).',
    labelNames: ['site'] as const, registers,
    collect() { this.reset(); for (const s of state.siteReportAges()) this.set({ site: s.site }, s.ageMs / 1000); },
  });
  memberFamilies(registers, state);

  new Gauge({
    name: 'gslb_health_epoch', help: 'Epoch of the current health view; changes whenever an answer could change.', registers,
    collect() { this.set(state.view.epoch); },
  });
  new Gauge({
    name: 'gslb_overrides_store_up', help: 'Whether the operator overrides store is reachable (1) or not (0: writes are refused, the last known overrides stay in force).', registers,
    collect() { this.set(src.overridesStore().reachable ? 1 : 0); },
  });
  new Gauge({
    name: 'gslb_overrides_store_info', help: 'Where operator overrides live: etcd (shared), file (per instance) or memory.',
    labelNames: ['kind'] as const, registers,
    collect() { this.reset(); this.set({ kind: src.overridesStore().kind }, 1); },
  });
  new Counter({
    name: 'gslb_admin_refused_total', help: 'Admin API requests refused before any action, by HTTP status (401: no or wrong token, 403: admin API disabled).',
    labelNames: ['status'] as const, registers,
    collect() { this.reset(); for (const [status, n] of src.adminRefused) this.inc({ status }, n); },
  });
  new Counter({
    name: 'gslb_read_refused_total', help: 'Reads of the state, explain and event stream refused, by HTTP status (401: no or wrong token, 403: no read token configured and not --status-public).',
    labelNames: ['status'] as const, registers,
    collect() { this.reset(); for (const [status, n] of src.readRefused ?? []) this.inc({ status }, n); },
  });
  connectionFamilies(registers, src.connections);

  return {
    registry,
    reportApplied(signedAt) {
      applyLatency.observe(Math.max(0, src.now() - signedAt) / 1000);
    },
    render: scrape.render,
  };
}

function cacheFamilies(registers: Registry[], dns: () => DnsMetricsSnapshot): void {
  const budgets = (c: NonNullable<DnsMetricsSnapshot['cache']>) => [['negative', c.negative], ['positive', c.positive]] as const;
  new Counter({
    name: 'gslb_dns_cache_hits_total', help: 'DNS requests answered from a reply cache entry, by budget (positive: names that exist; negative: NXDOMAIN, wildcard and other random-name replies).',
    labelNames: ['budget'] as const, registers,
    collect() { this.reset(); const c = dns().cache; if (c) for (const [budget, b] of budgets(c)) this.inc({ budget }, b.hits); },
  });
  new Counter({
    name: 'gslb_dns_cache_misses_total', help: 'DNS requests looked up because no reply cache entry held them, by the budget of their reply.',
    labelNames: ['budget'] as const, registers,
    collect() { this.reset(); const c = dns().cache; if (c) for (const [budget, b] of budgets(c)) this.inc({ budget }, b.misses); },
  });
  new Gauge({
    name: 'gslb_dns_cache_entries', help: 'Replies held in the reply cache, by budget.', labelNames: ['budget'] as const, registers,
    collect() { this.reset(); const c = dns().cache; if (c) for (const [budget, b] of budgets(c)) this.set({ budget }, b.entries); },
  });
  new Gauge({
    name: 'gslb_dns_cache_bytes', help: 'Reply bytes held in the negative budget of the reply cache (its ring is allocated at start: --cache-negative-bytes).',
    labelNames: ['budget'] as const, registers,
    collect() { this.reset(); const c = dns().cache; if (c) this.set({ budget: 'negative' }, c.negative.bytes); },
  });
  type Sig = NonNullable<DnsMetricsSnapshot['signatures']>;
  const counter = (name: string, help: string, pick: (s: Sig) => number) => new Counter({
    name, help, registers, collect() { this.reset(); const s = dns().signatures; if (s) this.inc(pick(s)); },
  });
  const gauge = (name: string, help: string, pick: (s: Sig) => number) => new Gauge({
    name, help, registers, collect() { this.reset(); const s = dns().signatures; if (s) this.set(pick(s)); },
  });
  counter('gslb_dns_dnssec_signatures_made_total', 'RRSIG RRsets made (signature cache misses, refreshes included).', (s) => s.misses);
  counter('gslb_dns_dnssec_signature_cache_hits_total', 'RRSIG RRsets taken from the signature cache.', (s) => s.hits);
  gauge('gslb_dns_dnssec_signature_cache_entries', 'RRSIG RRsets held in the signature cache.', (s) => s.entries);
  gauge('gslb_dns_dnssec_signature_cache_bytes', 'Bytes charged to the signature cache (keys and signatures; bounded, see docs/dnssec.md).', (s) => s.bytes);
}

function memberFamilies(registers: Registry[], state: GslbState): void {
  new Gauge({
    name: 'gslb_member_up', help: 'Whether the member may receive traffic (1) or not (0).', labelNames: ['site', 'address'] as const, registers,
    collect() { this.reset(); for (const m of state.memberStates()) this.set({ site: m.site, address: m.address }, m.serving ? 1 : 0); },
  });
  new Gauge({
    name: 'gslb_member_status', help: 'Health state of the member: 1 for its current status, 0 for the others.',
    labelNames: ['site', 'address', 'status'] as const, registers,
    collect() {
      this.reset();
      for (const m of state.memberStates()) for (const s of STATUSES) this.set({ site: m.site, address: m.address, status: s }, m.status === s ? 1 : 0);
    },
  });
  // per pool, computed once per scrape for both families
  let pools: ReturnType<typeof poolFailOpen> | undefined;
  new Gauge({
    name: 'gslb_pool_fail_open', help: 'Whether the pool answers by allDown (fail-open all or first-tier, a sorry pool, NODATA): no member serves.',
    labelNames: ['pool'] as const, registers,
    collect() { this.reset(); pools = poolFailOpen(state.gslb, state.view); for (const p of pools) this.set({ pool: p.pool }, p.failOpen ? 1 : 0); },
  });
  new Gauge({
    name: 'gslb_pool_startup_pending', help: 'Whether the pool waits for the first health word on a member its answer would include, after a start (startup: servfail answers SERVFAIL).',
    labelNames: ['pool'] as const, registers,
    collect() {
      this.reset();
      for (const p of pools ?? poolFailOpen(state.gslb, state.view)) this.set({ pool: p.pool }, p.startupPending ? 1 : 0);
      pools = undefined;
    },
  });
}

function connectionFamilies(registers: Registry[], stats: () => ConnectionStats): void {
  new Gauge({
    name: 'gslb_api_connections', help: 'Open connections to the HTTP API.', registers,
    collect() { this.set(stats().open); },
  });
  new Counter({
    name: 'gslb_api_connections_refused_total', help: 'HTTP API connections closed at once by a cap: per-source or total.',
    labelNames: ['cap'] as const, registers,
    collect() {
      this.reset();
      const s = stats();
      this.inc({ cap: 'per-source' }, s.refused['per-source']);
      this.inc({ cap: 'total' }, s.refused.total);
    },
  });
  new Counter({
    name: 'gslb_api_connections_evicted_total', help: 'HTTP API connections of the heaviest source closed to make room when the total cap was reached.', registers,
    collect() { this.reset(); this.inc(stats().evicted); },
  });
}

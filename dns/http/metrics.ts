/**
 * The Prometheus text exposition (format 0.0.4) of gslb-dns, written by hand: a handful of
 * families, every label value escaped, series in a stable order.
 */
import type { MemberStatus } from '../gslb/state.js';
import type { ConnectionStats } from './connection-limit.js';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** What the DNS side counts, read on each scrape. */
export interface DnsMetricsSnapshot {
  queriesByRcode: Record<string, number>;
  answers: { pool: string; site: string; address: string; count: number }[];
  fastPath: number;
  queries: number;
  /** UDP replies that response-rate limiting dropped or sent truncated; absent when RRL is off */
  rrl?: { dropped: number; slipped: number };
  /** the reply cache, per budget (see CacheBudget in server/engine.ts) */
  cache?: {
    positive: { hits: number; misses: number; entries: number };
    negative: { hits: number; misses: number; entries: number; bytes: number };
  };
}

/** Everything one scrape renders. */
export interface MetricsInput {
  readonly dns: DnsMetricsSnapshot;
  readonly reportsAccepted: number;
  readonly reportsRejected: ReadonlyMap<string, number>;
  readonly members: readonly { site: string; address: string; status: MemberStatus; serving: boolean }[];
  readonly epoch: number;
  /** per pool: answering by allDown, waiting on startup (see gslb/fail-open.ts); none when absent */
  readonly pools?: readonly { pool: string; failOpen: boolean; startupPending: boolean }[];
  /** where operator overrides live and whether writes are possible */
  readonly overridesStore?: { readonly kind: string; readonly reachable: boolean };
  /** the HTTP API's connection caps at work */
  readonly connections?: ConnectionStats;
  /** admin requests refused (bad or missing token, API disabled), by HTTP status */
  readonly adminRefused?: ReadonlyMap<string, number>;
}

const STATUSES: readonly MemberStatus[] = ['unknown', 'up', 'down', 'drain'];

/** A label value as the text format wants it: backslash, double quote and newline escaped. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

type Labels = readonly (readonly [string, string])[];

class Exposition {
  private readonly lines: string[] = [];

  family(name: string, type: 'counter' | 'gauge', help: string): this {
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    return this;
  }

  sample(name: string, labels: Labels, value: number): this {
    const l = labels.length === 0 ? '' : `{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
    this.lines.push(`${name}${l} ${formatValue(value)}`);
    return this;
  }

  toString(): string {
    return `${this.lines.join('\n')}\n`;
  }
}

function byKey<T>(key: (t: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    const x = key(a);
    const y = key(b);
    return x < y ? -1 : x > y ? 1 : 0;
  };
}

/** Renders one scrape. */
export function renderMetrics(m: MetricsInput): string {
  const e = new Exposition();

  e.family('gslb_dns_queries_total', 'counter', 'DNS queries answered, by response code.');
  for (const rcode of Object.keys(m.dns.queriesByRcode).sort()) e.sample('gslb_dns_queries_total', [['rcode', rcode]], m.dns.queriesByRcode[rcode] ?? 0);

  e.family('gslb_dns_queries_received_total', 'counter', 'DNS queries received, including those dropped without a reply.');
  e.sample('gslb_dns_queries_received_total', [], m.dns.queries);

  e.family('gslb_dns_answers_total', 'counter', 'GSLB answers that included a member, by pool and member.');
  for (const a of [...m.dns.answers].sort(byKey((x) => `${x.pool}\0${x.site}\0${x.address}`))) {
    e.sample('gslb_dns_answers_total', [['pool', a.pool], ['site', a.site], ['address', a.address]], a.count);
  }

  e.family('gslb_dns_fast_path_total', 'counter', 'DNS queries answered from precompiled reply bytes.');
  e.sample('gslb_dns_fast_path_total', [], m.dns.fastPath);

  if (m.dns.rrl !== undefined) {
    e.family('gslb_dns_rrl_limited_total', 'counter', 'UDP replies over the response rate limit: dropped, or slipped (sent truncated, TC=1, so a real client retries over TCP).');
    e.sample('gslb_dns_rrl_limited_total', [['action', 'dropped']], m.dns.rrl.dropped);
    e.sample('gslb_dns_rrl_limited_total', [['action', 'slipped']], m.dns.rrl.slipped);
  }
  const cache = m.dns.cache;
  if (cache !== undefined) {
    const budgets = [['negative', cache.negative], ['positive', cache.positive]] as const;
    e.family('gslb_dns_cache_hits_total', 'counter', 'DNS queries answered from a reply cache entry, by budget (positive: names that exist; negative: NXDOMAIN, wildcard and other random-name replies).');
    for (const [b, c] of budgets) e.sample('gslb_dns_cache_hits_total', [['budget', b]], c.hits);
    e.family('gslb_dns_cache_misses_total', 'counter', 'DNS queries looked up because no reply cache entry held them, by the budget of their reply.');
    for (const [b, c] of budgets) e.sample('gslb_dns_cache_misses_total', [['budget', b]], c.misses);
    e.family('gslb_dns_cache_entries', 'gauge', 'Replies held in the reply cache, by budget.');
    for (const [b, c] of budgets) e.sample('gslb_dns_cache_entries', [['budget', b]], c.entries);
    e.family('gslb_dns_cache_bytes', 'gauge', 'Reply bytes held in the negative budget of the reply cache (its ring is allocated at start: --cache-negative-bytes).');
    e.sample('gslb_dns_cache_bytes', [['budget', 'negative']], cache.negative.bytes);
  }

  e.family('gslb_reports_total', 'counter', 'Site reports received: accepted, or rejected by reason.');
  e.sample('gslb_reports_total', [['result', 'accepted']], m.reportsAccepted);
  for (const reason of [...m.reportsRejected.keys()].sort()) {
    e.sample('gslb_reports_total', [['result', 'rejected'], ['reason', reason]], m.reportsRejected.get(reason) ?? 0);
  }

  const members = [...m.members].sort(byKey((x) => `${x.site}\0${x.address}`));
  e.family('gslb_member_up', 'gauge', 'Whether the member may receive traffic (1) or not (0).');
  for (const x of members) e.sample('gslb_member_up', [['site', x.site], ['address', x.address]], x.serving ? 1 : 0);

  e.family('gslb_member_status', 'gauge', 'Health state of the member: 1 for its current status, 0 for the others.');
  for (const x of members) {
    for (const s of STATUSES) e.sample('gslb_member_status', [['site', x.site], ['address', x.address], ['status', s]], x.status === s ? 1 : 0);
  }

  const pools = [...(m.pools ?? [])].sort(byKey((x) => x.pool));
  e.family('gslb_pool_fail_open', 'gauge', 'Whether the pool answers by allDown (fail-open all or first-tier, a sorry pool, NODATA): no member serves.');
  for (const p of pools) e.sample('gslb_pool_fail_open', [['pool', p.pool]], p.failOpen ? 1 : 0);
  e.family('gslb_pool_startup_pending', 'gauge', 'Whether the pool has no serving member and waits for the first health word on some member after a start (startup: servfail answers SERVFAIL).');
  for (const p of pools) e.sample('gslb_pool_startup_pending', [['pool', p.pool]], p.startupPending ? 1 : 0);

  e.family('gslb_health_epoch', 'gauge', 'Epoch of the current health view; changes whenever an answer could change.');
  e.sample('gslb_health_epoch', [], m.epoch);

  if (m.overridesStore !== undefined) {
    e.family('gslb_overrides_store_up', 'gauge', 'Whether the operator overrides store is reachable (1) or not (0: writes are refused, the last known overrides stay in force).');
    e.sample('gslb_overrides_store_up', [], m.overridesStore.reachable ? 1 : 0);
    e.family('gslb_overrides_store_info', 'gauge', 'Where operator overrides live: etcd (shared), file (per instance) or memory.');
    e.sample('gslb_overrides_store_info', [['kind', m.overridesStore.kind]], 1);
  }

  if (m.adminRefused !== undefined) {
    e.family('gslb_admin_refused_total', 'counter', 'Admin API requests refused before any action, by HTTP status (401: no or wrong token, 403: admin API disabled).');
    for (const status of [...m.adminRefused.keys()].sort()) e.sample('gslb_admin_refused_total', [['status', status]], m.adminRefused.get(status) ?? 0);
  }

  if (m.connections !== undefined) {
    e.family('gslb_api_connections', 'gauge', 'Open connections to the HTTP API.');
    e.sample('gslb_api_connections', [], m.connections.open);
    e.family('gslb_api_connections_refused_total', 'counter', 'HTTP API connections closed at once by a cap: per-source or total.');
    e.sample('gslb_api_connections_refused_total', [['cap', 'per-source']], m.connections.refused['per-source']);
    e.sample('gslb_api_connections_refused_total', [['cap', 'total']], m.connections.refused.total);
    e.family('gslb_api_connections_evicted_total', 'counter', 'HTTP API connections of the heaviest source closed to make room when the total cap was reached.');
    e.sample('gslb_api_connections_evicted_total', [], m.connections.evicted);
  }

  return e.toString();
}

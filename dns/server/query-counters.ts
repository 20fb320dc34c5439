/**
 * The engine's per-query counters: requests by protocol, address family and type, responses by
 * protocol and rcode, and the request-duration histogram. They are plain typed arrays bumped by
 * index on the hot path and turned into labelled series only at scrape time (http/metrics.ts):
 * prom-client's labelled inc()/observe() hash their labels on every call, which a server
 * answering 100,000s of queries a second should not pay (see `npm run bench:dns`).
 */
import { RRType } from '../wire/types.js';

export const PROTOS = ['udp', 'tcp'] as const;
export const FAMILIES = ['ipv4', 'ipv6', 'unknown'] as const;
/** The types counted by name; every other type is counted as `other` (bounded cardinality). */
export const COUNTED_TYPES = ['A', 'AAAA', 'NS', 'CNAME', 'SOA', 'PTR', 'MX', 'TXT', 'SRV', 'NAPTR', 'DS', 'DNSKEY', 'SVCB', 'HTTPS', 'CAA', 'ANY', 'AXFR', 'IXFR'] as const;
export const TYPE_LABELS: readonly string[] = [...COUNTED_TYPES, 'other'];
const OTHER = COUNTED_TYPES.length;

/** rcode label per index (16: BADVERS, an extended rcode with header rcode 0). */
export const RCODE_LABELS: readonly string[] = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET',
  'NOTAUTH', 'NOTZONE', 'RCODE11', 'RCODE12', 'RCODE13', 'RCODE14', 'RCODE15', 'BADVERS'];
export const RCODE_SLOTS = RCODE_LABELS.length;

/**
 * Upper bounds of the request-duration histogram, in seconds: the time `Engine.handle` spends on
 * one query (parse, look up or select, encode), not the socket's. Answers take microseconds, so
 * the buckets start at 5 µs (CoreDNS's start at 250 µs, where a Go server with plugins lives).
 */
export const DURATION_BUCKETS_S: readonly number[] = [0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1];
const BOUNDS_MS = Float64Array.from(DURATION_BUCKETS_S, (s) => s * 1000);
const NB = BOUNDS_MS.length;

const TYPE_INDEX = new Uint8Array(65536).fill(OTHER);
COUNTED_TYPES.forEach((t, i) => { TYPE_INDEX[RRType[t]] = i; });

/** The counters; `requests` and `responses` are indexed as documented on their getters. */
export class QueryCounters {
  /** [proto][family][type] flattened */
  readonly requests = new Float64Array(PROTOS.length * FAMILIES.length * TYPE_LABELS.length);
  /** [proto][rcode slot] flattened */
  readonly responses = new Float64Array(PROTOS.length * RCODE_SLOTS);
  /** per proto: NB bucket counts (not cumulative), then the +Inf bucket */
  readonly buckets = new Float64Array(PROTOS.length * (NB + 1));
  /** per proto, seconds */
  readonly durationSum = new Float64Array(PROTOS.length);

  request(tcp: boolean, family: 4 | 6 | undefined, hasQuestion: boolean, qtype: number): void {
    const f = family === 4 ? 0 : family === 6 ? 1 : 2;
    const t = hasQuestion ? TYPE_INDEX[qtype]! : OTHER;
    this.requests[((tcp ? 1 : 0) * FAMILIES.length + f) * TYPE_LABELS.length + t]!++;
  }

  response(tcp: boolean, slot: number): void {
    this.responses[(tcp ? RCODE_SLOTS : 0) + slot]!++;
  }

  /** One request's duration in ms (performance.now() differences). */
  duration(tcp: boolean, ms: number): void {
    const base = tcp ? NB + 1 : 0;
    let i = 0;
    while (i < NB && ms > BOUNDS_MS[i]!) i++;
    this.buckets[base + i]!++;
    this.durationSum[tcp ? 1 : 0]! += ms / 1000;
  }

  /** The histogram of one proto for the exposition: cumulative counts per bound, sum and count. */
  histogram(proto: 0 | 1): { counts: number[]; sum: number; count: number } {
    const counts: number[] = [];
    let acc = 0;
    const base = proto * (NB + 1);
    for (let i = 0; i < NB; i++) { acc += this.buckets[base + i]!; counts.push(acc); }
    return { counts, sum: this.durationSum[proto]!, count: acc + this.buckets[base + NB]! };
  }

  /** Every non-zero request series. */
  requestSeries(): { proto: string; family: string; type: string; value: number }[] {
    const out: { proto: string; family: string; type: string; value: number }[] = [];
    this.requests.forEach((value, i) => {
      if (value === 0) return;
      const t = i % TYPE_LABELS.length;
      const rest = (i - t) / TYPE_LABELS.length;
      const f = rest % FAMILIES.length;
      const p = (rest - f) / FAMILIES.length;
      out.push({ proto: PROTOS[p]!, family: FAMILIES[f]!, type: TYPE_LABELS[t]!, value });
    });
    return out;
  }

  /** Every non-zero response series. */
  responseSeries(): { proto: string; rcode: string; value: number }[] {
    const out: { proto: string; rcode: string; value: number }[] = [];
    this.responses.forEach((value, i) => {
      if (value === 0) return;
      out.push({ proto: PROTOS[Math.floor(i / RCODE_SLOTS)]!, rcode: RCODE_LABELS[i % RCODE_SLOTS]!, value });
    });
    return out;
  }
}

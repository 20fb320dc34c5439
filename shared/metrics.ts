/**
 * What every program's metrics registry shares (prom-client): a registry of its own with the
 * default process metrics and a build-info gauge, and a histogram read from cumulative bucket
 * counts kept elsewhere. prom-client is imported here only; each program's metrics module
 * (dns/http/metrics.ts, slb-agent/api/metrics.ts, slb-agent/pinger/metrics.ts) builds on these.
 */
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { packageVersion } from './cli.js';
import type { LabelValues, Metric, MetricObjectWithValues, MetricType, MetricValueWithName } from 'prom-client';

export { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The content type of the text exposition a registry renders. */
export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;


/**
 * A fresh registry (never prom-client's global one: tests build many apps in one process) with
 * the default process metrics under their default names and `<prefix>_build_info`.
 */
export function createRegistry(prefix: 'gslb_dns' | 'slb_agent'): Registry {
  const register = new Registry();
  collectDefaultMetrics({ register });
  const info = new Gauge({
    name: `${prefix}_build_info`, help: 'Always 1; the labels say which build runs (package version, Node.js version).',
    labelNames: ['version', 'nodejs'] as const, registers: [register],
  });
  info.set({ version: packageVersion(), nodejs: process.version }, 1);
  return register;
}

/**
 * A source read once per scrape: the families of one scrape share the value `read` returned
 * (one engine or agent snapshot, not one per family); `render` forgets it after each scrape.
 */
export function perScrape<T>(registry: Registry, read: () => T): { get(): T; render(): Promise<string> } {
  let snap: { value: T } | undefined;
  return {
    get: () => (snap ??= { value: read() }).value,
    async render() {
      snap = undefined;
      try {
        return await registry.metrics();
      } finally {
        snap = undefined;
      }
    },
  };
}

/** Cumulative counts per upper bound (seconds, ascending, +Inf implied), their sum and count, for one label set. */
export interface BucketCounts {
  readonly labels: LabelValues<string>;
  /** counts[i]: observations <= bounds[i] (cumulative); count: all of them */
  readonly counts: ArrayLike<number>;
  readonly sum: number;
  readonly count: number;
}

/**
 * A histogram whose buckets are counted elsewhere (a hot path's fixed array, a data plane's
 * counters) and read at scrape time: prom-client has no way to set a histogram's buckets, so
 * this is a metric of its own that the registry renders like prom-client's Histogram.
 */
export class BucketHistogram {
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  readonly name: string;
  readonly help: string;
  private readonly bounds: readonly number[];
  private readonly read: () => readonly BucketCounts[];

  constructor(opts: { name: string; help: string; buckets: readonly number[]; read: () => readonly BucketCounts[]; registers: Registry[] }) {
    this.name = opts.name;
    this.help = opts.help;
    this.bounds = opts.buckets;
    this.read = opts.read;
    for (const r of opts.registers) r.registerMetric(this as unknown as Metric);
  }

  async get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    const values: MetricValueWithName<string>[] = [];
    for (const h of this.read()) {
      this.bounds.forEach((le, i) => values.push({ metricName: `${this.name}_bucket`, labels: { ...h.labels, le }, value: h.counts[i] ?? 0 }));
      values.push({ metricName: `${this.name}_bucket`, labels: { ...h.labels, le: '+Inf' }, value: h.count });
      values.push({ metricName: `${this.name}_sum`, labels: h.labels, value: h.sum });
      values.push({ metricName: `${this.name}_count`, labels: h.labels, value: h.count });
    }
    return { name: this.name, help: this.help, type: 'histogram' as unknown as MetricType, values, aggregator: 'sum', collect: () => {} };
  }

  /** Nothing to reset: the counts belong to their source. */
  reset(): void {}
}

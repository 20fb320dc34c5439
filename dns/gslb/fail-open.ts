/**
 * Which pools answer by allDown right now (fail-open all / first-tier, a sorry pool, NODATA) and
 * which wait on startup, decided by running the pool selector itself on the health view, so the
 * gauge says what queries get. Evaluated per health view (never per query); a pool counts when
 * any address family it has members of answers that way.
 *
 *   | a family of the pool ...                          | gslb_pool_fail_open | gslb_pool_startup_pending |
 *   |---------------------------------------------------|---------------------|---------------------------|
 *   | has a serving member                              | 0                   | 0                         |
 *   | none serving, some pending, startup: servfail     | 0 (SERVFAIL)        | 1                         |
 *   | none serving, some pending, startup: allDown      | 1                   | 1                         |
 *   | none serving, none pending                        | 1                   | 0                         |
 */
import type { GslbConfig, PoolConfig } from './model.js';
import { isAllDownMode, Mode, PoolSelector } from './selector.js';
import type { HealthView } from './state.js';

/** The allDown state of one pool. */
export interface PoolFailOpen {
  readonly pool: string;
  readonly failOpen: boolean;
  readonly startupPending: boolean;
  /** the pool's allDown as written (all, first-tier, nodata, pool:<name>) when failOpen */
  readonly allDown: string;
}

/** The allDown text of a pool, as in its file. */
export function allDownText(p: PoolConfig): string {
  return p.allDown.kind === 'pool' ? `pool:${p.allDown.pool}` : p.allDown.kind;
}

/** Evaluates every pool of `config` on `view` (see the table above). */
export function poolFailOpen(config: GslbConfig, view: HealthView, selector = new PoolSelector(config, () => 0)): PoolFailOpen[] {
  const out: PoolFailOpen[] = [];
  for (const p of config.pools.values()) {
    let failOpen = false;
    let startupPending = false;
    for (const family of [4, 6] as const) {
      if (!p.members.some((m) => m.family === family)) continue;
      selector.client(false, 4, new Uint8Array(16), 0);
      selector.select(p, view, family);
      if (selector.mode === Mode.Startup) startupPending = true;
      else if (isAllDownMode(selector.mode)) failOpen = true;
      if (((view.pools.get(p.name)?.pending ?? 0) & (family === 4 ? 1 : 2)) !== 0 && isAllDownMode(selector.mode)) startupPending = true;
    }
    out.push({ pool: p.name, failOpen, startupPending, allDown: allDownText(p) });
  }
  return out;
}

/** Logs for the fail-open watcher. */
export interface FailOpenLog {
  warn(obj: object, msg: string): void;
}

/**
 * Follows the health views: keeps the current PoolFailOpen list for metrics and logs one warning
 * when a pool starts answering by allDown and one when it stops (never per query).
 */
export class FailOpenWatch {
  private states = new Map<string, PoolFailOpen>();
  private config: GslbConfig;
  private selector: PoolSelector;

  /** `configOf` gives the configuration the views belong to (it changes on reload). */
  constructor(private readonly configOf: () => GslbConfig, view: HealthView, private readonly log: FailOpenLog) {
    this.config = configOf();
    this.selector = new PoolSelector(this.config, () => 0);
    this.update(view);
  }

  /** The current list, in configuration order. */
  get pools(): readonly PoolFailOpen[] {
    return [...this.states.values()];
  }

  /** A new health view. */
  update(view: HealthView): void {
    if (this.configOf() !== this.config) {
      this.config = this.configOf();
      this.selector = new PoolSelector(this.config, () => 0);
    }
    const next = new Map<string, PoolFailOpen>();
    for (const s of poolFailOpen(this.config, view, this.selector)) {
      const prev = this.states.get(s.pool);
      if (s.failOpen && !prev?.failOpen) {
        this.log.warn({ pool: s.pool, allDown: s.allDown, epoch: view.epoch }, `pool ${s.pool} answers by allDown (${s.allDown}): no member serves`);
      } else if (!s.failOpen && prev?.failOpen) {
        this.log.warn({ pool: s.pool, allDown: s.allDown, epoch: view.epoch }, `pool ${s.pool} no longer answers by allDown: a member serves again${s.startupPending ? ' or is pending' : ''}`);
      }
      next.set(s.pool, s);
    }
    this.states = next;
  }
}

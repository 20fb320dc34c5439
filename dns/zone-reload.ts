/**
 * Reloading the zones directory while serving: on SIGHUP, at once when a file is replaced by
 * rename, and when a file written in place has stayed the same for the settle time (zone-watch.ts).
 * Only zone files that changed are parsed again. One reload runs at a time; a change during one
 * runs another after it. A directory that fails to load is logged and the previous zones keep
 * serving.
 */
import { stat, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { systemClock } from '../shared/clock.js';
import type { Clock } from '../shared/clock.js';
import { KeyLoadError } from './dnssec/keys.js';
import { GslbLoadError } from './gslb/load.js';
import { loadServing } from './serving.js';
import type { Serving } from './serving.js';
import { ZoneFileCache, ZoneLoadError } from './zone/load.js';
import type { ZoneDirLoadOptions } from './zone/load.js';
import { createReloadTrigger } from './zone-watch.js';
import type { FileStamp } from './zone-watch.js';

/** How long a file written in place must stay the same before it is loaded (`--reload-settle`). */
export const DEFAULT_RELOAD_SETTLE_MS = 2000;

export interface ZoneReloadOptions {
  readonly settleMs?: number;
  readonly clock?: Clock;
  /** the zones loaded at start, so that the first reload parses only what changed since */
  readonly cache?: ZoneFileCache;
  /** loads one zone file (default: on this thread) */
  readonly loadFile?: ZoneDirLoadOptions['loadFile'];
  /**
   * measures the event loop during each reload and logs the longest block (`reload loop block`,
   * `maxBlockMs`) `settleProbeMs` after the swap, for the benchmark (monitorEventLoopDelay)
   */
  readonly loopProbe?: boolean;
}

/** How long after a swap the loop probe keeps measuring (the old tree's garbage is collected). */
const PROBE_TAIL_MS = 300;

export interface ZoneReloading {
  /** reloads now (as SIGHUP does); `why` goes to the log */
  reload(why: string): void;
  /** stops watching (SIGHUP stays handled) */
  stop(): void;
}

/** `apply` puts a loaded directory in service; an error it throws fails the reload like a load error. */
export function startZoneReloading(zonesDir: string, log: Logger, apply: (next: Serving) => void, opts: ZoneReloadOptions = {}): ZoneReloading {
  const cache = opts.cache ?? new ZoneFileCache();
  const clock = opts.clock ?? systemClock;
  const loadOpts: ZoneDirLoadOptions = opts.loadFile ? { cache, loadFile: opts.loadFile } : { cache };
  let reloading = false;
  let again = false;
  const reload = async (why: string): Promise<void> => {
    if (reloading) { again = true; return; }
    reloading = true;
    const probe = opts.loopProbe ? monitorEventLoopDelay({ resolution: 2 }) : undefined;
    probe?.enable();
    try {
      const before = cache.snapshot();
      const next = await loadServing(zonesDir, process.env, loadOpts);
      apply(next);
      for (const w of next.gslb.warnings ?? []) log.warn(w);
      let parsed = 0;
      for (const z of next.zones.zones) {
        if (before.get(z.file) === cache.zoneOf(z.file)) continue;
        parsed++;
        log.info({ zone: z.origin, serial: z.serial, records: z.recordCount, why }, 'zone reloaded');
      }
      if (parsed === 0) log.info({ why }, 'zones unchanged; pools reloaded');
      if (probe) {
        const p = probe;
        clock.setTimeout(() => {
          p.disable();
          log.info({ why, maxBlockMs: Math.round(p.max / 1e5) / 10, p99BlockMs: Math.round(p.percentile(99) / 1e5) / 10 }, 'reload loop block');
        }, PROBE_TAIL_MS);
      }
    } catch (err) {
      probe?.disable();
      const errors = err instanceof ZoneLoadError || err instanceof GslbLoadError || err instanceof KeyLoadError ? err.errors.map((e) => e.message) : [String(err)];
      for (const e of errors) log.error(e);
      log.error({ why }, 'reload failed; the previous zones keep serving');
    } finally {
      reloading = false;
      if (again) { again = false; void reload('changed during reload'); }
    }
  };
  process.on('SIGHUP', () => void reload('SIGHUP'));
  const trigger = createReloadTrigger({
    clock,
    settleMs: opts.settleMs ?? DEFAULT_RELOAD_SETTLE_MS,
    stat: (name) => new Promise<FileStamp>((resolve) => {
      stat(path.join(zonesDir, name), (err, s) => resolve(err ? undefined : { size: s.size, mtimeMs: s.mtimeMs }));
    }),
    reload: (why) => void reload(why),
  });
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(zonesDir, (event, name) => trigger.onEvent(event, name));
  } catch (err) {
    log.warn({ err }, 'cannot watch the zones directory; reload with SIGHUP');
  }
  return {
    reload: (why) => void reload(why),
    stop() {
      watcher?.close();
      trigger.stop();
    },
  };
}

/**
 * Reloading the zones directory while serving: on SIGHUP and when a file in it changes (once a
 * burst of writes has ended). One reload runs at a time; a change during one runs another after
 * it. A directory that fails to load is logged and the previous zones keep serving.
 */
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import type { Logger } from 'pino';
import { GslbLoadError } from './gslb/load.js';
import { loadServing } from './serving.js';
import type { Serving } from './serving.js';
import { ZoneLoadError } from './zone/load.js';

/** Editors write in several steps: a reload waits this long after the last change. */
const SETTLE_MS = 300;

export interface ZoneReloading {
  /** stops watching (SIGHUP stays handled) */
  stop(): void;
}

/** `apply` puts a loaded directory in service; an error it throws fails the reload like a load error. */
export function startZoneReloading(zonesDir: string, log: Logger, apply: (next: Serving) => void): ZoneReloading {
  let reloading = false;
  let again = false;
  const reload = async (why: string): Promise<void> => {
    if (reloading) { again = true; return; }
    reloading = true;
    try {
      const next = await loadServing(zonesDir);
      apply(next);
      for (const z of next.zones.zones) log.info({ zone: z.origin, serial: z.serial, records: z.recordCount, why }, 'zone reloaded');
    } catch (err) {
      const errors = err instanceof ZoneLoadError || err instanceof GslbLoadError ? err.errors.map((e) => e.message) : [String(err)];
      for (const e of errors) log.error(e);
      log.error({ why }, 'reload failed; the previous zones keep serving');
    } finally {
      reloading = false;
      if (again) { again = false; void reload('changed during reload'); }
    }
  };
  process.on('SIGHUP', () => void reload('SIGHUP'));
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(zonesDir, () => {
      clearTimeout(timer);
      timer = setTimeout(() => void reload('file changed'), SETTLE_MS);
    });
  } catch (err) {
    log.warn({ err }, 'cannot watch the zones directory; reload with SIGHUP');
  }
  return {
    stop() {
      watcher?.close();
      clearTimeout(timer);
    },
  };
}

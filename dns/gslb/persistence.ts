/**
 * What an instance keeps across restarts, set up before the first DNS answer: the operator
 * overrides (from etcd, read for up to `overridesWaitMs`, else the --state-dir cache; or from
 * the --state-dir file alone) and, with a state dir, the health table restored from its last
 * save and saved again after every accepted report.
 */
import type { Logger } from 'pino';
import { createHealthSaver, loadHealth, saveHealth } from './health-store.js';
import type { HealthSaver } from './health-store.js';
import type { EtcdLocation } from './overrides-etcd.js';
import { createFileOverrideStore } from './overrides-store.js';
import type { OverrideStore } from './overrides-store.js';
import type { GslbState } from './state.js';

export interface PersistenceOptions {
  /** shared overrides in etcd; the --state-dir file when absent */
  readonly etcd: EtcdLocation | undefined;
  readonly stateDir: string | undefined;
  readonly overridesWaitMs: number;
  readonly log: Logger;
}

export interface Persistence {
  readonly overridesStore: OverrideStore;
  /** present with a state dir */
  readonly saver: HealthSaver | undefined;
}

/** Starts the overrides store (its overrides are in force when this resolves) and restores the saved health. */
export async function startPersistence(state: GslbState, opts: PersistenceOptions): Promise<Persistence> {
  const { etcd, stateDir, log } = opts;
  const overridesStore: OverrideStore = etcd
    // etcd3 is loaded only for etcd (see main.ts)
    ? (await import('./overrides-etcd.js')).createEtcdOverrideStore({ state, location: etcd, stateDir, log, startTimeoutMs: opts.overridesWaitMs })
    : createFileOverrideStore({
      state, stateDir,
      onRestored: ({ restored, dropped }) => {
        if (restored) log.info({ overrides: restored, stateDir }, 'operator overrides restored');
        if (dropped.length) log.warn({ dropped }, 'overrides for targets no longer configured were dropped');
      },
    });
  await overridesStore.start();
  return { overridesStore, saver: stateDir ? await restoreHealth(state, stateDir, log) : undefined };
}

async function restoreHealth(state: GslbState, stateDir: string, log: Logger): Promise<HealthSaver> {
  const loaded = await loadHealth(stateDir);
  if (loaded.kind === 'corrupt') {
    // health is a cache of what agents say again within a heartbeat: start as without it
    log.warn({ file: loaded.file, error: loaded.error }, 'health file ignored (corrupt); starting without saved health, the next save replaces it');
  } else if (loaded.kind === 'loaded') {
    const r = state.restoreHealth(loaded.health);
    log.info({ file: loaded.file, restored: r.restored, skipped: r.skipped }, 'health restored');
  }
  const saver = createHealthSaver(() => saveHealth(stateDir, state.exportHealth()), (err) => log.error({ err, stateDir }, 'saving health failed'));
  state.onReport(() => saver.changed());
  return saver;
}

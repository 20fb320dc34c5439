/**
 * Operator overrides shared through etcd (the one place that uses the `etcd3` client): every
 * instance watches one prefix, an admin action through any instance is one etcd transaction,
 * and every instance applies the whole set it reads to its GslbState. DNS answers never wait
 * on etcd: the set in force is in memory, and cached in `<stateDir>/overrides.json`.
 *
 * Keys under PREFIX (which ends with "/"):
 *   site/<site>                   {action, site, actor, reason?, at}
 *   member/<site>/<address>       {action, site, address, actor, reason?, at}
 *   _generation                   written by every admin transaction; an admin write commits only
 *                                 if it did not move since the set the guard was checked against
 *                                 was read, so two instances cannot both pass one guard
 *
 *   | state         | event                               | next                                 |
 *   |---------------|-------------------------------------|--------------------------------------|
 *   | starting      | read ok within startTimeoutMs       | reachable (source: store)            |
 *   | starting      | no read within startTimeoutMs       | unreachable (source: cache, warned)  |
 *   | reachable     | a read or write fails               | unreachable: writes 503              |
 *   | unreachable   | a read succeeds (probe every probeIntervalMs) | reachable, set re-read     |
 *   | any           | watch event or watch (re)connected  | full re-read of the prefix           |
 */
import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen } from 'cockatiel';
import { Etcd3, isRecoverableError } from 'etcd3';
import type { IKeyValue, Watcher } from 'etcd3';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { Logger } from 'pino';
import { loadOverrides, saveOverrides, StoredOverrideSchema } from './overrides-store.js';
import type { OverrideStore, OverrideStoreStatus, StoredOverride, StoreWriteResult } from './overrides-store.js';
import { outcomeOf } from './state.js';
import type { GslbState, OverrideTarget } from './state.js';
import { formatHostPort, parseHostPort } from '../../shared/ip.js';

/** Where the shared overrides live: etcd client URLs and the key prefix (ending in "/"). */
export interface EtcdLocation {
  readonly hosts: readonly string[];
  readonly prefix: string;
}

/** Parses `etcd://HOST:PORT[,HOST:PORT...]/PREFIX`; throws saying what was expected. */
export function parseEtcdLocation(text: string): EtcdLocation {
  const m = /^etcd:\/\/([^/]+)\/(.+)$/.exec(text.trim());
  if (!m) throw new Error(`expected etcd://HOST:PORT[,HOST:PORT...]/PREFIX, got ${JSON.stringify(text)}`);
  const hosts = m[1]!.split(',').map((h) => h.trim()).filter((h) => h !== '').map((h) => {
    let hp: { host: string; port: number };
    try {
      hp = parseHostPort(h, { names: true });
    } catch (err) {
      const why = (err as Error).message;
      throw new Error(`etcd host ${JSON.stringify(h)}: ${why.startsWith('expected') ? why : `expected HOST:PORT, ${why}`}`);
    }
    if (hp.port === 0) throw new Error(`etcd host ${JSON.stringify(h)}: port must be 1 to 65535`);
    return `http://${formatHostPort(hp.host, hp.port)}`;
  });
  if (hosts.length === 0) throw new Error('expected at least one etcd HOST:PORT');
  const prefix = `/${m[2]!.replace(/^\/+|\/+$/g, '')}/`;
  if (prefix === '//') throw new Error('the etcd key PREFIX must not be empty');
  return { hosts, prefix };
}

export interface EtcdStoreOptions {
  readonly state: GslbState;
  readonly location: EtcdLocation;
  /** where the last known set is cached; undefined: a restart with etcd down starts with none */
  readonly stateDir: string | undefined;
  readonly log: Logger;
  /** how long start() tries etcd before falling back to the cache */
  readonly startTimeoutMs?: number;
  /** deadline of each etcd call */
  readonly callTimeoutMs?: number;
  /** how often the store is read (a probe while unreachable, a safety net besides the watch) */
  readonly probeIntervalMs?: number;
}

export const ETCD_START_TIMEOUT_MS = 5000;
const CALL_TIMEOUT_MS = 2000;
const PROBE_INTERVAL_MS = 1000;
const WRITE_ATTEMPTS = 5;
const GENERATION = '_generation';

const checkRecord = TypeCompiler.Compile(StoredOverrideSchema);

/** The key of a target under `prefix`. */
export function etcdKey(prefix: string, t: OverrideTarget): string {
  return t.address === undefined ? `${prefix}site/${t.site}` : `${prefix}member/${t.site}/${t.address}`;
}

function message(err: unknown): string {
  const e = err as Error & { details?: string };
  return e.details || e.message || String(err);
}

/** The etcd-backed OverrideStore; see the table above. */
export function createEtcdOverrideStore(opts: EtcdStoreOptions): OverrideStore {
  const { state, log, stateDir } = opts;
  const { prefix } = opts.location;
  const callTimeoutMs = opts.callTimeoutMs ?? CALL_TIMEOUT_MS;
  const generationKey = `${prefix}${GENERATION}`;
  const client = new Etcd3({
    hosts: [...opts.location.hosts],
    dialTimeout: callTimeoutMs,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
    // the defaults wait up to 30 s between watch reconnects and leave a failed member alone for
    // 5 s; recover within about a second of etcd coming back
    faultHandling: {
      host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1000 }).next(),
    },
  });

  let reachable = false;
  let since = new Date().toISOString();
  let lastError: string | null = 'not connected yet';
  let source: OverrideStoreStatus['source'] = 'store';
  let revision: number | undefined;
  let generation = 0;
  let fingerprint: string | undefined;
  let applied: string | undefined;
  let started = false;
  let closed = false;
  let watcher: Watcher | undefined;
  let probe: NodeJS.Timeout | undefined;
  let saving: Promise<void> = Promise.resolve();

  function markUp(): void {
    if (reachable) return;
    reachable = true;
    since = new Date().toISOString();
    if (lastError !== 'not connected yet') log.info({ store: 'etcd', hosts: opts.location.hosts }, 'overrides store reachable again');
    lastError = null;
  }

  function markDown(err: unknown): void {
    const first = lastError === 'not connected yet';
    lastError = message(err);
    if (!reachable && !first) return;
    if (reachable) {
      reachable = false;
      since = new Date().toISOString();
    }
    log.warn({ store: 'etcd', hosts: opts.location.hosts, err: lastError }, 'overrides store unreachable: keeping the last known overrides, refusing admin writes');
  }

  function parse(kv: IKeyValue): StoredOverride | undefined {
    const key = kv.key.toString('utf8');
    let value: unknown;
    try {
      value = JSON.parse(kv.value.toString('utf8'));
    } catch {
      value = undefined;
    }
    if (!checkRecord.Check(value) || etcdKey(prefix, value) !== key) {
      log.warn({ key }, 'ignoring an etcd override that is not {action, site, address?, at, actor?, reason?} under its own key');
      return undefined;
    }
    return value;
  }

  /** Reads the whole prefix and puts it in force; throws (after marking the store down) when etcd cannot be read. */
  async function readAndApply(): Promise<void> {
    let res;
    try {
      res = await client.getAll().prefix(prefix).exec();
    } catch (err) {
      markDown(err);
      throw err;
    }
    markUp();
    revision = Number(res.header.revision);
    let gen = 0;
    const seen: string[] = [];
    const records: IKeyValue[] = [];
    for (const kv of res.kvs) {
      const key = kv.key.toString('utf8');
      if (key === generationKey) { gen = Number(kv.mod_revision); continue; }
      seen.push(`${key}@${kv.mod_revision}`);
      records.push(kv);
    }
    generation = gen;
    source = 'store';
    const fp = seen.sort().join(',');
    // unchanged in etcd and in the state (a reload may have dropped overrides of targets it removed)
    if (fp === fingerprint && JSON.stringify(state.listOverrides()) === applied) return;
    fingerprint = fp;
    const list = records.map(parse).filter((o): o is StoredOverride => o !== undefined);
    const dropped = state.restoreOverrides(list, 'etcd');
    applied = JSON.stringify(state.listOverrides());
    if (dropped.length) log.warn({ dropped }, 'etcd holds overrides for targets this instance does not configure; ignored');
    log.debug({ overrides: list.length, revision }, 'overrides read from etcd');
    if (stateDir !== undefined) {
      const dir = stateDir;
      saving = saving.then(() => saveOverrides(dir, state.listOverrides())).catch((err: Error) => {
        log.error({ err: err.message, stateDir: dir }, 'caching the etcd overrides failed');
      });
    }
  }

  // one read at a time; a read asked for while one runs is one more read after it
  let running: Promise<void> | null = null;
  let queued: Promise<void> | null = null;
  function resync(): Promise<void> {
    if (running === null) {
      running = readAndApply().finally(() => { running = null; });
      return running;
    }
    queued ??= running.catch(() => {}).then(() => { queued = null; return resync(); });
    return queued;
  }
  const resyncQuietly = (): void => { if (!closed) resync().catch(() => {}); };

  function watch(): void {
    const w = client.watch().prefix(prefix).watcher();
    w.on('connected', resyncQuietly);
    w.on('put', resyncQuietly);
    w.on('delete', resyncQuietly);
    // a broken stream may be one member gone (the client moves to another): a read decides
    w.on('disconnected', (err) => { log.debug({ err: message(err) }, 'etcd watch disconnected'); resyncQuietly(); });
    w.on('error', (err) => { log.debug({ err: message(err) }, 'etcd watch error'); resyncQuietly(); });
    watcher = w;
  }

  async function write(t: OverrideTarget, record: StoredOverride | null): Promise<boolean> {
    const key = etcdKey(prefix, t);
    const op = record === null ? client.delete().key(key) : client.put(key).value(JSON.stringify(record));
    const res = await client.if(generationKey, 'Mod', '==', generation)
      .then(op, client.put(generationKey).value(new Date().toISOString()))
      .commit();
    return res.succeeded;
  }

  return {
    kind: 'etcd',
    async start() {
      const deadline = Date.now() + (opts.startTimeoutMs ?? ETCD_START_TIMEOUT_MS);
      let loaded = false;
      for (;;) {
        try {
          await resync();
          loaded = true;
          break;
        } catch {
          if (Date.now() >= deadline) break;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      if (loaded) {
        log.info({ store: 'etcd', hosts: opts.location.hosts, prefix, overrides: state.listOverrides().length, revision }, 'operator overrides read from etcd');
      } else {
        source = 'cache';
        const cached = stateDir === undefined ? [] : await loadOverrides(stateDir);
        const dropped = state.restoreOverrides(cached);
        log.error({ store: 'etcd', hosts: opts.location.hosts, err: lastError, stateDir, overrides: cached.length, dropped },
          stateDir === undefined
            ? 'etcd unreachable at start and no --state-dir cache: starting WITHOUT operator overrides until etcd is back'
            : 'etcd unreachable at start: serving the last known overrides from the --state-dir cache until etcd is back');
      }
      started = true;
      watch();
      probe = setInterval(resyncQuietly, opts.probeIntervalMs ?? PROBE_INTERVAL_MS);
      probe.unref();
    },
    ready: () => started,
    async apply(action, target, req): Promise<StoreWriteResult> {
      for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
        try {
          await resync();
        } catch (err) {
          return { ok: false, status: 503, reason: `overrides store unreachable: etcd ${opts.location.hosts.join(',')}: ${message(err)}; nothing was changed` };
        }
        const plan = state.planAdmin(action, target, req);
        if (!plan.ok) return { changed: false, ...plan };
        if (!plan.changed) return { ok: true, changed: false };
        let committed: boolean;
        try {
          committed = await write(plan.target, plan.record);
        } catch (err) {
          markDown(err);
          return { ok: false, status: 503, reason: `overrides store unreachable: etcd ${opts.location.hosts.join(',')}: ${message(err)}; the write may or may not have been applied, check with "gslb-dns ctl state"` };
        }
        if (committed) {
          await resync().catch(() => {
            // committed, but etcd could not be read back: put this one change in force here now;
            // the next read brings the whole set
            const key = etcdKey(prefix, plan.target);
            const next = state.listOverrides().filter((o) => etcdKey(prefix, o) !== key);
            state.restoreOverrides(plan.record === null ? next : [...next, plan.record], 'etcd');
          });
          return outcomeOf(plan);
        }
        // another admin action was committed since our read: decide again on the new set
      }
      return { ok: false, status: 503, reason: `overrides store busy: ${WRITE_ATTEMPTS} concurrent admin writes won over this one; try again` };
    },
    status: () => ({ kind: 'etcd', reachable, lastError, since, source, ...(revision !== undefined ? { revision } : {}) }),
    async close() {
      closed = true;
      clearInterval(probe);
      // a cancel needs etcd: do not let a dead cluster hold up a shutdown
      await Promise.race([watcher?.cancel().catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())]);
      await saving;
      client.close();
    },
  };
}

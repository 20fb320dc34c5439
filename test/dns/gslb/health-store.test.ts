/** health.json: load (absent, loaded, corrupt: never thrown) and the debounced saver on fake timers. */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createHealthSaver, HEALTH_FILE, loadHealth, saveHealth } from '../../../dns/gslb/health-store.js';
import type { SaverTimers, StoredHealth } from '../../../dns/gslb/health-store.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'gslb-health-'));
  dirs.push(d);
  return d;
}

const SAMPLE: StoredHealth = {
  version: 1, savedAt: 1000,
  sites: {
    tokyo: {
      lastValidAt: 900, lastSeq: { lb1: 42 },
      members: [{ address: '192.0.2.1', status: 'down', upStreak: 0, downStreak: 1, weightPct: 100, connections: 0, capacity: 0, healthy: 0, total: 1, lastObservedAt: 900 }],
    },
  },
};

describe('loadHealth / saveHealth', () => {
  it('round-trips, and says absent when there is no file', async () => {
    const dir = await tempDir();
    expect(await loadHealth(dir)).toEqual({ kind: 'absent', file: path.join(dir, HEALTH_FILE) });
    await saveHealth(path.join(dir, 'sub'), SAMPLE);
    expect(await loadHealth(path.join(dir, 'sub'))).toEqual({ kind: 'loaded', file: path.join(dir, 'sub', HEALTH_FILE), health: SAMPLE });
  });

  it.each([
    ['not JSON', '{"version":1,', /health\.json: not valid JSON/],
    ['another version', '{"version":2,"savedAt":1,"sites":{}}', /health\.json: \/version: /],
    ['a bad status', JSON.stringify({ ...SAMPLE, sites: { tokyo: { ...SAMPLE.sites['tokyo']!, members: [{ ...SAMPLE.sites['tokyo']!.members[0]!, status: 'sideways' }] } } }),
      /health\.json: \/sites\/tokyo\/members\/0\/status: /],
    ['an unknown key', JSON.stringify({ ...SAMPLE, extra: 1 }), /health\.json: \/extra: /],
  ])('reports a corrupt file (%s) with the file and the path, without throwing', async (_name, text, error) => {
    const dir = await tempDir();
    await writeFile(path.join(dir, HEALTH_FILE), text);
    const r = await loadHealth(dir);
    expect(r.kind).toBe('corrupt');
    expect(r.kind === 'corrupt' ? r.error : '').toMatch(error);
    expect(r.file).toBe(path.join(dir, HEALTH_FILE));
  });
});

/** Fake timers: `advance` runs what falls due, in order. */
function fakeTimers(): SaverTimers & { advance(ms: number): Promise<void>; pending(): number[] } {
  let t = 0;
  let id = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => t,
    setTimeout: (fn, ms) => { timers.set(++id, { at: t + ms, fn }); return id; },
    clearTimeout: (h) => { timers.delete(h as number); },
    pending: () => [...timers.values()].map((x) => x.at - t),
    async advance(ms: number) {
      const end = t + ms;
      for (;;) {
        const due = [...timers.entries()].filter(([, x]) => x.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        t = due[1].at;
        due[1].fn();
        for (let i = 0; i < 5; i++) await Promise.resolve();
      }
      t = end;
      for (let i = 0; i < 5; i++) await Promise.resolve();
    },
  };
}

describe('createHealthSaver', () => {
  it('saves the first change at once, then at most once per second and within a second of a change', async () => {
    const timers = fakeTimers();
    const saves: number[] = [];
    const saver = createHealthSaver(async () => { saves.push(timers.now()); }, () => {}, timers, 1000);
    saver.changed();
    await timers.advance(0);
    expect(saves).toEqual([0]);
    // a burst of changes: one save, one second after the last
    for (let i = 0; i < 10; i++) { await timers.advance(50); saver.changed(); }
    expect(timers.pending()).toEqual([500]);
    await timers.advance(500);
    expect(saves).toEqual([0, 1000]);
    // quiet: nothing to save
    await timers.advance(5000);
    expect(saves).toEqual([0, 1000]);
    // a change after a quiet second is saved at once again
    saver.changed();
    await timers.advance(0);
    expect(saves).toEqual([0, 1000, 6000]);
    saver.stop();
  });

  it('retries a failed save at the next slot and reports the error', async () => {
    const timers = fakeTimers();
    const errors: unknown[] = [];
    let fail = true;
    let saved = 0;
    const saver = createHealthSaver(async () => { if (fail) throw new Error('disk full'); saved++; }, (e) => errors.push(e), timers, 1000);
    saver.changed();
    await timers.advance(0);
    expect(errors.map((e) => (e as Error).message)).toEqual(['disk full']);
    fail = false;
    await timers.advance(1000);
    expect(saved).toBe(1);
  });

  it('flush saves what is unsaved now (shutdown), and nothing when all is saved', async () => {
    const timers = fakeTimers();
    let saved = 0;
    const saver = createHealthSaver(async () => { saved++; }, () => {}, timers, 1000);
    saver.changed();
    await timers.advance(0);
    saver.changed();
    await saver.flush();
    expect(saved).toBe(2);
    await saver.flush();
    expect(saved).toBe(2);
    expect(timers.pending()).toEqual([]);
  });

  it('writes the file atomically: no temp file is left', async () => {
    const dir = await tempDir();
    await saveHealth(dir, SAMPLE);
    await saveHealth(dir, { ...SAMPLE, savedAt: 2000 });
    expect(JSON.parse(await readFile(path.join(dir, HEALTH_FILE), 'utf8'))).toMatchObject({ savedAt: 2000 });
    expect(await readdir(dir)).toEqual([HEALTH_FILE]);
  });
});

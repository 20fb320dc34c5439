import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadZoneDir, loadZoneFile, ZoneFileCache, ZoneLoadError } from '../../../dns/zone/load.js';

const zone = (origin: string, serial: number): string =>
  `$ORIGIN ${origin}.\n$TTL 60\n@ IN SOA ns hm ${serial} 3600 600 86400 60\n  IN NS ns\nns IN A 192.0.2.1\n`;

let dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  dirs = [];
});

async function dirWith(files: Record<string, string>): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'gslb-cache-'));
  dirs.push(d);
  for (const [n, t] of Object.entries(files)) await writeFile(path.join(d, n), t);
  return d;
}

describe('loading only the zone files that changed', () => {
  it('keeps the tree of an unchanged file and parses a replaced one', async () => {
    const d = await dirWith({ 'a.test.zone': zone('a.test', 1), 'b.test.zone': zone('b.test', 1) });
    const cache = new ZoneFileCache();
    const parsed: string[] = [];
    const loadFile = (f: string) => { parsed.push(path.basename(f)); return loadZoneFile(f); };
    const first = await loadZoneDir(d, { cache, loadFile });
    expect(parsed).toEqual(['a.test.zone', 'b.test.zone']);
    await writeFile(path.join(d, 'tmp'), zone('b.test', 2));
    await rename(path.join(d, 'tmp'), path.join(d, 'b.test.zone'));
    parsed.length = 0;
    const second = await loadZoneDir(d, { cache, loadFile });
    expect(parsed).toEqual(['b.test.zone']);
    expect(second.find('a.test.')).toBe(first.find('a.test.'));
    expect(second.find('b.test.')?.serial).toBe(2);
  });

  it('a failed load teaches the cache nothing, and a removed file is forgotten', async () => {
    const d = await dirWith({ 'a.test.zone': zone('a.test', 1), 'b.test.zone': zone('b.test', 1) });
    const cache = new ZoneFileCache();
    await loadZoneDir(d, { cache });
    await writeFile(path.join(d, 'a.test.zone'), zone('a.test', 2));
    await writeFile(path.join(d, 'b.test.zone'), 'garbage\n');
    await expect(loadZoneDir(d, { cache })).rejects.toBeInstanceOf(ZoneLoadError);
    expect(cache.zoneOf(path.join(d, 'a.test.zone'))?.serial).toBe(1);
    await rm(path.join(d, 'b.test.zone'));
    const third = await loadZoneDir(d, { cache });
    expect(third.find('a.test.')?.serial).toBe(2);
    expect(cache.zoneOf(path.join(d, 'b.test.zone'))).toBeUndefined();
  });
});

import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadZoneFile } from '../../../dns/zone/load.js';
import { decodeZone, encodeZone } from '../../../dns/zone/transfer.js';
import type { BuiltZone, Zone } from '../../../dns/zone/zone.js';
import { FIXTURE_ZONES } from '../../helpers/server.js';

/** The tree as plain data, read through `z.nodes.get` for each of `names`. */
function plain(z: Zone, names: readonly string[]): unknown {
  return {
    origin: z.origin, file: z.file, serial: z.serial, negativeTtl: z.negativeTtl, recordCount: z.recordCount,
    soa: z.soa.owner, size: z.nodes.size,
    nodes: names.map((name) => z.nodes.get(name)!).map((n) => [n.name, n.sets.map((s) => ({
      owner: s.owner, type: s.type, ttl: s.ttl, ownerWire: [...s.ownerWire], rdatas: s.rdatas.map((r) => [...r]),
    }))]),
  };
}

describe('a zone handed over as one buffer', () => {
  it('finds every name of the zone encoded, with the same sets, and no other name', async () => {
    const files = (await readdir(FIXTURE_ZONES)).filter((n) => n.endsWith('.zone'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const zone: BuiltZone = await loadZoneFile(path.join(FIXTURE_ZONES, f));
      const back = decodeZone(encodeZone(zone), zone.origin, zone.file);
      const names = [...zone.nodes.keys()];
      expect(plain(back, names)).toEqual(plain(zone, names));
      expect(back.nodes.get(zone.origin)?.rrset(6)).toBe(back.soa);
      expect(back.nodes.get(names[1]!)).toBe(back.nodes.get(names[1]!));
      for (const n of names) expect(back.nodes.has(n)).toBe(true);
      for (const n of ['nope.' + zone.origin, 'x' + names[names.length - 1]!, 'é.' + zone.origin, '']) {
        expect(back.nodes.has(n)).toBe(false);
        expect(back.nodes.get(n)).toBeUndefined();
      }
    }
  });

  it('refuses a buffer that is not an encoded zone', () => {
    expect(() => decodeZone({ nodes: new ArrayBuffer(20), table: new ArrayBuffer(64) }, 'x.', 'x.zone')).toThrow('not an encoded zone');
  });
});

/**
 * A zone handed over from the loader (encoded, framed on a pipe, decoded) answers every question
 * exactly as the zone built in place: same kind, same records in the same order, same glue.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lookup } from '../../../dns/zone/lookup.js';
import type { LookupResult, OutRRset } from '../../../dns/zone/lookup.js';
import { loadZoneFile } from '../../../dns/zone/load.js';
import { ZoneError } from '../../../dns/zone/record.js';
import { frameReply, ReplyFrameReader } from '../../../dns/zone/reply-frame.js';
import type { LoadReply } from '../../../dns/zone/load-worker.js';
import { decodeZone, encodeZone } from '../../../dns/zone/transfer.js';
import { withNames, ZoneSet } from '../../../dns/zone/zone.js';
import type { BuiltZone, Zone } from '../../../dns/zone/zone.js';
import { createZoneWorker } from '../../../dns/zone/zone-worker.js';
import { RRType } from '../../../dns/wire/types.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { FIXTURE_ZONES, ROOT } from '../../helpers/server.js';

/** Wildcards (also at the apex's child and below an ENT), delegations with glue, CNAME chains, ENTs, DNAME, non-ASCII. */
const VARIED = `$ORIGIN v.test.
$TTL 300
@            IN SOA ns1 hm 7 3600 600 86400 60
@            IN NS  ns1
@            IN NS  ns2.deleg
@            IN MX  5 mx.deep.ent
ns1          IN A   192.0.2.1
ns1          IN AAAA 2001:db8::1
*            IN A   192.0.2.200
*            IN MX  10 ns1
*.x.y        IN CNAME target
target       IN A   192.0.2.7
target       IN TXT "t"
mx.deep.ent  IN A   192.0.2.25
deleg        IN NS  ns2.deleg
deleg        IN NS  ns.outside.test.
ns2.deleg    IN A   192.0.2.53
ns2.deleg    IN AAAA 2001:db8::53
below.deleg  IN A   192.0.2.54
c1           IN CNAME c2
c2           IN CNAME deleg
c3           IN CNAME *.x.y
srv          IN SRV 1 2 53 ns1
srv          IN SRV 1 2 53 ns2.deleg
d            IN DNAME target.v.test.
xn--caf-dma  IN A   192.0.2.9
caf\\233      IN A   192.0.2.10
`;

const QTYPES = [RRType.A, RRType.AAAA, RRType.NS, RRType.MX, RRType.TXT, RRType.CNAME, RRType.SRV, RRType.SOA, RRType.ANY, RRType.DNAME, 65534];

let dir: string;
let files: string[];
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-transfer-'));
  await writeFile(path.join(dir, 'v.test.zone'), VARIED);
  files = [path.join(dir, 'v.test.zone'), ...(await readdir(FIXTURE_ZONES)).filter((n) => n.endsWith('.zone')).map((n) => path.join(FIXTURE_ZONES, n))];
});
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

const rrsets = (s: readonly OutRRset[]): unknown => s.map((r) => ({ owner: [...r.ownerWire], type: r.type, ttl: r.ttl, rdatas: r.rdatas.map((d) => [...d]) }));

function plain(r: LookupResult): unknown {
  if (r.kind === 'refused') return r;
  if (r.kind === 'pool') return { kind: r.kind, pool: r.pool, owner: [...r.ownerWire], answer: rrsets(r.answer), origin: r.zone.origin };
  return { kind: r.kind, origin: r.zone.origin, answer: rrsets(r.answer), authority: rrsets(r.authority), additional: rrsets(r.additional) };
}

/** Every name of the zone, and names around them: below, beside, missing, upper case, wildcard matches. */
function questions(z: BuiltZone): string[] {
  const out = new Set<string>();
  for (const n of z.nodes.keys()) {
    out.add(n);
    out.add(`q.${n}`);
    out.add(`a.b.${n}`);
    if (n !== '.') out.add(`nx-${n}`);
  }
  out.add('out.of.zone.');
  return [...out];
}

function sameAnswers(built: BuiltZone, other: Zone, gslbNames: readonly string[] = []): void {
  const pools = new Map(gslbNames.map((n) => [n, `pool:${n}`]));
  const a = new ZoneSet([withNames(built, gslbNames)]);
  const b = new ZoneSet([withNames(other, gslbNames)]);
  for (const name of questions(built)) {
    for (const t of QTYPES) expect(plain(lookup(b, name, t, pools)), `${name} ${t}`).toEqual(plain(lookup(a, name, t, pools)));
  }
}

/** The reply as the loader process sends it, cut into pieces of `size` bytes, read back. */
function throughPipe(reply: LoadReply, size: number): LoadReply[] {
  const got: LoadReply[] = [];
  const reader = new ReplyFrameReader((r) => got.push(r));
  const bytes = Buffer.concat(frameReply(reply));
  for (let o = 0; o < bytes.length; o += size) reader.push(bytes.subarray(o, o + size));
  return got;
}

describe('lookups through a transferred zone', () => {
  it('are the same as through the zone built in place (encoded and decoded)', async () => {
    for (const f of files) {
      const zone = await loadZoneFile(f);
      sameAnswers(zone, decodeZone(encodeZone(zone), zone.origin, zone.file));
    }
  });

  it('are the same with GSLB names laid over both', async () => {
    const zone = await loadZoneFile(files[0]!);
    sameAnswers(zone, decodeZone(encodeZone(zone), zone.origin, zone.file), ['gslb.v.test.', 'a.deep.ent.v.test.', 'www.new.v.test.']);
  });

  it('are the same after the reply frame went through a pipe in pieces of any size', async () => {
    const zone = await loadZoneFile(files[0]!);
    for (const size of [1, 5, 16, 17, 1000, 65536]) {
      const encoded = encodeZone(zone);
      const [back, ...more] = throughPipe({ id: 9, ok: true, origin: zone.origin, encoded }, size);
      expect(more).toEqual([]);
      expect(back).toMatchObject({ id: 9, ok: true, origin: zone.origin });
      if (!back?.ok) throw new Error('no zone came back');
      sameAnswers(zone, decodeZone(back.encoded, back.origin, zone.file));
    }
  });

  it('frames errors and several replies in one stream', () => {
    const zone = { id: 1, ok: false, file: 'z.zone', line: 3, reason: 'bad TTL' } as const;
    const bytes = Buffer.concat([...frameReply(zone), ...frameReply({ ...zone, id: 2, reason: 'é' })]);
    const got: LoadReply[] = [];
    const reader = new ReplyFrameReader((r) => got.push(r));
    reader.push(bytes.subarray(0, 20));
    reader.push(bytes.subarray(20));
    expect(got).toEqual([zone, { ...zone, id: 2, reason: 'é' }]);
  });
});

describe('the zone loader', () => {
  const workerUrl = pathToFileURL(path.join(ROOT, 'dist/dns/zone/load-worker.js'));

  for (const kind of ['process', 'thread'] as const) {
    it(`in a ${kind}: zones answer as built in place, errors come back as ZoneError`, async () => {
      const w = createZoneWorker({ workerUrl, kind });
      try {
        for (const f of files) sameAnswers(await loadZoneFile(f), await w.loadFile(f));
        const bad = path.join(dir, 'bad.test.zone');
        await writeFile(bad, '$ORIGIN bad.test.\n@ IN SOA ns hm 1 2 3 4 5\nx IN A 300.1.1.1\n');
        const err = await w.loadFile(bad).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ZoneError);
        expect((err as ZoneError).file).toBe(bad);
        expect((err as ZoneError).line).toBe(3);
        // two at once, answered by id
        const [a, b] = await Promise.all([w.loadFile(files[0]!), w.loadFile(files[1]!)]);
        expect([a.origin, b.origin]).toEqual([(await loadZoneFile(files[0]!)).origin, (await loadZoneFile(files[1]!)).origin]);
      } finally {
        await w.close();
      }
      expect(w.running).toBe(false);
    }, 60_000);
  }

  it('ends when idle for idleMs and starts again on the next request', async () => {
    const clock = new ManualClock();
    const w = createZoneWorker({ workerUrl, idleMs: 2000, clock });
    try {
      expect(w.running).toBe(false);
      await w.loadFile(files[0]!);
      expect(w.running).toBe(true);
      clock.advance(1999);
      expect(w.running).toBe(true);
      clock.advance(1);
      expect(w.running).toBe(false);
      const again = await w.loadFile(files[0]!);
      expect(again.origin).toBe('v.test.');
      expect(w.running).toBe(true);
      // a request before the idle time is up keeps the same loader: the timer starts over
      clock.advance(1500);
      await w.loadFile(files[0]!);
      clock.advance(1500);
      expect(w.running).toBe(true);
    } finally {
      await w.close();
    }
  }, 60_000);
});

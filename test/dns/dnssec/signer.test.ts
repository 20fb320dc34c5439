/**
 * The signature cache with a manual wall clock: validity window (backdated inception, expiration
 * with jitter), reuse while fresh, a new signature once due for refresh, and the byte bound; and
 * a cached signed reply is signed anew when its signatures are due.
 */
import { rm } from 'node:fs/promises';
import dnsPacket from 'dns-packet';
import { afterAll, describe, expect, it } from 'vitest';
import { loadKeysDir } from '../../../dns/dnssec/keys.js';
import { DEFAULT_SIGNING_OPTIONS, Signing } from '../../../dns/dnssec/signer.js';
import { Engine, DEFAULT_ENGINE_OPTIONS } from '../../../dns/server/engine.js';
import { loadServing } from '../../../dns/serving.js';
import { nameToWire } from '../../../dns/wire/name.js';
import { dnssecCli, fixtureCopy } from '../../helpers/dnssec.js';
import { opt, query } from '../../helpers/packet.js';

const dirs: string[] = [];
afterAll(async () => { await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))); });

async function keyedDir(): Promise<string> {
  const dir = await fixtureCopy(false);
  dirs.push(dir);
  await dnssecCli(['keygen', '--zones', dir, 'example.test']);
  return dir;
}

/** RRSIG RDATA fields: expiration and inception (unix s) */
const times = (rd: Uint8Array) => {
  const dv = new DataView(rd.buffer, rd.byteOffset);
  return { expiration: dv.getUint32(8), inception: dv.getUint32(12) };
};

const DAY = 86_400;
const set = (i: number) => ({ ownerWire: nameToWire(`h${i}.example.test.`), type: 1, ttl: 300, rdatas: [Uint8Array.from([192, 0, 2, i & 0xff])] });

describe('signature cache', () => {
  it('backdates inception an hour, expires 14 days on plus up to a day, reuses until 7 days are left', async () => {
    const keys = await loadKeysDir(await keyedDir());
    let now = 1_800_000_000_000;
    let r = 0.5;
    const signing = new Signing(keys, () => now, DEFAULT_SIGNING_OPTIONS, () => r);
    const zk = signing.keysOf('example.test.')!;
    const until = { value: Infinity };
    const first = signing.rrsig(zk, set(1), until).rdatas[0]!;
    const t0 = now / 1000;
    expect(times(first)).toEqual({ inception: t0 - 3600, expiration: t0 + 14 * DAY + DAY / 2 });
    expect(until.value).toBe((t0 + 7 * DAY + DAY / 2) * 1000);
    now += 7 * DAY * 1000;
    r = 0;
    expect(signing.rrsig(zk, set(1), { value: Infinity }).rdatas[0]).toBe(first);
    now += DAY * 1000;
    const second = signing.rrsig(zk, set(1), { value: Infinity }).rdatas[0]!;
    expect(times(second)).toEqual({ inception: now / 1000 - 3600, expiration: now / 1000 + 14 * DAY });
    expect(signing.stats()).toMatchObject({ hits: 1, misses: 2, entries: 1 });
  });

  it('is bounded in bytes', async () => {
    const keys = await loadKeysDir(await keyedDir());
    const signing = new Signing(keys, () => 1_800_000_000_000, { ...DEFAULT_SIGNING_OPTIONS, cacheBytes: 4096 });
    const zk = signing.keysOf('example.test.')!;
    for (let i = 0; i < 200; i++) signing.rrsig(zk, set(i), { value: Infinity });
    const s = signing.stats();
    expect(s.misses).toBe(200);
    expect(s.bytes).toBeLessThanOrEqual(4096);
    expect(s.entries).toBeGreaterThan(5);
    expect(s.entries).toBeLessThan(200);
  });

  it('a cached signed reply is signed anew once its signatures are due, not before', async () => {
    const dir = await keyedDir();
    let now = Date.now();
    const serving = await loadServing(dir, {}, { wallNow: () => now });
    const engine = new Engine(serving.zones, DEFAULT_ENGINE_OPTIONS);
    engine.setZones(serving.zones, undefined, serving.signing);
    const inception = (): number => {
      const q = query({ name: 'www.example.test', type: 1, additional: [opt([], 1232, 0, true)] });
      const out = Buffer.alloc(4096);
      const r = dnsPacket.decode(out.subarray(0, engine.handle(q, 0, q.length, out, 0, out.length, false)));
      const sig = r.answers!.find((a) => a.type === 'RRSIG')!.data as { inception: number };
      return sig.inception;
    };
    const t0 = inception();
    now += 6 * DAY * 1000;
    expect(inception()).toBe(t0);
    now += 2 * DAY * 1000;
    expect(inception()).toBe(Math.floor(now / 1000) - 3600);
  });
});

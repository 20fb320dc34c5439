/**
 * ZSK rollover by pre-publication (RFC 6781 4.1.1.1), driven by the keys' timing metadata and a
 * manual wall clock: the new ZSK is published first and signs nothing, then signs instead of the
 * old one (still published, for signatures in caches), then the old one is gone. The old key's
 * timing is set with BIND's dnssec-settime, as an operator would.
 */
import { execFile } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import dnsPacket from 'dns-packet';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine, DEFAULT_ENGINE_OPTIONS } from '../../../dns/server/engine.js';
import { loadServing } from '../../../dns/serving.js';
import { startCli } from '../../helpers/cli.js';
import { dig } from '../../helpers/dig.js';
import { dnssecCli, fixtureCopy } from '../../helpers/dnssec.js';
import { poll } from '../../helpers/poll.js';
import { opt, query } from '../../helpers/packet.js';

const run = promisify(execFile);
let dir: string | undefined;
afterAll(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

const DAY = 86_400_000;

/** Key tags of the DNSKEY RRset, and of the RRSIGs over www's A and over the DNSKEY RRset, at wall time `t`. */
async function stateAt(zones: string, t: number) {
  const serving = await loadServing(zones, {}, { wallNow: () => t });
  const engine = new Engine(serving.zones, DEFAULT_ENGINE_OPTIONS);
  engine.setZones(serving.zones, undefined, serving.signing);
  const ask = (name: string, type: number) => {
    const q = query({ name, type, additional: [opt([], 1232, 0, true)] });
    const out = Buffer.alloc(4096);
    const n = engine.handle(q, 0, q.length, out, 0, out.length, true);
    return dnsPacket.decode(out.subarray(0, n));
  };
  const sigTags = (r: dnsPacket.Packet) => (r.answers ?? []).filter((a) => a.type === 'RRSIG').map((a) => (a.data as { keyTag: number }).keyTag).sort();
  const keys = ask('example.test', 48);
  return {
    published: serving.signing.keysOf('example.test.')!.published.map((k) => k.tag).sort(),
    dnskeySigners: sigTags(keys),
    dataSigners: sigTags(ask('www.example.test', 1)),
  };
}

describe('ZSK rollover by pre-publication', () => {
  it('publishes the new ZSK before it signs, keeps the old one published after, then drops it', async () => {
    dir = await fixtureCopy(false);
    const t0 = Date.now();
    await dnssecCli(['keygen', '--zones', dir, '--split', 'example.test']);
    const tagsOf = async () => (await readdir(path.join(dir!, 'keys'))).filter((f) => f.endsWith('.key'));
    const [first, second] = await tagsOf();
    const keyTag = (f: string) => Number(/\+(\d{5})\.key$/.exec(f)![1]);
    const before = await stateAt(dir, t0);
    const ksk = before.dnskeySigners[0]!;
    const zsk1 = before.dataSigners[0]!;
    expect([keyTag(first!), keyTag(second!)].sort()).toEqual([ksk, zsk1].sort());

    // step 1: the new ZSK, published now, signing in 2 days; the old one retires then, leaves 2 days later
    const said = await dnssecCli(['keygen', '--zones', dir, '--zsk', '--activate', '2d', 'example.test']);
    const zsk2 = Number(/tag (\d+)/.exec(said)![1]);
    const old = (await tagsOf()).find((f) => keyTag(f) === zsk1)!;
    await run('dnssec-settime', ['-K', path.join(dir, 'keys'), '-I', '+2d', '-D', '+4d', old.slice(0, -4)]);

    const published = await stateAt(dir, t0 + DAY);
    expect(published.published).toEqual([ksk, zsk1, zsk2].sort());
    expect(published.dataSigners).toEqual([zsk1]);
    expect(published.dnskeySigners).toEqual([ksk]);

    const rolled = await stateAt(dir, t0 + 3 * DAY);
    expect(rolled.published).toEqual([ksk, zsk1, zsk2].sort());
    expect(rolled.dataSigners).toEqual([zsk2]);
    expect(rolled.dnskeySigners).toEqual([ksk]);

    const done = await stateAt(dir, t0 + 5 * DAY);
    expect(done.published).toEqual([ksk, zsk2].sort());
    expect(done.dataSigners).toEqual([zsk2]);
  });

  it('the server loads again at a key\'s activation time, so the new ZSK signs without a SIGHUP', async () => {
    const zones = await fixtureCopy(false);
    try {
      await dnssecCli(['keygen', '--zones', zones, '--split', 'example.test']);
      const server = await startCli(['--zones', zones, '--listen', '127.0.0.1:0']);
      try {
        const signers = async () => (await dig(server.port, ['+norec', '+dnssec', 'www.example.test', 'A'])).answer
          .filter((l) => l.includes(' IN RRSIG A ')).map((l) => Number(l.split(' ')[10])).sort();
        const before = await signers();
        expect(before).toHaveLength(1);
        // pre-published now (a reload picks the new files up), signing 8 s later by the server's own timer
        const zsk2 = Number(/tag (\d+)/.exec(await dnssecCli(['keygen', '--zones', zones, '--zsk', '--activate', '8s', 'example.test']))![1]);
        server.proc.kill('SIGHUP');
        await poll(async () => (await dig(server.port, ['+norec', 'example.test', 'DNSKEY'])).answer.length, (n) => n === 3, 'the new ZSK published', 20_000, 100);
        expect(await signers()).toEqual(before);
        await poll(signers, (tags) => tags.includes(zsk2), 'the new ZSK signing', 40_000, 200);
      } finally {
        await server.stop();
      }
    } finally {
      await rm(zones, { recursive: true, force: true });
    }
  }, 90_000);
});

/**
 * The running server and its zones directory: a zone written in place in two steps is never
 * served half-written (default settle time), a zone renamed into place is picked up without
 * waiting for it, and an unchanged zone is not parsed again.
 */
import { appendFile, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startCli } from '../helpers/cli.js';
import type { Cli } from '../helpers/cli.js';
import { dig } from '../helpers/dig.js';

/** 15 lines that are a valid zone by themselves, then a tail that adds `late`. */
function zoneText(serial: number): { head: string; tail: string; records: number } {
  const lines = [
    '$ORIGIN t.test.', '$TTL 60', `@ IN SOA ns hm ${serial} 3600 600 86400 60`, '  IN NS ns', 'ns IN A 192.0.2.1',
    'www IN A 192.0.2.10', 'early IN A 192.0.2.20',
  ];
  for (let i = lines.length; i < 15; i++) lines.push(`h${i} IN A 192.0.2.${100 + i}`);
  const tail = ['late IN A 192.0.2.30', 'late2 IN A 192.0.2.31'];
  return { head: lines.join('\n') + '\n', tail: tail.join('\n') + '\n', records: lines.length - 2 + tail.length };
}

const OTHER = `$ORIGIN o.test.
$TTL 60
@ IN SOA ns hm 1 3600 600 86400 60
  IN NS ns
ns IN A 192.0.2.1
`;

let dirs: string[] = [];
let clis: Cli[] = [];
afterEach(async () => {
  await Promise.all(clis.map((c) => c.stop()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  clis = [];
  dirs = [];
});

async function serve(extra: string[] = []): Promise<{ cli: Cli; dir: string; file: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-reload-'));
  dirs.push(dir);
  const z = zoneText(1);
  const file = path.join(dir, 't.test.zone');
  await writeFile(file, z.head + z.tail);
  await writeFile(path.join(dir, 'o.test.zone'), OTHER);
  const cli = await startCli(['--zones', dir, '--listen', '127.0.0.1:0', ...extra]);
  clis.push(cli);
  return { cli, dir, file };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('zone reload from the watcher', () => {
  it('a zone written in place in two steps is never served half-written', async () => {
    const { cli, file } = await serve();
    const next = zoneText(2);
    await writeFile(file, next.head);
    const seen: string[] = [];
    // the pause between the two writes (shorter than the 2 s default settle time), digging all along
    for (let i = 0; i < 10; i++) {
      const [early, late] = await Promise.all([dig(cli.port, ['+norec', 'early.t.test', 'A']), dig(cli.port, ['+norec', 'late.t.test', 'A'])]);
      seen.push(`${early.answer.length}/${late.answer.length}`);
      await sleep(100);
    }
    await appendFile(file, next.tail);
    const reloaded = await cli.waitLog((l) => l['msg'] === 'zone reloaded' && l['zone'] === 't.test.', 20_000);
    expect(reloaded['serial']).toBe(2);
    expect(reloaded['records']).toBe(next.records);
    // no other reload of t.test. happened (the half-written file would have had fewer records)
    expect(cli.lines.filter((l) => l['msg'] === 'zone reloaded' && l['zone'] === 't.test.')).toHaveLength(1);
    // both names were present in every answer before, so "1/0" would be the half-written zone
    expect(seen.filter((s) => s === '1/0')).toEqual([]);
    expect((await dig(cli.port, ['+norec', 'late2.t.test', 'A'])).answer).toEqual(['late2.t.test. 60 IN A 192.0.2.31']);
  });

  it('a zone renamed into place is loaded without waiting for the settle time; the others are not parsed again', async () => {
    // a settle time far beyond the deadline: only the rename path can pick the change up
    const { cli, dir, file } = await serve(['--reload-settle', '600s']);
    const next = zoneText(3);
    const tmp = path.join(dir, '.t.test.zone.tmp');
    await writeFile(tmp, next.head + 'renamed IN A 192.0.2.40\n' + next.tail);
    await rename(tmp, file);
    const reloaded = await cli.waitLog((l) => l['msg'] === 'zone reloaded' && l['serial'] === 3, 20_000);
    expect(reloaded['zone']).toBe('t.test.');
    expect((await dig(cli.port, ['+norec', 'renamed.t.test', 'A'])).answer).toEqual(['renamed.t.test. 60 IN A 192.0.2.40']);
    expect(cli.lines.filter((l) => l['msg'] === 'zone reloaded' && l['zone'] === 'o.test.')).toEqual([]);
    expect((await dig(cli.port, ['+norec', 'ns.o.test', 'A'])).answer).toEqual(['ns.o.test. 60 IN A 192.0.2.1']);
  });
});

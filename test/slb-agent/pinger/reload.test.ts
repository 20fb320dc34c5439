/**
 * The standalone pinger (`slb-agent pinger --config`, the real process, udp method on loopback)
 * and SIGHUP: an invalid file is logged, every `file:line: path: reason`, and the running pinger
 * goes on; a valid file with other peers restarts the pinger with them; the process never dies of
 * the signal.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PingerStatus } from '../../../slb-agent/pinger/pinger.js';
import { startNode } from '../../helpers/cli.js';
import type { NodeProc } from '../../helpers/cli.js';
import { AGENT_MAIN, freePort, sleep } from '../../helpers/agent-site.js';

let dir: string;
let file: string;
let api: number;
let pinger: NodeProc | undefined;

const yaml = (peers: string[], extra = ''): string =>
  `pinger:\n  interfaces:\n    - name: lo\n      peers: [${peers.join(', ')}]\n      interval: 200ms\n      timeout: 100ms\n      method: udp\n${extra}api: 127.0.0.1:${api}\n`;

async function status(): Promise<PingerStatus> {
  return ((await (await fetch(`http://127.0.0.1:${api}/status`)).json()) as { pinger: PingerStatus }).pinger;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pinger-reload-'));
  api = await freePort();
  file = path.join(dir, 'pinger.yaml');
  await writeFile(file, yaml(['127.0.0.1']));
  pinger = startNode(AGENT_MAIN, ['pinger', '--config', file]);
  await pinger.waitLog((l) => l['msg'] === 'pinger: api listening');
});

afterAll(async () => {
  await pinger?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('standalone pinger: SIGHUP', () => {
  it('keeps running on an invalid file (every error logged), restarts with a valid one', async () => {
    expect((await status()).interfaces[0]!.peers.map((p) => p.address)).toEqual(['127.0.0.1']);

    await writeFile(file, yaml(['127.0.0.1', 'not-an-ip']).replace('method: udp', 'method: udp\n      intervall: 1s'));
    pinger!.proc.kill('SIGHUP');
    await pinger!.waitLog((l) => String(l['msg']).startsWith('reload failed: the file is invalid'));
    const errs = pinger!.lines.filter((l) => l['level'] === 50 && typeof l['path'] === 'string').map((l) => String(l['msg']));
    expect(errs.some((m) => /pinger\.yaml:\d+: pinger\.interfaces\[0\].*intervall/.test(m))).toBe(true);
    await sleep(100);
    expect(pinger!.proc.exitCode).toBeNull();
    expect((await status()).interfaces[0]!.peers.map((p) => p.address)).toEqual(['127.0.0.1']);

    await writeFile(file, yaml(['127.0.0.1', '127.0.0.2']));
    pinger!.proc.kill('SIGHUP');
    await pinger!.waitLog((l) => l['msg'] === 'config reloaded' && l['pinger'] === true);
    expect((await status()).interfaces[0]!.peers.map((p) => p.address)).toEqual(['127.0.0.1', '127.0.0.2']);
    expect(pinger!.proc.exitCode).toBeNull();
  });
});

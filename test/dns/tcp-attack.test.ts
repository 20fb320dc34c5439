import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli } from '../helpers/cli.js';
import type { Cli } from '../helpers/cli.js';
import { header, query } from '../helpers/packet.js';
import { FIXTURE_ZONES, framed, tcpExchange } from '../helpers/server.js';
import { loopbackSources, startTcpAttack } from '../../lab/tcp-attack.js';
import type { TcpAttack } from '../../lab/tcp-attack.js';

// a scaled-down hostile internet against the real process, on loopback: 300 idle connections from
// one source, 500 from 20 sources, 200 slowloris from 20 more, each reopened 500 ms after the
// server closes it; the server holds at most 200 connections, 16 per source
let cli: Cli;
let attack: TcpAttack | undefined;
beforeAll(async () => {
  cli = await startCli(['--zones', FIXTURE_ZONES, '--listen', '127.0.0.1:0',
    '--tcp-max-clients', '200', '--tcp-max-per-source', '16', '--tcp-idle-timeout', '10s', '--tcp-message-timeout', '2s']);
});
afterAll(async () => {
  attack?.stop();
  await cli?.stop();
});

describe('TCP under a connection-exhaustion attack (real process)', () => {
  it('answers a legitimate TCP query every time while idle floods and slowloris connections are held', async () => {
    attack = startTcpAttack(cli.port, [
      { kind: 'idle', sources: ['127.0.9.1'], perSource: 300 },
      { kind: 'idle', sources: loopbackSources(10, 20), perSource: 25 },
      { kind: 'slowloris', sources: loopbackSources(11, 20), perSource: 10 },
    ], 500);
    // let the flood fill the table first
    for (let i = 0; i < 400 && attack.open() < 200; i++) await new Promise((r) => setTimeout(r, 25));
    const results: number[] = [];
    const end = Date.now() + 10_000; // how long to keep querying, not a latency bound
    for (let id = 1; Date.now() < end; id++) {
      const replies = await tcpExchange(cli.port, framed(query({ id: id & 0xffff })), 1, 10_000);
      results.push(replies.length === 1 && header(replies[0]!).id === (id & 0xffff) ? 1 : 0);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(attack.closedByServer()).toBeGreaterThan(0); // the attack was really refused and evicted
    expect(results.length).toBeGreaterThan(10);
    expect(results.filter((x) => x === 0)).toEqual([]);
  }, 120_000);
});

import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, startCli } from '../helpers/cli.js';
import type { Cli } from '../helpers/cli.js';
import { header } from '../helpers/packet.js';
import { ROOT, framed, tcpExchange } from '../helpers/server.js';
import { dnsQuery, distinctPrefixSources, startLegitClients, udpFlood } from '../../lab/udp-rrl-attack.js';

// a zone whose DNSKEY RRset answers a 37-byte query (EDNS 4096) with 865 bytes: 23x
const RRL_ZONES = path.join(ROOT, 'test/fixtures/rrl');
const DNSKEY = 48;
const ATTACK = dnsQuery(1, 'rrl.test', DNSKEY, 4096);
const NORMAL = [dnsQuery(0, 'www.rrl.test', 1, 1232), dnsQuery(0, 'rrl.test', DNSKEY, 1232), dnsQuery(0, 'nx.rrl.test', 1)];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let clis: Cli[] = [];
afterEach(async () => {
  await Promise.all(clis.map((c) => c.stop()));
  clis = [];
});

async function server(args: string[]): Promise<Cli> {
  const cli = await startCli(['--zones', RRL_ZONES, '--listen', '127.0.0.1:0', ...args]);
  clis.push(cli);
  return cli;
}

/** Sends `count` copies of `packet` from 127.0.0.1 in bursts of 50, each waiting for its replies (at most 3 s). */
async function paced(port: number, packet: Buffer, count: number): Promise<{ answered: number; truncated: number }> {
  const r = { answered: 0, truncated: 0 };
  for (let i = 0; i < count; i += 50) {
    const f = await udpFlood(port, '127.0.0.1', packet, Math.min(50, count - i), 3000);
    r.answered += f.answered;
    r.truncated += f.truncated;
  }
  return r;
}

describe('response-rate limiting (real process, UDP on loopback)', () => {
  // The flood's bound holds as long as the answered part stays small: with 23x answers and every
  // second refusal slipped at 1x, bytes <= 2x while answered <= ~650 of 10,000. At 20/s (burst 20)
  // that is ~30 s of sending, far beyond what 10,000 datagrams take even on a loaded machine.
  it('10,000 identical DNSKEY queries from one source get at most 2x their bytes back; 50 other /24s lose nothing', async () => {
    const cli = await server(['--rrl-rate', '20']);
    const legit = await startLegitClients(cli.port, distinctPrefixSources(50), NORMAL, 250, 5000);
    await sleep(500);
    const flood = await udpFlood(cli.port, '127.0.0.1', ATTACK, 10_000, 1000);
    await sleep(500);
    const normal = await legit.stop();

    expect(flood.sent).toBe(10_000);
    expect(flood.replyBytes).toBeLessThanOrEqual(2 * flood.sentBytes);
    expect(flood.truncated).toBeGreaterThan(0); // slipped: a real client at that address retries over TCP
    expect(flood.answered).toBeGreaterThan(0);
    expect(normal.sent).toBeGreaterThanOrEqual(150);
    expect(normal).toMatchObject({ lost: 0, truncated: 0, answered: normal.sent });
  }, 120_000);

  it('never limits TCP, even for a source over its UDP rate; counts what it slipped and dropped', async () => {
    const cli = await server(['--rrl-rate', '5', '--rrl-slip', '1', '--api', '127.0.0.1:0']);
    const udp = await paced(cli.port, ATTACK, 100);
    expect(udp.truncated).toBeGreaterThan(0);
    const metrics = await (await fetch(`http://127.0.0.1:${cli.apiPort}/metrics`)).text();
    expect(metrics).toContain(`gslb_dns_rrl_limited_total{action="slipped"} ${udp.truncated}`);
    expect(metrics).toContain('gslb_dns_rrl_limited_total{action="dropped"} 0');
    const replies = await tcpExchange(cli.port, Buffer.concat(Array.from({ length: 200 }, () => framed(ATTACK))), 200, 30_000);
    expect(replies.length).toBe(200);
    for (const r of replies) expect(header(r)).toMatchObject({ tc: false, an: 3 });
  }, 60_000);

  it('answers everything with --rrl-rate 0', async () => {
    const cli = await server(['--rrl-rate', '0']);
    expect((await cli.waitLog((l) => l['msg'] === 'response-rate limiting off (--rrl-rate 0)'))['rrlRate']).toBe(0);
    expect(await paced(cli.port, ATTACK, 1000)).toEqual({ answered: 1000, truncated: 0 });
  }, 60_000);

  it('is on by default (200/s, slip 2, /24 and /56, no exemption) and exempts listed prefixes', async () => {
    const dflt = await server([]);
    const on = await dflt.waitLog((l) => l['msg'] === 'response-rate limiting on (UDP only)');
    expect(on['rrl']).toEqual({ rate: 200, slip: 2, ipv4Prefix: 24, ipv6Prefix: 56, tableSize: 65536, exempt: [] });

    const exempt = await server(['--rrl-rate', '5', '--rrl-exempt', '10.0.0.0/8,127.0.0.0/30', '--rrl-exempt', '::1']);
    expect((await exempt.waitLog((l) => l['msg'] === 'response-rate limiting on (UDP only)'))['rrl'])
      .toMatchObject({ rate: 5, exempt: ['10.0.0.0/8', '127.0.0.0/30', '::1/128'] });
    expect(await paced(exempt.port, ATTACK, 300)).toEqual({ answered: 300, truncated: 0 });
  }, 60_000);

  it('rejects bad --rrl-* values, naming the flag', async () => {
    const bad = [['--rrl-rate', '-1'], ['--rrl-slip', 'x'], ['--rrl-ipv4-prefix', '33'], ['--rrl-ipv6-prefix', '65'],
      ['--rrl-exempt', '10.0.0.0/40'], ['--rrl-table-size', '0']] as const;
    const runs = await Promise.all(bad.map(([flag, value]) => runCli(['--zones', RRL_ZONES, '--listen', '127.0.0.1:0', flag, value])));
    runs.forEach((r, i) => {
      expect(r.code, bad[i]!.join(' ')).toBe(2);
      expect(r.stderr).toContain(bad[i]![0]);
    });
  }, 60_000);
});

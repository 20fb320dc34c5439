/**
 * gslb-dns's request counters and request-duration histogram, through the real process: queries
 * over UDP and TCP, then a scrape of /metrics.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, startCli } from '../helpers/cli.js';
import type { Cli } from '../helpers/cli.js';
import { parseExposition } from '../helpers/exposition.js';
import type { Exposition } from '../helpers/exposition.js';
import { FIXTURE_ZONES, framed, tcpExchange, udpExchange } from '../helpers/server.js';
import { query } from '../helpers/packet.js';

const clis: Cli[] = [];
afterEach(async () => { await Promise.all(clis.splice(0).map((c) => c.stop())); });

async function start(extra: string[] = []): Promise<Cli> {
  const cli = await startCli(['--zones', FIXTURE_ZONES, '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0', '--rrl-rate', '0', ...extra]);
  clis.push(cli);
  return cli;
}

async function scrape(cli: Cli): Promise<Exposition> {
  const res = await fetch(`http://127.0.0.1:${cli.apiPort}/metrics`);
  expect(res.status).toBe(200);
  return parseExposition(await res.text());
}

/** Sends queries over UDP (each waits for its reply) and one over TCP. */
async function ask(cli: Cli): Promise<void> {
  const udp: [string, number][] = [['www.example.test', 1], ['www.example.test', 1], ['www.example.test', 28], ['nx.example.test', 1], ['www.example.test', 999], ['example.test', 15]];
  for (const [name, type] of udp) expect(await udpExchange(cli.port, query({ name, type }))).toBeDefined();
  expect(await tcpExchange(cli.port, framed(query({ name: 'www.example.test', type: 28 })), 1)).toHaveLength(1);
}

describe('gslb-dns /metrics: requests, responses, request duration', () => {
  it('counts requests by proto, family and type (other for unnamed types), responses by proto and rcode, and times each', async () => {
    const cli = await start();
    await ask(cli);
    const m = await scrape(cli);
    expect(m.types.get('gslb_dns_requests_total')).toBe('counter');
    expect(m.types.get('gslb_dns_request_duration_seconds')).toBe('histogram');
    const req = (labels: Record<string, string>) => m.value('gslb_dns_requests_total', { family: 'ipv4', ...labels });
    expect(req({ proto: 'udp', type: 'A' })).toBe(3);
    expect(req({ proto: 'udp', type: 'AAAA' })).toBe(1);
    expect(req({ proto: 'udp', type: 'MX' })).toBe(1);
    expect(req({ proto: 'udp', type: 'other' })).toBe(1);
    expect(req({ proto: 'tcp', type: 'AAAA' })).toBe(1);
    expect(m.value('gslb_dns_responses_total', { proto: 'udp', rcode: 'NOERROR' })).toBe(5);
    expect(m.value('gslb_dns_responses_total', { proto: 'udp', rcode: 'NXDOMAIN' })).toBe(1);
    expect(m.value('gslb_dns_responses_total', { proto: 'tcp', rcode: 'NOERROR' })).toBe(1);
    // one observation per request; buckets cumulative, ending at +Inf = count
    expect(m.value('gslb_dns_request_duration_seconds_count', { proto: 'udp' })).toBe(6);
    expect(m.value('gslb_dns_request_duration_seconds_count', { proto: 'tcp' })).toBe(1);
    const buckets = m.find('gslb_dns_request_duration_seconds_bucket', { proto: 'udp' });
    expect(buckets.at(-1)!.labels['le']).toBe('+Inf');
    expect(buckets.at(-1)!.value).toBe(6);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
    expect(m.value('gslb_dns_request_duration_seconds_sum', { proto: 'udp' })).toBeGreaterThan(0);
    // the process and build families
    expect(m.value('gslb_dns_build_info', { nodejs: process.version })).toBe(1);
    expect(m.types.get('process_cpu_seconds_total')).toBe('counter');
    expect(m.value('process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(m.types.get('process_resident_memory_bytes')).toBe('gauge');
  });

  it('--metrics-request-duration off: requests are counted, not timed; the family is listed without samples', async () => {
    const cli = await start(['--metrics-request-duration', 'off']);
    await ask(cli);
    const m = await scrape(cli);
    expect(m.value('gslb_dns_requests_total', { proto: 'udp', family: 'ipv4', type: 'A' })).toBe(3);
    expect(m.types.get('gslb_dns_request_duration_seconds')).toBe('histogram');
    expect(m.find('gslb_dns_request_duration_seconds_count')).toEqual([]);
  });

  it('refuses a --metrics-request-duration other than on or off', async () => {
    const r = await runCli(['--zones', FIXTURE_ZONES, '--listen', '127.0.0.1:0', '--metrics-request-duration', 'maybe']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--metrics-request-duration: expected on or off');
    expect(r.stderr).toContain('[--metrics-request-duration on|off]');
  });
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentConfigError, loadAgentConfig, parseAgentConfig } from '../../slb-agent/config.js';
import type { AgentConfig } from '../../slb-agent/config.js';
import { DEFAULT_VNI } from '../../slb-agent/forwarder/tunnel.js';

const FILE = 'site.yaml';
const ENV = { GSLB_SECRET_TOKYO: 'tokyo-secret' };

// line numbers matter: the error table below names them
const EXAMPLE = `site: tokyo
agent: lb1
secret: env:GSLB_SECRET_TOKYO            # or file:/path (relative: from the config file); never inline
dns: [ "http://127.0.0.1:8053" ]         # every gslb-dns API to report to
report: { interval: 1s }                 # heartbeat; changes are sent at once
api: 127.0.0.1:9100                      # local status API
vips:
  - name: web
    address: 192.0.2.1                   # the pool member address in gslb-dns
    port: 80
    protocol: tcp                        # tcp | udp
    capacity: 1000
    quorum: 1                            # healthy primary real servers needed for the VIP to be up
    forwarder: { mode: proxy, scheduler: wrr }
    check: { type: http, path: /healthz, expect: [200], interval: 500ms, timeout: 300ms, rise: 2, fall: 2 }
    realServers:
      - { address: 127.0.0.11, port: 8080, weight: 1 }
      - { address: 127.0.0.12, port: 8080, weight: 1, backup: true }
`;

function parse(text: string, env: NodeJS.ProcessEnv = ENV, file = FILE): AgentConfig {
  return parseAgentConfig(text, file, env);
}

/** The message of the AgentConfigError that `fn` throws (one error per line), or '(no error)'. */
function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AgentConfigError);
    const errors = (e as AgentConfigError).errors;
    expect(errors.length).toBeGreaterThan(0);
    for (const x of errors) expect(typeof x.reason).toBe('string');
    return (e as Error).message;
  }
  return '(no error)';
}

/** A second VIP (lines 19-23 when appended to EXAMPLE) on l3dsr-dscp 8 at eth0. */
const SECOND_VIP = `  - name: api
    address: 192.0.2.2
    port: 80
    forwarder: { mode: l3dsr-dscp, interface: eth0, dscp: 8 }
    realServers: [{ address: 10.0.0.1, port: 80 }]
`;

/** EXAMPLE with `from` replaced by `to` (each must occur exactly once). */
function edit(...pairs: [string, string][]): string {
  let t = EXAMPLE;
  for (const [from, to] of pairs) {
    expect(t.split(from).length, `"${from}" occurs once`).toBe(2);
    t = t.replace(from, to);
  }
  return t;
}

describe('parseAgentConfig: the contract example', () => {
  const cfg = parse(EXAMPLE);

  it('loads with the secret resolved and defaults filled in', () => {
    expect(cfg).toEqual({
      file: FILE,
      site: 'tokyo',
      agent: 'lb1',
      secret: Buffer.from('tokyo-secret'),
      secretRef: 'env:GSLB_SECRET_TOKYO',
      warnings: [`${FILE}:3: secret: secret env:GSLB_SECRET_TOKYO is shorter than 32 bytes (12): use e.g. \`openssl rand -hex 32\``],
      dns: ['http://127.0.0.1:8053'],
      report: { intervalMs: 1000, timeoutMs: 1000 },
      api: { host: '127.0.0.1', port: 9100 },
      forwarder: { cleanupOnExit: false },
      vips: [expect.objectContaining({ name: 'web' })],
    });
  });

  it('resolves the VIP, its forwarder and the check applied to each real server', () => {
    const check = {
      type: 'http', method: 'GET', path: '/healthz', expect: [200], insecure: false, reuseConnection: 60,
      intervalMs: 500, timeoutMs: 300, rise: 2, fall: 2, startState: 'down', jitter: 0.1,
    };
    expect(cfg.vips[0]).toEqual({
      name: 'web',
      address: '192.0.2.1',
      family: 4,
      port: 80,
      protocol: 'tcp',
      capacity: 1000,
      quorum: 1,
      forwarder: { mode: 'proxy', scheduler: 'wrr', persistenceMs: 0 },
      check,
      realServers: [
        { index: 0, address: '127.0.0.11', family: 4, port: 8080, weight: 1, backup: false, check },
        { index: 1, address: '127.0.0.12', family: 4, port: 8080, weight: 1, backup: true, check },
      ],
    });
  });

  it('defaults: report, api, protocol, capacity, quorum, forwarder, tcp check, weight', () => {
    const c = parse(`site: s
agent: a
secret: env:GSLB_SECRET_TOKYO
dns: ["https://dns1.example:8443/", "http://[::1]:8053"]
vips:
  - name: v
    address: 2001:DB8::0:1
    port: 53
    realServers: [{ address: 10.0.0.1, port: 53 }]
`);
    expect(c.dns).toEqual(['https://dns1.example:8443', 'http://[::1]:8053']);
    expect(c.report).toEqual({ intervalMs: 1000, timeoutMs: 1000 });
    expect(c.api).toEqual({ host: '127.0.0.1', port: 9100 });
    const v = c.vips[0]!;
    expect(v).toMatchObject({ address: '2001:db8::1', family: 6, protocol: 'tcp', capacity: 0, quorum: 1 });
    // no forwarder block: checked and reported only, nothing forwarded (as before the forwarder)
    expect(v.forwarder).toBeUndefined();
    expect(c.forwarder).toEqual({ cleanupOnExit: false });
    expect(v.check).toEqual({ type: 'tcp', intervalMs: 2000, timeoutMs: 1000, rise: 2, fall: 2, startState: 'down', jitter: 0.1 });
    expect(v.realServers[0]).toMatchObject({ weight: 1, backup: false });
  });

  it('a short interval lowers the default timeout below it', () => {
    const c = parse(edit(['interval: 500ms, timeout: 300ms, ', 'interval: 500ms, ']));
    expect(c.vips[0]!.check).toMatchObject({ intervalMs: 500, timeoutMs: 250 });
  });

  it('writes VIP addresses as gslb-dns writes pool members (one parser, RFC 5952)', () => {
    const vip = (a: string) => parse(edit(['address: 192.0.2.1 ', `address: "${a}" `])).vips[0]!.address;
    expect(vip('2001:DB8:0::1')).toBe('2001:db8::1');
    expect(vip('::ffff:c000:201')).toBe('::ffff:192.0.2.1');
  });

  it('every check type with its keys and defaults', () => {
    const rs = (check: string): AgentConfig['vips'][number]['realServers'][number]['check'] =>
      parse(edit(['{ address: 127.0.0.11, port: 8080, weight: 1 }', `{ address: 127.0.0.11, port: 8080, check: ${check} }`]))
        .vips[0]!.realServers[0]!.check;
    // same type (or none): merged over the VIP's check
    expect(rs('{ path: /other, host: www.example, body: "ok|fine", method: GET }')).toMatchObject({
      type: 'http', path: '/other', host: 'www.example', body: 'ok|fine', intervalMs: 500, timeoutMs: 300, expect: [200],
    });
    // another type: replaces it
    expect(rs('{ type: https, insecure: true, expect: [200, 204] }')).toEqual({
      type: 'https', method: 'GET', path: '/', expect: [200, 204], insecure: true, reuseConnection: 0,
      intervalMs: 2000, timeoutMs: 1000, rise: 2, fall: 2, startState: 'down', jitter: 0.1,
    });
    expect(rs('{ type: dns, name: www.example.com., address: 192.0.2.7, port: 5353 }')).toMatchObject({
      type: 'dns', name: 'www.example.com', qtype: 'A', qtypeCode: 1, rcode: 'NOERROR', address: '192.0.2.7', port: 5353,
    });
    expect(rs('{ type: dns, name: example.com, address: "2001:db8::7" }')).toMatchObject({ qtype: 'AAAA', qtypeCode: 28 });
    expect(rs('{ type: dns, name: nx.example.com, qtype: txt, rcode: NXDOMAIN }')).toMatchObject({ qtype: 'TXT', qtypeCode: 16, rcode: 'NXDOMAIN' });
    expect(rs('{ type: icmp, interval: 1s, timeout: 500ms, startState: up, jitter: 0 }')).toEqual({
      type: 'icmp', intervalMs: 1000, timeoutMs: 500, rise: 2, fall: 2, startState: 'up', jitter: 0,
    });
    expect(rs('{ type: exec, command: [/bin/check, --fast] }')).toMatchObject({ type: 'exec', command: ['/bin/check', '--fast'] });
    expect(rs('{ type: agent, port: 9999, rise: 1, fall: 3 }')).toMatchObject({ type: 'agent', port: 9999, rise: 1, fall: 3 });
    expect(rs('{ type: tcp, port: 22 }')).toMatchObject({ type: 'tcp', port: 22 });
    expect(rs('{ reuseConnection: 0 }')).toMatchObject({ type: 'http', reuseConnection: 0 });
  });

  it('forwarder modes with their own keys and defaults', () => {
    // DSR modes keep the destination port: the VIP listens on the real servers' 8080 here
    const fw = (text: string): unknown => parse(edit(['{ mode: proxy, scheduler: wrr }', text], ['port: 80\n', 'port: 8080\n'])).vips[0]!.forwarder;
    expect(fw('{}')).toEqual({ mode: 'proxy', scheduler: 'wrr', persistenceMs: 0 });
    expect(fw('{ scheduler: wlc, flowTimeout: 45s }')).toEqual({ mode: 'proxy', scheduler: 'wlc', persistenceMs: 0, flowTimeoutMs: 45_000 });
    expect(fw('{ scheduler: sh, shPorts: true }')).toEqual({ mode: 'proxy', scheduler: 'sh', persistenceMs: 0, shPorts: true });
    expect(fw('{ mode: dsr, interface: eth0, scheduler: maglev }')).toEqual({ mode: 'dsr', scheduler: 'maglev', interface: 'eth0', persistenceMs: 0 });
    expect(fw('{ mode: l3dsr-dscp, scheduler: maglev, dscp: 10, interface: eth0 }'))
      .toEqual({ mode: 'l3dsr-dscp', scheduler: 'maglev', dscp: 10, interface: 'eth0', persistenceMs: 0 });
    // vxlan is the tested tunnel: the default, with the VNI rs-setup defaults to as well
    expect(fw('{ mode: l3dsr-tunnel, interface: eth0 }'))
      .toEqual({ mode: 'l3dsr-tunnel', scheduler: 'wrr', interface: 'eth0', tunnel: 'vxlan', vni: DEFAULT_VNI, persistenceMs: 0 });
    expect(fw('{ mode: l3dsr-tunnel, interface: eth0, vni: 16777215 }')).toMatchObject({ tunnel: 'vxlan', vni: 16_777_215 });
    expect(fw('{ mode: l3dsr-tunnel, interface: eth0, tunnel: gre }'))
      .toEqual({ mode: 'l3dsr-tunnel', scheduler: 'wrr', interface: 'eth0', tunnel: 'gre', persistenceMs: 0 });
    // nat: full NAT unless told otherwise; lc sees connections there
    expect(fw('{ mode: nat, interface: eth0, persistence: 5m, scheduler: lc, flowTimeout: 2m }'))
      .toEqual({ mode: 'nat', scheduler: 'lc', interface: 'eth0', snat: true, persistenceMs: 300_000, flowTimeoutMs: 120_000 });
    expect(fw('{ mode: nat, interface: eth0, snat: false }')).toMatchObject({ mode: 'nat', snat: false });
  });

  it('nat and proxy may rewrite ports; two VIPs may share a dscp on different interfaces', () => {
    const nat = parse(edit(['{ mode: proxy, scheduler: wrr }', '{ mode: nat, interface: eth0 }']));
    expect(nat.vips[0]!.realServers.map((r) => r.port)).toEqual([8080, 8080]);
    const two = parse(edit(['{ mode: proxy, scheduler: wrr }', '{ mode: l3dsr-dscp, interface: eth0, dscp: 8 }'], ['port: 80\n', 'port: 8080\n'])
      + SECOND_VIP.replace('interface: eth0', 'interface: eth1'));
    expect(two.vips.map((v) => v.forwarder?.interface)).toEqual(['eth0', 'eth1']);
  });

  it('cleanupOnExit: agent-wide, default false', () => {
    expect(parse(edit(['vips:\n', 'forwarder: { cleanupOnExit: true }\nvips:\n'])).forwarder).toEqual({ cleanupOnExit: true });
  });
});

describe('parseAgentConfig: errors name file:line: path: reason', () => {
  const cases: { name: string; text: string; env?: NodeJS.ProcessEnv; error: string }[] = [
    { name: 'unknown top-level key with a suggestion', text: edit(['api: 127', 'apii: 127']),
      error: 'site.yaml:6: unknown key "apii" (did you mean "api"?)' },
    { name: 'unknown real-server key', text: edit(['port: 8080, weight: 1 }', 'port: 8080, weigth: 1 }']),
      error: 'site.yaml:17: vips[0].realServers[0]: unknown key "weigth" (did you mean "weight"?)' },
    { name: 'unknown check key', text: edit(['rise: 2, fall: 2', 'rise: 2, fal: 2']),
      error: 'site.yaml:15: vips[0].check: unknown key "fal" (did you mean "fall"?)' },
    { name: 'missing key', text: edit(['agent: lb1\n', '']),
      error: 'site.yaml:1: missing key "agent"' },
    { name: 'bad check type', text: edit(['type: http', 'type: htp']),
      error: 'site.yaml:15: vips[0].check.type: expected one of tcp | http | https | dns | icmp | exec | agent, got "htp"' },
    { name: 'bad protocol', text: edit(['protocol: tcp', 'protocol: sctp']),
      error: 'site.yaml:11: vips[0].protocol: expected one of tcp | udp, got "sctp"' },
    { name: 'bad port', text: edit(['port: 80\n', 'port: 0\n']),
      error: 'site.yaml:10: vips[0].port: expected an integer from 1 to 65535, got 0' },
    { name: 'negative weight', text: edit(['port: 8080, weight: 1 }', 'port: 8080, weight: -1 }']),
      error: 'site.yaml:17: vips[0].realServers[0].weight: expected an integer from 0 to 65535, got -1' },
    { name: 'bad VIP address', text: edit(['192.0.2.1', '192.0.2.300']),
      error: 'site.yaml:9: vips[0].address: not an IPv4 or IPv6 address: "192.0.2.300"' },
    { name: 'bad real server address', text: edit(['127.0.0.12', 'rs2.local']),
      error: 'site.yaml:18: vips[0].realServers[1].address: not an IPv4 or IPv6 address: "rs2.local"' },
    { name: 'duplicate real server', text: edit(['127.0.0.12, port: 8080', '127.0.0.11, port: 8080']),
      error: 'site.yaml:18: vips[0].realServers[1]: duplicate real server 127.0.0.11:8080 (also realServers[0])' },
    { name: 'duplicate VIP name', text: `${EXAMPLE}  - name: web\n    address: 192.0.2.2\n    port: 80\n    realServers: [{ address: 10.0.0.1, port: 80 }]\n`,
      error: 'site.yaml:19: vips[1].name: duplicate VIP name "web" (also vips[0])' },
    { name: 'quorum above the primaries', text: edit(['quorum: 1 ', 'quorum: 2 ']),
      error: 'site.yaml:13: vips[0].quorum: quorum 2 exceeds the 1 primary (non-backup) real server' },
    { name: 'no real servers', text: edit(['realServers:\n      - { address: 127.0.0.11, port: 8080, weight: 1 }\n      - { address: 127.0.0.12, port: 8080, weight: 1, backup: true }', 'realServers: []']),
      error: 'site.yaml:16: vips[0].realServers: a VIP needs at least one real server' },
    { name: 'dns URL scheme', text: edit(['"http://127.0.0.1:8053"', '"ftp://127.0.0.1:8053"']),
      error: 'site.yaml:4: dns[0]: expected an http or https URL, got "ftp://127.0.0.1:8053"' },
    { name: 'dns not a URL', text: edit(['"http://127.0.0.1:8053"', '"127.0.0.1:8053"']),
      error: 'site.yaml:4: dns[0]: not a URL: "127.0.0.1:8053" (expected e.g. http://127.0.0.1:8053)' },
    { name: 'dns URL twice', text: edit(['"http://127.0.0.1:8053"', '"http://127.0.0.1:8053", "http://127.0.0.1:8053/"']),
      error: 'site.yaml:4: dns[1]: http://127.0.0.1:8053 is listed twice (also dns[0])' },
    { name: 'no dns', text: edit(['[ "http://127.0.0.1:8053" ]', '[]']),
      error: 'site.yaml:4: dns: needs at least one gslb-dns API URL' },
    { name: 'api without a port', text: edit(['api: 127.0.0.1:9100', 'api: 127.0.0.1']),
      error: 'site.yaml:6: api: expected HOST:PORT or [IPv6]:PORT, got "127.0.0.1"' },
    { name: 'api port out of range', text: edit(['api: 127.0.0.1:9100', 'api: 127.0.0.1:99999']),
      error: 'site.yaml:6: api: port must be 0 to 65535, got 99999 in "127.0.0.1:99999"' },
    { name: 'bad duration', text: edit(['interval: 500ms', 'interval: 500 ms']),
      error: 'site.yaml:15: vips[0].check.interval: expected a duration such as 500ms, 2s or 1m, got "500 ms"' },
    { name: 'timeout not below the interval', text: edit(['timeout: 300ms', 'timeout: 500ms']),
      error: 'site.yaml:15: vips[0].check.timeout: the timeout (500ms) must be below the interval (500ms)' },
    { name: 'key of another check type', text: edit(['path: /healthz', 'path: /healthz, insecure: true']),
      error: 'site.yaml:15: vips[0].check.insecure: not used by http checks (only by https)' },
    { name: 'jitter out of range', text: edit(['fall: 2 }', 'fall: 2, jitter: 0.9 }']),
      error: 'site.yaml:15: vips[0].check.jitter: expected a number from 0 to 0.5, got 0.9' },
    { name: 'empty expect', text: edit(['expect: [200]', 'expect: []']),
      error: 'site.yaml:15: vips[0].check.expect: needs at least one status code' },
    { name: 'bad body regex', text: edit(['path: /healthz', 'path: /healthz, body: "(ok"']),
      error: 'site.yaml:15: vips[0].check.body: not a regular expression: Invalid regular expression: /(ok/: Unterminated group' },
    { name: 'path without a slash', text: edit(['path: /healthz', 'path: healthz']),
      error: 'site.yaml:15: vips[0].check.path: must start with "/", got "healthz"' },
    { name: 'agent check without a port', text: edit(['{ type: http, path: /healthz, expect: [200],', '{ type: agent,']),
      error: 'site.yaml:15: vips[0].check.type: an agent check needs its own "port" (the agent\'s, not the service\'s)' },
    { name: 'dns check without a name', text: edit(['{ type: http, path: /healthz, expect: [200],', '{ type: dns,']),
      error: 'site.yaml:15: vips[0].check.type: a dns check needs "name" (the name to query)' },
    { name: 'dns address vs qtype', text: edit(['{ type: http, path: /healthz, expect: [200],', '{ type: dns, name: a.example, qtype: AAAA, address: 192.0.2.1,']),
      error: 'site.yaml:15: vips[0].check.address: an IPv4 address is only found in A answers (qtype is AAAA)' },
    { name: 'exec without a command', text: edit(['{ type: http, path: /healthz, expect: [200],', '{ type: exec, command: [],']),
      error: 'site.yaml:15: vips[0].check.command: needs at least the program to run' },
    { name: 'override error at the real server', text: edit(['port: 8080, weight: 1 }', 'port: 8080, check: { timeout: 2s } }']),
      error: 'site.yaml:17: vips[0].realServers[0].check.timeout: the timeout (2000ms) must be below the interval (500ms)' },
    { name: 'override of another type: its own keys only', text: edit(['port: 8080, weight: 1 }', 'port: 8080, check: { type: tcp, path: /x } }']),
      error: 'site.yaml:17: vips[0].realServers[0].check.path: not used by tcp checks (only by http, https)' },
    { name: 'dscp without l3dsr-dscp', text: edit(['scheduler: wrr }', 'scheduler: wrr, dscp: 8 }']),
      error: 'site.yaml:14: vips[0].forwarder.dscp: only for mode l3dsr-dscp (mode is proxy)' },
    { name: 'dscp out of range', text: edit(['{ mode: proxy, scheduler: wrr }', '{ mode: l3dsr-dscp, dscp: 64 }']),
      error: 'site.yaml:14: vips[0].forwarder.dscp: expected an integer from 1 to 63, got 64' },
    { name: 'bad scheduler', text: edit(['scheduler: wrr', 'scheduler: random']),
      error: 'site.yaml:14: vips[0].forwarder.scheduler: expected one of rr | wrr | sh | maglev | lc | wlc, got "random"' },
    { name: 'kernel mode without an interface', text: edit(['{ mode: proxy, scheduler: wrr }', '{ mode: nat }']),
      error: 'site.yaml:14: vips[0].forwarder: mode nat needs "interface" (the network interface the VIP\'s packets arrive on)' },
    { name: 'l3dsr-dscp without a dscp', text: edit(['{ mode: proxy, scheduler: wrr }', '{ mode: l3dsr-dscp, interface: eth0 }'], ['port: 80\n', 'port: 8080\n']),
      error: 'site.yaml:14: vips[0].forwarder: mode l3dsr-dscp needs "dscp" (1-63)' },
    { name: 'two VIPs share a dscp on one interface',
      text: edit(['{ mode: proxy, scheduler: wrr }', '{ mode: l3dsr-dscp, interface: eth0, dscp: 8 }'], ['port: 80\n', 'port: 8080\n']) + SECOND_VIP,
      error: 'site.yaml:22: vips[1].forwarder.dscp: dscp 8 on interface eth0 is also used by vips[0]' },
    { name: 'tunnel without l3dsr-tunnel', text: edit(['{ mode: proxy, scheduler: wrr }', '{ mode: nat, interface: eth0, tunnel: vxlan }']),
      error: 'site.yaml:14: vips[0].forwarder.tunnel: only for mode l3dsr-tunnel (mode is nat)' },
    { name: 'vni without vxlan', text: edit(['{ mode: proxy, scheduler: wrr }', '{ mode: l3dsr-tunnel, interface: eth0, tunnel: ipip, vni: 7 }'], ['port: 80\n', 'port: 8080\n']),
      error: 'site.yaml:14: vips[0].forwarder.vni: only for tunnel vxlan (tunnel is ipip)' },
    { name: 'vni without l3dsr-tunnel', text: edit(['{ mode: proxy, scheduler: wrr }', '{ mode: nat, interface: eth0, vni: 7 }']),
      error: 'site.yaml:14: vips[0].forwarder.vni: only for mode l3dsr-tunnel with tunnel vxlan (mode is nat)' },
    { name: 'vni out of range', text: edit(['{ mode: proxy, scheduler: wrr }', '{ mode: l3dsr-tunnel, interface: eth0, vni: 16777216 }'], ['port: 80\n', 'port: 8080\n']),
      error: 'site.yaml:14: vips[0].forwarder.vni: expected an integer from 1 to 16777215, got 16777216' },
    { name: 'shPorts without sh', text: edit(['{ mode: proxy, scheduler: wrr }', '{ mode: proxy, scheduler: maglev, shPorts: true }']),
      error: 'site.yaml:14: vips[0].forwarder.shPorts: only for scheduler sh (scheduler is maglev)' },
    { name: 'snat without nat', text: edit(['{ mode: proxy, scheduler: wrr }', '{ mode: proxy, snat: false }']),
      error: 'site.yaml:14: vips[0].forwarder.snat: only for mode nat (mode is proxy)' },
    { name: 'lc where no connections are seen', text: edit(['{ mode: proxy, scheduler: wrr }', '{ mode: dsr, interface: eth0, scheduler: lc }'], ['port: 80\n', 'port: 8080\n']),
      error: 'site.yaml:14: vips[0].forwarder.scheduler: lc needs connection counts, which only modes proxy and nat see (mode is dsr)' },
    { name: 'wlc with l3dsr-tunnel', text: edit(['{ mode: proxy, scheduler: wrr }', '{ mode: l3dsr-tunnel, interface: eth0, scheduler: wlc }'], ['port: 80\n', 'port: 8080\n']),
      error: 'site.yaml:14: vips[0].forwarder.scheduler: wlc needs connection counts, which only modes proxy and nat see (mode is l3dsr-tunnel)' },
    { name: 'dsr cannot rewrite ports', text: edit(['{ mode: proxy, scheduler: wrr }', '{ mode: dsr, interface: eth0 }']),
      error: 'site.yaml:17: vips[0].realServers[0].port: mode dsr cannot rewrite ports: must be the VIP\'s port 80, got 8080\n'
        + 'site.yaml:18: vips[0].realServers[1].port: mode dsr cannot rewrite ports: must be the VIP\'s port 80, got 8080' },
    { name: 'bad flowTimeout', text: edit(['{ mode: proxy, scheduler: wrr }', '{ mode: proxy, flowTimeout: 0s }']),
      error: 'site.yaml:14: vips[0].forwarder.flowTimeout: must be above 0, got "0s"' },
    { name: 'a check interval without a unit', text: edit(['interval: 500ms', 'interval: 500']),
      error: 'site.yaml:15: vips[0].check.interval: duration needs a unit: 500ms or 500s' },
    { name: 'unknown agent-wide forwarder key', text: edit(['vips:\n', 'forwarder: { cleanup: true }\nvips:\n']),
      error: 'site.yaml:7: forwarder: unknown key "cleanup" (did you mean "cleanupOnExit"?)' },
    { name: 'inline secret', text: edit(['secret: env:GSLB_SECRET_TOKYO', 'secret: hunter2']),
      error: 'site.yaml:3: secret: secrets are never inline: use env:NAME or file:/path' },
    { name: 'unset secret variable', text: EXAMPLE, env: {},
      error: 'site.yaml:3: secret: environment variable GSLB_SECRET_TOKYO is not set' },
    { name: 'bad site name', text: edit(['site: tokyo', 'site: "tokyo 1"']),
      error: 'site.yaml:1: site: must be 1-63 letters, digits, "-" or "_", got "tokyo 1"' },
    { name: 'invalid YAML', text: edit(['agent: lb1', 'site: again']),
      error: 'site.yaml:2: invalid YAML: Map keys must be unique' },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const msg = errorOf(() => parse(c.text, c.env ?? ENV));
      if (c.name === 'invalid YAML') expect(msg.startsWith(c.error)).toBe(true);
      else expect(msg).toBe(c.error);
    });
  }

  it('lists every error, in file order', () => {
    const msg = errorOf(() => parse(edit(['192.0.2.1', 'x'], ['127.0.0.12', 'y'], ['api: 127.0.0.1:9100', 'api: nope'])));
    expect(msg.split('\n')).toEqual([
      'site.yaml:6: api: expected HOST:PORT or [IPv6]:PORT, got "nope"',
      'site.yaml:9: vips[0].address: not an IPv4 or IPv6 address: "x"',
      'site.yaml:18: vips[0].realServers[1].address: not an IPv4 or IPv6 address: "y"',
    ]);
  });

  it('errors are values with file, line, path and reason', () => {
    try {
      parse(edit(['port: 80\n', 'port: 0\n']));
      expect.unreachable();
    } catch (e) {
      expect((e as AgentConfigError).errors).toEqual([
        { file: FILE, line: 10, path: 'vips[0].port', reason: 'expected an integer from 1 to 65535, got 0' },
      ]);
    }
  });
});

describe('secrets and loading from a file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'slb-agent-config-'));
    await writeFile(path.join(dir, 'tokyo.secret'), 'from-a-file\n');
    await writeFile(path.join(dir, 'empty.secret'), '\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a list of secrets: reports are signed with the first, every entry must resolve', () => {
    const c = parse(edit(['secret: env:GSLB_SECRET_TOKYO', 'secret: [env:NEW, env:OLD]']), { NEW: 'n'.repeat(32), OLD: 'o'.repeat(32) });
    expect(c.secret).toEqual(Buffer.from('n'.repeat(32)));
    expect(c.secretRef).toEqual(['env:NEW', 'env:OLD']);
    expect(c.warnings).toEqual([]);
    expect(() => parse(edit(['secret: env:GSLB_SECRET_TOKYO', 'secret: [env:NEW, env:GONE]']), { NEW: 'n'.repeat(32) }))
      .toThrow(`${FILE}:3: secret[1]: environment variable GONE is not set`);
  });

  it('env: reads the environment passed in', () => {
    expect(parse(EXAMPLE, { GSLB_SECRET_TOKYO: 'x' }).secret).toEqual(Buffer.from('x'));
  });

  it('file: relative to the config file, without the trailing newline', () => {
    const c = parse(edit(['env:GSLB_SECRET_TOKYO', 'file:tokyo.secret']), {}, path.join(dir, 'site.yaml'));
    expect(c.secret).toEqual(Buffer.from('from-a-file'));
    expect(c.secretRef).toBe('file:tokyo.secret');
  });

  it('file: absolute; missing and empty files are errors', () => {
    const abs = path.join(dir, 'tokyo.secret');
    expect(parse(edit(['env:GSLB_SECRET_TOKYO', `file:${abs}`]), {}).secret).toEqual(Buffer.from('from-a-file'));
    expect(errorOf(() => parse(edit(['env:GSLB_SECRET_TOKYO', 'file:nope.secret']), {}, path.join(dir, 'site.yaml'))))
      .toBe(`${path.join(dir, 'site.yaml')}:3: secret: cannot read secret file ${path.join(dir, 'nope.secret')}: ENOENT`);
    expect(errorOf(() => parse(edit(['env:GSLB_SECRET_TOKYO', 'file:empty.secret']), {}, path.join(dir, 'site.yaml'))))
      .toBe(`${path.join(dir, 'site.yaml')}:3: secret: secret file ${path.join(dir, 'empty.secret')} is empty`);
  });

  it('loadAgentConfig reads the file; a missing file is an AgentConfigError', async () => {
    const f = path.join(dir, 'site.yaml');
    await writeFile(f, edit(['env:GSLB_SECRET_TOKYO', 'file:tokyo.secret']));
    const c = await loadAgentConfig(f);
    expect(c.file).toBe(f);
    expect(c.vips.map((v) => v.name)).toEqual(['web']);
    await expect(loadAgentConfig(path.join(dir, 'missing.yaml'))).rejects.toThrow(`${path.join(dir, 'missing.yaml')}: cannot read the file: ENOENT`);
  });
});

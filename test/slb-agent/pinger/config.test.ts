import { describe, expect, it } from 'vitest';
import { AgentConfigError, parseAgentConfig } from '../../../slb-agent/config.js';
import { parsePingerFile } from '../../../slb-agent/pinger/file.js';

const AGENT = `site: tokyo
agent: lb1
secret: env:S
dns: [ "http://127.0.0.1:8053" ]
vips:
  - name: web
    address: 192.0.2.1
    port: 80
    realServers:
      - { address: 127.0.0.11, port: 8080 }
`;

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AgentConfigError);
    return (e as Error).message;
  }
  return '(no error)';
}

const agentWith = (pinger: string): string => `${AGENT}${pinger}`;

describe('pinger config in the agent file', () => {
  it('resolves the documented example with defaults', () => {
    const c = parseAgentConfig(agentWith(`pinger:
  interfaces:
    - name: eth0
      peers: [10.0.0.1, 10.0.0.254, auto]
      interval: 60s
      jitter: 0.1
      method: arp
      timeout: 1s
    - name: eth1
      peers: [10.1.0.1]
  source: 10.0.0.11
`), 'site.yaml', { S: 'x' });
    expect(c.pinger).toEqual({
      interfaces: [
        { name: 'eth0', peers: ['10.0.0.1', '10.0.0.254'], auto: true, intervalMs: 60_000, jitter: 0.1, method: 'arp', timeoutMs: 1000 },
        { name: 'eth1', peers: ['10.1.0.1'], auto: false, intervalMs: 60_000, jitter: 0.1, method: 'arp', timeoutMs: 1000 },
      ],
      source: '10.0.0.11', exclude: [], failAfter: 3,
    });
  });

  it('an agent file without the block has no pinger', () => {
    expect(parseAgentConfig(AGENT, 'site.yaml', { S: 'x' }).pinger).toBeUndefined();
  });

  it('a short interval lowers the default timeout to the interval', () => {
    const c = parseAgentConfig(agentWith('pinger:\n  interfaces:\n    - { name: eth0, peers: [auto], interval: 500ms }\n'), 'site.yaml', { S: 'x' });
    expect(c.pinger?.interfaces[0]?.timeoutMs).toBe(500);
  });

  it('an interval without a unit is an error naming both readings', () => {
    expect(() => parseAgentConfig(agentWith('pinger:\n  interfaces:\n    - { name: eth0, peers: [auto], interval: 60 }\n'), 'site.yaml', { S: 'x' }))
      .toThrow('site.yaml:13: pinger.interfaces[0].interval: duration needs a unit: 60ms or 60s');
  });

  // line 11 is `pinger:`, 12 `interfaces:`, 13 the first item
  const cases: [string, string, string][] = [
    ['unknown key with a suggestion', 'pinger:\n  interfaces:\n    - { name: eth0, peers: [auto], intervall: 1s }\n', 'site.yaml:13: pinger.interfaces[0]: unknown key "intervall"'],
    ['bad method', 'pinger:\n  interfaces:\n    - { name: eth0, peers: [auto], method: tcp }\n', 'site.yaml:13: pinger.interfaces[0].method: expected one of arp | icmp | udp, got "tcp"'],
    ['missing peers', 'pinger:\n  interfaces:\n    - { name: eth0 }\n', 'site.yaml:13: pinger.interfaces[0]: missing key "peers"'],
    ['bad peer', 'pinger:\n  interfaces:\n    - name: eth0\n      peers: [10.0.0.1, nope]\n', 'site.yaml:14: pinger.interfaces[0].peers[1]: expected an IPv4 address (the pinger probes IPv4 neighbours), got "nope"'],
    ['IPv6 peer', 'pinger:\n  interfaces:\n    - name: eth0\n      peers: ["2001:db8::1"]\n', 'site.yaml:14: pinger.interfaces[0].peers[0]: expected an IPv4 address'],
    ['duplicate peer', 'pinger:\n  interfaces:\n    - name: eth0\n      peers: [10.0.0.1, 10.0.0.01]\n', 'pinger.interfaces[0].peers[1]'],
    ['empty peers', 'pinger:\n  interfaces:\n    - { name: eth0, peers: [] }\n', 'site.yaml:13: pinger.interfaces[0].peers: needs at least one peer address or "auto"'],
    ['bad interval', 'pinger:\n  interfaces:\n    - { name: eth0, peers: [auto], interval: soon }\n', 'site.yaml:13: pinger.interfaces[0].interval: expected a duration such as 500ms, 2s or 1m, got "soon"'],
    ['timeout above interval', 'pinger:\n  interfaces:\n    - { name: eth0, peers: [auto], interval: 1s, timeout: 2s }\n', 'site.yaml:13: pinger.interfaces[0].timeout: must not exceed the interval (1000 ms), got "2s"'],
    ['jitter out of range', 'pinger:\n  interfaces:\n    - { name: eth0, peers: [auto], jitter: 0.9 }\n', 'site.yaml:13: pinger.interfaces[0].jitter: expected a number from 0 to 0.5, got 0.9'],
    ['bad interface name', 'pinger:\n  interfaces:\n    - { name: "eth0 with spaces", peers: [auto] }\n', 'pinger.interfaces[0].name: not an interface name'],
    ['duplicate interface', 'pinger:\n  interfaces:\n    - { name: eth0, peers: [auto] }\n    - { name: eth0, peers: [auto] }\n', 'site.yaml:14: pinger.interfaces[1].name: interface eth0 is listed twice (also interfaces[0])'],
    ['no interfaces', 'pinger:\n  interfaces: []\n', 'site.yaml:12: pinger.interfaces: needs at least one interface'],
    ['bad source', 'pinger:\n  interfaces:\n    - { name: eth0, peers: [auto] }\n  source: eth0\n', 'site.yaml:14: pinger.source: expected an IPv4 address'],
  ];
  it.each(cases)('%s', (_name, block, expected) => {
    expect(errorOf(() => parseAgentConfig(agentWith(block), 'site.yaml', { S: 'x' }))).toContain(expected);
  });
});

describe('standalone pinger file', () => {
  it('takes the pinger block and an api address (default 127.0.0.1:9102)', () => {
    const text = 'pinger:\n  interfaces:\n    - { name: eth0, peers: [10.0.0.1], method: udp }\n';
    const c = parsePingerFile(text, 'p.yaml');
    expect(c.api).toEqual({ host: '127.0.0.1', port: 9102 });
    expect(c.pinger.interfaces[0]).toMatchObject({ name: 'eth0', peers: ['10.0.0.1'], method: 'udp' });
    expect(parsePingerFile(`${text}api: 0.0.0.0:9200\n`, 'p.yaml').api).toEqual({ host: '0.0.0.0', port: 9200 });
  });

  it('reports errors with file:line and path', () => {
    expect(errorOf(() => parsePingerFile('pinger:\n  interfaces:\n    - { name: eth0, peers: [x] }\napi: nowhere\n', 'p.yaml')))
      .toBe('p.yaml:3: pinger.interfaces[0].peers[0]: expected an IPv4 address (the pinger probes IPv4 neighbours), got "x"\np.yaml:4: api: expected HOST:PORT or [IPv6]:PORT, got "nowhere"');
    expect(errorOf(() => parsePingerFile('site: tokyo\n', 'p.yaml'))).toBe('p.yaml:1: missing key "pinger"\np.yaml:1: unknown key "site"');
  });
});

/**
 * Online signing proven by real validators: the gslb-dns process serves the fixture zones with
 * keys (example.test: an ECDSA CSK; gslb.test: an Ed25519 KSK + ZSK; child.example.test
 * unsigned), BIND's delv and unbound validate its answers with the zones' trust anchors, and a
 * wrong trust anchor makes them fail. Agents report over the real HTTP API, so pool answers
 * change under the validators' eyes.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli } from '../../helpers/cli.js';
import type { Cli } from '../../helpers/cli.js';
import { dig } from '../../helpers/dig.js';
import { delv, delvAnchors, dnssecCli, fixtureCopy, sepKeys } from '../../helpers/dnssec.js';
import { poll } from '../../helpers/poll.js';
import { postReport, SECRET_ENV } from '../../helpers/report.js';
import type { MemberReport } from '../../helpers/report.js';
import { CASES } from '../cases.js';

let dir: string;
let other: string;
let server: Cli;
let unbound: ChildProcess | undefined;
let unboundPort = 0;
let heartbeat: NodeJS.Timeout | undefined;
const anchors = { example: '', gslb: '', wrong: '' };

const TOKYO = ['192.0.2.1', '2001:db8::1', '192.0.2.11', '192.0.2.21', '192.0.2.31', '192.0.2.41', '192.0.2.51'];
const OSAKA = ['192.0.2.2', '2001:db8::2', '192.0.2.12', '192.0.2.22', '192.0.2.99', '192.0.2.52', '192.0.2.53'];
const state = { tokyo: new Map<string, MemberReport['state']>(TOKYO.map((a) => [a, 'up'])), osaka: new Map<string, MemberReport['state']>(OSAKA.map((a) => [a, 'up'])) };

async function sync(): Promise<void> {
  for (const site of ['tokyo', 'osaka'] as const) {
    const r = await postReport(server.apiPort, site, [...state[site]].map(([address, s]) => ({ address, state: s })));
    expect(r.status).toBe(200);
  }
}

/** A port free for UDP and TCP on 127.0.0.1 now (unbound takes a number, not 0). */
async function freePort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const u = dgram.createSocket('udp4');
    const port = await new Promise<number>((r) => u.bind(0, '127.0.0.1', () => r(u.address().port)));
    const ok = await new Promise<boolean>((r) => {
      const t = net.createServer().once('error', () => r(false)).listen(port, '127.0.0.1', () => t.close(() => r(true)));
    });
    u.close();
    if (ok) return port;
  }
  throw new Error('no free port');
}

async function startUnbound(): Promise<void> {
  unboundPort = await freePort();
  const keys = [...(await sepKeys(dir, 'example.test.')).map((k) => `example.test. DNSKEY ${k}`), ...(await sepKeys(dir, 'gslb.test.')).map((k) => `gslb.test. DNSKEY ${k}`)];
  const stub = (zone: string): string[] => ['stub-zone:', `  name: "${zone}"`, `  stub-addr: 127.0.0.1@${server.port}`];
  const conf = [
    'server:', '  interface: 127.0.0.1', `  port: ${unboundPort}`, '  do-ip6: no', '  do-daemonize: no', '  use-syslog: no',
    '  logfile: ""', '  verbosity: 1', '  username: ""', '  chroot: ""', `  directory: "${dir}"`, `  pidfile: "${path.join(dir, 'unbound.pid')}"`,
    // subnetcache: the client's subnet goes to gslb-dns as ECS, so topology answers are per subnet
    '  module-config: "subnetcache validator iterator"', '  send-client-subnet: 127.0.0.1', '  client-subnet-always-forward: yes',
    '  max-client-subnet-ipv4: 24', '  do-not-query-localhost: no', '  qname-minimisation: no', '  local-zone: "test." nodefault',
    '  val-log-level: 2', ...keys.map((k) => `  trust-anchor: "${k}"`),
    'remote-control:', '  control-enable: no',
    ...stub('example.test.'), ...stub('child.example.test.'), ...stub('gslb.test.'), '',
  ].join('\n');
  const file = path.join(dir, 'unbound.conf');
  await writeFile(file, conf);
  unbound = spawn('unbound', ['-d', '-c', file], { stdio: 'ignore' });
  await poll(() => dig(unboundPort, ['+dnssec', 'example.test', 'SOA']), (r) => r.status === 'NOERROR', 'unbound to answer', 20_000, 100);
}

beforeAll(async () => {
  dir = await fixtureCopy();
  // a secure delegation: the child's DS is in the parent, so referrals carry it signed
  await appendFile(path.join(dir, 'example.test.zone'), `sec IN NS ns.sec\nns.sec IN A 192.0.2.55\nsec IN DS ${SEC_DS}\n`);
  await dnssecCli(['keygen', '--zones', dir, 'example.test']);
  await dnssecCli(['keygen', '--zones', dir, '--split', '--algorithm', '15', 'gslb.test']);
  // a key of the same zone that the server does not have: the wrong trust anchor
  other = await fixtureCopy(false);
  await dnssecCli(['keygen', '--zones', other, 'example.test']);
  anchors.example = await delvAnchors(path.join(dir, 'example.anchor'), 'example.test.', await sepKeys(dir, 'example.test.'));
  anchors.gslb = await delvAnchors(path.join(dir, 'gslb.anchor'), 'gslb.test.', await sepKeys(dir, 'gslb.test.'));
  anchors.wrong = await delvAnchors(path.join(dir, 'wrong.anchor'), 'example.test.', await sepKeys(other, 'example.test.'));
  server = await startCli(['--zones', dir, '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0', '--status-public'], SECRET_ENV);
  await sync();
  heartbeat = setInterval(() => { void sync().catch(() => {}); }, 500);
  await startUnbound();
}, 90_000);

afterAll(async () => {
  clearInterval(heartbeat);
  unbound?.kill('SIGTERM');
  await server?.stop();
  await Promise.all([dir, other].filter(Boolean).map((d) => rm(d, { recursive: true, force: true })));
});

const SEC_DS = '18789 13 2 C7B21FAC98C223FAB1F98613010FF6643392F3F40AA73FE783C32C093C1B3A2A';
const SECURE = '; fully validated';
const SECURE_NEGATIVE = '; negative response, fully validated';

describe('delv validates every kind of answer of a signed zone', () => {
  const positive: [string, string, string][] = [
    ['positive A', 'www.example.test', 'www.example.test. 3600 IN A 192.0.2.80'],
    ['DNSKEY, signed by the CSK', 'example.test DNSKEY', 'example.test. 3600 IN DNSKEY 257 3 13'],
    ['CDS at the apex', 'example.test CDS', 'example.test. 3600 IN CDS'],
    ['CDNSKEY at the apex', 'example.test CDNSKEY', 'example.test. 3600 IN CDNSKEY 257 3 13'],
    ['NS at the apex', 'example.test NS', 'example.test. 3600 IN NS ns1.example.test.'],
    ['MX', 'example.test MX', 'example.test. 3600 IN MX 10 mail.example.test.'],
    ['SRV', '_sip._tcp.example.test SRV', '_sip._tcp.example.test. 3600 IN SRV 10 60 5060 sipserver.example.test.'],
    ['wildcard (RRSIG labels of the wildcard, NSEC for the next closer name)', 'x.wild.example.test A', 'x.wild.example.test. 3600 IN A 192.0.2.99'],
    ['wildcard several labels deep', 'a.b.wild.example.test TXT', 'a.b.wild.example.test. 3600 IN TXT "wild"'],
    ['the wildcard owner itself', '*.wild.example.test A', '*.wild.example.test. 3600 IN A 192.0.2.99'],
    ['CNAME chain', 'chain1.example.test A', 'www.example.test. 3600 IN A 192.0.2.80'],
    ['CNAME into a pool', 'alias.gslb.test A', 'alias.gslb.test. 300 IN CNAME www.gslb.test.'],
    ['the DS of a secure delegation, answered as the parent', 'sec.example.test DS', `sec.example.test. 3600 IN DS ${SEC_DS}`],
  ];
  for (const [what, q, rr] of positive) {
    it(`${what}: secure`, async () => {
      const [name, type = 'A'] = q.split(' ');
      const out = await delv(server.port, name!.endsWith('gslb.test') ? anchors.gslb : anchors.example, name!.endsWith('gslb.test') ? 'gslb.test' : 'example.test', name!, type);
      expect(out).toContain(SECURE);
      // delv may lower a TTL (a wildcard answer's to the NSEC's), and splits long hex: compare without either
      const noTtl = (l: string) => l.trim().split(/\s+/).filter((_, i) => i !== 1).join('');
      expect(out.split('\n').map(noTtl)).toContainEqual(expect.stringContaining(noTtl(rr)));
    });
  }
  const negative: [string, string][] = [
    ['NXDOMAIN (compact denial: NOERROR, NSEC with NXNAME)', 'nope.example.test A'],
    ['NODATA', 'www.example.test MX'],
    ['empty non-terminal', 'c.example.test A'],
    ['wildcard NODATA', 'x.wild.example.test MX'],
    ['no DS at a delegation (insecure referral proof)', 'deleg.example.test DS'],
    ['no DS for the unsigned child zone served here, answered as its parent', 'child.example.test DS'],
    ['NODATA at a pool name', 'www.gslb.test MX'],
    ['pool with allDown nodata and nothing up', 'nod.gslb.test AAAA'],
  ];
  for (const [what, q] of negative) {
    it(`${what}: secure`, async () => {
      const [name, type] = q.split(' ');
      const gslb = name!.endsWith('gslb.test');
      expect(await delv(server.port, gslb ? anchors.gslb : anchors.example, gslb ? 'gslb.test' : 'example.test', name!, type!)).toContain(SECURE_NEGATIVE);
    });
  }

  it('a wrong trust anchor fails validation (the check can fail)', async () => {
    const out = await delv(server.port, anchors.wrong, 'example.test', 'www.example.test', 'A');
    expect(out).not.toContain('fully validated');
    expect(out).toContain('resolution failed');
  });

  it('pool A and AAAA are secure before and after a report changes the answer', async () => {
    const ask = async (type: string) => delv(server.port, anchors.gslb, 'gslb.test', 'www.gslb.test', type);
    let a = await ask('A');
    expect(a).toContain(SECURE);
    expect(a).toMatch(/www\.gslb\.test\.\s+20\s+IN\s+A\s+192\.0\.2\.1\b/);
    expect(await ask('AAAA')).toMatch(/www\.gslb\.test\.\s+20\s+IN\s+AAAA\s+2001:db8::1\b/);
    state.tokyo.set('192.0.2.1', 'down');
    state.tokyo.set('2001:db8::1', 'down');
    await sync();
    try {
      a = await ask('A');
      expect(a).toContain(SECURE);
      expect(a).toMatch(/www\.gslb\.test\.\s+5\s+IN\s+A\s+192\.0\.2\.2\b/);
      const aaaa = await ask('AAAA');
      expect(aaaa).toContain(SECURE);
      expect(aaaa).toMatch(/www\.gslb\.test\.\s+5\s+IN\s+AAAA\s+2001:db8::2\b/);
    } finally {
      state.tokyo.set('192.0.2.1', 'up');
      state.tokyo.set('2001:db8::1', 'up');
      await sync();
    }
  });
});

describe('unbound validates with the trust anchors', () => {
  it('topology answers for two ECS subnets are secure (AD) and differ', async () => {
    const tokyo = await dig(unboundPort, ['+dnssec', '+subnet=198.51.100.0/24', 'geo.gslb.test', 'A']);
    const osaka = await dig(unboundPort, ['+dnssec', '+subnet=203.0.113.0/24', 'geo.gslb.test', 'A']);
    expect(tokyo.flags.has('ad')).toBe(true);
    expect(osaka.flags.has('ad')).toBe(true);
    const addresses = (r: typeof tokyo) => r.answer.filter((l) => l.includes(' IN A ')).map((l) => l.split(' ').pop());
    expect(addresses(tokyo)).toEqual(['192.0.2.11']);
    expect(addresses(osaka)).toEqual(['192.0.2.12']);
    expect(tokyo.answer.some((l) => l.includes(' IN RRSIG A 15 3 '))).toBe(true);
  });

  it('positive, NXDOMAIN, wildcard and CNAME-into-pool answers are secure (AD)', async () => {
    for (const [name, type] of [['www.example.test', 'A'], ['nope.example.test', 'A'], ['x.wild.example.test', 'A'], ['alias.gslb.test', 'A'], ['www.example.test', 'MX']] as const) {
      const r = await dig(unboundPort, ['+dnssec', name, type]);
      expect(r.status, `${name} ${type}`).toBe('NOERROR');
      expect(r.flags.has('ad'), `${name} ${type}`).toBe(true);
    }
  });

  it('the unsigned child zone is proved insecure: answered, without AD', async () => {
    const r = await dig(unboundPort, ['+dnssec', 'www.child.example.test', 'A']);
    expect(r.status).toBe('NOERROR');
    expect(r.answer).toEqual(['www.child.example.test. 600 IN A 192.0.2.200']);
    expect(r.flags.has('ad')).toBe(false);
  });
});

describe('referrals and additional data', () => {
  it('to a secure child carry the DS and its RRSIG, and no NSEC', async () => {
    const r = await dig(server.port, ['+norec', '+dnssec', 'host.sec.example.test', 'A']);
    expect(r.flags.has('aa')).toBe(false);
    expect(r.authority.map((l) => l.replace(/ /g, ''))).toContain(`sec.example.test.3600INDS${SEC_DS}`.replace(/ /g, ''));
    expect(r.authority.some((l) => l.startsWith('sec.example.test. 3600 IN RRSIG DS 13 3 3600 '))).toBe(true);
    expect(r.authority.some((l) => l.includes(' NSEC '))).toBe(false);
  });

  it('in-zone additional addresses carry their RRSIG', async () => {
    const r = await dig(server.port, ['+norec', '+dnssec', 'example.test', 'MX']);
    expect(r.additional).toContain('mail.example.test. 3600 IN A 192.0.2.25');
    expect(r.additional.some((l) => l.startsWith('mail.example.test. 3600 IN RRSIG A 13 3 3600 '))).toBe(true);
  });

  it('additional data that does not fit leaves with its RRSIG, never without it', async () => {
    const r = await dig(server.port, ['+norec', '+dnssec', '+bufsize=512', '+ignore', 'example.test', 'NS']);
    const data = r.additional.filter((l) => / IN (A|AAAA) /.test(l));
    const sigs = r.additional.filter((l) => / IN RRSIG (A|AAAA) /.test(l));
    expect(data.length).toBeGreaterThan(0);
    // the full reply has three address sets (ns1 A, ns2 A, ns2 AAAA): at 512 bytes not all fit
    expect(data.length).toBeLessThan(3);
    expect(sigs).toHaveLength(data.length);
  });

  it('to an insecure child carry the child NS unsigned and our signed NSEC at the cut (NS, no DS)', async () => {
    const r = await dig(server.port, ['+norec', '+dnssec', 'host.deleg.example.test', 'A']);
    expect(r.flags.has('aa')).toBe(false);
    expect(r.authority.filter((l) => l.includes(' IN NS '))).toHaveLength(2);
    expect(r.authority).toContain('deleg.example.test. 300 IN NSEC \\000.deleg.example.test. NS RRSIG NSEC');
    expect(r.authority.some((l) => l.startsWith('deleg.example.test. 300 IN RRSIG NSEC 13 3 300 '))).toBe(true);
    expect(r.additional).toContain('ns.deleg.example.test. 3600 IN A 192.0.2.53');
    expect(r.additional.some((l) => l.includes('RRSIG'))).toBe(false);
  });
});

describe('signature cache metrics', () => {
  it('counts signatures made and reused, and the bytes held', async () => {
    const text = await (await fetch(`http://127.0.0.1:${server.apiPort}/metrics`)).text();
    const value = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1]);
    expect(value('gslb_dns_dnssec_signatures_made_total')).toBeGreaterThan(10);
    expect(value('gslb_dns_dnssec_signature_cache_hits_total')).toBeGreaterThan(0);
    expect(value('gslb_dns_dnssec_signature_cache_entries')).toBeGreaterThan(10);
    expect(value('gslb_dns_dnssec_signature_cache_bytes')).toBeGreaterThan(1000);
  });
});

describe('without DO the signed zone answers exactly as the unsigned corpus says', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const r = await dig(server.port, ['+norec', c.qname, c.qtype]);
      expect(r.status).toBe(c.rcode);
      expect(r.answer).toEqual(c.answer ?? []);
      expect([...r.authority].sort()).toEqual([...(c.ns ?? [])].sort());
      expect([...r.additional].sort()).toEqual([...(c.extra ?? [])].sort());
    });
  }
});

/**
 * The peer servers' configuration for the drill lab (drill/lab/peers.ts), without a lab: the
 * text serves the lab's zone with the three VIPs as one health-checked name, on the instance's
 * address and the peer's port, with the documented check settings; gdnsd's own checkconf
 * accepts its config and zone. The peer scenarios are valid plans without api that expect by
 * addresses, and a peer's answers get their sites from the lab's VIPs.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gdnsdConfig, gdnsdZoneText, PEER_CHECKS, PEERS, pdnsConf, pdnsZoneText } from '../../drill/lab/peers.js';
import { planLab, PORT } from '../../drill/lab/plan.js';
import type { SegmentNet } from '../../drill/lab/plan.js';
import { withLabSites } from '../../drill/lab/scenario-run.js';
import { peerScenarioYaml, SCENARIOS } from '../../drill/lab/scenarios.js';
import type { DrillLab } from '../../drill/lab/topology.js';
import { parsePlan } from '../../drill/plan.js';
import type { DrillResult } from '../../drill/result.js';

const net = (i: number): SegmentNet => ({ base: `10.9.${i}`, host: (n) => `10.9.${i}.${n}`, cidr: (n) => `10.9.${i}.${n}/24` });
const plan = planLab([0, 1, 2, 3, 4, 5].map(net));
const ns1 = plan.instances[0]!;
const VIPS = ['10.9.0.100', '10.9.1.100', '10.9.2.100'];

describe('peer config text', () => {
  it('pdns: a LUA ifportup record over the three VIPs, selector all, on the instance address and its port', () => {
    const zone = pdnsZoneText(plan);
    expect(zone).toContain(`$ORIGIN ${plan.zone}.`);
    expect(zone).toContain(`ns1 IN A ${ns1.address}`);
    expect(zone).toContain(`www 5 IN LUA A "ifportup(80, {'${VIPS.join("','")}'}, {selector='all', timeout=1})"`);
    const conf = pdnsConf(ns1, '/run/x').split('\n');
    expect(conf).toEqual(expect.arrayContaining(['launch=bind', 'bind-config=/run/x/named.conf', 'enable-lua-records=yes', `local-address=${ns1.address}`,
      `local-port=${PORT.pdns}`, `lua-health-checks-interval=${PEER_CHECKS.pdns.intervalS}`, 'socket-dir=/run/x', 'daemon=no', 'guardian=no']));
  });

  it('gdnsd: a multifo resource of the three VIPs checked by http_status with the closest timing it allows', () => {
    expect(gdnsdZoneText(plan)).toMatch(/\nwww 5 DYNA multifo!www\n$/);
    const conf = gdnsdConfig(plan, ns1, '/run/y');
    expect(conf).toContain(`listen => [ ${ns1.address}:${PORT.gdnsd} ]`);
    expect(conf).toContain('plugin => http_status, port => 80, url_path => /, ok_codes => [ 200 ]');
    expect(conf).toContain('interval => 2, timeout => 1, down_thresh => 2, ok_thresh => 1, up_thresh => 1');
    for (const [k, s] of plan.sites.entries()) expect(conf).toContain(`${s.name} => ${VIPS[k]}`);
  });

  describe('gdnsd checkconf', () => {
    let dir = '';
    beforeAll(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'lab-peers-test-')); });
    afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

    it('accepts the config and zone as written for the lab', async () => {
      const gdnsd = PEERS.find((p) => p.name === 'gdnsd')!;
      for (const sub of ['zones', 'run', 'state']) await mkdir(path.join(dir, sub), { recursive: true });
      for (const [f, t] of Object.entries(gdnsd.files(plan, ns1, dir))) await writeFile(path.join(dir, f), t);
      const r = spawnSync(gdnsd.binary, ['-c', dir, 'checkconf'], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toContain(`Zone ${plan.zone}. with serial 1 loaded`);
    });
  });
});

describe('peer scenarios', () => {
  // only what peerScenarioYaml reads of a built lab
  const lab = {
    plan,
    instances: plan.instances.map((i) => ({ name: i.name, address: i.address })),
    sites: plan.sites.map((s) => ({ name: s.name, vip: s.vip })),
  } as unknown as DrillLab;

  it('are plans on the peer port, without api, expecting addresses only; the dead site\'s VIP leaves', () => {
    const withPeers = SCENARIOS.filter((s) => s.peerSteps !== undefined);
    expect(withPeers.map((s) => s.name)).toEqual(['real-server-dies', 'site-servers-die', 'site-lost']);
    for (const s of withPeers) {
      const p = parsePlan(peerScenarioYaml(lab, s, 'http://127.0.0.1:1', { name: 'pdns', port: PORT.pdns }), `${s.name}.yaml`, { env: {}, readText: () => undefined });
      expect(p.instances.map((i) => [i.dns.port, i.api])).toEqual([[PORT.pdns, undefined], [PORT.pdns, undefined]]);
      expect(p.vantages.map((v) => v.subnet)).toEqual([undefined]);
      const wants = [...p.steps, ...p.rollback].flatMap((x) => (x.kind === 'expect' ? [x.want] : []));
      expect(wants.length).toBeGreaterThan(0);
      for (const w of wants) expect(Object.keys(w)).toEqual(['addresses']);
      expect(p.steps.some((x) => x.kind === 'run')).toBe(true);
    }
    const dies = parsePlan(peerScenarioYaml(lab, SCENARIOS.find((s) => s.name === 'site-servers-die')!, 'http://c', { name: 'gdnsd', port: PORT.gdnsd }), 'x.yaml', { env: {}, readText: () => undefined });
    expect(dies.steps.find((x) => x.kind === 'expect')).toMatchObject({ want: { addresses: VIPS.slice(1) } });
    expect(() => peerScenarioYaml(lab, SCENARIOS.find((s) => s.name === 'drain')!, 'http://c', { name: 'pdns', port: 1 })).toThrow(/does not run against peers/);
  });

  it('name the sites of a peer\'s answers from the lab\'s VIPs', () => {
    const r = { samples: [{ t: 1, instance: 'ns1', vantage: 'east', name: 'www', type: 'A', rcode: 'NOERROR', addresses: [VIPS[1], '192.0.2.9'], sites: ['?', '?'], ttl: 5 }] } as unknown as DrillResult;
    const siteOf = new Map(plan.sites.map((s) => [s.vip, s.name]));
    expect(withLabSites(r, siteOf).samples[0]!.sites).toEqual(['site-b', '?']);
  });
});

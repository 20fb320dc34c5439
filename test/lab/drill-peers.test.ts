/**
 * A peer GSLB server in the drill lab (drill/lab/peers.ts), with real processes: PowerDNS 4.7
 * started in both DNS instance namespaces answers the lab's three VIPs from its own LUA checks,
 * and the site-servers-die scenario, run against it through the drill runner, sees site-a's VIP
 * leave both instances' answers while its real servers are dead and return after. Asserted is
 * behaviour, never how long it took. Needs root.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLabControl } from '../../drill/lab/control.js';
import type { LabControl } from '../../drill/lab/control.js';
import { POOLS } from '../../drill/lab/files.js';
import { PEERS, startPeers, waitPeersServing } from '../../drill/lab/peers.js';
import type { RunningPeer } from '../../drill/lab/peers.js';
import { runScenario } from '../../drill/lab/scenario-run.js';
import { scenario, TARGET_SITE } from '../../drill/lab/scenarios.js';
import { createDrillLab } from '../../drill/lab/topology.js';
import type { DrillLab } from '../../drill/lab/topology.js';

const READY_MS = 60_000;

describe('peers in the drill lab (pdns)', () => {
  let lab: DrillLab;
  let control: LabControl;
  let pdns: RunningPeer;

  beforeAll(async () => {
    lab = await createDrillLab({ hostAccess: true });
    control = await startLabControl(lab);
    [pdns] = await startPeers(lab, PEERS.filter((p) => p.name === 'pdns')) as [RunningPeer];
  }, 120_000);

  afterAll(async () => {
    await control?.close();
    await lab?.close();
  }, 60_000);

  it('answers every VIP on both instances, then drops site-a\'s while its real servers are dead', async () => {
    await waitPeersServing(lab, [pdns], READY_MS);
    const r = await runScenario(lab, control.url, scenario('site-servers-die'), 1, READY_MS, pdns);
    expect(r.result.outcome, r.result.reason).toBe('SUCCEEDED');
    const [fault, recovery] = r.result.steps.filter((s) => s.kind === 'run');
    const www = (from: number, to: number) => r.result.samples.filter((s) => s.name === `${POOLS.all}.${lab.plan.zone}` && s.rcode === 'NOERROR' && s.t >= from && s.t < to);
    for (const i of lab.instances) {
      const during = www(fault!.startedAt, recovery!.startedAt).filter((s) => s.instance === i.name);
      expect(during.some((s) => !s.sites.includes(TARGET_SITE)), i.name).toBe(true);
      const after = www(recovery!.startedAt, r.result.rollback[0]?.startedAt ?? r.result.endedAt).filter((s) => s.instance === i.name);
      expect([...after.at(-1)?.sites ?? []].sort(), i.name).toEqual(lab.sites.map((s) => s.name));
    }
    expect(r.stats.healthyExcluded).toBe(false);
    expect(r.stats.allInstancesMs).not.toBeNull();
  }, 180_000);
});

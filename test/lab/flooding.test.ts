/**
 * Issue 6: unicast flooding in DSR, reproduced in network namespaces (lab/flooding.ts). With the
 * pinger off, switch beta ages out client A's MAC and floods the real server's replies to A out
 * of the bystander D's port; with `slb-agent pinger` on C (ARP to A and the router every 3 s,
 * below the 10 s ageing time), D receives none of them. Needs root (CI runs as root).
 */
import { describe, expect, it } from 'vitest';
import { formatFloodingReport, runFloodingLab } from '../../lab/flooding.js';

describe('lab: unicast flooding in DSR (issue 6)', () => {
  it('beta floods C\'s replies to A to D once A ages out; slb-agent pinger on C prevents it', async () => {
    const r = await runFloodingLab({ ageingSec: 10, pinger: 'slb-agent' });
    console.log(formatFloodingReport(r));

    // the lab proves something only if nothing but the pinger teaches beta A's MAC
    expect(r.controls.filter((l) => !l.startsWith('ok'))).toEqual([]);
    expect(r.controlsOk).toBe(true);
    expect(r.connections).toBe(1);
    expect(r.fdbStart.beta.map((e) => e.owner)).toContain('A');

    // pinger off: beta forgot A, C kept answering A, and D received those frames
    expect(r.off.fromAIntoBeta).toBe(0);
    expect(r.off.fdb.beta.map((e) => e.owner)).not.toContain('A');
    expect(r.off.replies).toBeGreaterThan(0);
    expect(r.off.floodedAtD).toBeGreaterThan(0);
    // only C's TCP replies: no ICMP (port unreachable) nor ARP to A from C
    expect(Object.keys(r.off.floodedKinds)).toEqual(['tcp']);

    // pinger on: A's ARP replies cross the trunk, beta keeps A (and the router) for longer than the ageing time
    expect(r.on.fromAIntoBeta).toBeGreaterThan(0);
    expect(r.on.windowMs).toBeGreaterThan(r.ageingSec * 1000);
    expect(r.on.replies).toBeGreaterThan(0);
    expect(r.on.floodedAtD).toBe(0);
    expect(r.on.fdb.beta.filter((e) => e.port === 'trunk').map((e) => e.owner)).toEqual(expect.arrayContaining(['A', 'gw']));
  }, 90_000);
});

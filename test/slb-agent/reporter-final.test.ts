/**
 * The reporter's last word and its compatibility with older gslb-dns instances: `final()` stops
 * the loop and sends one report to every instance at once, bounded by its own timeout (a hung
 * instance costs that timeout, not the stop); an instance that refuses the newer member fields
 * (`checked`, `reason`) with a 400 schema error gets them left out from then on.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Report, ReportMember } from '../../shared/protocol/report.js';
import { createReporter } from '../../slb-agent/reporter/reporter.js';

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) { s.closeAllConnections(); await new Promise<void>((r) => s.close(() => r())); }
});

/** A gslb-dns stand-in: `answer` decides the status per body; bodies are kept. */
async function dns(answer: (r: Report) => number | 'hang'): Promise<{ url: string; bodies: Report[] }> {
  const bodies: Report[] = [];
  const s = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      const r = JSON.parse(body) as Report;
      bodies.push(r);
      const a = answer(r);
      if (a === 'hang') return;
      res.writeHead(a, { 'content-type': 'application/json' });
      res.end(a === 400 ? '{"error":"schema: /members/0/checked: Unexpected property"}' : '{}');
    });
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, bodies };
}

const member: ReportMember = { address: '192.0.2.1', state: 'up', weight: 100 };

describe('reporter final report', () => {
  it('sends the final members to every instance at once; a hung one costs only the final timeout', async () => {
    const a = await dns(() => 200);
    const b = await dns(() => 200);
    const hung = await dns(() => 'hang');
    const rep = createReporter({ site: 'tokyo', agent: 'lb1', secret: 's', dns: [a.url, b.url, hung.url], intervalMs: 60_000, members: () => [member] });
    rep.start();
    await new Promise((r) => setTimeout(r, 100));
    const accepted = await rep.final([{ ...member, state: 'down', weight: 0, reason: 'agent stopped' }], 300);
    expect(accepted).toBe(2);
    for (const d of [a, b]) {
      const last = d.bodies[d.bodies.length - 1]!;
      expect(last.members).toEqual([{ address: '192.0.2.1', state: 'down', weight: 0, reason: 'agent stopped' }]);
      expect(last.seq).toBeGreaterThan(d.bodies[0]!.seq);
    }
    expect(rep.status()[2]!.lastError).toBeTruthy();
  });

  it('an older instance that refuses checked/reason gets reports without them', async () => {
    const old = await dns((r) => (r.members.some((m) => 'checked' in m || 'reason' in m) ? 400 : 200));
    const rep = createReporter({ site: 'tokyo', agent: 'lb1', secret: 's', dns: [old.url], intervalMs: 60_000, members: () => [member] });
    rep.start();
    await new Promise((r) => setTimeout(r, 100));
    const accepted = await rep.final([{ ...member, checked: false }], 500);
    expect(accepted).toBe(1);
    expect(old.bodies[old.bodies.length - 1]!.members).toEqual([member]);
    expect(old.bodies[old.bodies.length - 2]!.members).toEqual([{ ...member, checked: false }]);
  });
});

import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { ctl } from '../../dns/ctl.js';
import { createApiApp } from '../../dns/http/app.js';
import type { GslbState } from '../../dns/gslb/state.js';
import { createClock, createFixtureState, makeReport, T0 } from '../helpers/gslb-state-fixture.js';

const TOKEN = 'ctl-explain-token-0123456789';
const NAME = 'www.gslb.example.test';

interface Instance {
  app: FastifyInstance;
  state: GslbState;
  url: string;
}

async function startInstance(name: string): Promise<Instance> {
  const clock = createClock(T0);
  const { state } = createFixtureState(clock);
  const app = await createApiApp({
    state, adminToken: TOKEN, stateDir: undefined, instance: name, logger: pino({ level: 'silent' }), now: clock.now,
    dnsMetrics: () => ({ requests: [], responses: [], answers: [], fastPath: 0 }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  // every member reported up
  state.applyReport(makeReport('tokyo', 1));
  state.applyReport(makeReport('osaka', 1));
  return { app, state, url: `http://127.0.0.1:${port}` };
}

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await ctl(argv, { stdout: (t) => { out += t; }, stderr: (t) => { err += t; }, env: { GSLB_ADMIN_TOKEN: TOKEN } });
  return { code, out, err };
}

let a: Instance;
let b: Instance;

beforeAll(async () => {
  a = await startInstance('dns-a');
  b = await startInstance('dns-b');
});

afterAll(async () => {
  await a.app.close();
  await b.app.close();
});

describe('gslb-dns ctl explain', () => {
  it('asks every instance, prints each answer and candidates, and says they agree', async () => {
    const r = await run(['--servers', `${a.url},${b.url}`, 'explain', NAME]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    // per instance: a summary line, the table header and three members; then the verdict
    expect(lines).toHaveLength(11);
    expect(lines[0]).toMatch(new RegExp(`^${a.url}\\s+instance=dns-a epoch=\\d+ pool=www policy=weighted mode=normal rcode=NOERROR ttl=30 answers=\\S+,\\S+$`));
    expect(lines[1]!.trim()).toMatch(/^site\s+address\s+eligible\s+selected\s+reason$/);
    expect(lines[2]!.trim()).toMatch(/^tokyo\s+192\.0\.2\.1\s+yes\s+(yes|no)\s+eligible$/);
    expect(lines[5]).toMatch(new RegExp(`^${b.url}\\s+instance=dns-b `));
    expect(lines[10]).toBe(`explain ${NAME} A: all 2 instances agree (eligible 192.0.2.1 192.0.2.2 198.51.100.1, ttl 30, mode normal)`);
  });

  it('says the instances disagree, and exits 1, when one sees a member down', async () => {
    b.state.applyReport(makeReport('osaka', 2, [{ address: '198.51.100.1', state: 'down', weight: 0 }]));
    const r = await run(['--servers', `${a.url},${b.url}`, 'explain', NAME, '--type', 'A', '--subnet', '192.0.2.0/24']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/instance=dns-b .* mode=degraded rcode=NOERROR ttl=10 /);
    expect(r.out).toMatch(/osaka\s+198\.51\.100\.1\s+no\s+no\s+down\n/);
    expect(r.out.trimEnd().split('\n').at(-1)).toBe(`explain ${NAME} A subnet 192.0.2.0/24: the instances DISAGREE (2 different answer sets)`);
  });

  it('exits 1 with the error of an instance that refuses (not a GSLB name)', async () => {
    const r = await run(['--servers', a.url, 'explain', 'static.gslb.example.test']);
    expect(r.code).toBe(1);
    expect(r.out).toContain('404 error: static.gslb.example.test. is not a GSLB name');
    expect(r.out).toContain('no instance answered (0 of 1)');
  });

  it.each([
    ['explain without a name', ['--servers', 'http://127.0.0.1:1', 'explain']],
    ['explain with two names', ['--servers', 'http://127.0.0.1:1', 'explain', 'a', 'b']],
    ['--type on state', ['--servers', 'http://127.0.0.1:1', '--type', 'A', 'state']],
    ['--reason on explain', ['--servers', 'http://127.0.0.1:1', '--reason', 'x', 'explain', NAME]],
  ])('usage error (%s) -> 2', async (_name, argv) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^gslb-dns ctl: .+\nusage:/);
  });
});

/** Drill plan validation: a good plan resolves; every bad one says file:line: path: reason. */
import { describe, expect, it } from 'vitest';
import { parsePlan, PlanError } from '../../drill/plan.js';
import type { PlanEnv } from '../../drill/plan.js';

const FILE = 'plans/tokyo.yaml';
const penv: PlanEnv = {
  env: {},
  readText: (f) => (f.endsWith('admin.token') ? 'ops:secret-token\n' : undefined),
};

const GOOD = `name: tokyo-drain
instances:
  - { name: ns1, dns: 127.0.0.1:5300, api: http://127.0.0.1:8053, tokenFile: ./admin.token }
vantages:
  - { name: tokyo-clients, subnet: 198.51.100.0/24, names: [www.gslb.example.test], type: A,
      http: "http://{address}:8080/" }
guards:
  - { name: always-served, serving: www.gslb.example.test, atLeast: 1 }
steps:
  - { action: drain, site: tokyo }
  - { expect: { name: www.gslb.example.test, from: tokyo-clients, sites: [osaka] }, within: 2s }
  - { wait: 5s }
  - { run: "systemctl stop nginx", timeout: 10s }
rollback:
  - { action: undrain, site: tokyo }
`;

function errorOf(text: string): string {
  try {
    parsePlan(text, FILE, penv);
  } catch (err) {
    if (err instanceof PlanError) return err.message;
    throw err;
  }
  throw new Error('the plan was accepted');
}

describe('drill plan', () => {
  it('resolves the issue\'s example plan', () => {
    const p = parsePlan(GOOD, FILE, penv);
    expect(p.name).toBe('tokyo-drain');
    expect(p.dir).toBe('plans');
    expect(p.instances).toEqual([{ name: 'ns1', dns: { host: '127.0.0.1', port: 5300 }, api: 'http://127.0.0.1:8053', token: 'secret-token' }]);
    expect(p.vantages[0]).toMatchObject({ name: 'tokyo-clients', subnet: { address: '198.51.100.0', prefix: 24, family: 4 }, names: ['www.gslb.example.test'], type: 'A' });
    expect(p.steps.map((s) => s.kind)).toEqual(['action', 'expect', 'wait', 'run']);
    expect(p.steps[1]).toMatchObject({ kind: 'expect', withinMs: 2000, want: { sites: ['osaka'] } });
    expect(p.steps[2]).toEqual({ kind: 'wait', ms: 5000 });
    expect(p.steps[3]).toEqual({ kind: 'run', command: 'systemctl stop nginx', timeoutMs: 10_000 });
    expect(p.rollback).toMatchObject([{ kind: 'action', action: 'undrain', site: 'tokyo', force: false }]);
  });

  const base = (steps: string, extra = ''): string => `name: t
instances:
  - { name: ns1, dns: 127.0.0.1:5300, api: http://127.0.0.1:8053, tokenFile: ./admin.token }
vantages:
  - { name: v, names: [www.x.test] }
${extra}steps:
${steps}`;

  const cases: { name: string; text: string; error: string }[] = [
    { name: 'an unknown key, with its line', text: base('  - { wait: 1s }\n', 'guard:\n  - x\n'), error: `${FILE}:6: unknown key "guard" (did you mean "guards"?)` },
    { name: 'an unknown key in a step', text: base('  - { wait: 1s, wiat: 2s }\n'), error: `${FILE}:7: steps[0]: unknown key "wiat"` },
    { name: 'a bad duration', text: base('  - { wait: 5 minutes }\n'), error: `${FILE}:7: steps[0].wait: expected a duration such as 500ms, 2s or 1m, got "5 minutes"` },
    { name: 'a duration without a unit', text: base('  - { wait: 5 }\n'), error: `${FILE}:7: steps[0].wait: duration needs a unit: 5ms or 5s` },
    { name: 'expect.from an unknown vantage', text: base('  - { expect: { name: www.x.test, from: w, sites: [a] }, within: 1s }\n'), error: `${FILE}:7: steps[0].expect.from: no vantage "w" (vantages: v)` },
    { name: 'two kinds in one step', text: base('  - { wait: 1s, run: "true" }\n'), error: `${FILE}:7: steps[0]: expected one of action, expect, wait or run, got wait and run` },
    { name: 'a step of no kind', text: base('  - { timeout: 1s }\n'), error: `${FILE}:7: steps[0]: expected one of action, expect, wait or run` },
    { name: 'an action without a site', text: base('  - { action: drain }\n'), error: `${FILE}:7: steps[0]: missing key "site"` },
    { name: 'an unknown action', text: base('  - { action: drian, site: a }\n'), error: `${FILE}:7: steps[0].action: expected one of drain | undrain | force-down | release` },
    { name: 'force without a reason', text: base('  - { action: drain, site: a, force: true }\n'), error: `${FILE}:7: steps[0].force: needs a "reason"` },
    { name: 'two wants in an expect', text: base('  - { expect: { name: www.x.test, from: v, sites: [a], none: true }, within: 1s }\n'), error: `${FILE}:7: steps[0].expect: expected exactly one of sites, addresses or none, got sites and none` },
    { name: 'an expect without within', text: base('  - { expect: { name: www.x.test, from: v, none: true } }\n'), error: `${FILE}:7: steps[0]: missing key "within"` },
    { name: 'on an unknown instance', text: base('  - { expect: { name: www.x.test, from: v, on: ns9, none: true }, within: 1s }\n'), error: `${FILE}:7: steps[0].expect.on: no instance "ns9" (instances: ns1)` },
    { name: 'a name the vantage does not ask', text: base('  - { expect: { name: api.x.test, from: v, none: true }, within: 1s }\n'), error: `${FILE}:7: steps[0].expect.name: vantage "v" does not ask for api.x.test` },
    { name: 'a guard from an unknown vantage', text: base('  - { wait: 1s }\n', 'guards:\n  - { name: g, serving: www.x.test, atLeast: 1, from: w }\n'), error: `${FILE}:7: guards[0].from: no vantage "w"` },
    { name: 'a key of another kind of step', text: base('  - { wait: 1s, site: a }\n'), error: `${FILE}:7: steps[0].site: does not apply to a wait step` },
    { name: 'an unreadable token file', text: base('  - { wait: 1s }\n').replace('./admin.token', './missing.token'), error: `${FILE}:3: instances[0].tokenFile: cannot read` },
    { name: 'a bad dns endpoint', text: base('  - { wait: 1s }\n').replace('127.0.0.1:5300', '127.0.0.1'), error: `${FILE}:3: instances[0].dns: expected HOST:PORT, got "127.0.0.1"` },
    { name: 'invalid YAML', text: 'name: [\n', error: `${FILE}:2: invalid YAML` },
  ];
  it.each(cases)('rejects $name', ({ text, error }) => {
    expect(errorOf(text)).toContain(error);
  });

  // a peer DNS server has no state API: its plan expects addresses, never sites or actions
  const noApi = (steps: string): string => base(steps).replace(', api: http://127.0.0.1:8053', '');
  it('accepts an instance without api when only addresses are expected', () => {
    const p = parsePlan(noApi('  - { expect: { name: www.x.test, from: v, addresses: [192.0.2.1] }, within: 1s }\n  - { run: "true" }\n'), FILE, penv);
    expect(p.instances[0]!.api).toBeUndefined();
    expect(p.steps[0]).toMatchObject({ kind: 'expect', want: { addresses: ['192.0.2.1'] } });
  });
  it.each([
    { name: 'an action', steps: '  - { action: drain, site: a }\n', error: `${FILE}:3: instances[0].api: missing: the plan has an action` },
    { name: 'a sites expectation', steps: '  - { expect: { name: www.x.test, from: v, sites: [a] }, within: 1s }\n', error: `${FILE}:3: instances[0].api: missing: the plan has an expectation by sites` },
  ])('rejects an instance without api when the plan has $name', ({ steps, error }) => {
    expect(errorOf(noApi(steps))).toContain(error);
  });

  it('lists every error, in line order', () => {
    const msg = errorOf(base('  - { wait: 1x }\n  - { expect: { name: www.x.test, from: w, none: true }, within: 1s }\n'));
    expect(msg.split('\n')).toEqual([
      `${FILE}:7: steps[0].wait: expected a duration such as 500ms, 2s or 1m, got "1x"`,
      `${FILE}:8: steps[1].expect.from: no vantage "w" (vantages: v)`,
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import { checkedDuration, durationFlag, durationProblem, parseDuration, resolveSecrets } from '../../shared/config/values.js';
import { UsageError } from '../../shared/cli.js';

describe('durations', () => {
  it('read ms, s, m and h; a bare number is not a duration', () => {
    expect(['250ms', '1.5s', '2m', '1h'].map(parseDuration)).toEqual([250, 1500, 120_000, 3_600_000]);
    for (const v of [500, '500', 0.5, '', '5 s', '5x', null]) expect(parseDuration(v), String(v)).toBeUndefined();
  });
  it('say "needs a unit" with both readings for a bare number, in YAML or as text', () => {
    expect(durationProblem(500)).toBe('duration needs a unit: 500ms or 500s');
    expect(durationProblem('2.5')).toBe('duration needs a unit: 2.5ms or 2.5s');
    expect(durationProblem(Infinity)).toBe('expected a duration such as 500ms, 2s or 1m, got Infinity');
    expect(durationProblem('soon')).toBe('expected a duration such as 500ms, 2s or 1m, got "soon"');
  });
  it('checkedDuration falls back to the default after telling why; durationFlag throws a UsageError', () => {
    const why: string[] = [];
    expect(checkedDuration(3, 1000, (r) => why.push(r))).toBe(1000);
    expect(checkedDuration('0s', 1000, (r) => why.push(r))).toBe(1000);
    expect(why).toEqual(['duration needs a unit: 3ms or 3s', 'must be above 0, got "0s"']);
    expect(durationFlag('wait', '2s')).toBe(2000);
    expect(() => durationFlag('wait', '2')).toThrow(new UsageError('--wait: duration needs a unit: 2ms or 2s'));
  });
});

describe('resolveSecrets', () => {
  const env = { LONG: 'l'.repeat(32), SHORT: 'abc' };
  it('keeps the order of a list (the first signs) and warns about a short key by index', () => {
    const fails: string[] = [];
    const warns: string[] = [];
    const keys = resolveSecrets(['env:LONG', 'env:SHORT'], 'f.yaml', env, (i, r) => fails.push(`${i}: ${r}`), (i, r) => warns.push(`${i}: ${r}`));
    expect(keys?.map((k) => k.toString())).toEqual(['l'.repeat(32), 'abc']);
    expect(fails).toEqual([]);
    expect(warns).toEqual(['1: secret env:SHORT is shorter than 32 bytes (3): use e.g. `openssl rand -hex 32`']);
  });
  it('a single ref reports without an index; a listed-twice ref and a missing one fail', () => {
    const fails: string[] = [];
    expect(resolveSecrets('env:LONG', 'f.yaml', env, (i, r) => fails.push(`${i}: ${r}`), () => undefined)).toHaveLength(1);
    expect(resolveSecrets(['env:LONG', 'env:LONG', 'env:NONE'], 'f.yaml', env, (i, r) => fails.push(`${i}: ${r}`), () => undefined)).toBeUndefined();
    expect(fails).toEqual(['1: env:LONG is listed twice (also [0])', '2: environment variable NONE is not set']);
  });
});

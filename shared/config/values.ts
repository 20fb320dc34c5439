/**
 * Values every configuration reads the same way: durations (`500ms`, `3s`, `1m`, `1h`; always
 * with a unit) and secrets (`env:NAME` or `file:/path`, never inline).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Type } from '@sinclair/typebox';
import { UsageError } from '../cli.js';
import { show } from './yaml-errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const MAX_TIMER_MS = 2147483647;

/** How every config file and flag describes a duration. */
export const DURATION_TEXT = 'a duration such as 500ms, 2s or 1m';

/**
 * The schema of a duration key: a number passes the schema so that checkedDuration can say
 * "needs a unit" instead of a type error.
 */
export const DurationSchema = Type.Union([Type.String(), Type.Number()], { description: DURATION_TEXT });

/** Milliseconds, or undefined when not a duration (a bare number is not one); 0 and below are returned for the caller to word. */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v.trim());
  if (!m) return undefined;
  const ms = Math.round(Number(m[1]) * UNIT_MS[m[2]!]!);
  // timers take at most a signed 32-bit millisecond count
  return ms > MAX_TIMER_MS ? undefined : ms;
}

/**
 * Why `v` is not a duration. A bare number gets its own message naming both readings, since
 * files used to take it as seconds and a reader may well mean milliseconds.
 */
export function durationProblem(v: unknown): string {
  const bare = typeof v === 'number' && Number.isFinite(v) ? String(v) : typeof v === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(v) ? v.trim() : undefined;
  if (bare !== undefined) return `duration needs a unit: ${bare}ms or ${bare}s`;
  return `expected ${DURATION_TEXT}, got ${show(v)}`;
}

/**
 * A duration setting: `dflt` when absent; otherwise its milliseconds, or `dflt` after telling
 * `fail` what is wrong.
 */
export function checkedDuration(v: unknown, dflt: number, fail: (reason: string) => void): number {
  if (v === undefined) return dflt;
  const ms = parseDuration(v);
  if (ms === undefined) fail(durationProblem(v));
  else if (ms <= 0) fail(`must be above 0, got ${show(v)}`);
  return ms !== undefined && ms > 0 ? ms : dflt;
}

/** A duration flag's milliseconds; throws a UsageError `--flag: reason` when it is not one (or not above 0). */
export function durationFlag(flag: string, v: string): number {
  return checkedDuration(v, -1, (reason) => { throw new UsageError(`--${flag}: ${reason}`); });
}

/** The schema of a `secret:` key: one reference, or a list of them (the first signs). */
export const SecretSchema = Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1, maxItems: 16 })], {
  description: 'env:NAME or file:PATH, or a list of them',
});

/** Below this an HMAC key is guessable offline from one captured report (RFC 2104 asks for the hash's output length). */
export const MIN_SECRET_BYTES = 32;

/**
 * Resolves a `secret:` value, one ref or a list, in order: the first is the one an agent signs
 * with, and a report verifies against any, so keys rotate without an outage. `fail` gets
 * the list index (undefined for a single ref); `warn` names a key shorter than MIN_SECRET_BYTES.
 * Undefined after a failure.
 */
export function resolveSecrets(
  refs: string | readonly string[], file: string, env: NodeJS.ProcessEnv,
  fail: (index: number | undefined, reason: string) => void, warn: (index: number | undefined, reason: string) => void,
): Buffer[] | undefined {
  const list = typeof refs === 'string' ? [refs] : refs;
  const out: Buffer[] = [];
  list.forEach((ref, i) => {
    const at = typeof refs === 'string' ? undefined : i;
    const dup = list.indexOf(ref);
    if (dup < i) return fail(at, `${ref} is listed twice (also [${dup}])`);
    const key = resolveSecret(ref, file, env, (reason) => fail(at, reason));
    if (key === undefined) return;
    if (key.length < MIN_SECRET_BYTES) warn(at, `secret ${ref} is shorter than 32 bytes (${key.length}): use e.g. \`openssl rand -hex 32\``);
    out.push(key);
  });
  return out.length === list.length ? out : undefined;
}

/**
 * The secret `ref` names (`env:NAME`, or `file:PATH` relative to the config `file`), or undefined
 * after telling `fail` what is wrong.
 */
export function resolveSecret(ref: string, file: string, env: NodeJS.ProcessEnv, fail: (reason: string) => void): Buffer | undefined {
  if (ref.startsWith('env:')) {
    const name = ref.slice(4);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      fail(`expected env:NAME with NAME an environment variable name, got ${JSON.stringify(ref)}`);
      return undefined;
    }
    const v = env[name];
    if (v === undefined) fail(`environment variable ${name} is not set`);
    else if (v === '') fail(`environment variable ${name} is empty`);
    else return Buffer.from(v, 'utf8');
    return undefined;
  }
  if (ref.startsWith('file:')) {
    const p = ref.slice(5);
    if (p === '') {
      fail('expected file:/path');
      return undefined;
    }
    const full = path.resolve(path.dirname(file), p);
    let data: Buffer;
    try {
      data = readFileSync(full);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      fail(`cannot read secret file ${full}: ${e.code ?? e.message}`);
      return undefined;
    }
    // editors and `echo x > file` add a newline that is not part of the secret
    let end = data.length;
    if (end > 0 && data[end - 1] === 0x0a) end--;
    if (end > 0 && data[end - 1] === 0x0d) end--;
    if (end === 0) {
      fail(`secret file ${full} is empty`);
      return undefined;
    }
    return data.subarray(0, end);
  }
  fail('secrets are never inline: use env:NAME or file:/path');
  return undefined;
}

/**
 * Shared by every YAML configuration loader (gslb pool files, slb-agent site files): where in the
 * file a path points, how TypeBox schema errors are worded, and "did you mean" for unknown keys.
 */
import { isAlias, isMap, isScalar, isSeq } from 'yaml';
import type { Document, LineCounter } from 'yaml';
import type { TSchema } from '@sinclair/typebox';
import type { TypeCheck } from '@sinclair/typebox/compiler';
import { ValueErrorType } from '@sinclair/typebox/errors';

/** One step of a path into the document: a mapping key or a list index. */
export type Seg = string | number;

/** Names that need no quoting in a path, and the shape site, pool, agent and VIP names must have. */
export const NAME_RE = /^[A-Za-z0-9_-]{1,63}$/;

/** `pools.web.members[1].address`; keys that would be ambiguous in that form are quoted. */
export function formatPath(segs: readonly Seg[]): string {
  let s = '';
  for (const seg of segs) {
    if (typeof seg === 'number') s += `[${seg}]`;
    else if (NAME_RE.test(seg)) s += s === '' ? seg : `.${seg}`;
    else s += `[${JSON.stringify(seg)}]`;
  }
  return s;
}

/**
 * Line of the deepest node along `segs` that exists: for a mapping entry the line of its key, for
 * a list item the item's line (so a missing key points at its parent, an unknown key at itself).
 */
export function lineAt(doc: Document, lc: LineCounter, segs: readonly Seg[]): number | undefined {
  let node: unknown = doc.contents;
  let offset: number | undefined = doc.contents?.range?.[0];
  for (const seg of segs) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
      if (!pair) break;
      if (isScalar(pair.key) && pair.key.range) offset = pair.key.range[0];
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (item === undefined) break;
      if ((isScalar(item) || isMap(item) || isSeq(item) || isAlias(item)) && item.range) offset = item.range[0];
      node = item;
    } else {
      break;
    }
  }
  return offset === undefined ? undefined : lc.linePos(offset).line;
}

export function describe(schema: TSchema): string {
  const s = schema as Record<string, unknown>;
  if (typeof s['description'] === 'string') return s['description'];
  const anyOf = s['anyOf'];
  if (Array.isArray(anyOf) && anyOf.every((x) => x && typeof x === 'object' && 'const' in x)) {
    return `one of ${anyOf.map((x) => String((x as { const: unknown }).const)).join(' | ')}`;
  }
  const min = typeof s['minimum'] === 'number' ? s['minimum'] : undefined;
  const max = typeof s['maximum'] === 'number' ? s['maximum'] : undefined;
  const range = min !== undefined && max !== undefined ? ` from ${min} to ${max}`
    : min !== undefined ? ` >= ${min}` : max !== undefined ? ` <= ${max}` : '';
  switch (s['type']) {
    case 'integer': return `an integer${range}`;
    case 'number': return `a number${range}`;
    case 'string': return 'a string';
    case 'boolean': return 'true or false';
    case 'array': return 'a list';
    case 'object': return 'a mapping';
    default: return 'a valid value';
  }
}

export function show(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Uint8Array) return 'binary data';
  if (typeof v === 'object') return 'a mapping';
  // JSON has no Infinity or NaN (YAML's .inf, .nan)
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  return JSON.stringify(v);
}

export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = Math.min(up + 1, row[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length]!;
}

export function unknownKey(key: string, objectSchema: TSchema): string {
  const props = (objectSchema as { properties?: Record<string, unknown> }).properties ?? {};
  let best: string | undefined;
  let bestD = 3;
  const lower = key.toLowerCase();
  for (const k of Object.keys(props)) {
    // a typo, or a shortened key ("stale" for "staleAfter")
    const d = lower.length >= 3 && k.toLowerCase().startsWith(lower) ? 1 : editDistance(lower, k.toLowerCase());
    if (d < bestD) { best = k; bestD = d; }
  }
  return best === undefined ? `unknown key "${key}"` : `unknown key "${key}" (did you mean "${best}"?)`;
}

/** JSON pointer -> segments, with list indices as numbers (looked up in the value itself). */
export function pointerSegs(pointer: string, root: unknown): Seg[] {
  const segs: Seg[] = [];
  let cur: unknown = root;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      const i = Number(key);
      segs.push(i);
      cur = cur[i];
    } else {
      segs.push(key);
      cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[key] : undefined;
    }
  }
  return segs;
}

/** A schema error, worded and placed. */
export interface SchemaIssue {
  readonly path: string;
  readonly reason: string;
  /** 1-based; absent when the path has no node in the document */
  readonly line?: number;
}

/**
 * Every schema error of `raw` (the plain value of `doc`): an unknown key (with "did you mean")
 * and a missing key are reported at their object, anything else at the value; one error per
 * value, since TypeBox may say several things about one (required, then wrong type).
 */
export function schemaIssues<T extends TSchema>(check: TypeCheck<T>, raw: unknown, doc: Document, lc: LineCounter): SchemaIssue[] {
  const out: SchemaIssue[] = [];
  const seen = new Set<string>();
  for (const e of check.Errors(raw)) {
    const segs = pointerSegs(e.path, raw);
    const key = formatPath(segs);
    if (seen.has(key)) continue;
    seen.add(key);
    let at = segs;
    let reason: string;
    if (e.type === ValueErrorType.ObjectAdditionalProperties) {
      at = segs.slice(0, -1);
      reason = unknownKey(String(segs[segs.length - 1]), e.schema);
    } else if (e.type === ValueErrorType.ObjectRequiredProperty) {
      at = segs.slice(0, -1);
      reason = `missing key "${String(segs[segs.length - 1])}"`;
    } else {
      reason = `expected ${describe(e.schema)}, got ${show(e.value)}`;
    }
    const line = lineAt(doc, lc, segs);
    out.push(line === undefined ? { path: formatPath(at), reason } : { path: formatPath(at), reason, line });
  }
  return out;
}

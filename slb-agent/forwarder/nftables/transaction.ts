/**
 * The nft script that takes the kernel from what is programmed to what is desired, as one
 * transaction (`nft -f` applies a file atomically: packets see the old ruleset or the new one).
 * Chains are flushed and refilled (cheap, and no packet sees a half-built chain); static sets and
 * maps are rewritten, the big slot maps element by element; dynamic maps (flow table,
 * persistence) are kept unless their key type or timeout changed.
 */
import { TABLE } from './ruleset.js';
import type { Family, MapObject, TableObject } from './ruleset.js';

/** What is programmed now, as far as the plane knows it. */
export interface ProgrammedTable {
  readonly family: Family;
  /** chain name -> its rules as last applied (joined by newlines); undefined: unknown, rewrite */
  readonly chains: ReadonlyMap<string, string | undefined>;
  readonly counters: ReadonlySet<string>;
  /** map/set name -> kind and signature (key type / timeout as the kernel reports it) */
  readonly maps: ReadonlyMap<string, { kind: 'map' | 'set'; signature: string }>;
  /** slot map contents known from the last apply; absent: unknown (rewrite whole) */
  readonly slots: ReadonlyMap<string, Int32Array>;
}

const q = (name: string): string => (/^[A-Za-z][A-Za-z0-9_.\-]*$/.test(name) ? name : JSON.stringify(name));

function elementList(entries: Iterable<readonly [string, string]>, isSet: boolean): string[] {
  const out: string[] = [];
  for (const [k, v] of entries) out.push(isSet ? k : `${k} : ${v}`);
  return out;
}

/** Adds `verb element` lines in chunks (nft parses huge single lines slowly). */
function elementLines(verb: 'add' | 'delete', family: Family, m: MapObject, items: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < items.length; i += 2048) {
    out.push(`${verb} element ${family} ${TABLE} ${q(m.name)} { ${items.slice(i, i + 2048).join(', ')} }`);
  }
  return out;
}

/**
 * The script for one family's table; `current` undefined when the table does not exist. A
 * desired table of undefined deletes the table.
 */
export function tableScript(family: Family, current: ProgrammedTable | undefined, desired: TableObject | undefined): string[] {
  const lines: string[] = [];
  if (desired === undefined) {
    if (current !== undefined) lines.push(`delete table ${family} ${TABLE}`);
    return lines;
  }
  const t = `${family} ${TABLE}`;
  lines.push(`add table ${t}`);
  const cur = current ?? { family, chains: new Map<string, string | undefined>(), counters: new Set<string>(), maps: new Map(), slots: new Map() };

  // 1. empty every chain that changes or goes, and every static set and map, so nothing
  // references what goes away; unchanged chains keep their state (numgen counters)
  const same = (name: string): boolean => {
    const want = desired.chains.get(name);
    return want !== undefined && cur.chains.get(name) === want.rules.join('\n');
  };
  for (const c of cur.chains.keys()) if (!same(c)) lines.push(`flush chain ${t} ${q(c)}`);
  const recreate = new Set<string>();
  for (const [name, m] of cur.maps) {
    const want = desired.maps.get(name);
    if (want === undefined || want.kind !== m.kind || (want.dynamic && want.signature !== m.signature)) recreate.add(name);
    else if (want.slots !== undefined && cur.slots.has(name)) continue; // diffed below
    else if (!want.dynamic) lines.push(`flush ${m.kind} ${t} ${q(name)}`);
  }
  // 2. delete what is not wanted (or must be rebuilt)
  for (const c of cur.chains.keys()) if (!desired.chains.has(c)) lines.push(`delete chain ${t} ${q(c)}`);
  for (const name of recreate) lines.push(`delete ${cur.maps.get(name)!.kind} ${t} ${q(name)}`);
  for (const c of cur.counters) if (!desired.counters.has(c)) lines.push(`delete counter ${t} ${q(c)}`);
  // 3. declare what is missing
  for (const c of desired.counters) if (!cur.counters.has(c)) lines.push(`add counter ${t} ${q(c)}`);
  for (const m of desired.maps.values()) {
    if (!cur.maps.has(m.name) || recreate.has(m.name)) lines.push(`add ${m.kind} ${t} ${q(m.name)} { ${m.decl} }`);
  }
  for (const c of desired.chains.values()) {
    if (!cur.chains.has(c.name)) lines.push(c.head === undefined ? `add chain ${t} ${q(c.name)}` : `add chain ${t} ${q(c.name)} { ${c.head} }`);
  }
  // 4. fill static sets and maps (slot maps: only the slots that changed)
  for (const m of desired.maps.values()) {
    if (m.dynamic) continue;
    if (m.elements !== undefined) {
      lines.push(...elementLines('add', family, m, elementList(m.elements, m.kind === 'set')));
      continue;
    }
    if (m.slots === undefined) continue;
    const known = cur.maps.has(m.name) && !recreate.has(m.name) ? cur.slots.get(m.name) : undefined;
    const removed: string[] = [];
    const added: string[] = [];
    const want = m.slots;
    for (let s = 0; s < Math.max(want.length, known?.length ?? 0); s++) {
      const was = known === undefined ? 0 : known[s] ?? 0;
      const now = want[s] ?? 0;
      if (was === now) continue;
      if (was !== 0) removed.push(String(s));
      if (now !== 0) added.push(`${s} : ${now}`);
    }
    lines.push(...elementLines('delete', family, m, removed));
    lines.push(...elementLines('add', family, m, added));
  }
  // 5. rules (verdict maps above point at chains declared in 3, so they come after)
  for (const c of desired.chains.values()) {
    if (same(c.name)) continue;
    for (const r of c.rules) lines.push(`add rule ${t} ${q(c.name)} ${r}`);
  }
  return lines;
}

import { RRType } from '../wire/types.js';
import { isInZone, nameToWire, parentName, readUncompressedName } from '../wire/name.js';
import type { RRset, Zone, ZoneNode, ZoneSet } from './zone.js';

/** What lookup needs to know about GSLB names: canonical owner -> the pool (opaque here). */
export type GslbNames<P> = ReadonlyMap<string, P>;

/** An RRset as it goes into a reply: the owner may be synthesized (wildcards). */
export interface OutRRset {
  readonly ownerWire: Uint8Array;
  readonly type: number;
  readonly ttl: number;
  readonly rdatas: readonly Uint8Array[];
  /** the wildcard owner (`*.closest.encloser.`) this set was synthesized from, if any (DNSSEC signs it as such) */
  readonly wildcard?: string;
}

/**
 * What the zone data says about a question. `answer.ts` alone turns this into rcode and flags.
 * - answer: the data (possibly after a CNAME chain); nodata / nxdomain: the end of the chain
 *   had no such type / no such name (answer then holds the chain, authority the SOA);
 * - delegation: a referral (authority NS, additional glue); refused: no zone of ours.
 */
export type LookupResult<P = unknown> =
  | { readonly kind: 'refused' }
  | {
    /** A/AAAA at a GSLB name: the pool picks the addresses; `answer` holds any CNAME chain before it */
    readonly kind: 'pool';
    readonly zone: Zone;
    readonly pool: P;
    readonly ownerWire: Uint8Array;
    readonly answer: readonly OutRRset[];
  }
  | {
    readonly kind: 'answer' | 'nodata' | 'nxdomain' | 'delegation';
    readonly zone: Zone;
    readonly answer: readonly OutRRset[];
    readonly authority: readonly OutRRset[];
    readonly additional: readonly OutRRset[];
    /** the wildcard (`*.closest.encloser.`) the answer or NODATA was synthesized from, if any (RRL counts by it) */
    readonly wildcard?: string;
  };

/** CNAME hops followed inside a zone before giving up (loops end earlier, by the seen set). */
export const MAX_CNAME_CHAIN = 16;

const REFUSED = { kind: 'refused' } as const;

/** Looks up a canonical name and type in the zones. Pure: same input, same result. */
export function lookup<P>(zones: ZoneSet, qname: string, qtype: number, gslb?: GslbNames<P>): LookupResult<P> {
  const zone = zoneFor(zones, qname, qtype);
  if (!zone) return REFUSED;
  const answer: OutRRset[] = [];
  const seen = new Set<string>();
  let name = qname;
  let wildcard: string | undefined;
  for (let hop = 0; ; hop++) {
    // RFC 4035 §3.1.4.1: the DS at a cut is the parent's data, answered here, not referred
    const cut = findCut(zone, name, qtype === RRType.DS);
    if (cut) {
      // a referral; when we arrived through a CNAME the chain stays in the answer
      const ns = cut.rrset(RRType.NS)!;
      return {
        kind: answer.length ? 'answer' : 'delegation',
        zone,
        answer,
        authority: [ns],
        additional: glue(zone, [ns], []),
      };
    }
    const pool = gslb?.get(name);
    if (pool !== undefined && (qtype === RRType.A || qtype === RRType.AAAA)) {
      return { kind: 'pool', zone, pool, ownerWire: nameToWire(name), answer };
    }
    let node = zone.nodes.get(name);
    let owner: Uint8Array | undefined;
    if (!node) {
      node = wildcardFor(zone, name);
      if (!node) return negative('nxdomain', zone, answer);
      owner = nameToWire(name);
      wildcard ??= node.name;
    }
    const hit = qtype === RRType.ANY ? minimalAny(node) : node.rrset(qtype);
    if (hit) {
      const out = owner ? synthesized(hit, owner) : hit;
      answer.push(out);
      return { kind: 'answer', zone, answer, authority: [], additional: additionalFor(zone, out, answer), ...(wildcard ? { wildcard } : {}) };
    }
    const cname = node.rrset(RRType.CNAME);
    if (!cname || qtype === RRType.CNAME) return { ...negative('nodata', zone, answer), ...(wildcard ? { wildcard } : {}) };
    answer.push(owner ? synthesized(cname, owner) : cname);
    seen.add(name);
    const target = readUncompressedName(cname.rdatas[0]!, 0).name;
    // outside this zone, in a loop, or too long: the resolver takes it from here
    if (!isInZone(target, zone.origin) || seen.has(target) || hop + 1 >= MAX_CNAME_CHAIN) {
      return { kind: 'answer', zone, answer, authority: [], additional: [], ...(wildcard ? { wildcard } : {}) };
    }
    name = target;
  }
}

/**
 * The zone that answers: the one with the longest origin, except that the DS at a zone's apex is
 * answered by its parent when the parent is served here too (RFC 4035 §3.1.4.1).
 */
function zoneFor(zones: ZoneSet, qname: string, qtype: number): Zone | undefined {
  const zone = zones.find(qname);
  if (zone === undefined || qtype !== RRType.DS || zone.origin !== qname || qname === '.') return zone;
  const parent = zones.find(parentName(qname)!);
  return parent?.nodes.get(qname)?.rrset(RRType.NS) ? parent : zone;
}

/** The topmost delegation (NS below the apex) at or above `name` (above only, with `above`), if any. */
export function findCut(zone: Zone, name: string, above = false): ZoneNode | undefined {
  let cut: ZoneNode | undefined;
  for (let p: string | undefined = above ? parentName(name) : name; p !== undefined && p !== zone.origin && isInZone(p, zone.origin); p = parentName(p)) {
    const n = zone.nodes.get(p);
    if (n?.rrset(RRType.NS)) cut = n;
  }
  return cut;
}

/** RFC 4592: the wildcard at the closest encloser, when there is one. */
export function wildcardFor(zone: Zone, name: string): ZoneNode | undefined {
  let ce: string | undefined = parentName(name);
  while (ce !== undefined && !zone.nodes.has(ce)) ce = parentName(ce);
  if (ce === undefined) return undefined;
  return zone.nodes.get(ce === '.' ? '*.' : `*.${ce}`);
}

function synthesized(s: RRset, ownerWire: Uint8Array): OutRRset {
  return { ownerWire, type: s.type, ttl: s.ttl, rdatas: s.rdatas, wildcard: s.owner };
}

/** RFC 8482 §4.1: answer ANY with one RRset of the name, the lowest type number. */
function minimalAny(node: ZoneNode): RRset | undefined {
  let best: RRset | undefined;
  for (const s of node.sets) if (!best || s.type < best.type) best = s;
  return best;
}

function negative(kind: 'nodata' | 'nxdomain', zone: Zone, answer: OutRRset[]): LookupResult<never> {
  const soa: OutRRset = { ownerWire: zone.soa.ownerWire, type: RRType.SOA, ttl: zone.negativeTtl, rdatas: zone.soa.rdatas };
  return { kind, zone, answer, authority: [soa], additional: [] };
}

/** Offset of the target name inside the RDATA of types that trigger additional processing. */
function targetOffset(type: number): number {
  switch (type) {
    case RRType.NS: return 0;
    case RRType.MX: return 2;
    case RRType.SRV: return 6;
    default: return -1;
  }
}

/** A/AAAA of in-zone targets of NS, MX and SRV records (RFC 1035 §3.3, RFC 2782). */
function additionalFor(zone: Zone, s: OutRRset, answer: readonly OutRRset[]): OutRRset[] {
  return targetOffset(s.type) < 0 ? [] : glue(zone, [s], answer);
}

function glue(zone: Zone, sets: readonly OutRRset[], exclude: readonly OutRRset[]): OutRRset[] {
  const out: OutRRset[] = [];
  const done = new Set<string>();
  for (const s of sets) {
    const off = targetOffset(s.type);
    if (off < 0) continue;
    for (const rd of s.rdatas) {
      const target = readUncompressedName(rd, off).name;
      if (done.has(target) || !isInZone(target, zone.origin)) continue;
      done.add(target);
      const node = zone.nodes.get(target);
      if (!node) continue;
      for (const t of [RRType.A, RRType.AAAA]) {
        const a = node.rrset(t);
        if (a && !exclude.includes(a)) out.push(a);
      }
    }
  }
  return out;
}

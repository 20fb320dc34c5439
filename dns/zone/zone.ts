import { RRType } from '../wire/types.js';
import { isInZone, nameToWire, parentName } from '../wire/name.js';
import type { ZoneRecord } from './record.js';
import type { WireRRset } from '../wire/response.js';

/** All records of one owner and type, as they go on the wire. */
export interface RRset {
  readonly owner: string;
  readonly ownerWire: Uint8Array;
  readonly type: number;
  /** RFC 2181 §5.2: one TTL per RRset; the lowest of the records wins */
  readonly ttl: number;
  readonly rdatas: readonly Uint8Array[];
}

/** A name in the tree; empty non-terminals are nodes without record sets. */
export class ZoneNode {
  /** a node holds a handful of types: an array beats a Map in memory and at this size in speed */
  readonly sets: RRset[] = [];
  constructor(readonly name: string) {}

  /** The RRset of that type at this name, if any. */
  rrset(type: number): RRset | undefined {
    const sets = this.sets;
    for (let i = 0; i < sets.length; i++) if (sets[i]!.type === type) return sets[i];
    return undefined;
  }
}

/** The names of a zone: a Map, or an index over a zone handed over in one buffer (transfer.ts). */
export interface NodeIndex {
  get(name: string): ZoneNode | undefined;
  has(name: string): boolean;
  readonly size: number;
}

/** One loaded zone: an immutable tree keyed by canonical name. */
export interface Zone {
  readonly origin: string;
  readonly file: string;
  readonly nodes: NodeIndex;
  readonly soa: RRset;
  /** RFC 2308 §5: min(SOA TTL, SOA MINIMUM) */
  readonly negativeTtl: number;
  readonly serial: number;
  readonly recordCount: number;
}

/** A zone as buildZone makes it: its names in a Map. */
export interface BuiltZone extends Zone {
  readonly nodes: ReadonlyMap<string, ZoneNode>;
}

/** Builds the tree of a zone whose records already passed checkZone. */
export function buildZone(origin: string, file: string, records: readonly ZoneRecord[]): BuiltZone {
  const nodes = new Map<string, ZoneNode>();
  let last: ZoneNode | undefined;
  for (const r of records) {
    // zone files list an owner's records together: skip the map lookup for runs of one owner
    let node = last !== undefined && last.name === r.owner ? last : nodes.get(r.owner);
    if (!node) {
      node = new ZoneNode(r.owner);
      nodes.set(r.owner, node);
    }
    last = node;
    const set = node.rrset(r.type);
    if (set) {
      const rdatas = set.rdatas as Uint8Array[];
      rdatas.push(r.rdata);
      if (r.ttl < set.ttl) (set as { ttl: number }).ttl = r.ttl;
    } else {
      const ownerWire = node.sets.length ? node.sets[0]!.ownerWire : nameToWire(r.owner);
      node.sets.push({ owner: r.owner, ownerWire, type: r.type, ttl: r.ttl, rdatas: [r.rdata] });
    }
  }
  // empty non-terminals between each owner and the apex exist (RFC 4592 §2.2.2)
  for (const owner of [...nodes.keys()]) {
    for (let p = parentName(owner); p !== undefined && !nodes.has(p) && isInZone(p, origin); p = parentName(p)) {
      nodes.set(p, new ZoneNode(p));
    }
  }
  const soa = nodes.get(origin)?.rrset(RRType.SOA);
  if (!soa) throw new Error(`zone ${origin} has no SOA (checkZone should have caught this)`);
  const soaData = soa.rdatas[0]!;
  const dv = new DataView(soaData.buffer, soaData.byteOffset, soaData.byteLength);
  const minimum = dv.getUint32(soaData.length - 4);
  const serial = dv.getUint32(soaData.length - 20);
  return {
    origin,
    file,
    nodes,
    soa,
    negativeTtl: Math.min(soa.ttl, minimum),
    serial,
    recordCount: records.length,
  };
}

/**
 * The zone with extra names that have no records of their own (GSLB names), so that they and
 * the empty non-terminals above them exist: NODATA, not NXDOMAIN, for other types.
 */
export function withNames(zone: Zone, names: readonly string[]): Zone {
  const extra = names.filter((n) => isInZone(n, zone.origin) && !zone.nodes.has(n));
  if (extra.length === 0) return zone;
  const base = zone.nodes;
  const added = new Map<string, ZoneNode>();
  for (const n of extra) {
    for (let p: string | undefined = n; p !== undefined && !base.has(p) && !added.has(p) && isInZone(p, zone.origin); p = parentName(p)) {
      added.set(p, new ZoneNode(p));
    }
  }
  // the zone's own index is shared, not copied: adding names costs what the names cost
  const nodes: NodeIndex = {
    get: (name) => base.get(name) ?? added.get(name),
    has: (name) => base.has(name) || added.has(name),
    size: base.size + added.size,
  };
  return { ...zone, nodes };
}

/** The zones served, found by longest match (a child zone wins over its parent). */
export class ZoneSet {
  private readonly byOrigin: ReadonlyMap<string, Zone>;

  constructor(zones: readonly Zone[]) {
    this.byOrigin = new Map(zones.map((z) => [z.origin, z]));
  }

  get zones(): Zone[] {
    return [...this.byOrigin.values()];
  }

  /** The zone with the longest origin that contains `name`, if any. */
  find(name: string): Zone | undefined {
    for (let p: string | undefined = name; p !== undefined; p = parentName(p)) {
      const z = this.byOrigin.get(p);
      if (z) return z;
    }
    return undefined;
  }
}

/** The zone with more RRsets at its apex (DNSSEC's DNSKEY, CDS and CDNSKEY); the rest of the tree is shared. */
export function withApexSets(zone: Zone, sets: readonly WireRRset[]): Zone {
  const old = zone.nodes.get(zone.origin);
  const apex = new ZoneNode(zone.origin);
  if (old) apex.sets.push(...old.sets);
  for (const s of sets) if (s.rdatas.length) apex.sets.push({ owner: zone.origin, ...s });
  const base = zone.nodes;
  const nodes: NodeIndex = {
    get: (name) => (name === zone.origin ? apex : base.get(name)),
    has: (name) => base.has(name),
    size: base.size,
  };
  return { ...zone, nodes };
}

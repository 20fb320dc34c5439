import { RRType } from '../wire/types.js';
import { isInZone, nameToWire, parentName } from '../wire/name.js';
import type { ZoneRecord } from './record.js';

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
export interface ZoneNode {
  readonly name: string;
  readonly rrsets: ReadonlyMap<number, RRset>;
}

/** One loaded zone: an immutable tree keyed by canonical name. */
export interface Zone {
  readonly origin: string;
  readonly file: string;
  readonly nodes: ReadonlyMap<string, ZoneNode>;
  readonly soa: RRset;
  /** RFC 2308 §5: min(SOA TTL, SOA MINIMUM) */
  readonly negativeTtl: number;
  readonly serial: number;
  readonly recordCount: number;
}

/** Builds the tree of a zone whose records already passed checkZone. */
export function buildZone(origin: string, file: string, records: readonly ZoneRecord[]): Zone {
  const grouped = new Map<string, Map<number, { ttl: number; rdatas: Uint8Array[] }>>();
  for (const r of records) {
    let byType = grouped.get(r.owner);
    if (!byType) { byType = new Map(); grouped.set(r.owner, byType); }
    const set = byType.get(r.type);
    if (set) {
      set.rdatas.push(r.rdata);
      if (r.ttl < set.ttl) set.ttl = r.ttl;
    } else {
      byType.set(r.type, { ttl: r.ttl, rdatas: [r.rdata] });
    }
  }
  const nodes = new Map<string, ZoneNode>();
  for (const [owner, byType] of grouped) {
    const ownerWire = nameToWire(owner);
    const rrsets = new Map<number, RRset>();
    for (const [type, s] of byType) rrsets.set(type, { owner, ownerWire, type, ttl: s.ttl, rdatas: s.rdatas });
    nodes.set(owner, { name: owner, rrsets });
    // empty non-terminals between the owner and the apex exist (RFC 4592 §2.2.2)
    for (let p = parentName(owner); p !== undefined && isInZone(p, origin) && !nodes.has(p) && !grouped.has(p); p = parentName(p)) {
      nodes.set(p, { name: p, rrsets: new Map() });
      if (p === origin) break;
    }
  }
  const soa = nodes.get(origin)?.rrsets.get(RRType.SOA);
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

/**
 * Semantic zone checks in the spirit of named-checkzone, run after parsing and before the zone
 * is built, so that a broken zone is a load error with file:line rather than odd answers later.
 */
import { canonicalName, isInZone, NameError, readUncompressedName } from '../wire/name.js';
import { RRType } from '../wire/types.js';
import { canonicalRdata, resolveName } from './rdata.js';
import { ZoneError, type ZoneRecord } from './record.js';

/** What checkZone knows about one owner name. */
class OwnerInfo {
  cname = false;
  dname = false;
  /** any type that may not sit beside a CNAME */
  other = false;
  address = false;
  /**
   * Type and canonical RDATA of each distinct record, for duplicate detection. Most owners hold one
   * record, so the lists start only with the second (the first record is kept raw until then).
   */
  types: number[] | undefined;
  rdatas: Uint8Array[] | undefined;
  /** replaces the linear scan once an owner has many records (large round-robin sets) */
  keys: Set<string> | undefined;

  constructor(readonly firstType: number, readonly firstRdata: Uint8Array) {}

  /** Records the RR; true when an equal one (same type and canonical RDATA) was already here. */
  isDuplicate(type: number, rdata: Uint8Array): boolean {
    // RRs compare equal on owner, type and canonical RDATA (RFC 2181 §5); TTL does not count
    const c = canonicalRdata(type, rdata);
    if (this.keys !== undefined) {
      const k = rdataKey(type, c);
      if (this.keys.has(k)) return true;
      this.keys.add(k);
      return false;
    }
    if (this.types === undefined || this.rdatas === undefined) {
      this.types = [this.firstType];
      this.rdatas = [canonicalRdata(this.firstType, this.firstRdata)];
    }
    const types = this.types;
    const rdatas = this.rdatas;
    for (let i = 0; i < types.length; i++) {
      if (types[i] === type && bytesEqual(rdatas[i]!, c)) return true;
    }
    types.push(type);
    rdatas.push(c);
    if (types.length > SCAN_LIMIT) this.keys = new Set(types.map((t, i) => rdataKey(t, rdatas[i]!)));
    return false;
  }
}

const SCAN_LIMIT = 16;

/** DNSSEC types that RFC 4035 §2.5 allows beside a CNAME. */
function mayJoinCname(type: number): boolean {
  return type === RRType.RRSIG || type === RRType.NSEC;
}

function rdataKey(type: number, c: Uint8Array): string {
  return `${type} ${Buffer.from(c.buffer, c.byteOffset, c.length).toString('latin1')}`;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Throws ZoneError (file:line of the offending record, or file alone for zone-wide faults) when
 * the zone is unusable; returns the records with exact duplicates removed (first one kept).
 */
export function checkZone(records: readonly ZoneRecord[], origin: string, file: string): ZoneRecord[] {
  let apex: string;
  try {
    apex = canonicalName(resolveName(origin, '.'));
  } catch (e) {
    if (e instanceof NameError) throw new ZoneError(file, 0, `bad origin "${origin}": ${e.message}`);
    throw e;
  }

  const out: ZoneRecord[] = [];
  const owners = new Map<string, OwnerInfo>();
  let soa: ZoneRecord | undefined;
  let apexNs = false;

  for (const r of records) {
    let info = owners.get(r.owner);
    if (info === undefined) {
      if (!isInZone(r.owner, apex)) throw new ZoneError(r.file, r.line, `${r.owner} is out of zone ${apex}`);
      info = new OwnerInfo(r.type, r.rdata);
      owners.set(r.owner, info);
    } else if (info.isDuplicate(r.type, r.rdata)) {
      continue;
    }
    switch (r.type) {
      case RRType.SOA:
        if (r.owner !== apex) {
          throw new ZoneError(r.file, r.line, `SOA record at ${r.owner} is not at the zone apex ${apex}`);
        }
        if (soa !== undefined) {
          throw new ZoneError(r.file, r.line, `multiple SOA records at the zone apex (first at line ${soa.line})`);
        }
        soa = r;
        break;
      case RRType.NS:
        if (r.owner === apex) apexNs = true;
        break;
      case RRType.A: case RRType.AAAA:
        info.address = true;
        break;
      case RRType.DNAME:
        if (info.dname) throw new ZoneError(r.file, r.line, `multiple DNAME records at ${r.owner}`);
        info.dname = true;
        break;
      default:
        break;
    }
    if (r.type === RRType.CNAME) {
      if (info.cname) throw new ZoneError(r.file, r.line, `multiple CNAME records at ${r.owner}`);
      if (info.other) throw new ZoneError(r.file, r.line, `CNAME and other data at ${r.owner}`);
      info.cname = true;
    } else if (!mayJoinCname(r.type)) {
      if (info.cname) throw new ZoneError(r.file, r.line, `CNAME and other data at ${r.owner}`);
      info.other = true;
    }
    out.push(r);
  }

  if (soa === undefined) throw new ZoneError(file, 0, 'no SOA record at the zone apex');
  if (!apexNs) throw new ZoneError(file, 0, 'no NS records at the zone apex');

  // in-zone NS targets (apex servers and delegation glue) must resolve from this zone alone
  for (const r of out) {
    if (r.type !== RRType.NS) continue;
    let target: string;
    try {
      target = readUncompressedName(r.rdata, 0).name;
    } catch (e) {
      if (e instanceof NameError) throw new ZoneError(r.file, r.line, `bad NS RDATA: ${e.message}`);
      throw e;
    }
    if (!isInZone(target, apex)) continue;
    const info = owners.get(target);
    if (info?.cname === true) {
      throw new ZoneError(r.file, r.line, `NS target ${target} is a CNAME (it must have A or AAAA records)`);
    }
    if (info?.address !== true) throw new ZoneError(r.file, r.line, `NS target ${target} has no address records`);
  }
  return out;
}

import { QueryStatus } from './wire/query.js';
import type { ParsedQuery } from './wire/query.js';
import { CLASS_ANY, CLASS_IN, RCode, RRType, TsigError } from './wire/types.js';
import type { Reply, WireRRset } from './wire/response.js';
import type { LookupResult, OutRRset } from './zone/lookup.js';
import type { Zone } from './zone/zone.js';

const EMPTY: readonly never[] = [];

/** The one place that decides rcode and AA for a lookup result (pool results: see poolReply). */
export function replyFor(result: LookupResult<unknown>): Reply {
  switch (result.kind) {
    case 'refused':
      return errorReply(RCode.REFUSED);
    case 'answer':
    case 'nodata':
      return { rcode: RCode.NOERROR, aa: true, answer: result.answer, authority: result.authority, additional: result.additional, glueRequired: false };
    case 'nxdomain':
      return { rcode: RCode.NXDOMAIN, aa: true, answer: result.answer, authority: result.authority, additional: result.additional, glueRequired: false };
    case 'delegation':
      // a referral is not authoritative data (RFC 1034 §4.3.2 step 3b)
      return { rcode: RCode.NOERROR, aa: false, answer: EMPTY, authority: result.authority, additional: result.additional, glueRequired: true };
    case 'pool':
      throw new Error('pool results are answered through poolReply');
  }
}

/**
 * The reply for a GSLB name: the chain that led there plus the selected addresses, or NODATA
 * with the SOA when the pool has nothing to give (allDown: nodata, or no member of the family).
 */
export function poolReply(zone: Zone, chain: readonly OutRRset[], selected: WireRRset | undefined): Reply {
  if (selected) {
    return { rcode: RCode.NOERROR, aa: true, answer: [...chain, selected], authority: EMPTY, additional: EMPTY, glueRequired: false };
  }
  const soa: OutRRset = { ownerWire: zone.soa.ownerWire, type: RRType.SOA, ttl: zone.negativeTtl, rdatas: zone.soa.rdatas };
  return { rcode: RCode.NOERROR, aa: true, answer: chain, authority: [soa], additional: EMPTY, glueRequired: false };
}

/**
 * The reply for a GSLB name whose pool is still waiting for its first health word after a start
 * (Mode.Startup): SERVFAIL, so resolvers ask another name server rather than cache a fail-open
 * answer that may name a dead address (RFC 2308 §7.1 lets them cache it only briefly).
 */
export function poolStartupReply(): Reply {
  return errorReply(RCode.SERVFAIL);
}

/**
 * The reply to a packet the parser will not let through to lookup (any status but Ok and Drop):
 * NOTIMP for an opcode other than QUERY, BADVERS for EDNS version above 0, NOTAUTH with TSIG
 * BADKEY for a signed query, else FORMERR.
 */
export function statusReply(status: QueryStatus, q: ParsedQuery): Reply {
  switch (status) {
    case QueryStatus.Tsig: return tsigBadKeyReply(q);
    case QueryStatus.NotImp: return errorReply(RCode.NOTIMP);
    case QueryStatus.BadVers: return errorReply(RCode.BADVERS);
    default: return errorReply(RCode.FORMERR);
  }
}

/**
 * The reply decided by the question alone, before any lookup, or undefined when lookup goes on:
 * REFUSED for classes other than IN/ANY and for zone transfers (not offered over UDP or TCP),
 * FORMERR for a question of type OPT, NOTIMP for the other meta types (RFC 6895 §3.1).
 */
export function questionReply(qclass: number, qtype: number): Reply | undefined {
  if (qclass !== CLASS_IN && qclass !== CLASS_ANY) return errorReply(RCode.REFUSED);
  if (qtype === RRType.OPT) return errorReply(RCode.FORMERR);
  if (qtype === RRType.AXFR || qtype === RRType.IXFR) return errorReply(RCode.REFUSED);
  if (qtype >= 128 && qtype < 255) return errorReply(RCode.NOTIMP);
  return undefined;
}

/**
 * A TSIG-signed query: this server holds no TSIG keys, so every key is unknown. RFC 8945 §5.2:
 * NOTAUTH, and an unsigned TSIG record (§5.3.2: MAC size 0) echoing the key, algorithm, time
 * signed, fudge and original ID, with error BADKEY.
 */
function tsigBadKeyReply(q: ParsedQuery): Reply {
  const tsig = {
    keyWire: q.tsigKey, algorithmWire: q.tsigAlgorithm, timeSigned: Uint8Array.from(q.tsigTime),
    fudge: q.tsigFudge, originalId: q.tsigOriginalId, error: TsigError.BADKEY,
  };
  return { ...errorReply(RCode.NOTAUTH), tsig };
}

/** The reply when answering failed (a bug in lookup or selection, already reported): SERVFAIL. */
export function failureReply(): Reply {
  return errorReply(RCode.SERVFAIL);
}

/** A reply with no data: FORMERR, NOTIMP, REFUSED, BADVERS, SERVFAIL. */
function errorReply(rcode: number): Reply {
  return { rcode, aa: false, answer: EMPTY, authority: EMPTY, additional: EMPTY, glueRequired: false };
}

import { RCode, RRType } from './wire/types.js';
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

/** A reply with no data: FORMERR, NOTIMP, REFUSED, BADVERS, SERVFAIL. */
export function errorReply(rcode: number): Reply {
  return { rcode, aa: false, answer: EMPTY, authority: EMPTY, additional: EMPTY, glueRequired: false };
}

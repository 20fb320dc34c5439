import { RCode } from './wire/types.js';
import type { Reply } from './wire/response.js';
import type { LookupResult } from './zone/lookup.js';

const EMPTY: readonly never[] = [];

/** The one place that decides rcode and AA for a lookup result. */
export function replyFor(result: LookupResult): Reply {
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
  }
}

/** A reply with no data: FORMERR, NOTIMP, REFUSED, BADVERS, SERVFAIL. */
export function errorReply(rcode: number): Reply {
  return { rcode, aa: false, answer: EMPTY, authority: EMPTY, additional: EMPTY, glueRequired: false };
}

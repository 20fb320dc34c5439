/** DNS constants shared by the wire codec, the zone parser and lookup. */

export const RRType = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, HINFO: 13, MX: 15, TXT: 16, AAAA: 28, SRV: 33,
  NAPTR: 35, DNAME: 39, OPT: 41, DS: 43, RRSIG: 46, NSEC: 47, DNSKEY: 48, CDS: 59, CDNSKEY: 60, SVCB: 64, HTTPS: 65,
  SPF: 99, AXFR: 252, IXFR: 251, MAILB: 253, MAILA: 254, ANY: 255, CAA: 257,
} as const;

export const RCode = {
  NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, NOTAUTH: 9, BADVERS: 16,
} as const;

/** TSIG error codes (RFC 8945 §5.3): carried in the TSIG record, not in the header. */
export const TsigError = { BADSIG: 16, BADKEY: 17, BADTIME: 18, BADTRUNC: 22 } as const;

export const CLASS_IN = 1;
export const CLASS_ANY = 255;

const typeNames = new Map<number, string>(Object.entries(RRType).map(([k, v]) => [v, k]));
const typeNumbers = new Map<string, number>(Object.entries(RRType).map(([k, v]) => [k, v]));

/** Type mnemonic, or the RFC 3597 `TYPEnnn` form for types without one. */
export function typeName(type: number): string {
  return typeNames.get(type) ?? `TYPE${type}`;
}

/** Type number for a mnemonic or `TYPEnnn`; undefined when neither. */
export function typeNumber(text: string): number | undefined {
  const upper = text.toUpperCase();
  const known = typeNumbers.get(upper);
  if (known !== undefined) return known;
  const m = /^TYPE(\d{1,5})$/.exec(upper);
  if (!m) return undefined;
  const n = Number(m[1]);
  return n <= 0xffff ? n : undefined;
}

/** Meta and question-only types (RFC 6895 §3.1): never stored in a zone. */
export function isMetaType(type: number): boolean {
  return type === RRType.OPT || (type >= 128 && type <= 255);
}

/** Types whose RDATA names may be compressed on the wire (RFC 3597 §4). */
export function rdataCompressible(type: number): boolean {
  return type === RRType.NS || type === RRType.CNAME || type === RRType.SOA || type === RRType.PTR ||
    type === RRType.MX || (type >= 3 && type <= 4) || (type >= 7 && type <= 9) || type === 14;
}

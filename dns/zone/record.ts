/** One resource record as loaded from a zone file. */
export interface ZoneRecord {
  /** canonical owner name (lowercase, absolute, see dns/wire/name.ts) */
  readonly owner: string;
  readonly type: number;
  readonly ttl: number;
  /** RDATA in uncompressed wire form; names inside it are lowercase-preserving as written */
  readonly rdata: Uint8Array;
  /** where it came from, for error messages */
  readonly file: string;
  readonly line: number;
}

/** A load error that names the file and line (or the file alone when line is 0). */
export class ZoneError extends Error {
  constructor(readonly file: string, readonly line: number, readonly reason: string) {
    super(line > 0 ? `${file}:${line}: ${reason}` : `${file}: ${reason}`);
    this.name = 'ZoneError';
  }
}

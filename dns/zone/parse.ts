/**
 * RFC 1035 §5 master-file parser (class IN only). One pass over the text: a tokenizer yields
 * logical lines (parentheses joined), and each becomes a directive or a ZoneRecord.
 */
import { canonicalName, labelsOf, NameError } from '../wire/name.js';
import { isMetaType, RRType, typeName, typeNumber } from '../wire/types.js';
import { parseRdata, parseTtl, RdataError, resolveName, type RdataToken } from './rdata.js';
import { ZoneError, type ZoneRecord } from './record.js';

class Token implements RdataToken {
  text = '';
  quoted = false;
}

/**
 * Splits master-file text into logical lines; throws ZoneError for quoting and parenthesis faults.
 * The current line is tokens[0, count); tokens are pooled and overwritten by the next call, which
 * keeps a 100k-record zone from allocating an object per token.
 */
class Tokenizer {
  private pos = 0;
  private line = 1;
  /** physical line where the current logical line starts */
  start = 0;
  /** the current line started with whitespace, so its owner is the previous one */
  blankOwner = false;
  readonly tokens: Token[] = [];
  count = 0;

  constructor(private readonly text: string, private readonly file: string) {}

  private push(text: string, quoted: boolean): void {
    let t = this.tokens[this.count];
    if (t === undefined) {
      t = new Token();
      this.tokens.push(t);
    }
    t.text = text;
    t.quoted = quoted;
    this.count++;
  }

  /** Advances to the next non-empty logical line; false at the end of the text. */
  next(): boolean {
    const text = this.text;
    const n = text.length;
    for (;;) {
      if (this.pos >= n) return false;
      const startLine = this.line;
      const c0 = text.charCodeAt(this.pos);
      this.count = 0;
      let depth = 0;
      let pos = this.pos;
      while (pos < n) {
        const c = text.charCodeAt(pos);
        if (c === 0x0a) {
          this.line++;
          pos++;
          if (depth === 0) break;
        } else if (c === 0x20 || c === 0x09 || c === 0x0d) {
          pos++;
        } else if (c === 0x3b) {
          const nl = text.indexOf('\n', pos);
          pos = nl < 0 ? n : nl;
        } else if (c === 0x28) {
          depth++;
          pos++;
        } else if (c === 0x29) {
          if (depth === 0) throw new ZoneError(this.file, startLine, 'unbalanced parenthesis (")" without "(")');
          depth--;
          pos++;
        } else if (c === 0x22) {
          const start = pos + 1;
          let p = start;
          for (;;) {
            if (p >= n) throw new ZoneError(this.file, startLine, 'unterminated quoted string');
            const q = text.charCodeAt(p);
            if (q === 0x22) break;
            if (q === 0x0a) throw new ZoneError(this.file, startLine, 'unterminated quoted string');
            if (q === 0x5c) {
              if (p + 1 < n && text.charCodeAt(p + 1) === 0x0a) {
                throw new ZoneError(this.file, startLine, 'unterminated quoted string');
              }
              p += 2;
            } else {
              p++;
            }
          }
          this.push(text.slice(start, p), true);
          pos = p + 1;
        } else {
          const start = pos;
          while (pos < n) {
            const d = text.charCodeAt(pos);
            if (d === 0x20 || d === 0x09 || d === 0x0a || d === 0x0d || d === 0x3b || d === 0x28 ||
              d === 0x29 || d === 0x22) break;
            // an escaped newline would silently join lines; leave the backslash dangling instead
            if (d === 0x5c && pos + 1 < n && text.charCodeAt(pos + 1) !== 0x0a) pos += 2;
            else pos++;
          }
          this.push(text.slice(start, pos), false);
        }
      }
      this.pos = pos;
      if (depth > 0) throw new ZoneError(this.file, startLine, 'unbalanced parenthesis ("(" never closed)');
      if (this.count > 0) {
        this.start = startLine;
        this.blankOwner = c0 === 0x20 || c0 === 0x09;
        return true;
      }
    }
  }
}

function isHostChar(c: number): boolean {
  const l = c | 0x20;
  return (l >= 0x61 && l <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f || c === 0x2a;
}

/**
 * Canonical owner for plain host names (letters, digits, `-`, `_`, `*`) without going through
 * labelsOf; undefined sends the name down the general path, which also reports the errors.
 */
function fastCanonical(text: string, originCanon: string, originWireLen: number): string | undefined {
  const n = text.length;
  let labelLen = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) {
      if (labelLen === 0) return undefined;
      labelLen = 0;
    } else if (!isHostChar(c) || ++labelLen > 63) {
      return undefined;
    }
  }
  const absolute = labelLen === 0;
  if ((absolute ? n + 1 : n + 1 + originWireLen) > 255) return undefined;
  const lower = text.toLowerCase();
  if (absolute) return lower;
  return originCanon === '.' ? lower + '.' : lower + '.' + originCanon;
}

function wireLength(name: string): number {
  let len = 1;
  for (const l of labelsOf(name)) len += l.length + 1;
  return len;
}

const OTHER_CLASSES = new Set(['CH', 'CHAOS', 'HS', 'HESIOD', 'NONE', 'ANY']);

/** 1 for IN, another class number or -1 for other class mnemonics, undefined when not a class. */
function classOf(text: string): number | undefined {
  if (text === 'IN' || text === 'in') return 1;
  const u = text.toUpperCase();
  if (u === 'IN') return 1;
  if (OTHER_CLASSES.has(u)) return -1;
  if (u.startsWith('CLASS') && u.length > 5 && u.length <= 10) {
    let v = 0;
    for (let i = 5; i < u.length; i++) {
      const c = u.charCodeAt(i);
      if (c < 0x30 || c > 0x39) return undefined;
      v = v * 10 + (c - 0x30);
    }
    return v;
  }
  return undefined;
}

/** Options for parseZoneText: `file` labels errors, `origin` is the initial $ORIGIN. */
export interface ParseZoneOptions {
  readonly file: string;
  readonly origin: string;
  /** initial $TTL, as if the file started with one */
  readonly defaultTtl?: number;
}

/**
 * Parses master-file text into records in file order; every fault is a ZoneError naming the line
 * where the offending entry starts. Owners are canonical; RDATA names keep their case.
 */
export function parseZoneText(text: string, opts: ParseZoneOptions): ZoneRecord[] {
  const file = opts.file;
  const tok = new Tokenizer(text, file);
  const records: ZoneRecord[] = [];

  let originText = '.';
  let originCanon = '.';
  let originWireLen = 1;
  const setOrigin = (absolute: string): void => {
    originCanon = canonicalName(absolute);
    originText = absolute;
    originWireLen = wireLength(absolute);
  };
  try {
    setOrigin(resolveName(opts.origin, '.'));
  } catch (e) {
    if (e instanceof NameError) throw new ZoneError(file, 0, `bad origin "${opts.origin}": ${e.message}`);
    throw e;
  }

  let defaultTtl = opts.defaultTtl;
  let lastTtl: number | undefined;
  let lastOwner: string | undefined;
  let cacheText = '';
  let cacheCanon = '';

  const ownerName = (t: RdataToken): string => {
    if (t.quoted) throw new RdataError(`expected an owner name, got a quoted string`);
    const s = t.text;
    if (s === '@') return originCanon;
    if (s === cacheText) return cacheCanon;
    let canon = fastCanonical(s, originCanon, originWireLen);
    if (canon === undefined) {
      try {
        canon = canonicalName(resolveName(s, originText));
      } catch (e) {
        if (e instanceof NameError) throw new RdataError(`bad owner name "${s}": ${e.message}`);
        throw e;
      }
    }
    cacheText = s;
    cacheCanon = canon;
    return canon;
  };

  const toks = tok.tokens;

  const directive = (): void => {
    const n = tok.count;
    const name = toks[0]!.text.toUpperCase();
    const arg = n > 1 ? toks[1] : undefined;
    switch (name) {
      case '$ORIGIN': {
        if (arg === undefined || arg.quoted) throw new RdataError('$ORIGIN needs a domain name');
        if (n > 2) throw new RdataError(`unexpected "${toks[2]!.text}" after $ORIGIN name`);
        try {
          setOrigin(resolveName(arg.text, originText));
        } catch (err) {
          if (err instanceof NameError) throw new RdataError(`bad $ORIGIN "${arg.text}": ${err.message}`);
          throw err;
        }
        cacheText = '';
        return;
      }
      case '$TTL': {
        if (arg === undefined || arg.quoted) throw new RdataError('$TTL needs a TTL (seconds or units like 1h)');
        if (n > 2) throw new RdataError(`unexpected "${toks[2]!.text}" after $TTL value`);
        defaultTtl = parseTtl(arg.text);
        return;
      }
      case '$INCLUDE':
        throw new RdataError('$INCLUDE is not supported');
      case '$GENERATE':
        throw new RdataError('$GENERATE is not supported');
      default:
        throw new RdataError(`unknown directive "${toks[0]!.text}" (expected $ORIGIN or $TTL)`);
    }
  };

  const record = (): void => {
    const n = tok.count;
    let i = 0;
    let owner: string;
    if (tok.blankOwner) {
      if (lastOwner === undefined) throw new RdataError('no owner name: the first record starts with whitespace');
      owner = lastOwner;
    } else {
      owner = ownerName(toks[0]!);
      i = 1;
    }

    let ttl: number | undefined;
    let sawClass = false;
    for (;;) {
      const t = i < n ? toks[i] : undefined;
      if (t === undefined) throw new RdataError('missing type (expected [TTL] [IN] TYPE RDATA after the owner)');
      if (t.quoted) break;
      const c0 = t.text.charCodeAt(0);
      if (c0 >= 0x30 && c0 <= 0x39) {
        if (ttl !== undefined) break;
        ttl = parseTtl(t.text);
        i++;
        continue;
      }
      if (sawClass) break;
      const cls = classOf(t.text);
      if (cls === undefined) break;
      if (cls !== 1) throw new RdataError(`class ${t.text.toUpperCase()} is not supported (only IN)`);
      sawClass = true;
      i++;
    }

    const typeTok = toks[i++]!;
    const type = typeTok.quoted ? undefined : typeNumber(typeTok.text);
    if (type === undefined) throw new RdataError(`unknown type "${typeTok.text}"`);
    if (type === 0) throw new RdataError('type 0 is reserved');
    if (isMetaType(type)) throw new RdataError(`meta type ${typeName(type)} is not allowed in a zone`);

    const rdata = parseRdata(type, toks, originText, i, n);

    if (ttl !== undefined) {
      lastTtl = ttl;
    } else if (defaultTtl !== undefined) {
      ttl = defaultTtl;
    } else if (lastTtl !== undefined) {
      ttl = lastTtl; // RFC 1035 §5.1: the last explicitly stated TTL
    } else if (type === RRType.SOA) {
      // BIND: with neither $TTL nor an earlier TTL, the SOA MINIMUM becomes the default
      const m = rdata.length - 4;
      ttl = ((rdata[m]! << 24) | (rdata[m + 1]! << 16) | (rdata[m + 2]! << 8) | rdata[m + 3]!) >>> 0;
      if (ttl > 0x7fffffff) ttl = 0x7fffffff;
      defaultTtl = ttl;
    } else {
      throw new RdataError('no TTL specified (add $TTL or a TTL on this record)');
    }

    lastOwner = owner;
    records.push({ owner, type, ttl, rdata, file, line: tok.start });
  };

  while (tok.next()) {
    try {
      const first = toks[0]!;
      if (!tok.blankOwner && !first.quoted && first.text.charCodeAt(0) === 0x24) directive();
      else record();
    } catch (err) {
      if (err instanceof RdataError || err instanceof NameError) throw new ZoneError(file, tok.start, err.message);
      throw err;
    }
  }
  return records;
}

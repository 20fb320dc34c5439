/**
 * Cheap, bounded looks at a report body's raw bytes, taken before anything parses it: which site
 * it claims (to pick the secret when an old agent sends no X-GSLB-Site header) and how deeply it
 * nests. Both walk the bytes once, without recursion and without allocating per byte, so an
 * unsigned body costs at most one linear pass, whatever its shape.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;

/** Deepest nesting a report may have; a report itself needs 3 (report, members, member). */
export const MAX_REPORT_DEPTH = 8;
/** Longest site name in bytes the scan returns (the schema allows 128 characters). */
const MAX_SITE_BYTES = 512;

/** Index of the closing quote of the string whose content starts at `i`, or -1. */
function stringEnd(b: Buffer, i: number): number {
  for (let k = i; k < b.length; k++) {
    const c = b[k]!;
    if (c === BACKSLASH) k++;
    else if (c === QUOTE) return k;
  }
  return -1;
}

function skipWs(b: Buffer, i: number): number {
  let k = i;
  while (k < b.length && (b[k] === 0x20 || b[k] === 0x09 || b[k] === 0x0a || b[k] === 0x0d)) k++;
  return k;
}

/**
 * The value of the top-level `"site"` key when it is a plain string (no escapes, at most 512
 * bytes); undefined when the body is not an object, has no such key, nests deeper than
 * MAX_REPORT_DEPTH before it, or is cut. The first `"site"` wins; the caller must check that the
 * parsed body names the same site.
 */
export function scanReportSite(b: Buffer): string | undefined {
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c === QUOTE) {
      const end = stringEnd(b, i + 1);
      if (end < 0) return undefined;
      if (depth === 1 && expectKey) {
        expectKey = false;
        if (end - i - 1 === 4 && b[i + 1] === 0x73 && b[i + 2] === 0x69 && b[i + 3] === 0x74 && b[i + 4] === 0x65) {
          let j = skipWs(b, end + 1);
          if (b[j] !== COLON) return undefined;
          j = skipWs(b, j + 1);
          if (b[j] !== QUOTE) return undefined;
          const vEnd = stringEnd(b, j + 1);
          if (vEnd < 0 || vEnd === j + 1 || vEnd - j - 1 > MAX_SITE_BYTES) return undefined;
          const raw = b.subarray(j + 1, vEnd);
          return raw.includes(BACKSLASH) ? undefined : raw.toString('utf8');
        }
      }
      i = end;
    } else if (c === LBRACE || c === LBRACKET) {
      if (depth === 0 && c !== LBRACE) return undefined;
      depth++;
      if (depth > MAX_REPORT_DEPTH) return undefined;
      expectKey = depth === 1;
    } else if (c === RBRACE || c === RBRACKET) {
      depth--;
      if (depth <= 0) return undefined;
    } else if (c === COMMA && depth === 1) {
      expectKey = true;
    }
  }
  return undefined;
}

/** Whether the JSON text in `b` opens more than `max` objects/arrays inside each other. */
export function jsonDepthExceeds(b: Buffer, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c === QUOTE) {
      const end = stringEnd(b, i + 1);
      if (end < 0) return false; // cut: JSON.parse says so
      i = end;
    } else if (c === LBRACE || c === LBRACKET) {
      if (++depth > max) return true;
    } else if (c === RBRACE || c === RBRACKET) {
      depth--;
    }
  }
  return false;
}

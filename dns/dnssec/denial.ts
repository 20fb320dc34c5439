/**
 * NSEC records synthesized per answer (online signing). Every NSEC is minimally covering: it
 * names the question (or, for a wildcard expansion, brackets the one name proved absent) and
 * the name right after it, so a resolver can neither walk the zone with them nor, by RFC 8198
 * aggressive use, deny a name that exists. Each answer needs one NSEC and one signature,
 * whatever the size of the zone: compact denial of existence (RFC 9824).
 */

/** RFC 9824 §2: the meta type in a compact-denial NSEC that says "this name does not exist". */
export const TYPE_NXNAME = 128;

const MAX_NAME = 255;
const MAX_LABEL = 63;

/** RFC 4034 §4.1.2: the type bit maps field for `types` (any order, duplicates allowed). */
export function typeBitmap(types: Iterable<number>): Uint8Array {
  const windows = new Map<number, Uint8Array>();
  for (const t of types) {
    const w = t >> 8;
    let bits = windows.get(w);
    if (!bits) { bits = new Uint8Array(32); windows.set(w, bits); }
    bits[(t & 0xff) >> 3]! |= 0x80 >> (t & 7);
  }
  const out: number[] = [];
  for (const w of [...windows.keys()].sort((a, b) => a - b)) {
    const bits = windows.get(w)!;
    let len = 32;
    while (len > 0 && bits[len - 1] === 0) len--;
    out.push(w, len, ...bits.subarray(0, len));
  }
  return Uint8Array.from(out);
}

/** NSEC RDATA: the next owner name (uncompressed wire) and the type bit maps. */
export function nsecRdata(nextWire: Uint8Array, types: Iterable<number>): Uint8Array {
  const bitmap = typeBitmap(types);
  const b = new Uint8Array(nextWire.length + bitmap.length);
  b.set(nextWire, 0);
  b.set(bitmap, nextWire.length);
  return b;
}

/** The name right after `wire` in canonical order: `\000.` prepended (RFC 4471 §3.1.2.1), or undefined when too long. */
export function immediateSuccessor(wire: Uint8Array): Uint8Array | undefined {
  if (wire.length + 2 > MAX_NAME) return undefined;
  const b = new Uint8Array(wire.length + 2);
  b[0] = 1;
  b.set(wire, 2);
  return b;
}

/** A label byte as canonical order compares it (lowercased). */
const canon = (c: number): number => (c >= 0x41 && c <= 0x5a ? c | 0x20 : c);

/**
 * The owner and next name of an NSEC that covers `label.parent` and everything below it, and no
 * other name a zone is likely to hold: owner a sibling just before it (its last octet one lower,
 * padded with \255 octets), next the sibling just after it (the label with \000 appended). Both
 * share only `parent` with the covered name, so a validator infers `parent` as the closest
 * encloser, as a wildcard proof needs (RFC 4035 §5.3.4). Undefined for labels where no such
 * bracket exists (a label of octet \000 alone).
 */
export function coveringPair(label: Uint8Array, parentWire: Uint8Array): { owner: Uint8Array; next: Uint8Array } | undefined {
  const room = Math.min(MAX_LABEL, MAX_NAME - parentWire.length - 1);
  const last = label[label.length - 1]!;
  let before: Uint8Array;
  if (last === 0) {
    if (label.length === 1) return undefined;
    before = label.subarray(0, label.length - 1);
  } else {
    let dec = canon(last) - 1;
    // an octet that reads as an upper-case letter would sort as its lower case
    if (dec >= 0x41 && dec <= 0x5a) dec = 0x40;
    before = new Uint8Array(Math.max(label.length, room));
    before.set(label.subarray(0, label.length - 1));
    before[label.length - 1] = dec;
    before.fill(0xff, label.length);
  }
  let after: Uint8Array;
  if (label.length < room) {
    after = new Uint8Array(label.length + 1);
    after.set(label);
  } else {
    if (canon(last) === 0xff) return undefined;
    after = Uint8Array.from(label);
    let inc = canon(last) + 1;
    if (inc >= 0x41 && inc <= 0x5a) inc = 0x5b;
    after[after.length - 1] = inc;
  }
  const join = (l: Uint8Array): Uint8Array => {
    const b = new Uint8Array(1 + l.length + parentWire.length);
    b[0] = l.length;
    b.set(l, 1);
    b.set(parentWire, 1 + l.length);
    return b;
  };
  return { owner: join(before), next: join(after) };
}

/**
 * RRSIG RDATA over an RRset (RFC 4034 §3.1.8.1, canonical form §6.2, order §6.3), with
 * node:crypto: ECDSA P-256 signatures as r||s (ieee-p1363, RFC 6605), Ed25519 (RFC 8080).
 */
import { sign } from 'node:crypto';
import { canonicalRdata } from '../zone/rdata.js';
import { ALG_ED25519 } from './keys.js';
import type { DnssecKey } from './keys.js';

/** An RRset to sign: owner in uncompressed wire form (any case), RDATA as stored. */
export interface SignInput {
  readonly ownerWire: Uint8Array;
  readonly type: number;
  readonly ttl: number;
  readonly rdatas: readonly Uint8Array[];
}

/** Labels of a wire name, not counting the root nor a leading `*` (RFC 4034 §3.1.3). */
export function rrsigLabels(wire: Uint8Array): number {
  let n = 0;
  for (let p = 0; wire[p] !== 0; p += 1 + wire[p]!) n++;
  return wire[0] === 1 && wire[1] === 0x2a ? n - 1 : n;
}

/** Lowercased copy of a wire name. */
function lowerWire(wire: Uint8Array): Uint8Array {
  const b = Uint8Array.from(wire);
  for (let p = 0; b[p] !== 0; p += 1 + b[p]!) {
    for (let i = p + 1; i <= p + b[p]!; i++) if (b[i]! >= 0x41 && b[i]! <= 0x5a) b[i]! |= 0x20;
  }
  return b;
}

/** The owner as signed: the name itself, or `*.` and its rightmost `labels` labels for a wildcard expansion. */
function signedOwner(lower: Uint8Array, labels: number): Uint8Array {
  let total = 0;
  const starts: number[] = [];
  for (let p = 0; lower[p] !== 0; p += 1 + lower[p]!) { starts.push(p); total++; }
  if (labels >= total - (lower[0] === 1 && lower[1] === 0x2a ? 1 : 0)) return lower;
  const tail = lower.subarray(starts[total - labels] ?? lower.length - 1);
  const b = new Uint8Array(2 + tail.length);
  b[0] = 1; b[1] = 0x2a;
  b.set(tail, 2);
  return b;
}

/** Validity of one signature, unix seconds. */
export interface Validity {
  readonly inception: number;
  readonly expiration: number;
}

/**
 * The RRSIG RDATA for `set` by `key`, signer `signerWire` (the zone, lowercase wire). `labels`
 * is the owner's label count, smaller for an answer synthesized from a wildcard.
 */
export function signRRset(set: SignInput, key: DnssecKey, signerWire: Uint8Array, validity: Validity, labels = rrsigLabels(set.ownerWire)): Uint8Array {
  const head = new Uint8Array(18 + signerWire.length);
  const dv = new DataView(head.buffer);
  dv.setUint16(0, set.type);
  head[2] = key.algorithm;
  head[3] = labels;
  dv.setUint32(4, set.ttl);
  dv.setUint32(8, validity.expiration >>> 0);
  dv.setUint32(12, validity.inception >>> 0);
  dv.setUint16(16, key.tag);
  head.set(signerWire, 18);
  const owner = signedOwner(lowerWire(set.ownerWire), labels);
  // RFC 4034 §6.3: sorted by canonical RDATA, duplicates removed
  const rdatas = set.rdatas.map((r) => canonicalRdata(set.type, r)).sort(Buffer.compare)
    .filter((r, i, a) => i === 0 || Buffer.compare(r, a[i - 1]!) !== 0);
  const parts: Uint8Array[] = [head];
  for (const rd of rdatas) {
    const fixed = new Uint8Array(10);
    const fv = new DataView(fixed.buffer);
    fv.setUint16(0, set.type);
    fv.setUint16(2, 1);
    fv.setUint32(4, set.ttl);
    fv.setUint16(8, rd.length);
    parts.push(owner, fixed, rd);
  }
  const data = Buffer.concat(parts);
  const sig = key.algorithm === ALG_ED25519
    ? sign(null, data, key.privateKey)
    : sign('sha256', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  return Buffer.concat([head, sig]);
}

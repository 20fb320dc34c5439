/**
 * Signed replies (DO=1 to a signed zone): the reply answer.ts decided, with an RRSIG after every
 * authoritative RRset and compact denial (RFC 9824) for negative answers and referrals.
 */
import { RCode, RRType } from '../wire/types.js';
import type { Reply, WireRRset } from '../wire/response.js';
import { isInZone, labelCount, labelsOf, nameToWire, parentName, readUncompressedName } from '../wire/name.js';
import { findCut, wildcardFor } from '../zone/lookup.js';
import type { OutRRset } from '../zone/lookup.js';
import type { Zone } from '../zone/zone.js';
import type { PoolConfig } from '../gslb/model.js';
import { TYPE_NXNAME, coveringPair, immediateSuccessor, nsecRdata } from './denial.js';
import type { Signing, ZoneKeys } from './signer.js';

/** What signing a reply needs besides the reply: the zone, its keys, the question, the GSLB names. */
export interface SignContext {
  readonly signing: Signing;
  readonly zone: Zone;
  readonly keys: ZoneKeys;
  /** canonical question name and type */
  readonly qname: string;
  readonly qtype: number;
  readonly pools: ReadonlyMap<string, PoolConfig> | undefined;
  /** lowered to the time (unix ms) until which the signed reply may be reused */
  readonly until: { value: number };
}

/**
 * The signed form of `reply`, an answer of `ctx.zone` to `ctx.qname`. `kind` is the lookup
 * result's kind ('pool' answers: 'answer', or 'nodata' when the pool gave nothing).
 */
export function signReply(reply: Reply, kind: 'answer' | 'nodata' | 'nxdomain' | 'delegation', ctx: SignContext): Reply {
  if (reply.rcode !== RCode.NOERROR && reply.rcode !== RCode.NXDOMAIN) return reply;
  const answer = signSets(reply.answer, ctx);
  const authority: WireRRset[] = [];
  for (const s of reply.authority) {
    if (s.type === RRType.NS && !sameOwner(s, ctx.keys.signerWire)) {
      // a referral: the NS set is the child's, unsigned; the DS (or the proof there is none) is ours
      authority.push(s, ...delegationProof(s.ownerWire, ctx));
    } else {
      authority.push(s, ctx.signing.rrsig(ctx.keys, s, ctx.until));
    }
  }
  // a wildcard expansion is valid only with proof that the name itself does not exist
  for (const s of reply.answer) if ((s as OutRRset).wildcard !== undefined) authority.push(...wildcardProof(s as OutRRset, ctx));
  if (kind === 'nodata' || kind === 'nxdomain') authority.push(...denialOf(lastName(reply.answer, ctx.qname), kind, ctx));
  const additional = signSets(reply.additional, ctx, true);
  return { ...reply, rcode: RCode.NOERROR, answer, authority, additional };
}

/** Each set followed by its RRSIG; with `skipGlue`, sets at or below a cut stay unsigned (they are the child's). */
function signSets(sets: readonly WireRRset[], ctx: SignContext, skipGlue = false): WireRRset[] {
  const out: WireRRset[] = [];
  for (const s of sets) {
    out.push(s);
    if (skipGlue && isGlue(s.ownerWire, ctx.zone)) continue;
    const w = (s as OutRRset).wildcard;
    out.push(ctx.signing.rrsig(ctx.keys, s, ctx.until, w === undefined ? undefined : labelCount(w) - 1));
  }
  return out;
}

function isGlue(ownerWire: Uint8Array, zone: Zone): boolean {
  const name = readUncompressedName(ownerWire, 0).name;
  return !isInZone(name, zone.origin) || findCut(zone, name) !== undefined;
}

function sameOwner(s: WireRRset, wire: Uint8Array): boolean {
  return readUncompressedName(s.ownerWire, 0).name === readUncompressedName(wire, 0).name;
}

/** The name the answer ends at: the last CNAME's target, or the question. */
function lastName(answer: readonly WireRRset[], qname: string): string {
  for (let i = answer.length - 1; i >= 0; i--) {
    const s = answer[i]!;
    if (s.type === RRType.CNAME) return readUncompressedName(s.rdatas[0]!, 0).name;
  }
  return qname;
}

/** The types that exist at `name` (its own sets, the GSLB pool's families, or the wildcard's that covers it), with RRSIG and NSEC. */
function typesAt(name: string, ctx: SignContext, without?: number): number[] {
  const node = ctx.zone.nodes.get(name) ?? wildcardFor(ctx.zone, name);
  const types = new Set<number>([RRType.RRSIG, RRType.NSEC]);
  for (const s of node?.sets ?? []) types.add(s.type);
  const pool = ctx.pools?.get(name);
  if (pool) {
    const fallback = pool.allDown.kind === 'pool';
    if (fallback || pool.members.some((m) => m.family === 4)) types.add(RRType.A);
    if (fallback || pool.members.some((m) => m.family === 6)) types.add(RRType.AAAA);
  }
  if (without !== undefined) types.delete(without);
  return [...types];
}

/** A signed NSEC at `ownerWire`, its TTL the negative TTL (RFC 9077). */
function nsec(ownerWire: Uint8Array, nextWire: Uint8Array, types: readonly number[], ctx: SignContext, perQuestion: boolean): WireRRset[] {
  const set: WireRRset = { ownerWire, type: RRType.NSEC, ttl: ctx.zone.negativeTtl, rdatas: [nsecRdata(nextWire, types)] };
  return [set, ctx.signing.rrsig(ctx.keys, set, ctx.until, undefined, perQuestion)];
}

/**
 * Compact denial at `name`: an NSEC from the name to its immediate successor. For a name that
 * does not exist it lists RRSIG, NSEC and NXNAME (RFC 9824 §3.1), which is how the client tells
 * NXDOMAIN from NODATA now that both are NOERROR; for NODATA, the types the name has.
 */
function denialOf(name: string, kind: 'nodata' | 'nxdomain', ctx: SignContext): WireRRset[] {
  const ownerWire = nameToWire(name);
  const next = immediateSuccessor(ownerWire);
  if (next === undefined) return [];
  const types = kind === 'nxdomain' ? [RRType.RRSIG, RRType.NSEC, TYPE_NXNAME] : typesAt(name, ctx, ctx.qtype);
  // the NODATA of a name in the zone is asked again and again; an invented name's is not
  return nsec(ownerWire, next, types, ctx, kind === 'nxdomain' || !ctx.zone.nodes.has(name));
}

/** The DS RRset at a cut with its RRSIG, or an NSEC at the cut proving there is none (an insecure delegation). */
function delegationProof(cutWire: Uint8Array, ctx: SignContext): WireRRset[] {
  const cut = readUncompressedName(cutWire, 0).name;
  const ds = ctx.zone.nodes.get(cut)?.rrset(RRType.DS);
  if (ds) return [ds, ctx.signing.rrsig(ctx.keys, ds, ctx.until)];
  const next = immediateSuccessor(cutWire);
  return next === undefined ? [] : nsec(cutWire, next, typesAt(cut, ctx), ctx, false);
}

/** For an RRset synthesized from `*.ce`: an NSEC covering the next closer name (ce plus one label of the owner). */
function wildcardProof(s: OutRRset, ctx: SignContext): WireRRset[] {
  const owner = readUncompressedName(s.ownerWire, 0).name;
  const ce = parentName(s.wildcard!)!;
  let nc = owner;
  while (parentName(nc) !== ce) nc = parentName(nc)!;
  const pair = coveringPair(labelsOf(nc)[0]!, nameToWire(ce));
  if (pair === undefined) return [];
  const ownerName = readUncompressedName(pair.owner, 0).name;
  const types = ctx.zone.nodes.has(ownerName) ? typesAt(ownerName, ctx) : [RRType.RRSIG, RRType.NSEC];
  return nsec(pair.owner, pair.next, types, ctx, true);
}

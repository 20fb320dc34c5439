/**
 * A loaded Zone as two ArrayBuffers, so that a worker thread can build it and hand it over by
 * transfer (no copy, no structured clone of 100,000 objects), and the serving thread adopts it
 * in constant time: the names are found through an open-addressing hash table built by the
 * worker, and a node is materialized (ZoneNode, RRsets, RDATA as views into the buffer) the
 * first time a lookup asks for it. Adopting a big zone therefore allocates next to nothing on
 * the serving thread (no long scavenge copying a fresh tree).
 *
 * Node buffer (big-endian): magic u32, serial u32, negativeTtl u32, recordCount u32, nodeCount u32;
 * per node: name length u16, name (UTF-8), set count u16, then if sets: owner wire length u16,
 * owner wire; per set: type u16, ttl u32, rdata count u32, per rdata: length u16, bytes.
 * Table: Int32Array, a power of two at least twice the node count; slot = node offset + 1, 0 empty;
 * linear probing from hashName(name).
 */
import { RRType } from '../wire/types.js';
import { ZoneNode } from './zone.js';
import type { BuiltZone, NodeIndex, RRset, Zone } from './zone.js';

const MAGIC = 0x5a4e4531; // "ZNE1"
const HEADER = 20;

/** The zone's buffers, both transferable. */
export interface EncodedZone {
  readonly nodes: ArrayBuffer;
  readonly table: ArrayBuffer;
}

/** FNV-1a over the UTF-16 code units (the same on both threads). */
export function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Encodes a zone (the worker side). */
export function encodeZone(zone: BuiltZone): EncodedZone {
  const enc = new TextEncoder();
  const names: Uint8Array[] = [];
  let size = HEADER;
  for (const node of zone.nodes.values()) {
    const name = enc.encode(node.name);
    names.push(name);
    size += 2 + name.length + 2;
    if (node.sets.length) size += 2 + node.sets[0]!.ownerWire.length;
    for (const s of node.sets) {
      size += 10;
      for (const r of s.rdatas) size += 2 + r.length;
    }
  }
  let slots = 16;
  while (slots < zone.nodes.size * 2) slots *= 2;
  const table = new Int32Array(slots);
  const buf = new ArrayBuffer(size);
  const dv = new DataView(buf);
  const bytes = new Uint8Array(buf);
  dv.setUint32(0, MAGIC);
  dv.setUint32(4, zone.serial);
  dv.setUint32(8, zone.negativeTtl);
  dv.setUint32(12, zone.recordCount);
  dv.setUint32(16, zone.nodes.size);
  let o = HEADER;
  let i = 0;
  for (const node of zone.nodes.values()) {
    let slot = hashName(node.name) & (slots - 1);
    while (table[slot] !== 0) slot = (slot + 1) & (slots - 1);
    table[slot] = o + 1;
    const name = names[i++]!;
    dv.setUint16(o, name.length); o += 2;
    bytes.set(name, o); o += name.length;
    dv.setUint16(o, node.sets.length); o += 2;
    if (node.sets.length) {
      const w = node.sets[0]!.ownerWire;
      dv.setUint16(o, w.length); o += 2;
      bytes.set(w, o); o += w.length;
    }
    for (const s of node.sets) {
      dv.setUint16(o, s.type); o += 2;
      dv.setUint32(o, s.ttl); o += 4;
      dv.setUint32(o, s.rdatas.length); o += 4;
      for (const r of s.rdatas) {
        dv.setUint16(o, r.length); o += 2;
        bytes.set(r, o); o += r.length;
      }
    }
  }
  return { nodes: buf, table: table.buffer };
}

/** The names of an encoded zone; a node is built on first use and kept. */
class EncodedNodes implements NodeIndex {
  private readonly dv: DataView;
  private readonly bytes: Uint8Array;
  private readonly text: Buffer;
  private readonly table: Int32Array;
  private readonly mask: number;
  private readonly built = new Map<string, ZoneNode>();
  readonly size: number;

  constructor(buf: ArrayBuffer, table: ArrayBuffer) {
    this.dv = new DataView(buf);
    this.bytes = new Uint8Array(buf);
    this.text = Buffer.from(buf);
    this.table = new Int32Array(table);
    this.mask = this.table.length - 1;
    this.size = this.dv.getUint32(16);
  }

  get(name: string): ZoneNode | undefined {
    const hit = this.built.get(name);
    if (hit) return hit;
    const at = this.find(name);
    if (at < 0) return undefined;
    const node = this.materialize(name, at);
    this.built.set(name, node);
    return node;
  }

  has(name: string): boolean {
    return this.built.has(name) || this.find(name) >= 0;
  }

  /** The offset of the node named `name`, or -1. */
  private find(name: string): number {
    const { table, mask, dv, bytes } = this;
    for (let slot = hashName(name) & mask; ; slot = (slot + 1) & mask) {
      const v = table[slot]!;
      if (v === 0) return -1;
      const at = v - 1;
      const len = dv.getUint16(at);
      if (len === name.length) {
        let same = true;
        for (let i = 0; i < len; i++) {
          const c = name.charCodeAt(i);
          if (c >= 0x80) { same = this.text.toString('utf8', at + 2, at + 2 + len) === name; break; }
          if (bytes[at + 2 + i] !== c) { same = false; break; }
        }
        if (same) return at;
      } else if (len > name.length && this.text.toString('utf8', at + 2, at + 2 + len) === name) {
        return at; // non-ASCII: more bytes than code units
      }
    }
  }

  private materialize(name: string, at: number): ZoneNode {
    const { dv, bytes } = this;
    let o = at + 2 + dv.getUint16(at);
    const node = new ZoneNode(name);
    const setCount = dv.getUint16(o); o += 2;
    if (setCount === 0) return node;
    const wl = dv.getUint16(o); o += 2;
    const ownerWire = bytes.subarray(o, o + wl); o += wl;
    for (let s = 0; s < setCount; s++) {
      const type = dv.getUint16(o); o += 2;
      const ttl = dv.getUint32(o); o += 4;
      const count = dv.getUint32(o); o += 4;
      const rdatas: Uint8Array[] = new Array<Uint8Array>(count);
      for (let k = 0; k < count; k++) {
        const len = dv.getUint16(o); o += 2;
        rdatas[k] = bytes.subarray(o, o + len); o += len;
      }
      const set: RRset = { owner: name, ownerWire, type, ttl, rdatas };
      node.sets.push(set);
    }
    return node;
  }
}

/** Adopts the zone encoded by encodeZone (the serving side): constant time, nothing copied. */
export function decodeZone(encoded: EncodedZone, origin: string, file: string): Zone {
  const dv = new DataView(encoded.nodes);
  if (encoded.nodes.byteLength < HEADER || dv.getUint32(0) !== MAGIC) throw new Error('not an encoded zone');
  const nodes = new EncodedNodes(encoded.nodes, encoded.table);
  const soa = nodes.get(origin)?.rrset(RRType.SOA);
  if (!soa) throw new Error(`encoded zone ${origin} has no SOA`);
  return { origin, file, nodes, soa, negativeTtl: dv.getUint32(8), serial: dv.getUint32(4), recordCount: dv.getUint32(12) };
}

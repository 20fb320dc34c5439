/**
 * The negative budget of the reply cache: compiled replies that clients can multiply by inventing
 * names (see CacheBudget in engine.ts), in memory allocated once. Reply bytes go into a ring of
 * `bytes` bytes, written in order and overwritten oldest first; an index of `entries` slots (two
 * candidate slots per hash) finds them. Nothing is allocated per entry, so churn creates no
 * garbage: a flood that passes the admission only overwrites the oldest negative replies, and the
 * process's memory stays what it was at start.
 *
 * Admission: a key is stored only when it is asked for the second time while its doorkeeper slot
 * (one of DOOR_SLOTS, by hash) still holds it, so a name asked once is never stored.
 */
export class NegativeReplies {
  /** the ring of reply bytes; an entry's question name is stored lowercased */
  readonly arena: Uint8Array;
  private readonly keys: Uint32Array;
  private readonly types: Uint16Array;
  private readonly lens: Uint32Array;
  /** the RRL response class of each entry (rrl.ts), so a negative hit is limited like a miss */
  private readonly classes: Int32Array;
  /** absolute ring position of the entry's first byte (offset = pos % arena.length), -1: empty */
  private readonly pos: Float64Array;
  private readonly mask: number;
  private readonly door = new Uint32Array(DOOR_SLOTS);
  /** absolute position of the next write; entries before head - arena.length are overwritten */
  private head = 0;

  constructor(entries: number, bytes: number) {
    let slots = 2;
    while (slots < entries) slots *= 2;
    this.mask = slots - 1;
    this.arena = new Uint8Array(bytes);
    this.keys = new Uint32Array(slots);
    this.types = new Uint16Array(slots);
    this.lens = new Uint32Array(slots);
    this.classes = new Int32Array(slots);
    this.pos = new Float64Array(slots).fill(-1);
  }

  /** True when this hash was the last one seen in its doorkeeper slot (then it may be stored). */
  admit(hash: number): boolean {
    const slot = hash >>> (32 - DOOR_BITS);
    if (this.door[slot] === hash) return true;
    this.door[slot] = hash;
    return false;
  }

  /** The slot of the reply to this question (name at buf[off], `qnameLen` bytes), or -1. */
  find(hash: number, qtype: number, buf: Uint8Array, off: number, qnameLen: number): number {
    const first = hash & this.mask & ~1;
    for (let s = first; s <= first + 1; s++) {
      if (this.keys[s] === hash && this.types[s] === qtype && this.live(s) && sameName(buf, off, this.arena, this.offsetOf(s) + 12, qnameLen)) return s;
    }
    return -1;
  }

  offsetOf(slot: number): number {
    return this.pos[slot]! % this.arena.length;
  }

  lengthOf(slot: number): number {
    return this.lens[slot]!;
  }

  classOf(slot: number): number {
    return this.classes[slot]!;
  }

  /** Stores src[0, n), a reply whose question name is `qnameLen` bytes at 12; too big for the ring: not stored. */
  set(hash: number, qtype: number, src: Uint8Array, n: number, qnameLen: number, cls: number): void {
    const size = this.arena.length;
    if (n > size) return;
    const first = hash & this.mask & ~1;
    const a = first;
    const b = first + 1;
    // the same key, else an empty or overwritten slot, else the older entry
    let s: number;
    if (this.keys[a] === hash && this.types[a] === qtype) s = a;
    else if (this.keys[b] === hash && this.types[b] === qtype) s = b;
    else if (!this.live(a)) s = a;
    else if (!this.live(b)) s = b;
    else s = this.pos[a]! <= this.pos[b]! ? a : b;
    // an entry never wraps: skip the ring's tail when it does not fit there
    if ((this.head % size) + n > size) this.head += size - (this.head % size);
    const at = this.head % size;
    this.arena.set(src.subarray(0, n), at);
    lowerName(this.arena, at + 12, qnameLen);
    this.keys[s] = hash;
    this.types[s] = qtype;
    this.lens[s] = n;
    this.classes[s] = cls;
    this.pos[s] = this.head;
    this.head += n;
  }

  /** Forgets every entry (zone reload). */
  clear(): void {
    this.pos.fill(-1);
    this.door.fill(0);
    this.head = 0;
  }

  /** Live entries and their bytes (a scan of the index: for metrics, not per query). */
  size(): { entries: number; bytes: number } {
    let entries = 0;
    let bytes = 0;
    for (let s = 0; s <= this.mask; s++) {
      if (this.live(s)) { entries++; bytes += this.lens[s]!; }
    }
    return { entries, bytes };
  }

  private live(s: number): boolean {
    const p = this.pos[s]!;
    return p >= 0 && p >= this.head - this.arena.length;
  }
}

const DOOR_BITS = 16;
/** doorkeeper slots: the last hash seen per slot (256 KiB) */
const DOOR_SLOTS = 1 << DOOR_BITS;

/** Lowercases (ASCII) the `n` bytes of a wire name at bytes[at]; label lengths (< 64) are untouched. */
export function lowerName(bytes: Uint8Array, at: number, n: number): void {
  for (let i = at, end = at + n; i < end; i++) {
    const c = bytes[i]!;
    if (c >= 0x41 && c <= 0x5a) bytes[i] = c | 0x20;
  }
}

/** Compares the question name in the packet with `n` bytes of a lowercased wire name at lower[at], ignoring ASCII case. */
export function sameName(buf: Uint8Array, off: number, lower: Uint8Array, at: number, n: number): boolean {
  if (off + n > buf.length || at + n > lower.length || buf[off + n - 1] !== 0 || lower[at + n - 1] !== 0) return false;
  for (let i = 0; i < n; i++) {
    let c = buf[off + i]!;
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== lower[at + i]) return false;
  }
  return true;
}

/**
 * The loader process's replies on a byte stream (a pipe beside the IPC channel): a zone goes
 * through as raw bytes that the serving thread copies, 64 KiB at a time as the pipe delivers
 * them, straight into the two ArrayBuffers it adopts. Structured clone over IPC would instead
 * join and deserialize the whole ~9 MB at once on the serving thread (measured 10-60 ms).
 *
 * Frame: id u32, JSON length u32, nodes length u32, table length u32 (big-endian), then the JSON
 * (the reply without the buffers), the node buffer and the table.
 */
import type { LoadReply } from './load-worker.js';

const HEAD = 16;

/** The loader process's descriptor for replies (stdio: ignore, inherit, inherit, ipc, pipe). */
export const REPLY_FD = 4;

/** The pieces to write for `reply`, in order. */
export function frameReply(reply: LoadReply): Uint8Array[] {
  const { encoded, ...rest } = reply.ok ? reply : { ...reply, encoded: undefined };
  const json = Buffer.from(JSON.stringify(rest));
  const nodes = encoded ? new Uint8Array(encoded.nodes) : new Uint8Array(0);
  const table = encoded ? new Uint8Array(encoded.table) : new Uint8Array(0);
  const head = Buffer.alloc(HEAD);
  head.writeUInt32BE(reply.id, 0);
  head.writeUInt32BE(json.length, 4);
  head.writeUInt32BE(nodes.length, 8);
  head.writeUInt32BE(table.length, 12);
  return [head, json, nodes, table];
}

/** Reads frames from chunks as they come; `onReply` gets each whole reply. */
export class ReplyFrameReader {
  private readonly head = new Uint8Array(HEAD);
  private headFill = 0;
  /** the frame being filled: its parts, the part and offset reached */
  private parts: Uint8Array[] | undefined;
  private part = 0;
  private at = 0;

  constructor(private readonly onReply: (r: LoadReply) => void) {}

  push(chunk: Uint8Array): void {
    let o = 0;
    while (o < chunk.length) {
      if (!this.parts) {
        const n = Math.min(HEAD - this.headFill, chunk.length - o);
        this.head.set(chunk.subarray(o, o + n), this.headFill);
        this.headFill += n;
        o += n;
        if (this.headFill < HEAD) return;
        const dv = new DataView(this.head.buffer);
        this.parts = [new Uint8Array(dv.getUint32(4)), new Uint8Array(dv.getUint32(8)), new Uint8Array(dv.getUint32(12))];
        this.part = 0;
        this.at = 0;
      } else {
        const dst = this.parts[this.part]!;
        const n = Math.min(dst.length - this.at, chunk.length - o);
        dst.set(chunk.subarray(o, o + n), this.at);
        this.at += n;
        o += n;
      }
      this.finishParts();
    }
  }

  /** Moves past filled parts; delivers the frame when all are. */
  private finishParts(): void {
    const parts = this.parts;
    if (!parts) return;
    while (this.part < parts.length && this.at === parts[this.part]!.length) { this.part++; this.at = 0; }
    if (this.part < parts.length) return;
    this.parts = undefined;
    this.headFill = 0;
    const [json, nodes, table] = parts as [Uint8Array, Uint8Array, Uint8Array];
    const rest = JSON.parse(Buffer.from(json.buffer, json.byteOffset, json.length).toString('utf8')) as LoadReply;
    this.onReply(rest.ok ? { ...rest, encoded: { nodes: nodes.buffer as ArrayBuffer, table: table.buffer as ArrayBuffer } } : rest);
  }
}

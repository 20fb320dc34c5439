/**
 * The zone loader of zone-worker.ts, run as a child process (the default) or a worker thread:
 * reads, parses, checks and builds one zone file per request, and hands the zone back as two
 * buffers (transfer.ts), or the ZoneError.
 *
 * As a process it lowers the priority of all its threads, V8's garbage-collector helpers
 * included: a worker thread shares those helpers with the serving thread, and they run the
 * parse's collections at normal priority (measured: ~250 ms of CPU per 100,000-record reload
 * beside ~300 ms on the worker thread itself, which on two cores is what blocked the event loop).
 */
import { readdirSync } from 'node:fs';
import { Socket } from 'node:net';
import os from 'node:os';
import { parentPort } from 'node:worker_threads';
import { loadZoneFile } from './load.js';
import { ZoneError } from './record.js';
import { frameReply, REPLY_FD } from './reply-frame.js';
import { encodeZone } from './transfer.js';
import type { EncodedZone } from './transfer.js';

/** A request: load `file`. */
export interface LoadRequest { readonly id: number; readonly file: string }
/** The answer: the encoded zone with its origin, or the error. */
export type LoadReply =
  | { readonly id: number; readonly ok: true; readonly origin: string; readonly encoded: EncodedZone }
  | { readonly id: number; readonly ok: false; readonly file: string; readonly line: number; readonly reason: string };

/** Nice 19 for every thread of this process (Linux: per thread), else for the calling thread. */
function lowerPriority(allThreads: boolean): void {
  let tids: number[] = [0];
  if (allThreads) {
    try { tids = readdirSync('/proc/self/task').map(Number); } catch { /* not Linux: this thread only */ }
  }
  // threads started later (libuv's pool) inherit the value of the thread that starts them
  for (const tid of tids) {
    try { os.setPriority(tid, 19); } catch { /* not permitted here: parse at normal priority */ }
  }
}

async function load(req: LoadRequest): Promise<{ reply: LoadReply; transfer: ArrayBuffer[] }> {
  try {
    const zone = await loadZoneFile(req.file);
    const encoded = encodeZone(zone);
    return { reply: { id: req.id, ok: true, origin: zone.origin, encoded }, transfer: [encoded.nodes, encoded.table] };
  } catch (err) {
    const e = err instanceof ZoneError ? err : new ZoneError(req.file, 0, String(err));
    return { reply: { id: req.id, ok: false, file: e.file, line: e.line, reason: e.reason }, transfer: [] };
  }
}

const port = parentPort;
if (port) {
  lowerPriority(false);
  port.on('message', (req: LoadRequest) => {
    void load(req).then(({ reply, transfer }) => port.postMessage(reply, transfer));
  });
} else if (process.send) {
  lowerPriority(true);
  // requests come over IPC; replies go out on REPLY_FD (reply-frame.ts)
  const out = new Socket({ fd: REPLY_FD, readable: false, writable: true });
  process.on('message', (req: LoadRequest) => {
    void load(req).then(({ reply }) => { for (const piece of frameReply(reply)) out.write(piece); });
  });
  // the serving process is gone (or closed the channel): nothing more to do
  process.on('disconnect', () => process.exit(0));
}

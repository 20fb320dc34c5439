/**
 * The worker thread of zone-worker.ts: reads, parses, checks and builds one zone file per
 * request, and hands the zone back as one transferred buffer (transfer.ts), or the ZoneError.
 */
import os from 'node:os';
import { parentPort } from 'node:worker_threads';
import { loadZoneFile } from './load.js';
import { ZoneError } from './record.js';
import { encodeZone } from './transfer.js';
import type { EncodedZone } from './transfer.js';

/** A request: load `file`. */
export interface LoadRequest { readonly id: number; readonly file: string }
/** The answer: the encoded zone with its origin, or the error. */
export type LoadReply =
  | { readonly id: number; readonly ok: true; readonly origin: string; readonly encoded: EncodedZone }
  | { readonly id: number; readonly ok: false; readonly file: string; readonly line: number; readonly reason: string };

const port = parentPort;
if (port) {
  // Linux nice values are per thread: parsing yields the CPU to the serving thread
  try { os.setPriority(19); } catch { /* not permitted here: parse at normal priority */ }
  port.on('message', (req: LoadRequest) => {
    loadZoneFile(req.file).then((zone) => {
      const encoded = encodeZone(zone);
      const reply: LoadReply = { id: req.id, ok: true, origin: zone.origin, encoded };
      port.postMessage(reply, [encoded.nodes, encoded.table]);
    }, (err: unknown) => {
      const e = err instanceof ZoneError ? err : new ZoneError(req.file, 0, String(err));
      const reply: LoadReply = { id: req.id, ok: false, file: e.file, line: e.line, reason: e.reason };
      port.postMessage(reply);
    });
  });
}

/**
 * Zone files parsed off the serving thread: one worker thread (started on first use) reads,
 * parses and builds a zone; this thread adopts it in constant time (transfer.ts), so that loading a
 * big zone keeps the event loop responsive. Errors come back as the same ZoneError (file:line: reason).
 */
import { Worker } from 'node:worker_threads';
import { ZoneError } from './record.js';
import { decodeZone } from './transfer.js';
import type { Zone } from './zone.js';
import type { LoadReply, LoadRequest } from './load-worker.js';

export interface ZoneWorker {
  /** loads one zone file in the worker; rejects with ZoneError */
  loadFile(file: string): Promise<Zone>;
  /** ends the worker (a later loadFile starts another) */
  close(): Promise<void>;
}

/** Creates the loader; `workerUrl` is the compiled load-worker.js (the default: beside this file). */
export function createZoneWorker(workerUrl: URL = new URL('./load-worker.js', import.meta.url)): ZoneWorker {
  let worker: Worker | undefined;
  let nextId = 1;
  const waiting = new Map<number, { resolve: (r: LoadReply) => void; reject: (e: Error) => void }>();
  const failAll = (err: Error): void => {
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
  };
  const start = (): Worker => {
    const w = new Worker(workerUrl);
    w.unref();
    w.on('message', (r: LoadReply) => {
      const p = waiting.get(r.id);
      waiting.delete(r.id);
      p?.resolve(r);
    });
    w.on('error', (err) => { failAll(err); if (worker === w) worker = undefined; });
    w.on('exit', (code) => { failAll(new Error(`zone worker exited with code ${code}`)); if (worker === w) worker = undefined; });
    return w;
  };
  return {
    async loadFile(file) {
      worker ??= start();
      const id = nextId++;
      const reply = await new Promise<LoadReply>((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        const req: LoadRequest = { id, file };
        worker!.postMessage(req);
      });
      if (!reply.ok) throw new ZoneError(reply.file, reply.line, reply.reason);
      return decodeZone(reply.encoded, reply.origin, file);
    },
    async close() {
      const w = worker;
      worker = undefined;
      if (w) await w.terminate();
    },
  };
}

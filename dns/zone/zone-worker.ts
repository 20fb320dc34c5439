/**
 * Zone files parsed off the serving thread: a child process (or, for comparison, a worker
 * thread), started on first use, reads, parses and builds a zone; this thread adopts it in
 * constant time (transfer.ts), so that loading a big zone keeps the event loop responsive.
 * Errors come back as the same ZoneError (file:line: reason).
 *
 * A process by default, because a worker thread shares V8's garbage-collector helper threads with
 * the serving thread, and cannot lower their priority (load-worker.ts). The process costs one
 * copy of the two buffers through a pipe, in 64 KiB pieces (reply-frame.ts).
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import os from 'node:os';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { systemClock, unrefTimer } from '../../shared/clock.js';
import type { TimerHandle, Timers } from '../../shared/clock.js';
import { ZoneError } from './record.js';
import { decodeZone } from './transfer.js';
import type { Zone } from './zone.js';
import type { LoadReply, LoadRequest } from './load-worker.js';
import { REPLY_FD, ReplyFrameReader } from './reply-frame.js';

export interface ZoneWorker {
  /** loads one zone file in the worker; rejects with ZoneError */
  loadFile(file: string): Promise<Zone>;
  /** whether a loader is started (it ends when idle, see createZoneWorker) */
  readonly running: boolean;
  /** ends the worker now (a later loadFile starts another) */
  close(): Promise<void>;
}

/** Where the loader runs. */
export type ZoneWorkerKind = 'process' | 'thread';

/** What a loader is to this side: send a request, keep it alive while one is pending, end it. */
interface Channel {
  send(req: LoadRequest): void;
  ref(): void;
  unref(): void;
  end(): Promise<void>;
}

type Handlers = { message: (r: LoadReply) => void; failed: (err: Error) => void };

function startThread(url: URL, h: Handlers): Channel {
  const w = new Worker(url);
  w.on('message', h.message);
  w.on('error', h.failed);
  w.on('exit', (code) => h.failed(new Error(`zone worker exited with code ${code}`)));
  return {
    send: (req) => w.postMessage(req),
    ref: () => w.ref(),
    unref: () => w.unref(),
    end: async () => { w.ref(); await w.terminate(); },
  };
}

function startProcess(url: URL, h: Handlers): Channel {
  // no inherited flags (--cpu-prof, --inspect of the server): the loader is a plain node
  const child: ChildProcess = fork(fileURLToPath(url), [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'] });
  // at once, so that node's start-up in the child (and the threads it starts) runs at nice 19 too
  // (measured: the first reload after an idle stop blocked 41 ms without this; the child lowers
  // any thread this misses itself)
  try { if (child.pid !== undefined) os.setPriority(child.pid, 19); } catch { /* not permitted: the child does it */ }
  const replies = child.stdio[REPLY_FD] as Readable;
  const reader = new ReplyFrameReader(h.message);
  replies.on('data', (chunk: Buffer) => reader.push(chunk));
  child.on('error', h.failed);
  child.on('exit', (code, sig) => h.failed(new Error(`zone worker exited with ${code ?? sig}`)));
  return {
    send: (req) => child.send(req),
    ref: () => { child.ref(); child.channel?.ref(); (replies as Socket).ref(); },
    unref: () => { child.unref(); child.channel?.unref(); (replies as Socket).unref(); },
    end: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) { resolve(); return; }
      child.once('exit', () => resolve());
      child.ref(); // waited for: the process must not end (exit 13) with this pending
      child.kill('SIGTERM');
    }),
  };
}

/** How long the loader stays after its last reply: it then ends, and its memory with it. */
export const ZONE_WORKER_IDLE_MS = 2000;

export interface ZoneWorkerOptions {
  /** the compiled load-worker.js (default: beside this file) */
  readonly workerUrl?: URL;
  readonly kind?: ZoneWorkerKind;
  /** idle time before the loader ends (default ZONE_WORKER_IDLE_MS) */
  readonly idleMs?: number;
  readonly clock?: Timers;
}

/**
 * Creates the loader. One request at a time is typical, several are fine (answered by id). The
 * loader ends when idle for `idleMs` (a parse leaves its heap at ~200 MB for 100,000 records) and
 * starts again on the next request.
 */
export function createZoneWorker(opts: ZoneWorkerOptions = {}): ZoneWorker {
  const { workerUrl = new URL('./load-worker.js', import.meta.url), kind = 'process', idleMs = ZONE_WORKER_IDLE_MS, clock = systemClock } = opts;
  let worker: Channel | undefined;
  let idle: TimerHandle | undefined;
  let nextId = 1;
  const waiting = new Map<number, { resolve: (r: LoadReply) => void; reject: (e: Error) => void }>();
  const stop = async (): Promise<void> => {
    clock.clearTimeout(idle);
    idle = undefined;
    const w = worker;
    worker = undefined;
    for (const p of waiting.values()) p.reject(new Error('zone worker closed'));
    waiting.clear();
    if (w) await w.end();
  };
  const start = (): Channel => {
    const h: Handlers = {
      message: (r) => {
        const p = waiting.get(r.id);
        waiting.delete(r.id);
        if (waiting.size === 0) {
          w.unref();
          clock.clearTimeout(idle);
          idle = unrefTimer(clock.setTimeout(() => { idle = undefined; if (waiting.size === 0) void stop(); }, idleMs));
        }
        p?.resolve(r);
      },
      failed: (err) => {
        if (worker !== w) return; // one ended on purpose (idle, close): its requests were settled
        worker = undefined;
        for (const p of waiting.values()) p.reject(err);
        waiting.clear();
      },
    };
    const w = kind === 'thread' ? startThread(workerUrl, h) : startProcess(workerUrl, h);
    w.unref();
    return w;
  };
  return {
    async loadFile(file) {
      clock.clearTimeout(idle);
      idle = undefined;
      const w = worker ??= start();
      const id = nextId++;
      const reply = await new Promise<LoadReply>((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        // a load in progress keeps the process alive (the start-up load runs before any socket)
        w.ref();
        w.send({ id, file });
      });
      if (!reply.ok) throw new ZoneError(reply.file, reply.line, reply.reason);
      return decodeZone(reply.encoded, reply.origin, file);
    },
    get running() { return worker !== undefined; },
    close: stop,
  };
}

/**
 * A tiny HTTP control endpoint for the drill lab, on the host's loopback: the lab's processes
 * are children of the process that built it, so a drill plan's `run` step (a shell command)
 * cannot restart them itself; it calls `curl -sf -X POST $URL/kill-agent/site-a` instead.
 * Each route maps onto one fault hook of drill/lab/topology.ts and answers 204 once it is done.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DrillLab } from './topology.js';

export interface LabControl {
  /** e.g. http://127.0.0.1:41234 */
  readonly url: string;
  close(): Promise<void>;
}

type Hook = (lab: DrillLab, args: readonly string[]) => Promise<void>;

const HOOKS: Readonly<Record<string, { readonly arity: number; readonly run: Hook }>> = {
  'kill-rs': { arity: 2, run: (l, [s, k]) => l.killRealServer(s!, Number(k)) },
  'start-rs': { arity: 2, run: (l, [s, k]) => l.startRealServer(s!, Number(k)) },
  'kill-agent': { arity: 1, run: (l, [s]) => l.killAgent(s!) },
  'start-agent': { arity: 1, run: (l, [s]) => l.startAgent(s!) },
  'cut-agent': { arity: 2, run: (l, [s, i]) => l.cutAgent(s!, i!) },
  'heal-agent': { arity: 2, run: (l, [s, i]) => l.healAgent(s!, i!) },
  'kill-instance': { arity: 1, run: (l, [i]) => l.killInstance(i!) },
  'start-instance': { arity: 1, run: (l, [i]) => l.startInstance(i!) },
};

/** Starts the endpoint on 127.0.0.1 (an ephemeral port); only POST routes of HOOKS exist. */
export async function startLabControl(lab: DrillLab): Promise<LabControl> {
  const server = createServer((req, res) => {
    const [hook, ...args] = (req.url ?? '/').split('/').filter((x) => x !== '').map(decodeURIComponent);
    const h = hook === undefined ? undefined : HOOKS[hook];
    if (req.method !== 'POST' || h === undefined || args.length !== h.arity) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`routes: ${Object.entries(HOOKS).map(([k, v]) => `POST /${k}${'/ARG'.repeat(v.arity)}`).join(', ')}\n`);
      return;
    }
    h.run(lab, args).then(
      () => { res.writeHead(204).end(); },
      (err: unknown) => { res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(err as Error).message}\n`); },
    );
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', () => { resolve(); }); });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => { resolve(); }); }),
  };
}

/**
 * The demo's ports before anything starts: a port given as 0 becomes one the OS says is free on
 * every address that uses it, and a port already taken is a clear message instead of a child
 * process dying with EADDRINUSE halfway through the start.
 */
import { createSocket } from 'node:dgram';
import net from 'node:net';

/** One port the demo will listen on, on one or more loopback addresses. */
export interface PortUse {
  /** what listens, for the error message: `ns1 DNS`, `tokyo VIP` */
  readonly what: string;
  readonly hosts: readonly string[];
  /** 0: pick a free one */
  readonly port: number;
  readonly udp: boolean;
}

/** Resolves with the error code when host:port cannot be bound exclusively, else undefined. */
function bindError(host: string, port: number, udp: boolean): Promise<string | undefined> {
  return new Promise((resolve) => {
    if (udp) {
      const s = createSocket('udp4');
      s.once('error', (e: NodeJS.ErrnoException) => { s.close(); resolve(e.code ?? e.message); });
      s.bind({ address: host, port, exclusive: true }, () => s.close(() => resolve(undefined)));
      return;
    }
    const s = net.createServer();
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(undefined)));
  });
}

/** A port the OS gave on the first host, free (TCP, and UDP when asked) on every host. */
async function pickFree(use: PortUse, chosen: ReadonlySet<number>): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen({ host: use.hosts[0], port: 0, exclusive: true }, () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    if (!chosen.has(port) && (await firstTaken({ ...use, port })) === undefined) return port;
  }
  throw new Error(`${use.what}: no port free on ${use.hosts.join(', ')} after 20 tries`);
}

async function firstTaken(use: PortUse): Promise<{ host: string; code: string } | undefined> {
  for (const host of use.hosts) {
    for (const udp of use.udp ? [false, true] : [false]) {
      const code = await bindError(host, use.port, udp);
      if (code !== undefined) return { host, code };
    }
  }
  return undefined;
}

/**
 * The ports to use, in the order given (0 replaced by a free port), or a message naming the
 * first one that cannot be bound.
 */
export async function resolvePorts(uses: readonly PortUse[]): Promise<{ ok: true; ports: number[] } | { ok: false; message: string }> {
  const ports: number[] = [];
  for (const use of uses) {
    if (use.port === 0) { ports.push(await pickFree(use, new Set(ports))); continue; }
    const taken = await firstTaken(use);
    if (taken !== undefined) {
      const why = taken.code === 'EADDRINUSE' ? 'is in use: is another `npm start` running?' : `cannot be bound (${taken.code})`;
      return { ok: false, message: `${taken.host}:${use.port} (${use.what}) ${why}` };
    }
    ports.push(use.port);
  }
  return { ok: true, ports };
}

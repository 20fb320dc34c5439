/**
 * A UDP amplification attempt on loopback and the legitimate clients beside it, shared by the
 * RRL attack test and `npm run bench:attack-rrl`: one source sends the same query (DNSKEY with
 * EDNS 4096) as fast as its socket takes it, while other sources, each in its own /24, query at a
 * human pace and count what they lose.
 */
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';

/** A DNS query in wire form; `ednsSize` adds an OPT record with that UDP payload size. */
export function dnsQuery(id: number, name: string, type: number, ednsSize?: number): Buffer {
  const labels = name.split('.').filter(Boolean).flatMap((l) => [l.length, ...Buffer.from(l, 'latin1')]);
  const header = [id >> 8, id & 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0, ednsSize === undefined ? 0 : 1];
  const question = [...labels, 0, type >> 8, type & 0xff, 0, 1];
  const opt = ednsSize === undefined ? [] : [0, 0, 41, ednsSize >> 8, ednsSize & 0xff, 0, 0, 0, 0, 0, 0];
  return Buffer.from([...header, ...question, ...opt]);
}

/** What one flooding source sent and got back. */
export interface FloodReport {
  readonly sent: number;
  readonly sentBytes: number;
  readonly replies: number;
  readonly replyBytes: number;
  /** replies with TC=0 (the full answer) */
  readonly answered: number;
  /** replies with TC=1 (slipped, or truncated by size) */
  readonly truncated: number;
  /** from the first send to the last one */
  readonly sendSeconds: number;
}

/** Datagrams sent per turn of the event loop: replies are read between bursts. */
const BURST = 64;

/**
 * Sends `count` copies of `packet` from `source` to 127.0.0.1:`port` as fast as the socket takes
 * them (in bursts, so that replies are read meanwhile), then waits up to `settleMs` for late
 * replies (less when every query has had one).
 */
export async function udpFlood(port: number, source: string, packet: Buffer, count: number, settleMs: number): Promise<FloodReport> {
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ address: source, port: 0 }, () => { sock.off('error', reject); resolve(); });
  });
  sock.on('error', () => {});
  let replies = 0;
  let replyBytes = 0;
  let answered = 0;
  let truncated = 0;
  let allReplied = (): void => {};
  sock.on('message', (m) => {
    if (++replies >= count) allReplied();
    replyBytes += m.length;
    if (m.length > 2 && (m[2]! & 0x02) !== 0) truncated++;
    else answered++;
  });
  const t0 = performance.now();
  let sent = 0;
  try {
    while (sent < count) {
      const n = Math.min(BURST, count - sent);
      for (let i = 0; i < n; i++) sock.send(packet, port, '127.0.0.1');
      sent += n;
      await new Promise((r) => setImmediate(r));
    }
    const sendSeconds = (performance.now() - t0) / 1000;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, settleMs);
      allReplied = () => { clearTimeout(timer); resolve(); };
      if (replies >= count) allReplied();
    });
    return { sent, sentBytes: sent * packet.length, replies, replyBytes, answered, truncated, sendSeconds };
  } finally {
    sock.close();
  }
}

/** What the legitimate clients saw. */
export interface LegitReport {
  readonly sources: number;
  readonly sent: number;
  /** full answers (TC=0) */
  readonly answered: number;
  /** TC=1 replies: a real client would retry over TCP */
  readonly truncated: number;
  /** queries with no reply within the timeout */
  readonly lost: number;
}

/** Running legitimate clients; `stop` ends them, waits for the queries in flight and reports. */
export interface LegitClients {
  stop(): Promise<LegitReport>;
}

/**
 * One client per source address: every `gapMs` it sends the next of `queries` (ID rewritten) to
 * 127.0.0.1:`port` and waits up to `timeoutMs` for the reply with that ID; no retries.
 */
export async function startLegitClients(port: number, sources: readonly string[], queries: readonly Buffer[], gapMs: number, timeoutMs: number): Promise<LegitClients> {
  let sent = 0;
  let answered = 0;
  let truncated = 0;
  let lost = 0;
  let stopped = false;
  const inFlight = new Set<Promise<void>>();
  const socks: dgram.Socket[] = [];
  const timers: NodeJS.Timeout[] = [];
  for (const [n, source] of sources.entries()) {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ address: source, port: 0 }, () => { sock.off('error', reject); resolve(); });
    });
    socks.push(sock);
    const waiting = new Map<number, (reply: Buffer) => void>();
    sock.on('message', (m) => { if (m.length >= 12) waiting.get(m.readUInt16BE(0))?.(m); });
    sock.on('error', () => {});
    let id = n * 1000;
    const ask = (): void => {
      if (stopped) return;
      id = (id + 1) & 0xffff;
      const q = Buffer.from(queries[(id + n) % queries.length]!);
      q.writeUInt16BE(id, 0);
      const myId = id;
      sent++;
      const done = new Promise<void>((resolve) => {
        const timer = setTimeout(() => { waiting.delete(myId); lost++; resolve(); }, timeoutMs);
        waiting.set(myId, (m) => {
          clearTimeout(timer);
          waiting.delete(myId);
          if ((m[2]! & 0x02) !== 0) truncated++;
          else answered++;
          resolve();
        });
      });
      inFlight.add(done);
      void done.then(() => inFlight.delete(done));
      sock.send(q, port, '127.0.0.1');
    };
    // spread the clients' first queries over one gap
    timers.push(setTimeout(() => { ask(); timers.push(setInterval(ask, gapMs)); }, (gapMs * n) / sources.length));
  }
  return {
    stop: async () => {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      await Promise.all([...inFlight]);
      for (const s of socks) s.close();
      return { sources: sources.length, sent, answered, truncated, lost };
    },
  };
}

/** `n` loopback sources 127.1.1.1, 127.1.2.1, ... 127.1.n.1: each in its own /24 (n <= 255). */
export function distinctPrefixSources(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `127.1.${i + 1}.1`);
}

/** The host's count of UDP datagrams dropped for a full receive buffer (/proc/net/snmp RcvbufErrors), or undefined. */
export function udpReceiveBufferErrors(): number | undefined {
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
    const names = lines[0]?.split(/\s+/) ?? [];
    const values = lines[1]?.split(/\s+/) ?? [];
    const i = names.indexOf('RcvbufErrors');
    return i < 0 ? undefined : Number(values[i]);
  } catch {
    return undefined;
  }
}

import type { Logger } from 'pino';
import { parseHostPort } from '../../shared/ip.js';
import { listenUdp } from '../wire/udp-transport.js';
import type { Peer, UdpListener } from '../wire/udp-transport.js';
import type { ZoneSet } from '../zone/zone.js';
import type { Signing } from '../dnssec/signer.js';
import { Engine, DEFAULT_ENGINE_OPTIONS } from './engine.js';
import type { EngineOptions, GslbSource } from './engine.js';
import { RrlAction } from './rrl.js';
import type { ResponseRateLimiter } from './rrl.js';
import { listenTcp } from './tcp.js';
import type { TcpListener, TcpOptions } from './tcp.js';

/** A host and port to serve on; IPv6 hosts without brackets. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** Parses `HOST:PORT` or `[IPv6]:PORT` (shared/ip.ts; a host name such as localhost too); throws naming the flag and the expected form. */
export function parseListen(text: string): ListenAddress {
  try {
    const { host, port } = parseHostPort(text, { names: true });
    return { host, port };
  } catch (e) {
    throw new Error(`--listen ${(e as Error).message}`);
  }
}

/** A running DNS server: UDP and TCP on every address, one engine. */
export interface DnsServer {
  readonly engine: Engine;
  /** bound ports, in the order of the addresses (useful with port 0) */
  readonly bound: readonly { host: string; udp: number; tcp: number; udpKind: string }[];
  /** the TCP listeners, in the order of the addresses (connection counts, limit counters) */
  readonly tcpListeners: readonly TcpListener[];
  setZones(zones: ZoneSet, gslb?: GslbSource, signing?: Signing): void;
  close(): Promise<void>;
}

/** Options of startDnsServer. */
export interface ServerOptions {
  readonly engine?: EngineOptions;
  /** TCP limits; unset ones take DEFAULT_TCP_OPTIONS */
  readonly tcp?: Partial<TcpOptions>;
  readonly logger?: Logger;
  /** false forces the plain dgram UDP transport */
  readonly nativeUdp?: boolean;
  readonly gslb?: GslbSource;
  /** response-rate limiting of UDP replies (TCP is never limited); undefined: off */
  readonly rrl?: ResponseRateLimiter | undefined;
  /** the zones' DNSSEC keys and signature cache (serving.ts); undefined: nothing is signed */
  readonly signing?: Signing | undefined;
}

/** Binds every address (UDP and TCP on the same port; port 0 picks one for both). */
export async function startDnsServer(zones: ZoneSet, addrs: readonly ListenAddress[], opts: ServerOptions = {}): Promise<DnsServer> {
  const log = opts.logger;
  const engine = new Engine(zones, opts.engine ?? DEFAULT_ENGINE_OPTIONS, (err, q) => {
    log?.error({ err, qtype: q.qtype, id: q.id }, 'query handler failed; answered SERVFAIL');
  });
  if (opts.gslb || opts.signing) engine.setZones(zones, opts.gslb, opts.signing);
  const udps: UdpListener[] = [];
  const tcps: TcpListener[] = [];
  const bound: { host: string; udp: number; tcp: number; udpKind: string }[] = [];
  const rrl = opts.rrl;
  const handler = rrl === undefined
    ? (q: Buffer, qOff: number, qLen: number, out: Buffer, outOff: number, outMax: number, peer: Peer): number =>
      engine.handle(q, qOff, qLen, out, outOff, outMax, false, peer)
    : (q: Buffer, qOff: number, qLen: number, out: Buffer, outOff: number, outMax: number, peer: Peer): number => {
      const n = engine.handle(q, qOff, qLen, out, outOff, outMax, false, peer);
      if (n === 0) return 0;
      const action = rrl.check(peer.family, peer.address, engine.responseClass);
      if (action === RrlAction.Send) return n;
      return action === RrlAction.Slip ? engine.truncate(out, outOff) : 0;
    };
  try {
    for (const a of addrs) {
      // port 0: TCP takes the port UDP got, so one number reaches both; that port may be busy
      // for TCP (an outgoing connection's ephemeral port), so try again with another
      for (let attempt = 0; ; attempt++) {
        const udp = await listenUdp(a.host, a.port, handler, {
          preferNative: opts.nativeUdp ?? true,
          onError: (err) => log?.error({ err }, 'UDP handler error'),
          beforeBatch: rrl ? () => { rrl.tick(); engine.batchStart(); } : () => engine.batchStart(),
        });
        let tcp: TcpListener;
        try {
          tcp = await listenTcp(a.host, udp.port, () => engine, opts.tcp ?? {});
        } catch (err) {
          await udp.close();
          if (a.port === 0 && (err as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 20) continue;
          throw err;
        }
        udps.push(udp);
        tcps.push(tcp);
        bound.push({ host: a.host, udp: udp.port, tcp: tcp.port, udpKind: udp.kind });
        break;
      }
    }
  } catch (err) {
    await Promise.all([...udps.map((u) => u.close()), ...tcps.map((t) => t.close())]);
    throw err;
  }
  return {
    engine,
    bound,
    tcpListeners: tcps,
    setZones: (z, g, s) => engine.setZones(z, g, s),
    close: async () => {
      await Promise.all([...udps.map((u) => u.close()), ...tcps.map((t) => t.close())]);
    },
  };
}

/**
 * UDP transport for the DNS server: one interface, two implementations.
 *
 * - `native`: the N-API addon build/Release/udp_batch.node (source dns/wire/native/udp_batch.c)
 *   reads up to SLOTS datagrams per recvmmsg, calls JS once per batch and sends the replies with
 *   one sendmmsg. Queries land in a fixed slot of one big Buffer and the handler writes its reply
 *   into the matching slot of another, so the per-packet path allocates nothing.
 * - `dgram`: plain node:dgram, used when the addon did not build or load, when
 *   `preferNative: false` is passed, or when the environment sets GSLB_UDP=dgram.
 *   (GSLB_UDP=native makes a missing addon an error instead of a silent fallback.)
 *
 * A reply leaves from the address its query was sent to. The addon reads each query's destination
 * (IP_PKTINFO / IPV6_RECVPKTINFO) and sends the reply with it as the source. node:dgram cannot read
 * it, so on a wildcard (0.0.0.0, ::) the dgram transport binds one socket per local address of the
 * family instead, as listed by os.networkInterfaces() at start: addresses added later are not
 * served over UDP until a restart, and neither are addresses that are routed locally without being
 * configured on an interface (127.0.0.3 inside 127.0.0.0/8, AnyIP routes); such queries get no
 * reply rather than one from the wrong source, which resolvers drop anyway.
 *
 * Both behave the same at the edges: datagrams larger than IN_SLOT_SIZE bytes are dropped, a source
 * port 0 is never answered, a handler exception costs that one reply and is reported to `onError`,
 * and a full socket send buffer drops replies rather than blocking.
 */
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { networkInterfaces } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatIPv4, formatIPv6 } from '../../shared/ip-text.js';
import { addressBytes, addressFamily } from '../../shared/ip.js';

/** Where a datagram came from; a reused object: read it during the call, never keep it. */
export interface Peer { family: 4 | 6; port: number; /** 4 or 16 bytes */ address: Uint8Array; }

/** Answers one datagram in place: the query is q[qOff, qOff+qLen); write the reply at out[outOff..] (at most outMax bytes) and return its length, or 0 to send nothing. Must not throw (the transport catches anyway). */
export type DatagramHandler = (q: Buffer, qOff: number, qLen: number, out: Buffer, outOff: number, outMax: number, peer: Peer) => number;

/** A bound UDP socket answering through a DatagramHandler; `dropped` counts datagrams lost to errors (oversized, port 0, handler exception, send failure), not replies the handler chose to skip. */
export interface UdpListener { readonly port: number; readonly kind: 'native' | 'dgram'; close(): Promise<void>; stats(): { received: number; sent: number; dropped: number }; }

/** Datagrams per recvmmsg/sendmmsg batch. */
export const SLOTS = 64;
/** Largest query accepted; longer datagrams are dropped (the kernel reports them truncated). */
export const IN_SLOT_SIZE = 4096;
/** Bytes reserved per reply: the handler's `outMax`. UDP answers never exceed the 4096-byte EDNS cap. */
export const OUT_SLOT_SIZE = 4096;

const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

// meta layout, int32 per slot; must match META_* in native/udp_batch.c
const META_INTS = 8;
const M_IN_LEN = 0;
const M_OUT_LEN = 1;
const M_FAMILY = 2;
const M_PORT = 3;
const M_ADDR = 4;

// counter order of the addon's stats(); must match the C_* enum in native/udp_batch.c
const C_RECEIVED = 0;
const C_SENT = 1;
const C_FIRST_DROP = 2;

interface NativeBinding {
  open(host: string, port: number, family: 4 | 6, opts?: { recvBufferSize?: number; sendBufferSize?: number }): { handle: object; port: number };
  start(handle: object, onBatch: (n: number) => void, inBuf: Buffer, outBuf: Buffer, meta: Int32Array, onError: (err: unknown) => void): void;
  close(handle: object): void;
  stats(handle: object): Float64Array;
  readonly META_INTS: number;
}

let native: NativeBinding | undefined;
let nativeReason: string | undefined;
let nativeTried = false;

/** The repository root: the nearest ancestor of this module (dns/wire or dist/dns/wire) holding the built addon, else the nearest one with a package.json. */
function addonPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  let firstPackage: string | undefined;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) {
      const candidate = join(dir, 'build', 'Release', 'udp_batch.node');
      if (existsSync(candidate)) return candidate;
      firstPackage ??= candidate;
    }
    const up = dirname(dir);
    if (up === dir) return firstPackage ?? 'build/Release/udp_batch.node';
    dir = up;
  }
}

function loadNative(): NativeBinding | undefined {
  if (nativeTried) return native;
  nativeTried = true;
  const path = addonPath();
  try {
    const mod = createRequire(import.meta.url)(path) as NativeBinding;
    if (mod.META_INTS !== META_INTS) throw new Error(`meta layout mismatch (${mod.META_INTS} != ${META_INTS}); rebuild the addon`);
    native = mod;
  } catch (err) {
    nativeReason = `${path}: ${err instanceof Error ? err.message : String(err)}`;
  }
  return native;
}

/** Whether the batch addon loaded, and if not, why (for a startup log line). */
export function udpNativeStatus(): { available: boolean; reason: string | undefined } {
  const ok = loadNative() !== undefined;
  return { available: ok, reason: ok ? undefined : nativeReason };
}

/** Options of listenUdp. */
export interface UdpListenOptions {
  readonly preferNative?: boolean;
  readonly onError?: (err: unknown) => void;
  /** called before the handler runs for a batch of datagrams (native: once per recvmmsg; dgram: per datagram), e.g. to read the clock once */
  readonly beforeBatch?: () => void;
}

/** Binds host:port (port 0 = ephemeral) and answers every datagram through `handler`; native batching unless unavailable or disabled. */
export async function listenUdp(host: string, port: number, handler: DatagramHandler, opts?: UdpListenOptions): Promise<UdpListener> {
  const { address, family } = await resolveHost(host);
  const report = opts?.onError ?? logFirstError;
  const onError = (err: unknown): void => {
    try { report(err); } catch { /* a failing error reporter must not take the listener down */ }
  };
  const mode = process.env['GSLB_UDP'];
  if (mode !== 'dgram' && (opts?.preferNative ?? true)) {
    const binding = loadNative();
    if (binding !== undefined) return listenNative(binding, address, family, port, handler, onError, opts?.beforeBatch);
    if (mode === 'native') throw new Error(`GSLB_UDP=native but the UDP batch addon is unavailable: ${nativeReason ?? 'unknown'}`);
  }
  if (isWildcard(address)) return listenDgramEach(localAddresses(family), family, port, handler, onError, opts?.beforeBatch);
  return listenDgram(address, family, port, handler, onError, opts?.beforeBatch);
}

function isWildcard(address: string): boolean {
  return addressBytes(address.split('%')[0]!)?.every((b) => b === 0) === true;
}

/** The addresses of the family configured on the interfaces now; IPv6 link-local ones with their zone. */
export function localAddresses(family: 4 | 6): string[] {
  const out: string[] = [];
  for (const [name, list] of Object.entries(networkInterfaces())) {
    for (const a of list ?? []) {
      const fam = String(a.family) === 'IPv6' || String(a.family) === '6' ? 6 : 4;
      if (fam !== family) continue;
      out.push(fam === 6 && a.address.toLowerCase().startsWith('fe80:') ? `${a.address}%${name}` : a.address);
    }
  }
  return out;
}

/** One dgram socket per address, all on the same port (port 0: one the OS gave the first), behind one listener. */
async function listenDgramEach(addrs: readonly string[], family: 4 | 6, port: number, handler: DatagramHandler, onError: (err: unknown) => void,
  beforeBatch: (() => void) | undefined): Promise<UdpListener> {
  if (addrs.length === 0) throw new Error(`no local IPv${family} address to bind the node:dgram UDP transport to (it serves a wildcard listen address by binding each one)`);
  for (let attempt = 0; ; attempt++) {
    const each: UdpListener[] = [];
    try {
      let p = port;
      for (const a of addrs) {
        const l = await listenDgram(a, family, p, handler, onError, beforeBatch);
        each.push(l);
        p = l.port;
      }
    } catch (err) {
      await Promise.all(each.map((l) => l.close()));
      // port 0: the port the first address got may be taken on another one; pick again
      if (port === 0 && (err as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 20) continue;
      throw err;
    }
    return {
      port: each[0]!.port,
      kind: 'dgram',
      close: async () => { await Promise.all(each.map((l) => l.close())); },
      stats: () => {
        const t = { received: 0, sent: 0, dropped: 0 };
        for (const l of each) {
          const s = l.stats();
          t.received += s.received; t.sent += s.sent; t.dropped += s.dropped;
        }
        return t;
      },
    };
  }
}

/** The peer's address in presentation form (RFC 5952 for IPv6). */
export function peerAddressText(peer: Peer): string {
  return peer.family === 4 || peer.address.length === 4 ? formatIPv4(peer.address) : formatIPv6(peer.address);
}

let loggedError = false;

function logFirstError(err: unknown): void {
  if (loggedError) return;
  loggedError = true;
  console.error('udp-transport: datagram handler failed (further errors are not logged):', err);
}

async function resolveHost(host: string): Promise<{ address: string; family: 4 | 6 }> {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const kind = addressFamily(bare.split('%')[0]!);
  if (kind !== 0) return { address: bare, family: kind };
  const r = await lookup(bare);
  return { address: r.address, family: r.family === 6 ? 6 : 4 };
}

function listenNative(binding: NativeBinding, host: string, family: 4 | 6, port: number, handler: DatagramHandler, onError: (err: unknown) => void,
  beforeBatch: (() => void) | undefined): UdpListener {
  const { handle, port: bound } = binding.open(host, port, family, { recvBufferSize: SOCKET_BUFFER_BYTES, sendBufferSize: SOCKET_BUFFER_BYTES });
  const inBuf = Buffer.alloc(SLOTS * IN_SLOT_SIZE);
  const outBuf = Buffer.alloc(SLOTS * OUT_SLOT_SIZE);
  const meta = new Int32Array(SLOTS * META_INTS);
  // per-slot views of the source address, made once so the batch loop allocates nothing
  const addr4: Uint8Array[] = [];
  const addr16: Uint8Array[] = [];
  for (let i = 0; i < SLOTS; i++) {
    const at = (i * META_INTS + M_ADDR) * 4;
    addr4.push(new Uint8Array(meta.buffer, at, 4));
    addr16.push(new Uint8Array(meta.buffer, at, 16));
  }
  const peer: Peer = { family: 4, port: 0, address: addr4[0]! };
  let handlerErrors = 0;

  const onBatch = (n: number): void => {
    beforeBatch?.();
    for (let i = 0; i < n; i++) {
      const m = i * META_INTS;
      const qLen = meta[m + M_IN_LEN]!;
      if (qLen <= 0) continue;
      if (meta[m + M_FAMILY] === 6) {
        peer.family = 6;
        peer.address = addr16[i]!;
      } else {
        peer.family = 4;
        peer.address = addr4[i]!;
      }
      peer.port = meta[m + M_PORT]!;
      let len = 0;
      try {
        len = handler(inBuf, i * IN_SLOT_SIZE, qLen, outBuf, i * OUT_SLOT_SIZE, OUT_SLOT_SIZE, peer);
      } catch (err) {
        handlerErrors++;
        onError(err);
        len = 0;
      }
      meta[m + M_OUT_LEN] = len > 0 && len <= OUT_SLOT_SIZE ? len | 0 : 0;
    }
  };

  binding.start(handle, onBatch, inBuf, outBuf, meta, onError);
  let closed = false;
  let last = { received: 0, sent: 0, dropped: 0 };
  const read = (): { received: number; sent: number; dropped: number } => {
    const c = binding.stats(handle);
    let dropped = handlerErrors;
    for (let i = C_FIRST_DROP; i < c.length; i++) dropped += c[i]!;
    return { received: c[C_RECEIVED]!, sent: c[C_SENT]!, dropped };
  };
  return {
    port: bound,
    kind: 'native',
    close(): Promise<void> {
      if (!closed) {
        last = read();
        closed = true;
        binding.close(handle);
      }
      return Promise.resolve();
    },
    stats: () => (closed ? { ...last } : read()),
  };
}

async function listenDgram(host: string, family: 4 | 6, port: number, handler: DatagramHandler, onError: (err: unknown) => void,
  beforeBatch: (() => void) | undefined): Promise<UdpListener> {
  const sock = dgram.createSocket({
    type: family === 6 ? 'udp6' : 'udp4',
    reuseAddr: true,
    ...(family === 6 ? { ipv6Only: true } : {}), // libuv rejects the flag on udp4 (EINVAL)
    recvBufferSize: SOCKET_BUFFER_BYTES,
    sendBufferSize: SOCKET_BUFFER_BYTES,
  });
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error): void => { sock.close(); reject(err); };
    sock.once('error', fail);
    sock.bind({ address: host, port }, () => {
      sock.off('error', fail);
      resolve();
    });
  });
  sock.on('error', onError);

  const out = Buffer.alloc(OUT_SLOT_SIZE);
  const peer: Peer = { family, port: 0, address: new Uint8Array(family === 6 ? 16 : 4) };
  let lastText = '';
  let received = 0;
  let sent = 0;
  let dropped = 0;

  sock.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
    received++;
    if (msg.length > IN_SLOT_SIZE || msg.length === 0 || rinfo.port === 0) { dropped++; return; }
    if (rinfo.address !== lastText) {
      // dgram reports link-local sources with their zone (fe80::1%eth0)
      const bytes = addressBytes(rinfo.address.split('%')[0]!);
      if (bytes === undefined || bytes.length !== (family === 6 ? 16 : 4)) { dropped++; return; }
      peer.address = bytes;
      lastText = rinfo.address;
    }
    peer.family = family;
    peer.port = rinfo.port;
    beforeBatch?.();
    let len = 0;
    try {
      len = handler(msg, 0, msg.length, out, 0, OUT_SLOT_SIZE, peer);
    } catch (err) {
      dropped++;
      onError(err);
      return;
    }
    if (!(len > 0)) return;
    if (len > OUT_SLOT_SIZE) { dropped++; return; }
    // dgram may queue the buffer (EAGAIN), so the reused `out` cannot be handed over. No send
    // callback: it costs a nextTick per reply, and dgram reports nothing else without one, so
    // `sent` counts replies handed to the socket.
    const reply = Buffer.allocUnsafe(len);
    out.copy(reply, 0, 0, len);
    try {
      sock.send(reply, 0, len, rinfo.port, rinfo.address);
      sent++;
    } catch (err) {
      dropped++;
      onError(err);
    }
  });

  let closing: Promise<void> | undefined;
  return {
    port: sock.address().port,
    kind: 'dgram',
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        try {
          sock.close(() => resolve());
        } catch {
          resolve();
        }
      });
      return closing;
    },
    stats: () => ({ received, sent, dropped }),
  };
}


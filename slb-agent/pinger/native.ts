/**
 * The ARP and ICMP transports, on the pinger_sock N-API addon (native/pinger_sock.c): Node has no
 * AF_PACKET sockets and no ICMP datagram sockets. One socket per interface receives through
 * uv_poll on Node's own loop, so probing needs no helper process and no socket per probe.
 * When the addon did not build, opening fails with a message that names the fix; `udp` needs no addon.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { firstIpv4 } from './neighbours.js';
import type { Answer, ProbeTransport } from './transport.js';
import { intToIpv4, ipv4ToInt } from './transport.js';

interface Binding {
  open(kind: 'arp' | 'icmp', ifname: string): { handle: object; ifindex: number; mac: string };
  start(handle: object, onBatch: (n: number) => void, out: Float64Array): void;
  sendArp(handle: object, senderIp: number, targetIp: number, destMac: Buffer | null): number;
  sendEcho(handle: object, dstIp: number, seq: number): number;
  close(handle: object): void;
  readonly REC_DOUBLES: number;
}

const REC_DOUBLES = 5;
/** answers per JS call from the addon */
const BATCH = 64;

let binding: Binding | undefined;
let reason: string | undefined;
let tried = false;

/** build/Release/pinger_sock.node of the nearest ancestor package (slb-agent/pinger or dist/slb-agent/pinger). */
function addonPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  let first: string | undefined;
  for (let i = 0; i < 32; i++) {
    if (existsSync(join(dir, 'package.json'))) {
      const candidate = join(dir, 'build', 'Release', 'pinger_sock.node');
      if (existsSync(candidate)) return candidate;
      first ??= candidate;
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return first ?? 'build/Release/pinger_sock.node';
}

/** The addon, or why it is missing. `GSLB_PINGER_ADDON=off` pretends it is missing (tests). */
export function loadPingerAddon(): { binding?: Binding; reason?: string } {
  if (process.env['GSLB_PINGER_ADDON'] === 'off') return { reason: 'disabled by GSLB_PINGER_ADDON=off' };
  if (!tried) {
    tried = true;
    const path = addonPath();
    try {
      const mod = createRequire(import.meta.url)(path) as Binding;
      if (mod.REC_DOUBLES !== REC_DOUBLES) throw new Error(`record layout mismatch (${mod.REC_DOUBLES} != ${REC_DOUBLES}); rebuild the addon`);
      binding = mod;
    } catch (err) {
      reason = `${path}: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  return binding ? { binding } : { reason: reason ?? 'unknown' };
}

/** Error for a method that needs the addon when it is missing: what, why, and the fix. */
export function addonMissing(method: string, why: string): Error {
  return new Error(`pinger: method ${method} needs the native addon pinger_sock (AF_PACKET / ICMP sockets), which did not load (${why}). `
    + 'Fix: install g++, make and python3 and run `npm ci` (or `npx node-gyp rebuild`) in the slb-agent directory; '
    + 'or use method udp, which needs no addon.');
}

const errnoName = new Map<number, string>(Object.entries(constants.errno).map(([k, v]) => [v, k]));

function macText(hi: number, lo: number): string {
  const b = [hi >>> 8, hi & 255, lo >>> 24, (lo >>> 16) & 255, (lo >>> 8) & 255, lo & 255];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Opens the ARP (AF_PACKET) or ICMP (datagram) socket of one interface. */
export function openNativeTransport(method: 'arp' | 'icmp', ifname: string, source: string | undefined, onAnswer: (a: Answer) => void): ProbeTransport {
  const { binding: b, reason: why } = loadPingerAddon();
  if (!b) throw addonMissing(method, why ?? 'unknown');
  let src: string | undefined;
  let srcInt = 0;
  if (method === 'arp') {
    src = source ?? firstIpv4(ifname);
    if (src === undefined) throw new Error(`pinger: interface ${ifname} has no IPv4 address to send ARP requests from; set pinger.source`);
    srcInt = ipv4ToInt(src);
  }
  let opened: ReturnType<Binding['open']>;
  try {
    opened = b.open(method, ifname);
  } catch (err) {
    throw new Error(`pinger: cannot open the ${method} socket on ${ifname}: ${(err as Error).message}`);
  }
  const { handle } = opened;
  const out = new Float64Array(BATCH * REC_DOUBLES);
  // the same few thousand peers answer every round: their texts are made once, not per answer
  const addrText = new Map<number, string>();
  const macTexts = new Map<number, string>();
  const peerInt = new Map<string, number>();
  const cached = <K, V>(m: Map<K, V>, k: K, make: () => V): V => {
    let v = m.get(k);
    if (v === undefined) {
      if (m.size > 65_536) m.clear();
      v = make();
      m.set(k, v);
    }
    return v;
  };
  b.start(handle, (n) => {
    for (let i = 0; i < n; i++) {
      const o = i * REC_DOUBLES;
      const ip = out[o]!;
      const address = cached(addrText, ip, () => intToIpv4(ip));
      const at = out[o + 4]!;
      if (method === 'arp') {
        const hi = out[o + 1]!;
        const lo = out[o + 2]!;
        onAnswer({ address, at, mac: cached(macTexts, hi * 2 ** 32 + lo, () => macText(hi, lo)) });
      }
      else onAnswer({ address, at, seq: out[o + 3]! });
    }
  }, out);
  // destination MACs are cached as Buffers: no allocation per probe in the steady state
  const macBufs = new Map<string, Buffer>();
  const macBuf = (mac: string): Buffer => cached(macBufs, mac, () => Buffer.from(mac.split(':').map((x) => parseInt(x, 16))));
  const toInt = (address: string): number => cached(peerInt, address, () => ipv4ToInt(address));
  const fail = (rc: number): string | undefined => (rc === 0 ? undefined : `send failed: ${errnoName.get(rc) ?? `errno ${rc}`}`);
  return {
    method,
    mac: opened.mac,
    ...(src !== undefined ? { source: src } : {}),
    send(address, seq, mac) {
      if (method === 'arp') return fail(b.sendArp(handle, srcInt, toInt(address), mac !== undefined ? macBuf(mac) : null));
      return fail(b.sendEcho(handle, toInt(address), seq & 0xffff));
    },
    forget() { /* nothing kept per peer */ },
    close() { b.close(handle); },
  };
}

/**
 * How probes leave and answers come back, one transport per interface and method. The pinger
 * engine only sees this interface, so tests drive it with a fake and an injected clock.
 */
import type { PingerMethod } from './config.js';

/** An answer from a peer: its address, when it arrived (the transport's monotonic ms), its MAC for ARP, the echo sequence for ICMP. */
export interface Answer {
  readonly address: string;
  readonly at: number;
  readonly mac?: string;
  readonly seq?: number;
}

/** One interface's long-lived probe socket(s). */
export interface ProbeTransport {
  readonly method: PingerMethod;
  /** this interface's MAC (ARP) when known */
  readonly mac?: string;
  /** the ARP sender address in use (ARP) */
  readonly source?: string;
  /**
   * Sends one probe to `address` (`mac`: its known MAC, for a unicast ARP request); returns an
   * error text when the kernel refused it. Never throws, never blocks.
   */
  send(address: string, seq: number, mac: string | undefined): string | undefined;
  /** peers that left the list: release what was kept for them (udp's connected sockets) */
  forget(address: string): void;
  close(): void;
}

/** Opens a transport for an interface; `onAnswer` is called for every answer-like packet. */
export type TransportFactory = (opts: {
  readonly ifname: string;
  readonly method: PingerMethod;
  /** ARP sender address (config `source`), else the transport picks the interface's first IPv4 */
  readonly source?: string;
  readonly onAnswer: (a: Answer) => void;
}) => Promise<ProbeTransport>;

/** Monotonic milliseconds on the same clock as libuv's uv_hrtime (the addon's receive stamps). */
export { monotonicNow as monoNow } from '../../shared/clock.js';

/** `a.b.c.d` -> host-order uint32. */
export function ipv4ToInt(text: string): number {
  const p = text.split('.');
  return ((Number(p[0]) << 24) >>> 0) + (Number(p[1]) << 16) + (Number(p[2]) << 8) + Number(p[3]);
}

/** host-order uint32 -> `a.b.c.d`. */
export function intToIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

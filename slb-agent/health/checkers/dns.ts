/**
 * DNS check (keepalived DNS_CHECK): one query over UDP; the reply's rcode must be the expected
 * one and, when `address` is set, an A/AAAA record of the answer section must carry it.
 * The message is built by hand (a dozen bytes) so that dns2 stays in dns/wire, its one home.
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { addressFamily } from '../../../shared/ip.js';
import type { DnsCheckConfig } from '../../config.js';
import { systemClock } from '../../../shared/clock.js';
import type { Clock } from '../../../shared/clock.js';
import { describeError, runProbe } from './deadline.js';
import type { ProbeOutcome } from './deadline.js';
import type { Checker } from './types.js';

const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

/** The wire form of a query for `name` (no trailing dot; '' is the root) with RD set. */
export function buildDnsQuery(id: number, name: string, qtype: number): Buffer {
  const labels = name === '' ? [] : name.split('.').map((l) => Buffer.from(l, 'latin1'));
  const qname = Buffer.concat([...labels.flatMap((l) => [Buffer.from([l.length]), l]), Buffer.from([0])]);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD: a recursive resolver answers too; an authority ignores it
  header.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(qtype, 0);
  tail.writeUInt16BE(1, 2); // IN
  return Buffer.concat([header, qname, tail]);
}

/** Offset just past the (possibly compressed) name at `off`; throws on a truncated message. */
function skipName(msg: Buffer, off: number): number {
  for (;;) {
    const len = msg[off];
    if (len === undefined) throw new Error('truncated reply');
    if ((len & 0xc0) === 0xc0) return off + 2;
    if (len === 0) return off + 1;
    off += len + 1;
  }
}

function ipText(rdata: Buffer): string {
  if (rdata.length === 4) return [...rdata].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(rdata.readUInt16BE(i).toString(16));
  // URL parsing gives the canonical (RFC 5952) text the config holds
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/** rcode and the A/AAAA addresses of the answer section of a reply. */
export function parseDnsReply(msg: Buffer): { id: number; qr: boolean; tc: boolean; rcode: number; addresses: string[] } {
  if (msg.length < 12) throw new Error('truncated reply');
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  const qd = msg.readUInt16BE(4);
  const an = msg.readUInt16BE(6);
  let off = 12;
  for (let i = 0; i < qd; i++) off = skipName(msg, off) + 4;
  if (off > msg.length) throw new Error('truncated reply');
  const addresses: string[] = [];
  for (let i = 0; i < an; i++) {
    off = skipName(msg, off);
    if (off + 10 > msg.length) throw new Error('truncated reply');
    const type = msg.readUInt16BE(off);
    const rdlen = msg.readUInt16BE(off + 8);
    off += 10;
    if (off + rdlen > msg.length) throw new Error('truncated reply');
    if ((type === 1 && rdlen === 4) || (type === 28 && rdlen === 16)) addresses.push(ipText(msg.subarray(off, off + rdlen)));
    off += rdlen;
  }
  return { id, qr: (flags & 0x8000) !== 0, tc: (flags & 0x0200) !== 0, rcode: flags & 0x0f, addresses };
}

/** A checker that sends one query from a fresh UDP socket and waits for the matching reply. */
export function createDnsChecker(check: DnsCheckConfig, clock: Clock = systemClock): Checker {
  return (target, signal) => runProbe(clock, check.timeoutMs, signal, (s) => new Promise<ProbeOutcome>((resolve) => {
    const id = randomInt(0, 0x10000);
    const query = buildDnsQuery(id, check.name, check.qtypeCode);
    const sock = createSocket(addressFamily(target.address) === 6 ? 'udp6' : 'udp4');
    let settled = false;
    const settle = (r: ProbeOutcome): void => {
      if (settled) return;
      settled = true;
      s.removeEventListener('abort', onAbort);
      sock.close();
      resolve(r);
    };
    const onAbort = (): void => settle({ ok: false, error: 'aborted' });
    s.addEventListener('abort', onAbort, { once: true });
    // a connected socket only receives from the target and hears its ICMP port-unreachable
    sock.on('error', (err) => settle({ ok: false, error: describeError(err) }));
    sock.on('message', (msg) => {
      let reply;
      try {
        reply = parseDnsReply(msg);
      } catch (err) {
        return settle({ ok: false, error: describeError(err) });
      }
      // not ours (a late reply to an earlier probe): keep waiting for ours
      if (reply.id !== id || !reply.qr) return;
      const rcode = RCODE_NAMES[reply.rcode] ?? `RCODE${reply.rcode}`;
      if (rcode !== check.rcode) return settle({ ok: false, error: `rcode ${rcode}` });
      if (check.address === undefined) return settle({ ok: true });
      if (reply.addresses.includes(check.address)) return settle({ ok: true });
      settle({ ok: false, error: reply.tc && reply.addresses.length === 0 ? 'reply truncated'
        : `${check.address} not in the answer (${reply.addresses.join(', ') || 'no addresses'})` });
    });
    sock.connect(check.port ?? target.port, target.address, () => {
      if (!settled) sock.send(query);
    });
  }));
}

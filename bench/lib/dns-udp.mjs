/**
 * A-record queries over node:dgram with hand-built packets, so that no DNS library stands between
 * a benchmark and the server it measures.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';

/** One IN question for `name` (A unless `qtype`), RD=0. */
export function encodeQuery(id, name, qtype = 1) {
  const labels = name.split('.').filter(Boolean);
  const q = Buffer.alloc(12 + labels.reduce((n, l) => n + 1 + l.length, 1) + 4);
  q.writeUInt16BE(id, 0);
  q.writeUInt16BE(0x0000, 2); // QUERY, RD=0
  q.writeUInt16BE(1, 4);
  let o = 12;
  for (const l of labels) { q[o++] = l.length; o += q.write(l, o, 'ascii'); }
  q[o++] = 0;
  q.writeUInt16BE(qtype, o);
  q.writeUInt16BE(1, o + 2); // IN
  return q;
}

function skipName(b, o) {
  for (let hops = 0; hops < 128; hops++) {
    if (o >= b.length) return -1;
    const len = b[o];
    if (len === 0) return o + 1;
    if ((len & 0xc0) === 0xc0) return o + 2;
    o += 1 + len;
  }
  return -1;
}

/** { id, rcode, addrs, serial } of a reply (serial: of the first SOA answer), or undefined when it is not a well-formed reply. */
export function decodeReply(b) {
  if (b.length < 12 || (b[2] & 0x80) === 0) return undefined;
  const id = b.readUInt16BE(0);
  const rcode = b[3] & 0x0f;
  const qd = b.readUInt16BE(4);
  const an = b.readUInt16BE(6);
  let o = 12;
  for (let i = 0; i < qd; i++) { o = skipName(b, o); if (o < 0) return undefined; o += 4; }
  const addrs = [];
  let serial;
  for (let i = 0; i < an; i++) {
    o = skipName(b, o);
    if (o < 0 || o + 10 > b.length) return undefined;
    const type = b.readUInt16BE(o);
    const rdlen = b.readUInt16BE(o + 8);
    o += 10;
    if (o + rdlen > b.length) return undefined;
    if (type === 1 && rdlen === 4) addrs.push(`${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`);
    if (type === 6 && serial === undefined && rdlen >= 22) serial = b.readUInt32BE(o + rdlen - 20);
    o += rdlen;
  }
  return { id, rcode, addrs, serial };
}

/**
 * A UDP client of 127.0.0.1:`port` asking for `qname` (type `qtype`, default A), one query at a
 * time: `query()` resolves with `format(reply)` ({ id, rcode, addrs, serial }), or "timeout" after `timeoutMs`.
 */
export function createUdpResolver(port, qname, { timeoutMs, format, qtype = 1 }) {
  const sock = dgram.createSocket('udp4');
  let nextId = randomBytes(2).readUInt16BE(0);
  let waiting = null;
  sock.on('message', (m) => {
    const r = decodeReply(m);
    if (r && waiting && r.id === waiting.id) { const w = waiting; waiting = null; clearTimeout(w.timer); w.resolve(r); }
  });
  const query = () => new Promise((resolve) => {
    const id = (nextId = (nextId + 1) & 0xffff);
    const timer = setTimeout(() => { waiting = null; resolve('timeout'); }, timeoutMs);
    waiting = { id, timer, resolve: (r) => resolve(format(r)) };
    sock.send(encodeQuery(id, qname, qtype), port, '127.0.0.1');
  });
  return { query, close: () => sock.close() };
}

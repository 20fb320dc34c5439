/** Hand-built query packets, for what dig cannot send (two OPTs, bad ECS, QR=1...). */

export interface QueryOpts {
  id?: number;
  flags?: number;
  qdcount?: number;
  /** raw question section; default is `name` + type + class IN */
  name?: string;
  type?: number;
  qclass?: number;
  /** whole additional records, already encoded */
  additional?: Uint8Array[];
  arcountOverride?: number;
}

export function wireName(name: string): number[] {
  const out: number[] = [];
  for (const l of name.split('.').filter(Boolean)) {
    out.push(l.length, ...Buffer.from(l, 'latin1'));
  }
  out.push(0);
  return out;
}

/** An OPT record with the given options ([code, data] pairs). */
export function opt(options: [number, number[]][] = [], udp = 1232, version = 0, doBit = false): Uint8Array {
  const data: number[] = [];
  for (const [code, d] of options) data.push(code >> 8, code & 0xff, d.length >> 8, d.length & 0xff, ...d);
  return Uint8Array.from([0, 0, 41, udp >> 8, udp & 0xff, 0, version, doBit ? 0x80 : 0, 0, data.length >> 8, data.length & 0xff, ...data]);
}

/** ECS option data: family, source prefix, scope prefix, address bytes as given. */
export function ecs(family: number, source: number, scope: number, addr: number[]): [number, number[]] {
  return [8, [0, family, source, scope, ...addr]];
}

export function query(o: QueryOpts = {}): Buffer {
  const add = o.additional ?? [];
  const h = [
    (o.id ?? 0x1234) >> 8, (o.id ?? 0x1234) & 0xff,
    ((o.flags ?? 0) >> 8) & 0xff, (o.flags ?? 0) & 0xff,
    0, o.qdcount ?? 1, 0, 0, 0, 0, 0, o.arcountOverride ?? add.length,
  ];
  const q = (o.qdcount ?? 1) === 0 ? [] : [...wireName(o.name ?? 'www.example.test'), (o.type ?? 1) >> 8, (o.type ?? 1) & 0xff, (o.qclass ?? 1) >> 8, (o.qclass ?? 1) & 0xff];
  return Buffer.from([...h, ...q, ...add.flatMap((a) => [...a])]);
}

/** Header fields of a reply. */
export function header(b: Buffer) {
  return {
    id: b.readUInt16BE(0), qr: (b[2]! & 0x80) !== 0, opcode: (b[2]! >> 3) & 15, aa: (b[2]! & 4) !== 0,
    tc: (b[2]! & 2) !== 0, rd: (b[2]! & 1) !== 0, ra: (b[3]! & 0x80) !== 0, rcode: b[3]! & 15,
    qd: b.readUInt16BE(4), an: b.readUInt16BE(6), ns: b.readUInt16BE(8), ar: b.readUInt16BE(10),
  };
}

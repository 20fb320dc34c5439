/**
 * dns2 as an independent client: it builds queries and decodes replies, so that in-process
 * tests do not check our encoder with our own decoder.
 */
import dns2 from 'dns2';
import { typeNumber, typeName } from '../../dns/wire/types.js';

const { Packet } = dns2 as unknown as { Packet: any };

/** A query as dns2 encodes it, with EDNS when asked. */
export function dns2Query(qname: string, qtype: string, opts: { id?: number; edns?: boolean } = {}): Buffer {
  const p = new Packet();
  p.header.id = opts.id ?? 4242;
  p.header.rd = 0;
  p.questions.push({ name: qname.replace(/\.$/, ''), type: typeNumber(qtype), class: 1 });
  if (opts.edns) p.additionals.push(new Packet.Resource.EDNS([]));
  return p.toBuffer();
}

function fqdn(n: string): string {
  return n === '' ? '.' : `${n}.`;
}

function rdataText(r: any): string {
  switch (r.type) {
    case 1: return r.address;
    case 28: return r.address;
    case 2: return fqdn(r.ns);
    case 5: case 12: return fqdn(r.domain);
    case 15: return `${r.priority} ${fqdn(r.exchange)}`;
    case 16: return (r.data as string[]).map((s) => `"${s}"`).join(' ');
    case 6: return `${fqdn(r.primary)} ${fqdn(r.admin)} ${r.serial} ${r.refresh} ${r.retry} ${r.expiration} ${r.minimum}`;
    case 33: return `${r.priority} ${r.weight} ${r.port} ${fqdn(r.target)}`;
    default: {
      const d: Buffer = r.data ?? Buffer.alloc(0);
      return `\\# ${d.length} ${d.toString('hex')}`;
    }
  }
}

/** Decodes a reply into dig-like text fields. */
export function dns2Decode(buf: Buffer) {
  const p = Packet.parse(buf);
  const line = (r: any) => `${fqdn(r.name)} ${r.ttl} IN ${typeName(r.type)} ${rdataText(r)}`;
  const rcodes = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];
  return {
    rcode: rcodes[p.header.rcode] ?? String(p.header.rcode),
    aa: p.header.aa === 1,
    answer: p.answers.map(line) as string[],
    authority: p.authorities.map(line) as string[],
    additional: p.additionals.filter((r: any) => r.type !== 41).map(line) as string[],
  };
}

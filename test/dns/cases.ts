/**
 * The authoritative-behaviour corpus, CoreDNS style: records as zone-file text, run through the
 * real dig and in-process (test/dns/authoritative.test.ts), and through both the fast and the
 * general path (test/dns/fast-path.test.ts). Zones: test/fixtures/zones/.
 */
export interface Case {
  name: string;
  qname: string;
  qtype: string;
  rcode: 'NOERROR' | 'NXDOMAIN' | 'REFUSED' | 'NOTIMP' | 'FORMERR';
  aa: boolean;
  answer?: string[];
  ns?: string[];
  extra?: string[];
}

const SOA = 'example.test. 300 IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 300';
const CHILD_SOA = 'child.example.test. 60 IN SOA ns1.child.example.test. hostmaster.child.example.test. 7 3600 600 86400 900';
const WWW_A = 'www.example.test. 3600 IN A 192.0.2.80';

export const CASES: Case[] = [
  { name: 'A answer is authoritative', qname: 'www.example.test.', qtype: 'A', rcode: 'NOERROR', aa: true, answer: [WWW_A] },
  { name: 'AAAA answer', qname: 'www.example.test.', qtype: 'AAAA', rcode: 'NOERROR', aa: true, answer: ['www.example.test. 3600 IN AAAA 2001:db8::80'] },
  { name: 'name in no zone is REFUSED without AA', qname: 'www.example.com.', qtype: 'A', rcode: 'REFUSED', aa: false },
  { name: 'parent of the zone is REFUSED', qname: 'test.', qtype: 'SOA', rcode: 'REFUSED', aa: false },
  { name: 'NXDOMAIN carries the SOA, TTL min(SOA TTL, MINIMUM)', qname: 'nope.example.test.', qtype: 'A', rcode: 'NXDOMAIN', aa: true, ns: [SOA] },
  { name: 'NODATA carries the SOA', qname: 'www.example.test.', qtype: 'MX', rcode: 'NOERROR', aa: true, ns: [SOA] },
  { name: 'empty non-terminal is NODATA', qname: 'b.c.example.test.', qtype: 'A', rcode: 'NOERROR', aa: true, ns: [SOA] },
  { name: 'higher empty non-terminal is NODATA', qname: 'c.example.test.', qtype: 'A', rcode: 'NOERROR', aa: true, ns: [SOA] },
  { name: 'below an existing name is NXDOMAIN', qname: 'x.www.example.test.', qtype: 'A', rcode: 'NXDOMAIN', aa: true, ns: [SOA] },
  { name: 'SOA at the apex', qname: 'example.test.', qtype: 'SOA', rcode: 'NOERROR', aa: true, answer: ['example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 300'] },
  {
    name: 'NS at the apex with addresses in additional', qname: 'example.test.', qtype: 'NS', rcode: 'NOERROR', aa: true,
    answer: ['example.test. 3600 IN NS ns1.example.test.', 'example.test. 3600 IN NS ns2.example.test.'],
    extra: ['ns1.example.test. 3600 IN A 192.0.2.1', 'ns2.example.test. 3600 IN A 192.0.2.2', 'ns2.example.test. 3600 IN AAAA 2001:db8::2'],
  },
  {
    name: 'MX target address in additional', qname: 'example.test.', qtype: 'MX', rcode: 'NOERROR', aa: true,
    answer: ['example.test. 3600 IN MX 10 mail.example.test.'], extra: ['mail.example.test. 3600 IN A 192.0.2.25'],
  },
  {
    name: 'SRV target address in additional', qname: '_sip._tcp.example.test.', qtype: 'SRV', rcode: 'NOERROR', aa: true,
    answer: ['_sip._tcp.example.test. 3600 IN SRV 10 60 5060 sipserver.example.test.'], extra: ['sipserver.example.test. 3600 IN A 192.0.2.60'],
  },
  { name: 'wildcard synthesizes the owner', qname: 'x.wild.example.test.', qtype: 'A', rcode: 'NOERROR', aa: true, answer: ['x.wild.example.test. 3600 IN A 192.0.2.99'] },
  { name: 'wildcard covers several labels', qname: 'a.b.wild.example.test.', qtype: 'TXT', rcode: 'NOERROR', aa: true, answer: ['a.b.wild.example.test. 3600 IN TXT "wild"'] },
  { name: 'wildcard without the type is NODATA', qname: 'x.wild.example.test.', qtype: 'MX', rcode: 'NOERROR', aa: true, ns: [SOA] },
  { name: 'existing name blocks the wildcard', qname: 'sub.wild.example.test.', qtype: 'TXT', rcode: 'NOERROR', aa: true, ns: [SOA] },
  { name: 'closest encloser without wildcard is NXDOMAIN', qname: 'x.sub.wild.example.test.', qtype: 'A', rcode: 'NXDOMAIN', aa: true, ns: [SOA] },
  { name: 'the wildcard owner itself', qname: '*.wild.example.test.', qtype: 'A', rcode: 'NOERROR', aa: true, answer: ['*.wild.example.test. 3600 IN A 192.0.2.99'] },
  { name: 'CNAME followed inside the zone', qname: 'cname.example.test.', qtype: 'A', rcode: 'NOERROR', aa: true, answer: ['cname.example.test. 3600 IN CNAME www.example.test.', WWW_A] },
  { name: 'CNAME query returns the CNAME only', qname: 'cname.example.test.', qtype: 'CNAME', rcode: 'NOERROR', aa: true, answer: ['cname.example.test. 3600 IN CNAME www.example.test.'] },
  {
    name: 'CNAME chain', qname: 'chain1.example.test.', qtype: 'A', rcode: 'NOERROR', aa: true,
    answer: ['chain1.example.test. 3600 IN CNAME chain2.example.test.', 'chain2.example.test. 3600 IN CNAME www.example.test.', WWW_A],
  },
  { name: 'CNAME to a missing name: rcode from the end of the chain', qname: 'dangling.example.test.', qtype: 'A', rcode: 'NXDOMAIN', aa: true, answer: ['dangling.example.test. 3600 IN CNAME nothere.example.test.'], ns: [SOA] },
  { name: 'CNAME to a name without the type: NODATA', qname: 'cname.example.test.', qtype: 'MX', rcode: 'NOERROR', aa: true, answer: ['cname.example.test. 3600 IN CNAME www.example.test.'], ns: [SOA] },
  {
    name: 'CNAME loop stops', qname: 'loop1.example.test.', qtype: 'A', rcode: 'NOERROR', aa: true,
    answer: ['loop1.example.test. 3600 IN CNAME loop2.example.test.', 'loop2.example.test. 3600 IN CNAME loop1.example.test.'],
  },
  { name: 'CNAME out of zone is not chased', qname: 'outside.example.test.', qtype: 'A', rcode: 'NOERROR', aa: true, answer: ['outside.example.test. 3600 IN CNAME www.example.com.'] },
  {
    name: 'delegation: referral without AA, glue in additional', qname: 'host.deleg.example.test.', qtype: 'A', rcode: 'NOERROR', aa: false,
    ns: ['deleg.example.test. 3600 IN NS ns.deleg.example.test.', 'deleg.example.test. 3600 IN NS ns.elsewhere.test.'],
    extra: ['ns.deleg.example.test. 3600 IN A 192.0.2.53'],
  },
  {
    name: 'NS query at the cut is a referral', qname: 'deleg.example.test.', qtype: 'NS', rcode: 'NOERROR', aa: false,
    ns: ['deleg.example.test. 3600 IN NS ns.deleg.example.test.', 'deleg.example.test. 3600 IN NS ns.elsewhere.test.'],
    extra: ['ns.deleg.example.test. 3600 IN A 192.0.2.53'],
  },
  { name: 'child zone served here answers (longest match)', qname: 'www.child.example.test.', qtype: 'A', rcode: 'NOERROR', aa: true, answer: ['www.child.example.test. 600 IN A 192.0.2.200'] },
  { name: 'child zone negative TTL is the SOA TTL when lower', qname: 'nx.child.example.test.', qtype: 'A', rcode: 'NXDOMAIN', aa: true, ns: [CHILD_SOA] },
  { name: 'DS at a cut is answered by the parent (RFC 4035 3.1.4.1), not referred', qname: 'deleg.example.test.', qtype: 'DS', rcode: 'NOERROR', aa: true, ns: [SOA] },
  { name: 'DS at the apex of a child zone served here is answered by the parent', qname: 'child.example.test.', qtype: 'DS', rcode: 'NOERROR', aa: true, ns: [SOA] },
  { name: 'DS below a cut is still a referral', qname: 'x.deleg.example.test.', qtype: 'DS', rcode: 'NOERROR', aa: false,
    ns: ['deleg.example.test. 3600 IN NS ns.deleg.example.test.', 'deleg.example.test. 3600 IN NS ns.elsewhere.test.'],
    extra: ['ns.deleg.example.test. 3600 IN A 192.0.2.53'] },
  { name: 'RFC 3597 unknown type', qname: 'blob.example.test.', qtype: 'TYPE65534', rcode: 'NOERROR', aa: true, answer: ['blob.example.test. 3600 IN TYPE65534 \\# 3 010203'] },
  { name: 'ANY gets one RRset (RFC 8482)', qname: 'www.example.test.', qtype: 'ANY', rcode: 'NOERROR', aa: true, answer: [WWW_A] },
];

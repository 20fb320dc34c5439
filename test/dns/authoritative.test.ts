import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig } from '../helpers/dig.js';
import { dns2Decode, dns2Query } from '../helpers/dns2.js';
import { startFixture } from '../helpers/server.js';
import { CASES } from './cases.js';

let server: Awaited<ReturnType<typeof startFixture>>;
beforeAll(async () => { server = await startFixture(); });
afterAll(async () => { await server.close(); });

const sorted = (a: string[] | undefined) => [...(a ?? [])].sort();

describe('authoritative behaviour through the real dig', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const r = await dig(server.port, ['+norec', c.qname, c.qtype]);
      expect(r.status).toBe(c.rcode);
      expect(r.flags.has('aa')).toBe(c.aa);
      expect(r.flags.has('ra')).toBe(false);
      expect(r.answer).toEqual(c.answer ?? []);
      expect(sorted(r.authority)).toEqual(sorted(c.ns));
      expect(sorted(r.additional)).toEqual(sorted(c.extra));
    });
  }
});

describe('authoritative behaviour in-process (dns2 as the client)', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const out = Buffer.alloc(65535);
      const q = dns2Query(c.qname, c.qtype);
      const n = server.engine.handle(q, 0, q.length, out, 0, out.length, false);
      const r = dns2Decode(out.subarray(0, n));
      expect(r.rcode).toBe(c.rcode);
      expect(r.aa).toBe(c.aa);
      expect(r.answer).toEqual(c.answer ?? []);
      expect(sorted(r.authority)).toEqual(sorted(c.ns));
      expect(sorted(r.additional)).toEqual(sorted(c.extra));
    });
  }
});

// Timing the DNS engine in-process (bench:request-duration, bench:dnssec): the mix of bench:dns
// as query packets, and two variants measured in alternating rounds so that a busy machine slows
// both alike.

/** A query for `name` A with ID `id`; with `edns`, an OPT (size 1232) whose DO bit is `dnssecOk`. */
export function queryPacket(name, id, { edns = false, dnssecOk = false } = {}) {
  const labels = name.split('.').flatMap((l) => [l.length, ...Buffer.from(l)]);
  const opt = edns ? [0, 0, 41, 0x04, 0xd0, 0, 0, dnssecOk ? 0x80 : 0, 0, 0, 0] : [];
  return Buffer.from([id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, edns ? 1 : 0, ...labels, 0, 0, 1, 0, 1, ...opt]);
}

/** bench:dns's mix over `zone`: 70% www A (the GSLB pool), 20% static A, 10% nonexistent names. */
export function benchMix(zone, opts) {
  return Array.from({ length: 100 }, (_, i) => queryPacket(i < 70 ? `www.${zone}` : i < 90 ? `static.${zone}` : `nx${i}.${zone}`, i, opts));
}

/**
 * Median ns per query of each variant ({ name: [engine, mix] }) over `rounds` alternating rounds
 * of `queries` queries, after one warm-up run each (JIT, reply caches). Queries go in batches of
 * 32, as the UDP transport hands them over (batchStart: its beforeBatch).
 */
export function alternatingRounds(variants, rounds, queries) {
  const out = Buffer.alloc(65535);
  const peer = { family: 4, address: Uint8Array.from([127, 0, 0, 1]) };
  const run = ([engine, mix]) => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < queries; i++) {
      if (i % 32 === 0) engine.batchStart();
      const q = mix[i % mix.length];
      engine.handle(q, 0, q.length, out, 0, 1232, false, peer);
    }
    return Number(process.hrtime.bigint() - t0) / queries;
  };
  const names = Object.keys(variants);
  for (const n of names) run(variants[n]);
  const ns = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) for (const n of r % 2 ? [...names].reverse() : names) ns[n].push(run(variants[n]));
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  return Object.fromEntries(names.map((n) => [n, median(ns[n])]));
}

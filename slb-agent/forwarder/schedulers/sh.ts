/**
 * Source hashing as weighted rendezvous (HRW) hashing: every backend scores the flow's source hash
 * against its own id hash and the highest weighted score wins, so removing a backend moves exactly
 * the flows it had and adding one takes flows only onto itself. Also the 32-bit hashes the
 * consistent-hashing schedulers share.
 */
import type { Backend, Flow, Scheduler } from '../model.js';
import { fmix32 } from '../../../shared/hash.js';

const FNV_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function fnvString(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), FNV_PRIME);
  return h;
}

function fnvPort(h: number, port: number): number {
  h = Math.imul(h ^ (port & 0xff), FNV_PRIME);
  return Math.imul(h ^ ((port >>> 8) & 0xff), FNV_PRIME);
}

/** A uint32 hash of a string (FNV-1a then fmix32); different seeds give unrelated hashes. */
export function hashString(s: string, seed = 0): number {
  return fmix32(fnvString(FNV_BASIS ^ seed, s) ^ s.length);
}

/** A uint32 hash of the flow's source address, plus its port and/or protocol when asked; allocates nothing. */
export function hashFlow(flow: Flow, withPort: boolean, withProtocol: boolean): number {
  let h = fnvString(FNV_BASIS, flow.srcAddress);
  if (withPort) h = fnvPort(h, flow.srcPort);
  if (withProtocol) h = Math.imul(h ^ (flow.protocol === 'tcp' ? 6 : 17), FNV_PRIME);
  return fmix32(h);
}

const ID_SEED = 0x2545f491;
const TWO_32 = 4294967296;

/**
 * The same source (address, or address and port with `ports`) always gets the same backend while
 * the set is unchanged; each backend with weight > 0 gets a share proportional to its weight.
 */
export function createSourceHash(backends: readonly Backend[], opts: { ports?: boolean } = {}): Scheduler {
  const withPort = opts.ports === true;
  const active = backends.filter((b) => b.weight > 0);
  const n = active.length;
  const idHash = Uint32Array.from(active, (b) => hashString(b.id, ID_SEED));
  const weight = Float64Array.from(active, (b) => b.weight);
  return {
    pick(flow: Flow): Backend | undefined {
      if (n === 0) return undefined;
      const hf = hashFlow(flow, withPort, false);
      let best = 0;
      let bestScore = -Infinity;
      for (let i = 0; i < n; i++) {
        const u = (fmix32(hf ^ idHash[i]!) + 0.5) / TWO_32; // uniform in (0, 1)
        const score = weight[i]! / -Math.log(u);
        if (score > bestScore) { bestScore = score; best = i; }
      }
      return active[best];
    },
  };
}

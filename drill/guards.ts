/**
 * A drill's guards, checked on every answer while the steps run: `serving: NAME, atLeast: N`
 * trips when an instance answers NAME (to any vantage, or `from`) with fewer than N addresses.
 * A question without a reply never trips one (so an instance's death can be drilled), and
 * neither does a SERVFAIL or REFUSED while another target still serves the vantage: a resolver
 * asks the next name server then, and its clients are served.
 */
import type { Guard } from './plan.js';
import type { GuardRecord, Sample } from './result.js';

export interface GuardWatch {
  /** checks one answer against every guard not tripped yet (nothing after stop()) */
  check(s: Sample): void;
  stop(): void;
  /** the `guards` of the drill's record */
  records(): GuardRecord[];
}

/** A reply with no answer from that server (the drill could not ask it). */
export function answered(s: Sample): boolean {
  return s.rcode !== 'TIMEOUT' && s.rcode !== 'ERROR';
}

/** A reply after which a resolver asks the next name server instead of answering its client. */
function sendsElsewhere(s: Sample): boolean {
  return s.rcode === 'SERVFAIL' || s.rcode === 'REFUSED';
}

/**
 * `servedElsewhere(s, n)`: whether another target's latest answer to s's vantage and name has at
 * least n addresses. `trip(name, detail)` is called once per guard that trips.
 */
export function watchGuards(guards: readonly Guard[], servedElsewhere: (s: Sample, atLeast: number) => boolean,
  trip: (name: string, detail: string) => void): GuardWatch {
  const state = guards.map((g) => ({ g, checked: 0, trip: undefined as { at: number; detail: string } | undefined }));
  let on = true;
  return {
    check(s) {
      if (!on) return;
      for (const st of state) {
        const g = st.g;
        if (st.trip !== undefined || s.name !== g.serving || (g.from !== undefined && s.vantage !== g.from) || !answered(s)) continue;
        st.checked++;
        if (s.addresses.length >= g.atLeast || (sendsElsewhere(s) && servedElsewhere(s, g.atLeast))) continue;
        const detail = `${s.instance} answered ${s.name} ${s.type} to ${s.vantage} with ${s.addresses.length} address${s.addresses.length === 1 ? '' : 'es'} (${s.rcode}), fewer than ${g.atLeast}`;
        st.trip = { at: s.t, detail };
        trip(g.name, detail);
      }
    },
    stop() { on = false; },
    records: () => state.map((st) => (st.trip !== undefined
      ? { name: st.g.name, tripped: true, at: st.trip.at, detail: st.trip.detail }
      : { name: st.g.name, tripped: false, at: null, detail: `never fewer than ${st.g.atLeast} (${st.checked} answers checked)` })),
  };
}

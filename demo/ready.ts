/**
 * When the demo is ready: every gslb-dns instance answers every pool from health (every member
 * reported and serving, no pool degraded or waiting for its start-up), read from each instance's
 * `GET /api/v1/state`. Polled, bounded.
 */

interface StateBody {
  pools?: { name: string; degraded: boolean; startupPending: boolean; members: { site: string; address: string; serving: boolean }[] }[];
}

/** What an instance's state says is still missing; empty when it answers from health. */
export function missing(instance: string, body: StateBody): string[] {
  const out: string[] = [];
  for (const p of body.pools ?? []) {
    const down = p.members.filter((m) => !m.serving).map((m) => `${m.site} ${m.address}`);
    if (down.length > 0) out.push(`${instance}: pool ${p.name} waits for ${down.join(', ')}`);
    else if (p.degraded || p.startupPending) out.push(`${instance}: pool ${p.name} is not answering from health yet`);
  }
  return out;
}

/**
 * Polls every `apis` state every `everyMs` until nothing is missing (true), `stop()` says to
 * give up, or `timeoutMs` passes (false); `waiting()` on the result says what was missing last.
 */
export async function waitHealthy(apis: readonly { name: string; url: string }[], token: string, opts: {
  timeoutMs: number; everyMs: number; stop: () => boolean;
}): Promise<{ ok: boolean; waiting: string[] }> {
  const deadline = Date.now() + opts.timeoutMs;
  let waiting = ['no answer from the gslb-dns APIs yet'];
  while (!opts.stop()) {
    const results = await Promise.all(apis.map(async (a) => {
      try {
        const res = await fetch(`${a.url}/api/v1/state`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(2000) });
        if (!res.ok) return [`${a.name}: state answered ${res.status}`];
        return missing(a.name, (await res.json()) as StateBody);
      } catch (err) {
        return [`${a.name}: ${(err as Error).message}`];
      }
    }));
    waiting = results.flat();
    if (waiting.length === 0) return { ok: true, waiting };
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, opts.everyMs));
  }
  return { ok: false, waiting };
}

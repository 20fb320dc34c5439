/**
 * Polls `probe` every `everyMs` until `ok` holds, for at most `ms` (a bound on a real system's
 * settling, not a latency claim); the error carries the last value or error seen.
 */
export async function poll<T>(probe: () => Promise<T>, ok: (v: T) => boolean, what: string, ms: number, everyMs: number, detailChars = 2000): Promise<T> {
  const end = performance.now() + ms;
  for (;;) {
    let last: string;
    try {
      const v = await probe();
      if (ok(v)) return v;
      last = JSON.stringify(v);
    } catch (err) {
      last = (err as Error).message;
    }
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}; last: ${last.slice(0, detailChars)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Benchmark knobs from the environment. */

/** An integer environment variable >= min, or `dflt` when unset; anything else is an error. */
export function intEnv(name, dflt, min) {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got ${v}`);
  return n;
}

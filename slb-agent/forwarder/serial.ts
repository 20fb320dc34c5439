/**
 * One change to a data plane at a time: each apply starts when the previous one has settled,
 * whether it succeeded or not, so converging never interleaves.
 */
export interface Serial {
  /** runs `f` after everything queued before it; the result is `f`'s */
  run<T>(f: () => Promise<T>): Promise<T>;
  /** resolves once everything queued so far has settled */
  idle(): Promise<void>;
}

export function createSerial(): Serial {
  let tail: Promise<unknown> = Promise.resolve();
  return {
    run(f) {
      const result = tail.then(f);
      tail = result.catch(() => undefined);
      return result;
    },
    idle: () => tail.then(() => undefined),
  };
}

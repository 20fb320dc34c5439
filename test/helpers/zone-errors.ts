import { expect } from 'vitest';
import { ZoneError } from '../../dns/zone/record.js';

/** The message of the ZoneError that `fn` throws, or '(no error)'. */
export function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ZoneError);
    return (e as Error).message;
  }
  return '(no error)';
}

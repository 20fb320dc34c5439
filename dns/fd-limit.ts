/**
 * The process's descriptor budget, read once by whoever sizes connection caps (the DNS TCP
 * listener and the HTTP API), so both derive their defaults from the same number.
 */
import { readFileSync } from 'node:fs';

/** The soft `Max open files` of /proc/self/limits (`ulimit -n`); undefined when unknown or unlimited. */
export function readDescriptorLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^Max open files\s+(\S+)/m.exec(text);
  const n = m ? Number(m[1]) : NaN;
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

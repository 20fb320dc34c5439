/**
 * The JSON lines a program writes (pino's log format), read from its output stream as they come:
 * a line that is not JSON is passed on as `{ msg: line }`, blank lines are skipped, a line split
 * across chunks is joined first.
 */
import type { Readable } from 'node:stream';

export type JsonLine = Record<string, unknown>;

/** Calls `onLine` with every line of `stream`, in order. */
export function readJsonLines(stream: Readable, onLine: (line: JsonLine) => void): void {
  let rest = '';
  stream.on('data', (d: Buffer) => {
    rest += d.toString();
    const parts = rest.split('\n');
    rest = parts.pop()!;
    for (const p of parts) {
      if (!p.trim()) continue;
      let l: JsonLine;
      try { l = JSON.parse(p) as JsonLine; } catch { l = { msg: p }; }
      onLine(l);
    }
  });
}

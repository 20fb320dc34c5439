/**
 * What every command line of this project does the same way: `--version` and `--help` (usage
 * and examples) on every command and subcommand, a usage error (message and usage, exit 2), and
 * the logger (pretty on a terminal, JSON lines otherwise).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { Logger } from 'pino';

/** A bad flag or argument: the command prints the message and its usage and exits with 2. */
export class UsageError extends Error {}

let version: string | undefined;

/** The version in the repository's package.json (the nearest one above this module, source or dist). */
export function packageVersion(): string {
  if (version !== undefined) return version;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const v = (JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown }).version;
      version = typeof v === 'string' ? v : 'unknown';
      return version;
    }
    const up = dirname(dir);
    if (up === dir) return (version = 'unknown');
    dir = up;
  }
}

/** The help of one command: its name as typed, the usage lines, and examples to copy. */
export interface CommandHelp {
  readonly name: string;
  readonly usage: string;
  readonly examples: readonly string[];
}

/** `usage:` then `examples:`, as --help prints it and a usage error repeats it. */
export function helpText(h: CommandHelp): string {
  return `usage:\n${h.usage}\n\nexamples:\n${h.examples.map((e) => `  ${e}`).join('\n')}\n`;
}

/**
 * Answers `--help`/`-h` and `--version`/`-V` (anywhere before a `--`): writes the text and
 * returns 0; undefined when neither was asked for, and the command goes on.
 */
export function helpOrVersion(argv: readonly string[], h: CommandHelp, write: (s: string) => void = (s) => { process.stdout.write(s); }): number | undefined {
  const end = argv.indexOf('--');
  const flags = end < 0 ? argv : argv.slice(0, end);
  if (flags.includes('--version') || flags.includes('-V')) {
    // the bare version, as the bins answer it before loading anything (and scripts compare it)
    write(`${packageVersion()}\n`);
    return 0;
  }
  if (flags.includes('--help') || flags.includes('-h')) {
    write(helpText(h));
    return 0;
  }
  return undefined;
}

/**
 * The usage-error handling of a program's entry point: a UsageError or a node:util parseArgs
 * error prints `name: message` and the help, exit 2; anything else prints the message (a stack
 * only for what nobody expected) and exits 1.
 */
export function exitCodeOf(err: unknown, h: CommandHelp, writeErr: (s: string) => void = (s) => { process.stderr.write(s); }): number {
  if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    writeErr(`${h.name}: ${(err as Error).message}\n${helpText(h)}`);
    return 2;
  }
  const e = err as NodeJS.ErrnoException;
  writeErr(`${h.name}: ${e.code ? e.message : e.stack ?? String(err)}\n`);
  return 1;
}

/** The one logger set-up of every program: pino, pretty-printed when stdout is a terminal. */
export function createLogger(level: string): Logger {
  if (process.stdout.isTTY) return pino({ level, transport: { target: 'pino-pretty', options: { colorize: true } } });
  return pino({ level });
}

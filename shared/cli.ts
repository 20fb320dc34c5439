/**
 * What every command line of this project does the same way: a usage error (printed with the
 * command's usage, exit 2).
 */

/** A bad flag or argument: the command prints the message and its usage and exits with 2. */
export class UsageError extends Error {}

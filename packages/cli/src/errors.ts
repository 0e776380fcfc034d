/** An error of the command's own (not the server's): printed as `Error: <message>`, exit 1. */
export class CliError extends Error {}

/**
 * A command called wrongly in a way commander cannot see (a value it needs from either of two
 * places, say): exit 2, as commander's own usage errors, so a script can tell its own mistake
 * from the server's refusal.
 */
export class UsageError extends CliError {}

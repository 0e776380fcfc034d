/** An error of the command's own (not the server's): printed as `Error: <message>`, exit 1. */
export class CliError extends Error {}

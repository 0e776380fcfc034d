import { ApiError, NetworkError } from '@synk/sdk/node';
import { CommanderError } from 'commander';
import { asksForVersion, CliError, globals, program, USAGE_EXIT, UsageError, VERSION } from './cli.ts';
import { registerAppBundle } from './commands/app-bundle.ts';
import { registerAttachments } from './commands/attachments.ts';
import { registerCompletion } from './commands/completion.ts';
import { registerConfig } from './commands/config.ts';
import { registerDevices } from './commands/devices.ts';
import { registerExports } from './commands/exports.ts';
import { registerForms } from './commands/forms.ts';
import { registerRecords } from './commands/records.ts';
import { registerSession } from './commands/session.ts';
import { registerUsers } from './commands/users.ts';

// A reader that stops reading (`synk … | head -1`) is not an error of synk's: end quietly, with
// the exit code the command has set so far, rather than with an unhandled EPIPE stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit();
  throw err;
});

registerConfig(program);
registerSession(program);
registerUsers(program);
registerAppBundle(program);
registerForms(program);
registerRecords(program);
registerDevices(program);
registerExports(program);
registerAttachments(program);
registerCompletion(program);

type Cause = Error & { code?: unknown; errors?: unknown[] };

/**
 * What failed and why: the request (method and URL) and the system's reason, which fetch hides
 * under "fetch failed" (its cause, e.g. `connect ECONNREFUSED 127.0.0.1:8080`; an AggregateError
 * when several addresses were tried).
 */
function networkFailure(err: NetworkError): string {
  const chain: Cause[] = [];
  for (let c = err.cause as Cause | undefined; c && chain.length < 8; c = c.cause as Cause | undefined) {
    chain.push(c);
    if (Array.isArray(c.errors) && c.errors[0] instanceof Error) chain.push(c.errors[0] as Cause);
  }
  const code = chain.map((c) => c.code).find((c): c is string => typeof c === 'string');
  const deepest = chain.toReversed().find((c) => c.message && c.message !== 'fetch failed');
  const reason = deepest?.message ?? code;
  const what = err.message.replace(/: fetch failed$/, '');
  if (!reason || what.endsWith(reason)) return what;
  return `${what}: ${reason}${code && !reason.includes(code) ? ` (${code})` : ''}`;
}

function describe(err: unknown): string {
  if (err instanceof ApiError) {
    const p = err.problem;
    const details = p?.errors?.map((e) => `  - ${e.path ? `${e.path}: ` : ''}${e.message}`).join('\n');
    // A throttled login's "try again later" says how much later (its Retry-After).
    const wait =
      err.retryAfterMs !== undefined && Number.isFinite(err.retryAfterMs)
        ? ` (retry after ${Math.ceil(err.retryAfterMs / 1000)} s)`
        : '';
    return `Error ${err.status}${p?.code ? ` (${p.code})` : ''}: ${p?.detail ?? err.message}${wait}${details ? `\n${details}` : ''}`;
  }
  if (err instanceof NetworkError) return `Cannot reach the server: ${networkFailure(err)}`;
  if (err instanceof CliError) return `Error: ${err.message}`;
  // Every JSON file the CLI reads itself is named in its own errors: this is a server's answer.
  if (err instanceof SyntaxError)
    return `Error: the server's answer is not JSON (is it a synk server?): ${err.message}`;
  return `Error: ${(err as Error)?.message ?? String(err)}`;
}

export async function run(argv: string[]): Promise<void> {
  if (asksForVersion(argv.slice(2))) {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  try {
    await program.parseAsync(argv);
  } catch (err) {
    // Commander has printed its message (and the help) already; --help and the like end with 0.
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : USAGE_EXIT;
      return;
    }
    if (globals().json)
      process.stderr.write(
        `${JSON.stringify({ error: describe(err), problem: err instanceof ApiError ? err.problem : undefined })}\n`,
      );
    else process.stderr.write(`${describe(err)}\n`);
    process.exitCode =
      err instanceof UsageError ? USAGE_EXIT : err instanceof ApiError && err.status === 401 ? 3 : 1;
  }
}

await run(process.argv);

import { ApiError, NetworkError } from '@synk/sdk/node';
import { asksForVersion, CliError, globals, program, VERSION } from './cli.ts';
import { registerAppBundle } from './commands/app-bundle.ts';
import { registerAttachments } from './commands/attachments.ts';
import { registerCompletion } from './commands/completion.ts';
import { registerConfig } from './commands/config.ts';
import { registerExports } from './commands/exports.ts';
import { registerForms } from './commands/forms.ts';
import { registerRecords } from './commands/records.ts';
import { registerSession } from './commands/session.ts';
import { registerUsers } from './commands/users.ts';

registerConfig(program);
registerSession(program);
registerUsers(program);
registerAppBundle(program);
registerForms(program);
registerRecords(program);
registerExports(program);
registerAttachments(program);
registerCompletion(program);

function describe(err: unknown): string {
  if (err instanceof ApiError) {
    const p = err.problem;
    const details = p?.errors?.map((e) => `  - ${e.path ? `${e.path}: ` : ''}${e.message}`).join('\n');
    return `Error ${err.status}${p?.code ? ` (${p.code})` : ''}: ${p?.detail ?? err.message}${details ? `\n${details}` : ''}`;
  }
  if (err instanceof NetworkError)
    return `Cannot reach the server: ${(err.cause as Error)?.message ?? err.message}`;
  if (err instanceof CliError) return `Error: ${err.message}`;
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
    if (globals().json)
      process.stderr.write(
        `${JSON.stringify({ error: describe(err), problem: err instanceof ApiError ? err.problem : undefined })}\n`,
      );
    else process.stderr.write(`${describe(err)}\n`);
    process.exitCode = err instanceof ApiError && err.status === 401 ? 3 : 1;
  }
}

await run(process.argv);

import type { Command } from 'commander';
import { context, globals } from '../cli.ts';

/**
 * `synk sync watch`: prints the server's change counter each time it grows, from the event stream
 * of `GET /sync/events`, until interrupted (Ctrl-C ends it with exit code 0). With --json, one
 * JSON object per line, for a script to read as they come.
 */
export function registerSyncWatch(sync: Command): void {
  sync
    .command('watch')
    .description(
      'print the server’s change counter each time it grows (records pushed, attachments changed), until interrupted',
    )
    .action(async () => {
      // The stream is quiet between heartbeats; the SDK reconnects when it stays silent this long.
      const { client } = await context({ timeoutMs: 60_000 });
      const stop = new AbortController();
      const interrupted = () => stop.abort();
      process.once('SIGINT', interrupted);
      process.once('SIGTERM', interrupted);
      try {
        for await (const change of client.changes({ signal: stop.signal })) {
          const at = new Date().toISOString();
          process.stdout.write(
            globals().json
              ? `${JSON.stringify({ current_version: change.current_version, at })}\n`
              : `${at}  version ${change.current_version}\n`,
          );
        }
      } finally {
        process.off('SIGINT', interrupted);
        process.off('SIGTERM', interrupted);
      }
    });
}

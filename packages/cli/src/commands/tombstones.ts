import { type Command, InvalidArgumentError } from 'commander';
import { context, ok, output } from '../cli.ts';

/** An `--older-than-days <n>` value: a whole number ≥ 0 (0: every tombstone). */
function daysArgument(value: string): number {
  if (!/^\d{1,15}$/.test(value))
    throw new InvalidArgumentError('must be a whole number ≥ 0, a number of days');
  return Number(value);
}

const tombstones = (n: number) => `${n} tombstone${n === 1 ? '' : 's'}`;

/** `synk sync purge-tombstones`: a subcommand of `sync`, beside pull and push. */
export function registerTombstonePurge(sync: Command): void {
  sync
    .command('purge-tombstones')
    .description(
      'delete the tombstones (deleted records) synced at least N days ago (admin); devices that pulled before them resync',
    )
    .requiredOption(
      '--older-than-days <n>',
      'purge tombstones synced this many days ago or earlier',
      daysArgument,
    )
    .option('--dry-run', 'change nothing: count what would be purged')
    .action(async (options: { olderThanDays: number; dryRun?: boolean }) => {
      const { client } = await context();
      const result = ok(
        await client.api.POST('/sync/tombstones/purge', {
          body: { older_than_days: options.olderThanDays, dry_run: options.dryRun ?? false },
        }),
      );
      const { purged_count: count, generation, purged_through: through } = result;
      output(result, () => {
        if (count === 0)
          return `No tombstones synced ${options.olderThanDays} days ago or earlier: nothing to purge (generation ${generation})`;
        return result.dry_run
          ? `Would purge ${tombstones(count)}; the generation would become ${generation} (nothing was changed)`
          : `Purged ${tombstones(count)}; generation ${generation}: devices that pulled before version ${through} will resync`;
      });
    });
}

import type { components, SyncClient } from '@synk/sdk/node';
import { type Command, InvalidArgumentError } from 'commander';
import { context, countArgument, globals, table } from '../cli.ts';
import { writeJsonArray } from '../json-array.ts';
import { writeStdout } from '../transfer.ts';

type ConflictEntry = components['schemas']['ConflictEntry'];

/** Entries per request of `sync conflicts`: the most the server gives in one page. */
const CONFLICT_PAGE = 500;

/**
 * Rows per table of `sync conflicts`: a table sizes its columns to its rows, so a log of any length
 * is printed as tables of this many (each with its header), and held a table at a time.
 */
export const TABLE_ROWS = 500;

const COLUMNS = ['id', 'observation_id', 'form_type', 'policy', 'base/server', 'by', 'detected_at'];

/** A `--after <id>` value: a conflict log id, so a whole number ≥ 0 (0: from the first entry). */
function conflictIdArgument(value: string): number {
  if (!/^\d{1,15}$/.test(value)) throw new InvalidArgumentError('must be a whole number ≥ 0, a conflict id');
  return Number(value);
}

/** A conflict as one line of the table: the copies themselves are too big for it (--json has them). */
function conflictRow(c: ConflictEntry): Record<string, unknown> {
  return {
    id: c.id,
    observation_id: c.observation_id,
    form_type: c.form_type,
    policy: c.policy,
    'base/server': `${c.base_version}/${c.server_version}`,
    by: `${c.username} (${c.client_id})`,
    detected_at: c.detected_at,
  };
}

/** What the listing found beyond its pages: the last entry listed, and whether --limit left more out. */
interface Listed {
  last?: number;
  more: boolean;
}

/**
 * The entries of the conflict log after `after`, page by page as the server gives them, at most
 * `limit` of them; `listed` says, once they are all read, whether --limit left entries out.
 */
async function* conflictEntries(
  client: SyncClient,
  after: number,
  limit: number,
  listed: Listed,
): AsyncGenerator<ConflictEntry[]> {
  let count = 0;
  for await (const page of client.conflictPages({ after, limit: Math.min(limit, CONFLICT_PAGE) })) {
    const room = limit - count;
    const entries = page.conflicts.slice(0, room);
    count += entries.length;
    listed.last = entries.at(-1)?.id ?? listed.last;
    yield entries;
    if (count >= limit) {
      listed.more = page.has_more || page.conflicts.length > room;
      return;
    }
  }
}

/** Prints `pages` as tables of up to `TABLE_ROWS` rows, separated by a blank line; returns how many rows. */
async function printTables(pages: AsyncIterable<ConflictEntry[]>): Promise<number> {
  let rows: Record<string, unknown>[] = [];
  let printed = 0;
  const print = async () => {
    await writeStdout(`${printed > 0 ? '\n' : ''}${table(rows, COLUMNS)}\n`);
    printed += rows.length;
    rows = [];
  };
  for await (const entries of pages)
    for (const entry of entries) {
      rows.push(conflictRow(entry));
      if (rows.length === TABLE_ROWS) await print();
    }
  if (rows.length > 0) await print();
  return printed;
}

export function registerConflicts(sync: Command): void {
  sync
    .command('conflicts')
    .description(
      'the conflict log (admin): records pushed over a copy their device had not seen; --json has both copies',
    )
    .option(
      '--after <id>',
      'only conflicts after this id (the last one listed, to go on)',
      conflictIdArgument,
      0,
    )
    .option('--limit <n>', 'list at most this many (default: every one)', countArgument)
    .action(async (options: { after: number; limit?: number }) => {
      const { client } = await context();
      const listed: Listed = { more: false };
      const entries = conflictEntries(
        client,
        options.after,
        options.limit ?? Number.POSITIVE_INFINITY,
        listed,
      );
      // Each page is printed as it arrives: the log may hold more entries than fit in memory.
      if (globals().json) {
        await writeJsonArray(entries, writeStdout);
        return;
      }
      if ((await printTables(entries)) === 0) {
        const none = options.after ? `No conflicts after ${options.after}` : 'No conflicts logged';
        await writeStdout(`${none}\n`);
      }
      if (listed.more)
        await writeStdout(`… more after ${listed.last}: synk sync conflicts --after ${listed.last}\n`);
    });
}

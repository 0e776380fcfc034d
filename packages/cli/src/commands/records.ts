import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { parseJsonExact } from '@synk/json';
import type { components, PushWarning, RecordInput, RefusedBatch } from '@synk/sdk/node';
import type { Command } from 'commander';
import { CliError, context, output, versionArgument } from '../cli.ts';
import { writeRecordsJson } from '../records-json.ts';
import { destinationPath, STDIN, STDOUT, writeWhole } from '../transfer.ts';
import { registerConflicts } from './conflicts.ts';
import { registerSyncWatch } from './sync-watch.ts';
import { registerTombstonePurge } from './tombstones.ts';

type FailedRecord = components['schemas']['FailedRecord'];

const LISTED_FAILURES = 20;
const LISTED_WARNINGS = 5;
const LISTED_FIELD_ERRORS = 3;

/** A warning of the server about a record it took, with the record's place in the file. */
type Warning = PushWarning & { index?: number };

/**
 * The server's message, then the field errors it does not quote already (an `invalid_record`
 * message lists them, a `schema_validation` one does not). A conflict's message names the server's
 * version; its copy of the record is only in the --json output.
 */
function failureLine(f: FailedRecord): string {
  return `  - #${f.index}${f.observation_id ? ` ${f.observation_id}` : ''}: ${f.code}: ${f.error}${fieldErrors(f.error, f.errors)}`;
}

/** The server's words for a batch it refused whole, or its status when it gave none (a proxy's page). */
const refusalText = (batch: RefusedBatch) => batch.detail || `HTTP ${batch.status} (${batch.code})`;

/**
 * The lines for the batches the server refused whole (the SDK's report says which: a read-only
 * user's push is refused batch by batch with 403), one per reason rather than one per record; when
 * that is every failure and for one reason, one line says the push was refused.
 */
function refusalLines(refused: RefusedBatch[], failed: number): string[] {
  const records = new Map<string, number>();
  for (const batch of refused)
    records.set(refusalText(batch), (records.get(refusalText(batch)) ?? 0) + batch.ids.length);
  const [only] = records.keys();
  if (records.size === 1 && records.get(only!) === failed) return [`  the server refused the push: ${only}`];
  return [...records].map(
    ([text, count]) => `  the server refused ${count} records (their batches whole): ${text}`,
  );
}

/** The field errors `message` does not quote already, the first few, in parentheses. */
function fieldErrors(message: string, errors: FailedRecord['errors']): string {
  const unquoted = (errors ?? [])
    .filter((e) => !message.includes(e.message))
    .map((e) => (e.path ? `${e.path} ${e.message}` : e.message));
  const fields = [
    ...unquoted.slice(0, LISTED_FIELD_ERRORS),
    ...(unquoted.length > LISTED_FIELD_ERRORS ? ['…'] : []),
  ];
  return fields.length ? ` (${fields.join('; ')})` : '';
}

function warningLine(w: Warning): string {
  return `  ! ${w.index !== undefined ? `#${w.index} ` : ''}${w.id}: ${w.code}: ${w.message}${fieldErrors(w.message, w.errors)}`;
}

export function registerRecords(program: Command): void {
  const sync = program
    .command('sync')
    .description('records: pull them into a file, push them from one; the conflict log');
  registerSyncWatch(sync);
  sync
    .command('pull <out>')
    .description(
      'pull every record (all pages) into a JSON file (records.json inside a directory; - for standard output)',
    )
    .option('--schema-types <types>', 'comma-separated form types')
    .option('--since <version>', 'only changes after this version', versionArgument, 0)
    .action(async (out: string, options: { schemaTypes?: string; since: number }) => {
      const { client } = await context();
      const schemaTypes = options.schemaTypes?.split(',').filter(Boolean) ?? [];
      const pages = client.pullPages({
        since: options.since,
        ...(schemaTypes.length ? { schemaTypes } : {}),
      });
      const target = await destinationPath(out, 'records.json');
      // Written whole or not at all: an interrupted pull leaves an earlier file as it was.
      let count = 0;
      await writeWhole(target, 'pull', async (write) => {
        count = await writeRecordsJson(pages, write);
      });
      if (target !== STDOUT) output({ file: target, records: count }, `Wrote ${count} records to ${target}`);
    });
  registerConflicts(sync);
  sync
    .command('push <file>')
    .description(
      'push the records of a JSON file (an array, or {records: [...]}; - for standard input, as sync pull - writes them)',
    )
    .action(async (file: string) => {
      const name = file === STDIN ? 'standard input' : file;
      let parsed: unknown;
      try {
        parsed = parseJsonExact(file === STDIN ? await text(process.stdin) : await readFile(file, 'utf8'));
      } catch (err) {
        throw new CliError(
          `${name}: ${err instanceof SyntaxError ? 'not valid JSON: ' : ''}${(err as Error).message}`,
        );
      }
      const list = Array.isArray(parsed)
        ? parsed
        : typeof parsed === 'object' && parsed !== null
          ? (parsed as { records?: unknown }).records
          : undefined;
      if (!Array.isArray(list))
        throw new CliError(`${name} holds no array of records (an array, or {"records": [...]})`);
      const { client } = await context();
      const failed: FailedRecord[] = [];
      const queued: RecordInput[] = [];
      const indexOf = new Map<string, number>();
      /** Copies followed by a later one with the same id: the outbox keeps the last copy of an id. */
      const merged: { index: number; observation_id: string }[] = [];
      for (const [index, record] of list.entries()) {
        const id = (record as { observation_id?: unknown } | null)?.observation_id;
        // The outbox keys records by observation_id: one without a string id cannot be queued.
        if (typeof id !== 'string') {
          failed.push({ index, code: 'invalid_record', error: 'observation_id must be a string' });
          continue;
        }
        const earlier = indexOf.get(id);
        if (earlier !== undefined) merged.push({ index: earlier, observation_id: id });
        indexOf.set(id, index);
        queued.push(record as RecordInput);
      }
      await client.records.saveMany(queued);
      const result = await client.push();
      const success = result.pushed;
      const warnings: Warning[] = result.warnings.map((w) =>
        indexOf.has(w.id) ? { index: indexOf.get(w.id)!, ...w } : w,
      );
      // The outbox is this command's own (see context()): every dead letter in it is from this push.
      for (const dead of await client.records.deadLetters()) {
        const id = dead.record.observation_id;
        failed.push({
          index: indexOf.get(id)!,
          observation_id: id,
          code: dead.code,
          error: dead.error,
          ...(dead.errors ? { errors: dead.errors } : {}),
          ...(dead.serverVersion !== undefined ? { server_version: dead.serverVersion } : {}),
          ...(dead.serverRecord ? { server_record: dead.serverRecord } : {}),
        });
      }
      failed.sort((a, b) => a.index - b.index);
      merged.sort((a, b) => a.index - b.index);
      // The records of batches refused whole are told by their batches' reason, not one by one.
      const inRefusedBatch = new Set(result.refused.flatMap((batch) => batch.ids));
      const ownFailures = failed.filter((f) => !f.observation_id || !inRefusedBatch.has(f.observation_id));
      const refusedBatches = result.refused.map((batch) => ({
        transmission_id: batch.transmissionId,
        status: batch.status,
        code: batch.code,
        detail: batch.detail,
        observation_ids: batch.ids,
      }));
      output(
        {
          success_count: success,
          failed_records: failed,
          refused_batches: refusedBatches,
          warnings,
          merged_duplicates: merged,
        },
        () =>
          [
            `Pushed ${success} records${failed.length ? `, ${failed.length} failed` : ''}${warnings.length ? `, ${warnings.length} warning${warnings.length === 1 ? '' : 's'}` : ''}${merged.length ? `; merged ${merged.length} duplicate id${merged.length === 1 ? '' : 's'} (the last copy of each is pushed)` : ''}`,
            ...refusalLines(result.refused, failed.length),
            ...ownFailures.slice(0, LISTED_FAILURES).map(failureLine),
            ...(ownFailures.length > LISTED_FAILURES
              ? [`  … ${ownFailures.length - LISTED_FAILURES} more failed (--json lists all)`]
              : []),
            ...warnings.slice(0, LISTED_WARNINGS).map(warningLine),
            ...(warnings.length > LISTED_WARNINGS
              ? [`  … ${warnings.length - LISTED_WARNINGS} more warnings (--json lists all)`]
              : []),
          ].join('\n'),
      );
      if (failed.length) process.exitCode = 1;
    });
  registerTombstonePurge(sync);
}

import { readFile, writeFile } from 'node:fs/promises';
import { parseJson } from '@synk/json';
import type { Command } from 'commander';
import { CliError, context, ok, output } from '../cli.ts';

export function registerRecords(program: Command): void {
  const sync = program.command('sync').description('records');
  sync
    .command('pull <out>')
    .description('pull every record (all pages) into a JSON file')
    .option('--schema-types <types>', 'comma-separated form types')
    .option('--since <version>', 'only changes after this version', '0')
    .action(async (out: string, options: { schemaTypes?: string; since: string }) => {
      const { client } = await context();
      const schemaTypes = options.schemaTypes?.split(',').filter(Boolean) ?? [];
      const records = await client.pullAll({
        since: Number(options.since),
        ...(schemaTypes.length ? { schemaTypes } : {}),
      });
      await writeFile(out, `${JSON.stringify(records, null, 2)}\n`);
      output({ file: out, records: records.length }, `Wrote ${records.length} records to ${out}`);
    });
  sync
    .command('push <file>')
    .description('push the records of a JSON file (an array, or {records: [...]})')
    .action(async (file: string) => {
      const { client } = await context();
      const parsed = parseJson(await readFile(file, 'utf8')) as unknown;
      const list = Array.isArray(parsed) ? parsed : (parsed as { records?: unknown[] }).records;
      if (!Array.isArray(list)) throw new CliError(`${file} holds no array of records`);
      let success = 0;
      const failed: unknown[] = [];
      for (let i = 0; i < list.length; i += 500) {
        const batch = list.slice(i, i + 500);
        const result = ok(
          await client.api.POST('/sync/push', {
            body: {
              transmission_id: crypto.randomUUID(),
              client_id: await client.clientId(),
              records: batch,
            },
          }),
        );
        success += result.success_count;
        failed.push(...result.failed_records.map((f) => ({ ...f, index: f.index + i })));
      }
      output(
        { success_count: success, failed_records: failed },
        `Pushed ${success} records${failed.length ? `, ${failed.length} failed` : ''}`,
      );
      if (failed.length) process.exitCode = 1;
    });
}

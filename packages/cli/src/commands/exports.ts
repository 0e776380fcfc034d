import type { Command } from 'commander';
import { context, output, versionArgument } from '../cli.ts';
import { destinationPath, STDOUT, saveResponse } from '../transfer.ts';

/**
 * An export sends nothing while the server learns the columns from a first pass over the records
 * (about 5 s per million on a small machine), so the wait for its first bytes is long.
 */
const EXPORT_TIMEOUT_MS = 30 * 60_000;

/** The name the server gives each export (Content-Disposition), for an export written into a directory. */
const exportName = { parquet: 'observations_export.zip', csv: 'observations_export_csv.zip' } as const;

/**
 * Collects `--form-type` values: repeated, or comma-separated. Not a variadic option, which would
 * also take the `<out>` after it for a form type.
 */
function formTypes(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').filter(Boolean)];
}

export function registerExports(program: Command): void {
  const exporter = program.command('export').description('export observations');
  for (const format of ['parquet', 'csv'] as const) {
    exporter
      .command(format)
      .description(`a ZIP of ${format} files, one per form type`)
      .argument(
        '<out>',
        `the ZIP to write: a file, a directory (${exportName[format]} inside it) or - for standard output`,
      )
      .option(
        '--form-type <type>',
        'only this form type (repeat it, or separate types with commas, for several)',
        formTypes,
      )
      .option('--since <version>', 'only records with a newer version', versionArgument)
      .option('--include-deleted', 'include deleted records')
      .action(
        async (out: string, options: { formType?: string[]; since?: number; includeDeleted?: boolean }) => {
          const { client } = await context({ timeoutMs: EXPORT_TIMEOUT_MS });
          const query = {
            ...(options.formType?.length ? { form_type: options.formType } : {}),
            ...(options.since !== undefined ? { since_version: options.since } : {}),
            ...(options.includeDeleted ? { include_deleted: true } : {}),
          };
          const res =
            format === 'parquet'
              ? await client.api.GET('/dataexport/parquet', { params: { query }, parseAs: 'stream' })
              : await client.api.GET('/dataexport/csv', { params: { query }, parseAs: 'stream' });
          const target = await destinationPath(out, exportName[format]);
          const bytes = await saveResponse(res, target, 'export');
          if (target !== STDOUT) output({ file: target, bytes }, `Wrote ${target} (${bytes} bytes)`);
        },
      );
  }
}

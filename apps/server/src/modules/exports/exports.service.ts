import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { openParquetStream } from '../../lib/parquet.ts';
import { createZipStream } from '../../lib/zip.ts';
import type { ExportFilter, RecordExportSource, StoredRecord } from '../sync/sync.store.ts';
import { BASE_COLUMNS, type DataColumn, DataProfile, exportFileNames, toRow } from './export-columns.ts';

const PAGE = 2000;
const ROW_GROUP = 5_000;

/**
 * Streams exports: records are read a page at a time, twice per form type (once to learn the
 * column types, once to write), so memory depends on the page and row-group sizes, never on
 * how many records there are.
 */
export class ExportsService {
  readonly #source: RecordExportSource;

  constructor(source: RecordExportSource) {
    this.#source = source;
  }

  async *#records(formType: string, filter: ExportFilter): AsyncGenerator<StoredRecord[]> {
    let after = 0;
    for (;;) {
      const page = await this.#source.exportPage(formType, filter, after, PAGE);
      if (page.length === 0) return;
      yield page;
      after = page.at(-1)!.version;
      if (page.length < PAGE) return;
    }
  }

  async #profile(formType: string, filter: ExportFilter) {
    const profile = new DataProfile();
    for await (const page of this.#records(formType, filter)) {
      for (const record of page) profile.add(JSON.parse(record.data) as Record<string, unknown>);
    }
    return profile.columns();
  }

  /**
   * One ZIP entry per form type (sanitised, collision-safe names), each written by `writeFile`
   * from the profiled columns and the type's rows (records a page at a time, already converted).
   */
  async #zipPerFormType(
    filter: ExportFilter,
    output: Writable,
    extension: string,
    writeFile: (
      entry: Writable,
      columns: DataColumn[],
      rows: AsyncGenerator<Record<string, unknown>[]>,
    ) => Promise<void>,
  ): Promise<void> {
    const zip = await createZipStream(output);
    const formTypes = await this.#source.exportFormTypes(filter);
    const names = exportFileNames(formTypes, extension);
    for (const formType of formTypes) {
      const columns = await this.#profile(formType, filter);
      const pages = this.#records(formType, filter);
      async function* rows() {
        for await (const page of pages) {
          yield page.map((record) =>
            toRow(record, JSON.parse(record.data) as Record<string, unknown>, columns),
          );
        }
      }
      await writeFile(zip.entry(names.get(formType)!), columns, rows());
    }
    await zip.finalize();
  }

  parquet(filter: ExportFilter, output: Writable): Promise<void> {
    return this.#zipPerFormType(filter, output, 'parquet', async (entry, columns, rows) => {
      const writer = await openParquetStream(
        [...BASE_COLUMNS, ...columns.map((c) => c.column)],
        entry,
        ROW_GROUP,
      );
      for await (const page of rows) for (const row of page) await writer.append(row);
      await writer.close();
    });
  }

  csv(filter: ExportFilter, output: Writable): Promise<void> {
    return this.#zipPerFormType(filter, output, 'csv', async (entry, columns, rows) => {
      const header = [...BASE_COLUMNS.map((c) => c.name), ...columns.map((c) => c.column.name)];
      await write(entry, `${header.map(csvField).join(',')}\r\n`);
      for await (const page of rows) {
        await write(
          entry,
          page.map((row) => `${header.map((name) => csvField(row[name])).join(',')}\r\n`).join(''),
        );
      }
      entry.end();
    });
  }
}

/** RFC 4180: quote fields holding commas, quotes or line breaks (or edge spaces); double the quotes. */
export function csvField(value: unknown): string {
  if (value === undefined || value === null) return '';
  const text = typeof value === 'bigint' ? value.toString() : String(value);
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

async function write(stream: Writable, text: string): Promise<void> {
  if (!stream.write(text)) await once(stream, 'drain');
}

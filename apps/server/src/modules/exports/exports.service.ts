import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { openParquetStream, type ParquetColumn } from '../../lib/parquet.ts';
import { createZipStream } from '../../lib/zip.ts';
import type { ExportDataRow, ExportFilter, ExportRow, RecordExportSource } from '../sync/sync.store.ts';
import { type DataColumn, DataProfile, ExportLayout, exportFileNames } from './export-columns.ts';

/**
 * Records per read. Small pages keep what a page allocates short-lived (it is encoded before the
 * next one is read; the Parquet writer keeps only encoded pages until a row group is full).
 */
const PAGE = 500;

/**
 * Streams exports in two passes over the records, a page at a time: the first learns the form
 * types and each one's columns, the second converts and writes each form type's records. Memory
 * depends on the page and row-group sizes, never on how many records there are.
 */
export class ExportsService {
  readonly #source: RecordExportSource;

  constructor(source: RecordExportSource) {
    this.#source = source;
  }

  /** Every selected form type (sorted) with its data columns, from one scan of the records. */
  async #profile(filter: ExportFilter): Promise<Map<string, DataColumn[]>> {
    const profiles = new Map<string, DataProfile>();
    let after = 0;
    const learn = ([version, formType, data]: ExportDataRow) => {
      let profile = profiles.get(formType);
      if (!profile) {
        profile = new DataProfile();
        profiles.set(formType, profile);
      }
      profile.addJson(data);
      after = version;
    };
    for (;;) {
      // Each page is a turn of the event loop of its own: other requests are served during an export.
      await nextTurn();
      if ((await this.#source.visitExportData(filter, after, PAGE, learn)) < PAGE) break;
    }
    return new Map(
      [...profiles.keys()].sort().map((formType) => [formType, profiles.get(formType)!.columns()]),
    );
  }

  /** The form type's records converted a page at a time. */
  async *#pages(formType: string, filter: ExportFilter, layout: ExportLayout) {
    let after = 0;
    for (;;) {
      await nextTurn();
      const cells = layout.newCells(PAGE);
      let rowCount = 0;
      const fill = (row: ExportRow) => {
        layout.fill(cells, rowCount++, row);
        after = row[8];
      };
      await this.#source.visitExportRows(formType, filter, after, PAGE, fill);
      if (rowCount > 0) yield { cells, rowCount };
      if (rowCount < PAGE) return;
    }
  }

  /**
   * One ZIP entry per form type (sanitised, collision-safe names), each written by `writeFile`
   * from the type's columns and its records converted a page at a time (`cells[column][row]`).
   */
  async #zipPerFormType(
    filter: ExportFilter,
    output: Writable,
    extension: string,
    writeFile: (
      entry: Writable,
      columns: ParquetColumn[],
      pages: AsyncGenerator<{ cells: unknown[][]; rowCount: number }>,
    ) => Promise<void>,
  ): Promise<void> {
    const zip = await createZipStream(output);
    const profile = await this.#profile(filter);
    const names = exportFileNames([...profile.keys()], extension);
    for (const [formType, dataColumns] of profile) {
      const layout = new ExportLayout(dataColumns);
      // Parquet pages are compressed already: the ZIP stores them as they are.
      const entry = zip.entry(names.get(formType)!, { compress: extension !== 'parquet' });
      await writeFile(entry, layout.columns, this.#pages(formType, filter, layout));
    }
    await zip.finalize();
  }

  parquet(filter: ExportFilter, output: Writable): Promise<void> {
    return this.#zipPerFormType(filter, output, 'parquet', async (entry, columns, pages) => {
      const writer = await openParquetStream(columns, entry);
      for await (const { cells, rowCount } of pages) await writer.append(cells, rowCount);
      await writer.close();
    });
  }

  csv(filter: ExportFilter, output: Writable): Promise<void> {
    return this.#zipPerFormType(filter, output, 'csv', async (entry, columns, pages) => {
      await write(entry, `${columns.map((c) => csvField(c.name)).join(',')}\r\n`);
      for await (const { cells, rowCount } of pages) {
        let text = '';
        for (let i = 0; i < rowCount; i++)
          text += `${cells.map((column) => csvField(column[i])).join(',')}\r\n`;
        await write(entry, text);
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

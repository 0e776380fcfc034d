import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { HttpProblem } from '../../http/errors.ts';
import { releaseWrittenBuffers } from '../../lib/memory.ts';
import { openParquetStream, type ParquetColumn } from '../../lib/parquet.ts';
import { endStream, writeChunk } from '../../lib/streams.ts';
import { createZipStream } from '../../lib/zip.ts';
import type {
  ExportDataRow,
  ExportFilter,
  ExportReader,
  ExportRow,
  RecordExportSource,
} from '../sync/sync.store.ts';
import { type DataColumn, DataProfile, ExportLayout, exportFileNames } from './export-columns.ts';

/**
 * Records per read. Small reads keep what a read allocates short-lived (its values are encoded
 * before the next read; the Parquet writer keeps only encoded bytes).
 */
const PAGE = 500;

/**
 * Form types written from one scan of the records. One scan per form type would read every page
 * of the table once per type where types are interleaved (each read of a record is a seek into
 * the table); one scan for all of them would hold a page of cells and a row group per type. So
 * the types are taken a few at a time: memory stays bounded however many types there are.
 */
const TYPES_PER_SCAN = 4;
/**
 * A shared scan reads every record of the export to write its types; a form type read on its own
 * (through the form-type index) reads only its records, each a little dearer. So a type holding
 * less than this share of the records is read on its own: with thousands of small types, shared
 * scans made an export's cost grow with types × records (50,000 records in 10,000 types: 78 s).
 */
const SHARED_SCAN_MIN_SHARE = 1 / 6;

/**
 * Cells (one per column per record read) a scan holds: fewer records per read when the scan's
 * form types have many columns (a form can have thousands of fields, or keys that vary by record).
 */
const CELLS_PER_SCAN = 1_000_000;
const MIN_ROWS_PER_READ = 16;

/** Encoded bytes a scan's Parquet files hold in row groups being filled, together. */
const ROW_GROUP_BYTES_PER_SCAN = 4 << 20;
/**
 * But at least this much per column in a file's row groups: the footer keeps ~50 bytes of
 * metadata per column per row group until the file ends, so a wide form's row groups cut at the
 * scan's share would make the footer (held in memory) a tenth of the file or more; at 2 KiB per
 * column it stays ~2.5%. Only forms of hundreds of columns get larger row groups.
 */
const ROW_GROUP_BYTES_PER_COLUMN = 2 << 10;
/**
 * Bytes a scan's Parquet files hold in the pages being filled (one per column), together: pages
 * are smaller when there are many columns (forms often have hundreds of fields), within bounds.
 */
const PAGE_BYTES_PER_SCAN = 4 << 20;
const PAGE_BYTES = { min: 1 << 10, max: 256 << 10 };

/** Temporary files older than this are left over from a process that died mid-export. */
const STALE_MS = 24 * 60 * 60 * 1000;

/** Where a file's rows go: appended a page at a time (`cells[column][row]`), then closed. */
interface TableWriter {
  append(cells: unknown[][], rowCount: number): Promise<void>;
  close(): Promise<void>;
}

type OpenTable = (output: Writable, columns: ParquetColumn[], typesInScan: number) => Promise<TableWriter>;

/** One form type's file being written during a scan. */
interface Table {
  formType: string;
  layout: ExportLayout;
  cells: unknown[][];
  rows: number;
  writer: TableWriter;
  /** Where the file is being written when it is not the ZIP entry itself. */
  file?: string;
}

/** How long a client turned away by the export limit is asked to wait. */
const BUSY_RETRY_AFTER_SECONDS = 10;

export interface ExportLimits {
  /**
   * Exports in progress at once: each holds a snapshot until it ends (on SQLite a read transaction
   * that keeps WAL checkpoints from finishing, on PostgreSQL a pooled connection) and a core busy
   * encoding, so one more is turned away (503 with Retry-After) rather than queued.
   */
  concurrent: number;
  /**
   * How long an export waits for a client that has stopped reading (its output full, nothing
   * taken) before giving up on it: otherwise a client that pauses its download would hold its slot
   * and snapshot for ever, and a few of them would shut every other user out of exports.
   */
  stallMs: number;
  /**
   * Data columns a form type's file has at most: the first keys in sort order get one each, the
   * rest of each record's keys go into one JSON column (`other_data`). Each column costs memory
   * and time while its file is written, and one record can carry a million keys.
   */
  maxColumns: number;
}

/** A form type's data columns, whether its other keys go into the overflow column, its records. */
interface FormColumns {
  data: DataColumn[];
  overflow: boolean;
  records: number;
}

/**
 * Streams exports in two passes over the records, a page at a time: the first learns the form
 * types and each one's columns, the second converts and writes the records of a few form types
 * per scan. Memory depends on the page and row-group sizes, never on how many records there are.
 * In each scan the first form type is written straight into the ZIP; the others go to temporary
 * files under `tempDir` (as big as their share of the export) and are copied in after it.
 */
export class ExportsService {
  readonly #source: RecordExportSource;
  readonly #tempDir: string;
  readonly #limits: ExportLimits;
  #running = 0;

  constructor(source: RecordExportSource, tempDir: string, limits: ExportLimits) {
    this.#source = source;
    this.#tempDir = tempDir;
    this.#limits = limits;
  }

  async #admitted(output: Writable, run: () => Promise<void>): Promise<void> {
    if (this.#running >= this.#limits.concurrent) {
      throw new HttpProblem(
        503,
        'export_busy',
        `${this.#limits.concurrent} export(s) already running; try again in a few seconds`,
        { headers: { 'Retry-After': String(BUSY_RETRY_AFTER_SECONDS) } },
      );
    }
    this.#running += 1;
    const unwatch = destroyWhenStalled(output, this.#limits.stallMs);
    try {
      await run();
    } finally {
      unwatch();
      this.#running -= 1;
    }
  }

  /** Every selected form type (sorted) with its data columns, from one scan of the records. */
  async #profile(reader: ExportReader, filter: ExportFilter): Promise<Map<string, FormColumns>> {
    const profiles = new Map<string, { data: DataProfile; records: number }>();
    let after = 0;
    const learn = ([version, formType, data]: ExportDataRow) => {
      let profile = profiles.get(formType);
      if (!profile) {
        profile = { data: new DataProfile(this.#limits.maxColumns), records: 0 };
        profiles.set(formType, profile);
      }
      profile.data.addJson(data);
      profile.records += 1;
      after = version;
    };
    for (;;) {
      // Each page is a turn of the event loop of its own: other requests are served during an export.
      await nextTurn();
      if ((await reader.visitExportData(filter, after, PAGE, learn)) === 0) break;
    }
    return new Map(
      [...profiles.keys()].sort().map((formType) => {
        const { data, records } = profiles.get(formType)!;
        return [formType, { data: data.columns(), overflow: data.overflows, records }];
      }),
    );
  }

  /**
   * One ZIP entry per form type (sanitised, collision-safe names, sorted), each written by the
   * writer `open` gives from the type's columns and its records converted a page at a time.
   */
  async #zipPerFormType(filter: ExportFilter, output: Writable, extension: string, open: OpenTable) {
    const zip = await createZipStream(output);
    // Both passes read one snapshot: the columns learnt first fit every record written after.
    const reader = whileWanted(await this.#source.openExportReader(), output);
    try {
      const profile = await this.#profile(reader, filter);
      const names = exportFileNames([...profile.keys()], extension);
      const formTypes = [...profile.keys()];
      // Parquet pages are compressed already: the ZIP stores them as they are.
      const entry = (formType: string) =>
        zip.entry(names.get(formType)!, { compress: extension !== 'parquet' });
      const counted = formTypes.map((formType) => [formType, profile.get(formType)!.records] as const);
      for (const scanTypes of planScans(counted)) {
        await this.#scan(reader, scanTypes, profile, filter, entry, open);
      }
    } finally {
      await reader.close();
    }
    await zip.finalize();
  }

  /** Writes the files of `formTypes` from one scan of their records, in version order. */
  async #scan(
    reader: ExportReader,
    formTypes: string[],
    profile: Map<string, FormColumns>,
    filter: ExportFilter,
    entry: (formType: string) => Writable,
    open: OpenTable,
  ): Promise<void> {
    const layouts = new Map(
      formTypes.map((formType) => {
        const { data, overflow } = profile.get(formType)!;
        return [formType, new ExportLayout(data, overflow)];
      }),
    );
    const columns = [...layouts.values()].reduce((n, layout) => n + layout.columns.length, 0);
    const rowsPerRead = Math.max(MIN_ROWS_PER_READ, Math.min(PAGE, Math.floor(CELLS_PER_SCAN / columns)));
    const dir = formTypes.length > 1 ? await this.#newTempDir() : undefined;
    const files: Writable[] = [];
    try {
      const tables = new Map<string, Table>();
      for (const [i, formType] of formTypes.entries()) {
        const layout = layouts.get(formType)!;
        const file = i === 0 ? undefined : path.join(dir!, String(i));
        const output = file === undefined ? entry(formType) : createWriteStream(file);
        if (file !== undefined) {
          // A failing disk fails the writes (their callbacks); the event must not go unhandled.
          output.on('error', () => {});
          files.push(output);
        }
        const writer = await open(output, layout.columns, formTypes.length);
        tables.set(formType, {
          formType,
          layout,
          cells: layout.newCells(rowsPerRead),
          rows: 0,
          writer,
          file,
        });
      }
      let after = 0;
      const fill = (row: ExportRow) => {
        const table = tables.get(row[1])!;
        table.layout.fill(table.cells, table.rows++, row);
        after = row[8];
      };
      for (;;) {
        await nextTurn();
        const read = await reader.visitExportRows(formTypes, filter, after, rowsPerRead, fill);
        // The writers copy the values out, so each type's cells are filled again by the next read.
        for (const table of tables.values()) {
          if (table.rows === 0) continue;
          await table.writer.append(table.cells, table.rows);
          table.rows = 0;
        }
        if (read === 0) break;
      }
      for (const table of tables.values()) await table.writer.close();
      for (const table of tables.values()) {
        if (table.file !== undefined) await copyInto(table.file, entry(table.formType));
      }
    } finally {
      // After a failure (the client went away), files still open are closed, then removed.
      for (const file of files) file.destroy();
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  }

  /** A directory of its own for one scan's files (and those of exports that died, removed). */
  async #newTempDir(): Promise<string> {
    await mkdir(this.#tempDir, { recursive: true });
    const now = Date.now();
    for (const name of await readdir(this.#tempDir)) {
      const stale = path.join(this.#tempDir, name);
      const info = await stat(stale).catch(() => undefined);
      if (info && now - info.mtimeMs > STALE_MS) await rm(stale, { recursive: true, force: true });
    }
    return mkdtemp(path.join(this.#tempDir, 'export-'));
  }

  parquet(filter: ExportFilter, output: Writable): Promise<void> {
    return this.#admitted(output, () => this.#parquet(filter, output));
  }

  csv(filter: ExportFilter, output: Writable): Promise<void> {
    return this.#admitted(output, () => this.#csv(filter, output));
  }

  #parquet(filter: ExportFilter, output: Writable): Promise<void> {
    return this.#zipPerFormType(filter, output, 'parquet', (out, columns, typesInScan) =>
      openParquetStream(columns, out, {
        rowGroupBytes: Math.max(
          Math.floor(ROW_GROUP_BYTES_PER_SCAN / typesInScan),
          columns.length * ROW_GROUP_BYTES_PER_COLUMN,
        ),
        pageBytes: Math.min(
          PAGE_BYTES.max,
          Math.max(PAGE_BYTES.min, Math.floor(PAGE_BYTES_PER_SCAN / (columns.length * typesInScan))),
        ),
      }),
    );
  }

  #csv(filter: ExportFilter, output: Writable): Promise<void> {
    return this.#zipPerFormType(filter, output, 'csv', async (out, columns) => {
      await writeChunk(out, `${columns.map((c) => csvField(c.name)).join(',')}\r\n`);
      return {
        async append(cells, rowCount) {
          let text = '';
          for (let i = 0; i < rowCount; i++)
            text += `${cells.map((column) => csvField(column[i])).join(',')}\r\n`;
          await writeChunk(out, text);
        },
        close: () => endStream(out),
      };
    });
  }
}

/**
 * The form types (sorted, with their record counts) in the groups each scan writes: types holding
 * a large share of the records TYPES_PER_SCAN at a time, in order; each of the others on its own,
 * where it comes in that order.
 */
export function planScans(formTypes: readonly (readonly [string, number])[]): string[][] {
  const total = formTypes.reduce((sum, [, records]) => sum + records, 0);
  const scans: string[][] = [];
  let shared: string[] = [];
  for (const [formType, records] of formTypes) {
    if (records < total * SHARED_SCAN_MIN_SHARE) {
      scans.push([formType]);
      continue;
    }
    shared.push(formType);
    if (shared.length === TYPES_PER_SCAN) {
      scans.push(shared);
      shared = [];
    }
  }
  if (shared.length > 0) scans.push(shared);
  return scans;
}

/**
 * Destroys `output` once it has been full for `ms` without the client taking anything (no 'drain'
 * while data waits). Time the export spends computing with nothing waiting does not count, so a
 * long first pass over the records never trips it. Returns the function that stops watching.
 */
function destroyWhenStalled(output: Writable, ms: number): () => void {
  let progressAt = Date.now();
  const onDrain = () => {
    progressAt = Date.now();
  };
  output.on('drain', onDrain);
  const timer = setInterval(
    () => {
      if (!output.writableNeedDrain) progressAt = Date.now();
      else if (Date.now() - progressAt >= ms && !output.destroyed)
        output.destroy(new Error(`the client took nothing for ${ms} ms`));
    },
    Math.max(10, Math.min(1000, ms / 4)),
  );
  timer.unref();
  return () => {
    clearInterval(timer);
    output.off('drain', onDrain);
  };
}

/**
 * The reader, refusing to read on once the output is gone (the client went away): nobody would
 * get the rest, and a profiling pass sends no bytes that would fail first.
 */
function whileWanted(reader: ExportReader, output: Writable): ExportReader {
  const wanted = () => {
    if (output.destroyed) throw new Error('the export output was closed');
  };
  return {
    async visitExportData(...args) {
      wanted();
      return reader.visitExportData(...args);
    },
    async visitExportRows(...args) {
      wanted();
      return reader.visitExportRows(...args);
    },
    close: () => reader.close(),
  };
}

/**
 * RFC 4180: quote fields holding commas, quotes or line breaks (or edge spaces); double the quotes.
 * A missing value is an empty field and an empty string a quoted one (`""`), which readers such as
 * PostgreSQL's `COPY … CSV` read back as NULL and '' respectively.
 */
export function csvField(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (value === '') return '""';
  const text = typeof value === 'bigint' ? value.toString() : String(value);
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Copies a file into a ZIP entry (and ends it); read buffers waiting on a slow client are released. */
async function copyInto(file: string, entry: Writable): Promise<void> {
  const counted = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      releaseWrittenBuffers(chunk.length);
      callback(null, chunk);
    },
  });
  await pipeline(createReadStream(file), counted, entry);
}

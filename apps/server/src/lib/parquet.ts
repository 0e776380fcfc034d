import type { Writable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { releaseWrittenBuffers } from './memory.ts';
import {
  CompactWriter,
  CompressionCodec,
  PhysicalType,
  writeColumnChunk,
  writeColumnMetaData,
  writeFileMetaData,
  writePageHeader,
  writeRowGroup,
} from './parquet-thrift.ts';
import { endStream, writeChunk } from './streams.ts';

/**
 * The Parquet writer of exports, over the native `snappy` codec: the rest of the server never
 * imports it.
 *
 * Our columns are all flat primitives (required or optional, never repeated or nested), so rows
 * need no Dremel shredding: values arrive column by column, each column's pages are encoded here
 * (definition levels 0/1, PLAIN values, DataPageV2, Snappy) as soon as the rows arrive, and each
 * row group's column chunks and the file's footer are written as @dsnp/parquetjs's envelope
 * writer lays them out, their Thrift metadata encoded by parquet-thrift.ts. parquetjs's per-row
 * `appendRow` path spent most of an export's time and memory on shredding and statistics, and
 * its Thrift classes and serialiser most of the time and memory of a file with many columns.
 */

export type ParquetColumnType = 'UTF8' | 'DOUBLE' | 'INT64' | 'BOOLEAN';

export interface ParquetColumn {
  name: string;
  type: ParquetColumnType;
  optional: boolean;
}

/**
 * One column's values in a row group, one per row; `null`/`undefined` is absent (optional
 * columns only). UTF8: strings; INT64: safe integers or bigints; DOUBLE: numbers, or bigints a
 * double holds exactly (written as that double); BOOLEAN: booleans.
 */
export type ColumnValues = readonly unknown[];

export interface ParquetStream {
  /**
   * Adds `rowCount` rows, given column by column (`values[i]` holds column i's values). They are
   * encoded at once, so the caller may reuse or drop them; full row groups are written out.
   */
  append(values: ColumnValues[], rowCount: number): Promise<void>;
  /** Writes the last row group and the footer, and ends `output`. */
  close(): Promise<void>;
}

/** Readable by every Parquet reader (hyparquet included, without extra codecs). */
const COMPRESSION: 'SNAPPY' | 'UNCOMPRESSED' = 'SNAPPY';

let snappyCodec: Promise<(input: Uint8Array) => Buffer> | undefined;

// Native Snappy (raw format, what Parquet's SNAPPY codec is), loaded on first export: ~10×
// parquetjs's snappyjs, which took ~15% of an export's time. `copyOutputData` despite its doc: an
// external buffer per page costs far more than the copy (measured 0.3–1.3 GB/s without it, 4.4 GB/s
// with it).
async function loadSnappy() {
  const { compressSync } = await import('snappy');
  return (input: Uint8Array) => compressSync(input, { copyOutputData: true });
}

const MAGIC = Buffer.from('PAR1');
/** Each column's Parquet physical type. */
const PHYSICAL_TYPE = {
  UTF8: PhysicalType.BYTE_ARRAY,
  DOUBLE: PhysicalType.DOUBLE,
  INT64: PhysicalType.INT64,
  BOOLEAN: PhysicalType.BOOLEAN,
} as const;

/** When a row group is written out (rows, or encoded bytes), and how big a page's values get. */
export interface ParquetLimits {
  rowGroupRows: number;
  rowGroupBytes: number;
  /** PLAIN bytes per page (before compression). */
  pageBytes: number;
}

const DEFAULT_LIMITS: ParquetLimits = { rowGroupRows: 100_000, rowGroupBytes: 4 << 20, pageBytes: 256 << 10 };

/** Columns whose chunks a row group's flush writes between turns of the event loop. */
const COLUMNS_PER_TURN = 1000;

/**
 * Writes Parquet into `output`. Memory: each column's page being filled (its values already
 * encoded, at most about `pageBytes`), the encoded pages of the row group being filled (at most
 * about `rowGroupBytes`) and the footer's metadata of each column chunk written (~50 bytes each),
 * never the rows themselves: `append` copies the values out at once. A writer of many columns,
 * or one of several at once, wants smaller pages.
 */
export async function openParquetStream(
  columns: ParquetColumn[],
  output: Writable,
  limits: Partial<ParquetLimits> = {},
): Promise<ParquetStream> {
  const { rowGroupRows, rowGroupBytes, pageBytes } = { ...DEFAULT_LIMITS, ...limits };
  snappyCodec ??= loadSnappy();
  const snappy = await snappyCodec;
  const codec = CompressionCodec[COMPRESSION];
  /** Where the next byte lands in the file (offsets in the metadata are absolute). */
  let fileOffset = 0;
  const write = (bytes: Buffer) => {
    fileOffset += bytes.length;
    return writeChunk(output, bytes);
  };
  /** The footer's RowGroups, encoded as each is written. */
  const rowGroups = new CompactWriter();
  let rowGroupCount = 0;
  let fileRows = 0;
  /** Scratch space for the metadata being encoded. */
  const header = new CompactWriter();
  const metadata = new CompactWriter();
  const columnChunks = new CompactWriter();
  await write(MAGIC);

  /**
   * Each column's page being filled, and the row group being filled: its encoded pages, appended
   * to a buffer of the column's own that every row group reuses. Pages kept as buffers of their
   * own would outlive young-generation collections, be promoted, and pile up as old-generation
   * garbage between full collections (~20–30 MB in a 1M-record export).
   */
  const chunks = columns.map((column) => ({
    column,
    page: new PageBuilder(column),
    pages: new ByteArena(),
    uncompressedSize: 0,
  }));
  let groupRows = 0;
  /** The row group's encoded pages, kept up to date (each column's page being filled is bounded by `pageBytes`). */
  let groupBytes = 0;

  /** Ends the column's page being filled: a DataPageV2 (definition levels, then PLAIN values) appended to its chunk. */
  function endPage(chunk: (typeof chunks)[number]) {
    const { page } = chunk;
    if (page.rows === 0) return;
    const levels = chunk.column.optional ? page.definitionLevels() : EMPTY;
    const plain = page.plain();
    const body = COMPRESSION === 'SNAPPY' ? snappy(plain) : plain;
    header.clear();
    writePageHeader(header, {
      uncompressedSize: levels.length + plain.length,
      compressedSize: levels.length + body.length,
      rows: page.rows,
      nulls: page.rows - page.present,
      definitionLevelsLength: levels.length,
      compressed: COMPRESSION !== 'UNCOMPRESSED',
    });
    const before = chunk.pages.length;
    chunk.pages.append(header.view());
    chunk.pages.append(levels);
    chunk.pages.append(body);
    groupBytes += chunk.pages.length - before;
    chunk.uncompressedSize += header.length + levels.length + plain.length;
    page.clear();
  }

  /**
   * Writes the row group: each column chunk's pages, then its ColumnMetaData (where parquetjs puts
   * it), a section at a time; the column buffers are free again at once. Many columns are taken a
   * thousand at a time, a turn of the event loop each.
   */
  async function flush() {
    if (groupRows === 0) return;
    columnChunks.clear();
    const groupStart = fileOffset;
    for (let from = 0; from < chunks.length; from += COLUMNS_PER_TURN) {
      if (from > 0) await nextTurn();
      const parts: Buffer[] = [];
      let offset = fileOffset;
      const section = chunks.slice(from, from + COLUMNS_PER_TURN);
      for (const chunk of section) {
        endPage(chunk);
        const { column, pages, uncompressedSize } = chunk;
        metadata.clear();
        writeColumnMetaData(metadata, {
          type: PHYSICAL_TYPE[column.type],
          name: column.name,
          codec,
          values: groupRows,
          uncompressedSize,
          compressedSize: pages.length,
          dataPageOffset: offset,
        });
        parts.push(pages.view());
        offset += pages.length;
        writeColumnChunk(columnChunks, offset, metadata.view());
        parts.push(metadata.bytes());
        offset += metadata.length;
      }
      const bytes = Buffer.concat(parts);
      for (const chunk of section) {
        chunk.pages.clear();
        chunk.uncompressedSize = 0;
      }
      await write(bytes);
      releaseWrittenBuffers(bytes.length);
    }
    writeRowGroup(rowGroups, chunks.length, columnChunks.view(), fileOffset - groupStart, groupRows);
    rowGroupCount += 1;
    fileRows += groupRows;
    groupRows = 0;
    groupBytes = 0;
  }

  return {
    async append(values, rowCount) {
      for (let from = 0; from < rowCount; ) {
        // Never past the row group's end: a page belongs to one row group.
        const to = Math.min(rowCount, from + rowGroupRows - groupRows);
        for (const [i, chunk] of chunks.entries()) {
          const columnValues = values[i]!;
          for (let row = from; row < to; row++) {
            chunk.page.add(columnValues[row]);
            if (chunk.page.size >= pageBytes) endPage(chunk);
          }
        }
        groupRows += to - from;
        from = to;
        if (groupRows >= rowGroupRows || groupBytes >= rowGroupBytes) await flush();
      }
    },
    async close() {
      await flush();
      // The footer: FileMetaData as parquetjs writes it, its length, and the magic again.
      const footer = new CompactWriter();
      writeFileMetaData(
        footer,
        columns.map((column) => ({
          name: column.name,
          type: PHYSICAL_TYPE[column.type],
          optional: column.optional,
          utf8: column.type === 'UTF8',
        })),
        fileRows,
        rowGroupCount,
        rowGroups.view(),
      );
      const length = Buffer.alloc(4);
      length.writeUInt32LE(footer.length);
      await write(Buffer.concat([footer.view(), length, MAGIC]));
      await endStream(output);
    },
  };
}

const EMPTY = Buffer.alloc(0);

function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n > 0x7f) {
    bytes.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

/** Bytes appended to a buffer that grows as needed and is reused once cleared. */
class ByteArena {
  #buffer = Buffer.allocUnsafe(0);
  length = 0;
  append(bytes: Uint8Array): void {
    if (this.length + bytes.length > this.#buffer.length) {
      const larger = Buffer.allocUnsafe(Math.max(this.length + bytes.length, this.#buffer.length * 2, 256));
      this.#buffer.copy(larger, 0, 0, this.length);
      this.#buffer = larger;
    }
    this.#buffer.set(bytes, this.length);
    this.length += bytes.length;
  }
  /** The bytes so far (a view: valid until the next append or clear). */
  view(): Buffer {
    return this.#buffer.subarray(0, this.length);
  }
  clear(): void {
    this.length = 0;
  }
}

/** Buffer's own UTF-8 writer, without `write`'s argument juggling (it runs once per string value). */
type Utf8Writable = Buffer & { utf8Write(text: string, offset: number): number };

const TWO_TO_32 = 2 ** 32;

/**
 * A column's page being filled: its values PLAIN-encoded as they are added (length-prefixed
 * UTF-8, little-endian INT64/DOUBLE, bit-packed BOOLEAN), and one bit per row saying whether it
 * has a value (the definition levels of an optional column). Its buffers are reused page after page.
 */
class PageBuilder {
  readonly #type: ParquetColumnType;
  // Small to start with: a form can have thousands of columns, most of them sparse.
  #plain = Buffer.allocUnsafe(256) as Utf8Writable;
  #length = 0;
  #defined = new Uint8Array(16);
  rows = 0;
  present = 0;

  constructor(column: ParquetColumn) {
    this.#type = column.type;
  }

  /** PLAIN bytes so far. */
  get size(): number {
    return this.#length;
  }

  /** Adds a row: its value, or none (`null`/`undefined`). */
  add(value: unknown): void {
    const row = this.rows++;
    if (row >> 3 >= this.#defined.length) {
      const larger = new Uint8Array(this.#defined.length * 2);
      larger.set(this.#defined);
      this.#defined = larger;
    }
    if (value === null || value === undefined) return;
    this.#defined[row >> 3]! |= 1 << (row & 7);
    const index = this.present++;
    switch (this.#type) {
      case 'UTF8': {
        const text = value as string;
        this.#reserve(4 + text.length * 3);
        const length = this.#plain.utf8Write(text, this.#length + 4);
        this.#plain.writeUInt32LE(length, this.#length);
        this.#length += 4 + length;
        break;
      }
      case 'INT64': {
        this.#reserve(8);
        if (typeof value === 'bigint') this.#plain.writeBigInt64LE(value, this.#length);
        else {
          // Safe integers as two 32-bit halves: no BigInt per value.
          const n = value as number;
          const high = Math.floor(n / TWO_TO_32);
          this.#plain.writeUInt32LE(n - high * TWO_TO_32, this.#length);
          this.#plain.writeInt32LE(high, this.#length + 4);
        }
        this.#length += 8;
        break;
      }
      case 'DOUBLE':
        this.#reserve(8);
        this.#plain.writeDoubleLE(
          typeof value === 'bigint' ? Number(value) : (value as number),
          this.#length,
        );
        this.#length += 8;
        break;
      case 'BOOLEAN': {
        const byte = index >> 3;
        this.#reserve(1);
        if ((index & 7) === 0) this.#plain[byte] = 0;
        if (value) this.#plain[byte]! |= 1 << (index & 7);
        this.#length = byte + 1;
        break;
      }
    }
  }

  /** The PLAIN values (a view: compress or copy it before the next `clear`). */
  plain(): Buffer {
    return this.#plain.subarray(0, this.#length);
  }

  /**
   * The definition levels (1 has a value, 0 not) in the RLE/bit-packed hybrid encoding at bit
   * width 1: one repeated run when every row agrees, else one bit-packed run.
   */
  definitionLevels(): Buffer {
    if (this.present === 0 || this.present === this.rows)
      return Buffer.concat([varint(this.rows << 1), Buffer.of(this.present === 0 ? 0 : 1)]);
    const groups = Math.ceil(this.rows / 8);
    return Buffer.concat([varint((groups << 1) | 1), this.#defined.subarray(0, groups)]);
  }

  clear(): void {
    this.#defined.fill(0, 0, Math.ceil(this.rows / 8));
    this.rows = 0;
    this.present = 0;
    this.#length = 0;
  }

  /** Room for `bytes` more. */
  #reserve(bytes: number): void {
    if (this.#length + bytes <= this.#plain.length) return;
    const larger = Buffer.allocUnsafe(Math.max(this.#length + bytes, this.#plain.length * 2)) as Utf8Writable;
    this.#plain.copy(larger, 0, 0, this.#length);
    this.#plain = larger;
  }
}

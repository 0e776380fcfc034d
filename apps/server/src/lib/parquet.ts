import { createRequire } from 'node:module';
import type { Writable } from 'node:stream';
import { releaseWrittenBuffers } from './memory.ts';

/**
 * The thin adapter over @dsnp/parquetjs (and the native `snappy` codec): the rest of the server
 * never imports them.
 *
 * Our columns are all flat primitives (required or optional, never repeated or nested), so rows
 * need no Dremel shredding: values arrive column by column, each column's pages are encoded here
 * (definition levels 0/1, PLAIN values, DataPageV2, Snappy) as soon as the rows arrive, and each
 * row group's column chunks and the file's footer are written as parquetjs's envelope writer
 * lays them out, with parquetjs's Thrift definitions of the format. Its per-row `appendRow` path
 * spent most of an export's time and memory on shredding and statistics.
 */

export type ParquetColumnType = 'UTF8' | 'DOUBLE' | 'INT64' | 'BOOLEAN';

export interface ParquetColumn {
  name: string;
  type: ParquetColumnType;
  optional: boolean;
}

/**
 * One column's values in a row group, one per row; `null`/`undefined` is absent (optional
 * columns only). UTF8: strings; INT64: safe integers or bigints; DOUBLE: numbers; BOOLEAN: booleans.
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

type Parquetjs = Awaited<ReturnType<typeof loadParquetjs>>;
let parquetjs: Promise<Parquetjs> | undefined;

// Loaded on first export only, and only parquetjs's Thrift definitions of the format and its
// Thrift serialiser: its writer and schema modules load the `bson` package, which allocates a
// 17 MB buffer when it loads (~8 MB of it resident), for BSON columns an export never has.
async function loadParquetjs() {
  const [thrift, util] = await Promise.all([
    import('@dsnp/parquetjs/dist/gen-nodejs/parquet_types.js'),
    import('@dsnp/parquetjs/dist/lib/util.js'),
  ]);
  // parquetjs's own Int64 (node-int64), resolved from where it resolves it.
  const fromParquetjs = createRequire(createRequire(import.meta.url).resolve('@dsnp/parquetjs'));
  const Int64 = fromParquetjs('node-int64') as new (n: number) => never;
  // Native Snappy (raw format, what Parquet's SNAPPY codec is): ~10× parquetjs's snappyjs, which
  // took ~15% of an export's time. `copyOutputData` despite its doc: an external buffer per page
  // costs far more than the copy (measured 0.3–1.3 GB/s without it, 4.4 GB/s with it).
  const { compressSync } = await import('snappy');
  return {
    thrift: thrift.default,
    serializeThrift: util.serializeThrift,
    snappy: (input: Uint8Array) => compressSync(input, { copyOutputData: true }),
    Int64,
  };
}

const MAGIC = Buffer.from('PAR1');
/** Each column's Parquet physical type, and the logical (converted) type of strings. */
const PHYSICAL_TYPE = { UTF8: 'BYTE_ARRAY', DOUBLE: 'DOUBLE', INT64: 'INT64', BOOLEAN: 'BOOLEAN' } as const;

/** When a row group is written out (rows, or encoded bytes), and how big a page's values get. */
export interface ParquetLimits {
  rowGroupRows: number;
  rowGroupBytes: number;
  /**
   * PLAIN bytes per page. 256 KiB rather than the usual 1 MiB: a page's values are held as
   * JavaScript strings until it is encoded, and values that outlive a young-generation collection
   * are promoted and grow the heap (1M-record export, 500-record reads: ~190–230 MB peak RSS with
   * 256 KiB pages and 4 MiB row groups, ~245–250 MB with 1 MiB and 16 MiB).
   */
  pageBytes: number;
}

const DEFAULT_LIMITS: ParquetLimits = { rowGroupRows: 100_000, rowGroupBytes: 4 << 20, pageBytes: 256 << 10 };

/**
 * Writes Parquet into `output`. Memory: the encoded pages of the row group being filled (at most
 * about `rowGroupBytes`) and the page being encoded, never the rows themselves.
 */
export async function openParquetStream(
  columns: ParquetColumn[],
  output: Writable,
  limits: Partial<ParquetLimits> = {},
): Promise<ParquetStream> {
  const { rowGroupRows, rowGroupBytes, pageBytes } = { ...DEFAULT_LIMITS, ...limits };
  parquetjs ??= loadParquetjs();
  const { thrift, serializeThrift, snappy, Int64 } = await parquetjs;
  /** Where the next byte lands in the file (offsets in the metadata are absolute). */
  let fileOffset = 0;
  const write = (bytes: Buffer) =>
    new Promise<void>((resolve, reject) => {
      fileOffset += bytes.length;
      output.write(bytes, (err) => (err ? reject(err) : resolve()));
    });
  const rowGroups: InstanceType<Parquetjs['thrift']['RowGroup']>[] = [];
  let fileRows = 0;
  await write(MAGIC);
  const plainScratch = new Scratch();

  /**
   * The row group being filled: each column's encoded pages, appended to a buffer of its own that
   * every row group reuses. Pages kept as buffers of their own would outlive young-generation
   * collections, be promoted, and pile up as old-generation garbage between full collections
   * (~20–30 MB in a 1M-record export).
   */
  const group = columns.map(() => ({ pages: new ByteArena(), uncompressedSize: 0 }));
  let groupRows = 0;

  /** Appends to column `index`'s chunk a DataPageV2 of rows [from, to): definition levels (optional columns), then PLAIN values. */
  function encodePage(index: number, values: ColumnValues, from: number, to: number) {
    const column = columns[index]!;
    const rows = to - from;
    const levels = column.optional ? definitionLevels(values, from, to) : { bytes: EMPTY, present: rows };
    const plain = encodePlain(column.type, values, from, to, levels.present, plainScratch);
    const body = COMPRESSION === 'SNAPPY' ? snappy(plain) : plain;
    const header = serializeThrift(
      new thrift.PageHeader({
        type: thrift.PageType.DATA_PAGE_V2,
        uncompressed_page_size: levels.bytes.length + plain.length,
        compressed_page_size: levels.bytes.length + body.length,
        data_page_header_v2: new thrift.DataPageHeaderV2({
          num_values: rows,
          num_nulls: rows - levels.present,
          num_rows: rows,
          encoding: thrift.Encoding.PLAIN,
          definition_levels_byte_length: levels.bytes.length,
          repetition_levels_byte_length: 0,
          is_compressed: COMPRESSION !== 'UNCOMPRESSED',
        }),
      }),
    );
    const pages = group[index]!.pages;
    pages.append(header);
    pages.append(levels.bytes);
    pages.append(body);
    group[index]!.uncompressedSize += header.length + levels.bytes.length + plain.length;
  }

  /**
   * Writes the row group as one section: each column chunk's pages, then its ColumnMetaData
   * (where parquetjs puts it). The section is a copy, so the column buffers are free again at once.
   */
  async function flush() {
    if (groupRows === 0) return;
    const chunks = [];
    const parts: Buffer[] = [];
    let offset = fileOffset;
    for (const [i, { pages, uncompressedSize }] of group.entries()) {
      const metadata = new thrift.ColumnMetaData({
        type: thrift.Type[PHYSICAL_TYPE[columns[i]!.type]],
        encodings: [thrift.Encoding.RLE, thrift.Encoding.PLAIN],
        path_in_schema: [columns[i]!.name],
        codec: thrift.CompressionCodec[COMPRESSION],
        num_values: new Int64(groupRows),
        total_uncompressed_size: new Int64(uncompressedSize),
        total_compressed_size: new Int64(pages.length),
        data_page_offset: new Int64(offset),
      });
      parts.push(pages.view());
      offset += pages.length;
      chunks.push(new thrift.ColumnChunk({ file_offset: new Int64(offset), meta_data: metadata }));
      const encoded = serializeThrift(metadata);
      parts.push(encoded);
      offset += encoded.length;
    }
    const section = Buffer.concat(parts);
    for (const column of group) {
      column.pages.clear();
      column.uncompressedSize = 0;
    }
    rowGroups.push(
      new thrift.RowGroup({
        columns: chunks,
        total_byte_size: new Int64(section.length),
        num_rows: new Int64(groupRows),
      }),
    );
    fileRows += groupRows;
    groupRows = 0;
    await write(section);
    releaseWrittenBuffers();
  }

  const groupBytes = () => group.reduce((sum, column) => sum + column.pages.length, 0);

  return {
    async append(values, rowCount) {
      for (let from = 0; from < rowCount; ) {
        // Never past the row group's end: a page belongs to one row group.
        const to = Math.min(rowCount, from + rowGroupRows - groupRows);
        for (const [i, column] of columns.entries()) {
          for (let pageFrom = from; pageFrom < to; ) {
            const pageTo = pageEnd(column.type, values[i]!, pageFrom, to, pageBytes);
            encodePage(i, values[i]!, pageFrom, pageTo);
            pageFrom = pageTo;
          }
        }
        groupRows += to - from;
        from = to;
        if (groupRows >= rowGroupRows || groupBytes() >= rowGroupBytes) await flush();
      }
    },
    async close() {
      await flush();
      // The footer: FileMetaData as parquetjs writes it, its length, and the magic again.
      const metadata = serializeThrift(
        new thrift.FileMetaData({
          version: 1,
          created_by: '@dsnp/parquetjs',
          num_rows: new Int64(fileRows),
          row_groups: rowGroups,
          key_value_metadata: [],
          schema: [
            new thrift.SchemaElement({ name: 'root', num_children: columns.length }),
            ...columns.map(
              (column) =>
                new thrift.SchemaElement({
                  name: column.name,
                  type: thrift.Type[PHYSICAL_TYPE[column.type]],
                  repetition_type: thrift.FieldRepetitionType[column.optional ? 'OPTIONAL' : 'REQUIRED'],
                  ...(column.type === 'UTF8' ? { converted_type: thrift.ConvertedType.UTF8 } : {}),
                }),
            ),
          ],
        }),
      );
      const length = Buffer.alloc(4);
      length.writeUInt32LE(metadata.length);
      await write(Buffer.concat([metadata, length, MAGIC]));
      await new Promise<void>((resolve, reject) =>
        output.end((err?: Error | null) => (err ? reject(err) : resolve())),
      );
    },
  };
}

/** Where the page starting at row `from` ends: about `pageBytes` of values (one-byte characters counted). */
function pageEnd(
  type: ParquetColumnType,
  values: ColumnValues,
  from: number,
  end: number,
  pageBytes: number,
) {
  if (type !== 'UTF8') return Math.min(end, from + Math.max(1, Math.floor(pageBytes / 8)));
  let bytes = 0;
  let to = from;
  while (to < end && bytes < pageBytes) {
    const value = values[to++];
    if (value !== null && value !== undefined) bytes += 4 + (value as string).length;
  }
  return to;
}

const EMPTY = Buffer.alloc(0);

/**
 * Definition levels of rows [from, to) (1 present, 0 absent) in the RLE/bit-packed hybrid encoding
 * at bit width 1: one repeated run when every row agrees, else one bit-packed run.
 */
function definitionLevels(
  values: ColumnValues,
  from: number,
  to: number,
): { bytes: Buffer; present: number } {
  const rows = to - from;
  let present = 0;
  for (let i = from; i < to; i++) if (values[i] !== null && values[i] !== undefined) present++;
  if (present === 0 || present === rows) {
    return { bytes: Buffer.concat([varint(rows << 1), Buffer.of(present === 0 ? 0 : 1)]), present };
  }
  const groups = Math.ceil(rows / 8);
  const header = varint((groups << 1) | 1);
  const bytes = Buffer.alloc(header.length + groups);
  header.copy(bytes);
  for (let i = from; i < to; i++) {
    const bit = i - from;
    if (values[i] !== null && values[i] !== undefined) bytes[header.length + (bit >> 3)]! |= 1 << (bit & 7);
  }
  return { bytes, present };
}

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
      const larger = Buffer.allocUnsafe(Math.max(this.length + bytes.length, this.#buffer.length * 2, 4096));
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

/** A growing buffer reused across pages, so encoding a page allocates only its result. */
class Scratch {
  #buffer = Buffer.allocUnsafe(0);
  /** A buffer of at least `size` bytes, its first `keep` bytes those of the previous one. */
  get(size: number, keep = 0): Buffer {
    if (this.#buffer.length < size) {
      const larger = Buffer.allocUnsafe(Math.max(size, Math.floor(this.#buffer.length * 1.5)));
      this.#buffer.copy(larger, 0, 0, keep);
      this.#buffer = larger;
    }
    return this.#buffer;
  }
}

const TWO_TO_32 = 2 ** 32;

/** Buffer's own UTF-8 writer, without `write`'s argument juggling (it runs once per string value). */
type Utf8Writable = Buffer & { utf8Write(text: string, offset: number): number };

/** The present values, PLAIN-encoded (a view of `scratch`: compress or copy it before the next page). */
function encodePlain(
  type: ParquetColumnType,
  values: ColumnValues,
  from: number,
  to: number,
  present: number,
  scratch: Scratch,
): Buffer {
  switch (type) {
    case 'UTF8': {
      // Sized for one byte per character; grown only when a string may not fit (up to 3 per char).
      let size = 0;
      for (let i = from; i < to; i++) {
        const value = values[i];
        if (value !== null && value !== undefined) size += 4 + (value as string).length;
      }
      let buffer = scratch.get(size);
      let offset = 0;
      for (let i = from; i < to; i++) {
        const value = values[i] as string | null | undefined;
        if (value === null || value === undefined) continue;
        if (offset + 4 + value.length * 3 > buffer.length) {
          size += Buffer.byteLength(value) - value.length;
          buffer = scratch.get(Math.max(size, offset + 4 + Buffer.byteLength(value)), offset);
        }
        const length = (buffer as Utf8Writable).utf8Write(value, offset + 4);
        buffer.writeUInt32LE(length, offset);
        offset += 4 + length;
      }
      return buffer.subarray(0, offset);
    }
    case 'INT64': {
      const buffer = scratch.get(present * 8);
      let offset = 0;
      for (let i = from; i < to; i++) {
        const value = values[i];
        if (value === null || value === undefined) continue;
        if (typeof value === 'bigint') buffer.writeBigInt64LE(value, offset);
        else {
          // Safe integers as two 32-bit halves: no BigInt per value.
          const n = value as number;
          const high = Math.floor(n / TWO_TO_32);
          buffer.writeUInt32LE(n - high * TWO_TO_32, offset);
          buffer.writeInt32LE(high, offset + 4);
        }
        offset += 8;
      }
      return buffer.subarray(0, offset);
    }
    case 'DOUBLE': {
      const buffer = scratch.get(present * 8);
      let offset = 0;
      for (let i = from; i < to; i++) {
        const value = values[i];
        if (value === null || value === undefined) continue;
        buffer.writeDoubleLE(value as number, offset);
        offset += 8;
      }
      return buffer.subarray(0, offset);
    }
    case 'BOOLEAN': {
      const buffer = scratch.get(Math.ceil(present / 8)).fill(0, 0, Math.ceil(present / 8));
      let bit = 0;
      for (let i = from; i < to; i++) {
        const value = values[i];
        if (value === null || value === undefined) continue;
        if (value) buffer[bit >> 3]! |= 1 << (bit & 7);
        bit++;
      }
      return buffer.subarray(0, Math.ceil(present / 8));
    }
  }
}

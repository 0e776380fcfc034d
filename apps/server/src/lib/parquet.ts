import { createRequire } from 'node:module';
import type { Writable } from 'node:stream';

/**
 * The thin adapter over @dsnp/parquetjs: the rest of the server never imports it.
 *
 * Our columns are all flat primitives (required or optional, never repeated or nested), so rows
 * need no Dremel shredding: values arrive column by column, each column's pages are encoded here
 * (definition levels 0/1, PLAIN values, DataPageV2, Snappy) as soon as the rows arrive, and a row
 * group's column chunks are laid out behind parquetjs's envelope writer (file header, footer).
 * Its per-row `appendRow` path spent most of an export's time and memory on shredding and
 * statistics.
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

// Loaded on first export only: it is large, and most processes never export.
async function loadParquetjs() {
  // Only the writer's modules: the package's entry point also loads its reader (and the AWS SDK).
  const [schema, writer, thrift, util] = await Promise.all([
    import('@dsnp/parquetjs/dist/lib/schema.js'),
    import('@dsnp/parquetjs/dist/lib/writer.js'),
    import('@dsnp/parquetjs/dist/gen-nodejs/parquet_types.js'),
    import('@dsnp/parquetjs/dist/lib/util.js'),
  ]);
  // parquetjs's own Snappy (snappyjs) and Int64 (node-int64), resolved from where it resolves them.
  const fromParquetjs = createRequire(createRequire(import.meta.url).resolve('@dsnp/parquetjs'));
  const { SnappyCompressor } = fromParquetjs('snappyjs/snappy_compressor') as {
    SnappyCompressor: new (
      input: Uint8Array,
    ) => { maxCompressedLength(): number; compressToBuffer(out: Uint8Array): number };
  };
  const Int64 = fromParquetjs('node-int64') as new (n: number) => never;
  return {
    ParquetSchema: schema.ParquetSchema,
    ParquetEnvelopeWriter: writer.ParquetEnvelopeWriter,
    thrift: thrift.default,
    serializeThrift: util.serializeThrift,
    SnappyCompressor,
    Int64,
  };
}

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
  const { ParquetSchema, ParquetEnvelopeWriter, thrift, serializeThrift, SnappyCompressor, Int64 } =
    await parquetjs;
  const schema = new ParquetSchema(
    Object.fromEntries(
      columns.map((c) => [c.name, { type: c.type, optional: c.optional, compression: COMPRESSION }]),
    ),
  );
  const fields = schema.fieldList;
  const envelope = await ParquetEnvelopeWriter.openStream(schema, output as never, {});
  await envelope.writeHeader();
  const plainScratch = new Scratch();
  const compressedScratch = new Scratch();

  /** The row group being filled: each column's encoded pages. */
  let group = columns.map(() => ({ pages: [] as Buffer[], uncompressedSize: 0 }));
  let groupRows = 0;
  let groupBytes = 0;

  /** A DataPageV2 of rows [from, to): definition levels (optional columns), then PLAIN values. */
  function encodePage(column: ParquetColumn, values: ColumnValues, from: number, to: number) {
    const rows = to - from;
    const levels = column.optional ? definitionLevels(values, from, to) : { bytes: EMPTY, present: rows };
    const plain = encodePlain(column.type, values, from, to, levels.present, plainScratch);
    let body = plain;
    if (COMPRESSION === 'SNAPPY') {
      const compressor = new SnappyCompressor(plain);
      const target = compressedScratch.get(compressor.maxCompressedLength());
      body = target.subarray(0, compressor.compressToBuffer(target));
    }
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
    // Copied out of the scratch buffers, which the next page reuses.
    const page = Buffer.concat([header, levels.bytes, body]);
    return { page, uncompressedSize: header.length + levels.bytes.length + plain.length };
  }

  /** Writes the row group: each column chunk's pages, then its ColumnMetaData (where parquetjs puts it). */
  async function flush() {
    if (groupRows === 0) return;
    const chunks = [];
    const groupStart = envelope.offset.valueOf();
    for (const [i, { pages, uncompressedSize }] of group.entries()) {
      const start = envelope.offset.valueOf();
      for (const page of pages) await envelope.writeSection(page);
      const end = envelope.offset.valueOf();
      const metadata = new thrift.ColumnMetaData({
        type: thrift.Type[fields[i]!.primitiveType as keyof typeof thrift.Type],
        encodings: [thrift.Encoding.RLE, thrift.Encoding.PLAIN],
        path_in_schema: fields[i]!.path,
        codec: thrift.CompressionCodec[COMPRESSION],
        num_values: new Int64(groupRows),
        total_uncompressed_size: new Int64(uncompressedSize),
        total_compressed_size: new Int64(end - start),
        data_page_offset: new Int64(start),
      });
      await envelope.writeSection(serializeThrift(metadata));
      chunks.push(new thrift.ColumnChunk({ file_offset: new Int64(end), meta_data: metadata }));
    }
    envelope.rowGroups.push(
      new thrift.RowGroup({
        columns: chunks,
        total_byte_size: new Int64(envelope.offset.valueOf() - groupStart),
        num_rows: new Int64(groupRows),
      }),
    );
    envelope.rowCount.setValue(envelope.rowCount.valueOf() + groupRows);
    group = columns.map(() => ({ pages: [], uncompressedSize: 0 }));
    groupRows = 0;
    groupBytes = 0;
  }

  return {
    async append(values, rowCount) {
      for (let from = 0; from < rowCount; ) {
        // Never past the row group's end: a page belongs to one row group.
        const to = Math.min(rowCount, from + rowGroupRows - groupRows);
        for (const [i, column] of columns.entries()) {
          const chunk = group[i]!;
          for (let pageFrom = from; pageFrom < to; ) {
            const pageTo = pageEnd(column.type, values[i]!, pageFrom, to, pageBytes);
            const { page, uncompressedSize } = encodePage(column, values[i]!, pageFrom, pageTo);
            chunk.pages.push(page);
            chunk.uncompressedSize += uncompressedSize;
            groupBytes += page.length;
            pageFrom = pageTo;
          }
        }
        groupRows += to - from;
        from = to;
        if (groupRows >= rowGroupRows || groupBytes >= rowGroupBytes) await flush();
      }
    },
    async close() {
      await flush();
      await envelope.writeFooter({});
      await envelope.close();
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

import type { Writable } from 'node:stream';

/**
 * The thin adapter over @dsnp/parquetjs: the rest of the server never imports it.
 *
 * Our columns are all flat primitives (required or optional, never repeated or nested), so rows
 * need no Dremel shredding: each column of a row group is encoded here in one go (definition
 * levels 0/1, PLAIN values, one DataPageV2 per column chunk) and handed to parquetjs's envelope
 * writer, which lays out the row groups, page indexes and footer. Its per-row `appendRow` path
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
  /** Encodes one row group (`values[i]` holds column i's values, `rowCount` of them) and writes it. */
  writeRowGroup(values: ColumnValues[], rowCount: number): Promise<void>;
  /** Writes the footer and ends `output`. */
  close(): Promise<void>;
}

/** Readable by every Parquet reader (hyparquet included, without extra codecs). */
const COMPRESSION: 'SNAPPY' | 'UNCOMPRESSED' = 'SNAPPY';

type Parquetjs = Awaited<ReturnType<typeof loadParquetjs>>;
let parquetjs: Promise<Parquetjs> | undefined;

// Loaded on first export only: it is large, and most processes never export.
async function loadParquetjs() {
  const [main, thrift, util, compression] = await Promise.all([
    import('@dsnp/parquetjs'),
    import('@dsnp/parquetjs/dist/gen-nodejs/parquet_types.js'),
    import('@dsnp/parquetjs/dist/lib/util.js'),
    import('@dsnp/parquetjs/dist/lib/compression.js'),
  ]);
  return {
    ParquetSchema: main.ParquetSchema,
    ParquetEnvelopeWriter: main.ParquetEnvelopeWriter,
    thrift: thrift.default,
    serializeThrift: util.serializeThrift,
    compress: (buf: Buffer) => compression.deflate(COMPRESSION, buf),
  };
}

/** Writes row groups as Parquet into `output` (memory: the row group being encoded). */
export async function openParquetStream(columns: ParquetColumn[], output: Writable): Promise<ParquetStream> {
  parquetjs ??= loadParquetjs();
  const { ParquetSchema, ParquetEnvelopeWriter, thrift, serializeThrift, compress } = await parquetjs;
  const schema = new ParquetSchema(
    Object.fromEntries(
      columns.map((c) => [
        c.name,
        // No statistics: parquetjs can only write them with a distinct count, which means keeping
        // every distinct value of a page in a Set; readers do not need them.
        { type: c.type, optional: c.optional, compression: COMPRESSION, statistics: false },
      ]),
    ),
  );
  const paths = schema.fieldList.map((field) => field.path.join(','));
  const envelope = await ParquetEnvelopeWriter.openStream(schema, output as never, { useDataPageV2: true });
  await envelope.writeHeader();
  const scratch = new Scratch();

  async function encodePage(column: ParquetColumn, values: ColumnValues, rowCount: number) {
    const levels = column.optional ? definitionLevels(values, rowCount) : { bytes: EMPTY, present: rowCount };
    const plain = encodePlain(column.type, values, rowCount, levels.present, scratch);
    const body = await compress(plain);
    const header = new thrift.PageHeader({
      type: thrift.PageType.DATA_PAGE_V2,
      uncompressed_page_size: levels.bytes.length + plain.length,
      compressed_page_size: levels.bytes.length + body.length,
      data_page_header_v2: new thrift.DataPageHeaderV2({
        num_values: rowCount,
        num_nulls: rowCount - levels.present,
        num_rows: rowCount,
        encoding: thrift.Encoding.PLAIN,
        definition_levels_byte_length: levels.bytes.length,
        repetition_levels_byte_length: 0,
        is_compressed: COMPRESSION !== 'UNCOMPRESSED',
      }),
    });
    return Buffer.concat([serializeThrift(header), levels.bytes, body]);
  }

  return {
    async writeRowGroup(values, rowCount) {
      if (rowCount === 0) return;
      const pages: Record<string, unknown[]> = {};
      for (const [i, column] of columns.entries()) {
        const page = await encodePage(column, values[i]!, rowCount);
        pages[paths[i]!] = [
          { page, statistics: {}, first_row_index: 0, distinct_values: new Set(), num_values: rowCount },
        ];
      }
      await envelope.writeRowGroup({ rowCount, pages } as never);
    },
    async close() {
      envelope.writeIndex();
      await envelope.writeFooter({});
      await envelope.close();
    },
  };
}

const EMPTY = Buffer.alloc(0);

/**
 * Definition levels (1 present, 0 absent) in the RLE/bit-packed hybrid encoding at bit width 1:
 * one repeated run when every row agrees, else one bit-packed run.
 */
function definitionLevels(values: ColumnValues, rowCount: number): { bytes: Buffer; present: number } {
  let present = 0;
  for (let i = 0; i < rowCount; i++) if (values[i] !== null && values[i] !== undefined) present++;
  if (present === 0 || present === rowCount) {
    const header = varint(rowCount << 1);
    return { bytes: Buffer.concat([header, Buffer.of(present === 0 ? 0 : 1)]), present };
  }
  const groups = Math.ceil(rowCount / 8);
  const header = varint((groups << 1) | 1);
  const bytes = Buffer.alloc(header.length + groups);
  header.copy(bytes);
  for (let i = 0; i < rowCount; i++) {
    if (values[i] !== null && values[i] !== undefined) bytes[header.length + (i >> 3)]! |= 1 << (i & 7);
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
  #buffer = Buffer.allocUnsafe(1 << 20);
  get(size: number): Buffer {
    if (this.#buffer.length < size)
      this.#buffer = Buffer.allocUnsafe(Math.max(size, this.#buffer.length * 2));
    return this.#buffer;
  }
}

const TWO_TO_32 = 2 ** 32;

/** The present values, PLAIN-encoded (a view of `scratch`: compress or copy it before the next page). */
function encodePlain(
  type: ParquetColumnType,
  values: ColumnValues,
  rowCount: number,
  present: number,
  scratch: Scratch,
): Buffer {
  switch (type) {
    case 'UTF8': {
      let bound = 0;
      for (let i = 0; i < rowCount; i++) {
        const value = values[i];
        if (value !== null && value !== undefined) bound += 4 + (value as string).length * 3;
      }
      const buffer = scratch.get(bound);
      let offset = 0;
      for (let i = 0; i < rowCount; i++) {
        const value = values[i];
        if (value === null || value === undefined) continue;
        const length = buffer.write(value as string, offset + 4);
        buffer.writeUInt32LE(length, offset);
        offset += 4 + length;
      }
      return buffer.subarray(0, offset);
    }
    case 'INT64': {
      const buffer = scratch.get(present * 8);
      let offset = 0;
      for (let i = 0; i < rowCount; i++) {
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
      for (let i = 0; i < rowCount; i++) {
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
      for (let i = 0; i < rowCount; i++) {
        const value = values[i];
        if (value === null || value === undefined) continue;
        if (value) buffer[bit >> 3]! |= 1 << (bit & 7);
        bit++;
      }
      return buffer.subarray(0, Math.ceil(present / 8));
    }
  }
}

/**
 * The Parquet metadata an export writes (page headers, column chunk metadata, row groups, the
 * footer), encoded in Thrift's compact protocol straight into reusable buffers: the bytes
 * parquetjs's generated Thrift classes and serialiser write for the same values (a test compares
 * them), without an object per field and a Buffer per byte written. Those cost an export with many
 * columns seconds and hundreds of MB per row group, and the footer's row groups, kept as objects
 * until the end, grew with every row group written; kept encoded they take ~50 bytes per column.
 */

/** Compact protocol type ids. */
const STOP = 0;
const TRUE = 1;
const FALSE = 2;
const I32 = 5;
const I64 = 6;
const BINARY = 8;
const LIST = 9;
const STRUCT = 12;

/** Values of the Parquet format's enums (parquet.thrift). */
export const PhysicalType = { BOOLEAN: 0, INT64: 2, DOUBLE: 5, BYTE_ARRAY: 6 } as const;
export const Encoding = { PLAIN: 0, RLE: 3 } as const;
export const CompressionCodec = { UNCOMPRESSED: 0, SNAPPY: 1 } as const;
const PAGE_TYPE_DATA_PAGE_V2 = 3;
const REPETITION = { REQUIRED: 0, OPTIONAL: 1 } as const;
const CONVERTED_TYPE_UTF8 = 0;

/** Appends compact-protocol values to a buffer that grows as needed and is reused once cleared. */
export class CompactWriter {
  #buffer = Buffer.allocUnsafe(256);
  length = 0;
  /** The last field id written in each struct being written (field ids are deltas of it). */
  #lastField = 0;
  readonly #outer: number[] = [];

  /** The bytes so far (a view: valid until the next write or clear). */
  view(): Buffer {
    return this.#buffer.subarray(0, this.length);
  }

  /** A copy of the bytes so far. */
  bytes(): Buffer {
    return Buffer.from(this.view());
  }

  clear(): void {
    this.length = 0;
    this.#lastField = 0;
    this.#outer.length = 0;
  }

  #reserve(bytes: number): void {
    if (this.length + bytes <= this.#buffer.length) return;
    const larger = Buffer.allocUnsafe(Math.max(this.length + bytes, this.#buffer.length * 2));
    this.#buffer.copy(larger, 0, 0, this.length);
    this.#buffer = larger;
  }

  #byte(b: number): void {
    this.#reserve(1);
    this.#buffer[this.length++] = b;
  }

  /** An unsigned varint of a safe integer (arithmetic, not 32-bit operators: values reach 2^53). */
  #varint(n: number): void {
    this.#reserve(10);
    while (n >= 0x80) {
      this.#buffer[this.length++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.#buffer[this.length++] = n;
  }

  /** A zigzag varint: what i16, i32 and i64 values are on the wire. */
  #signed(n: number): void {
    this.#varint(n >= 0 ? n * 2 : -n * 2 - 1);
  }

  #field(id: number, type: number): void {
    const delta = id - this.#lastField;
    if (delta > 0 && delta <= 15) this.#byte((delta << 4) | type);
    else {
      this.#byte(type);
      this.#signed(id);
    }
    this.#lastField = id;
  }

  i32(id: number, value: number): this {
    this.#field(id, I32);
    this.#signed(value);
    return this;
  }

  i64(id: number, value: number): this {
    this.#field(id, I64);
    this.#signed(value);
    return this;
  }

  bool(id: number, value: boolean): this {
    this.#field(id, value ? TRUE : FALSE);
    return this;
  }

  string(id: number, value: string): this {
    this.#field(id, BINARY);
    this.#stringValue(value);
    return this;
  }

  #stringValue(value: string): void {
    const length = Buffer.byteLength(value);
    this.#varint(length);
    this.#reserve(length);
    this.length += this.#buffer.write(value, this.length, 'utf8');
  }

  /** A list field's header; its elements follow (`listI32`, `listString`, or structs). */
  list(id: number, elementType: 'i32' | 'string' | 'struct', size: number): this {
    this.#field(id, LIST);
    const type = elementType === 'i32' ? I32 : elementType === 'string' ? BINARY : STRUCT;
    if (size <= 14) this.#byte((size << 4) | type);
    else {
      this.#byte(0xf0 | type);
      this.#varint(size);
    }
    return this;
  }

  listI32(value: number): this {
    this.#signed(value);
    return this;
  }

  listString(value: string): this {
    this.#stringValue(value);
    return this;
  }

  /** Starts a struct: a field of the struct being written (`id`), a list element, or the top level. */
  begin(id?: number): this {
    if (id !== undefined) this.#field(id, STRUCT);
    this.#outer.push(this.#lastField);
    this.#lastField = 0;
    return this;
  }

  end(): this {
    this.#byte(STOP);
    this.#lastField = this.#outer.pop() ?? 0;
    return this;
  }

  /** A struct field whose struct is already encoded (`encoded` ends with its stop byte). */
  structField(id: number, encoded: Uint8Array): this {
    this.#field(id, STRUCT);
    return this.raw(encoded);
  }

  /** Bytes already encoded: whole structs (list elements). */
  raw(encoded: Uint8Array): this {
    this.#reserve(encoded.length);
    this.#buffer.set(encoded, this.length);
    this.length += encoded.length;
    return this;
  }
}

export interface DataPageV2 {
  uncompressedSize: number;
  compressedSize: number;
  rows: number;
  nulls: number;
  definitionLevelsLength: number;
  compressed: boolean;
}

/** A PageHeader of a PLAIN-encoded DataPageV2 without repetition levels. */
export function writePageHeader(w: CompactWriter, page: DataPageV2): void {
  w.begin()
    .i32(1, PAGE_TYPE_DATA_PAGE_V2)
    .i32(2, page.uncompressedSize)
    .i32(3, page.compressedSize)
    .begin(8)
    .i32(1, page.rows)
    .i32(2, page.nulls)
    .i32(3, page.rows)
    .i32(4, Encoding.PLAIN)
    .i32(5, page.definitionLevelsLength)
    .i32(6, 0)
    .bool(7, page.compressed)
    .end()
    .end();
}

export interface ColumnChunkMetadata {
  type: number;
  name: string;
  codec: number;
  values: number;
  uncompressedSize: number;
  compressedSize: number;
  dataPageOffset: number;
}

/** A ColumnMetaData (of a flat column: its path is its name; RLE levels, PLAIN values). */
export function writeColumnMetaData(w: CompactWriter, c: ColumnChunkMetadata): void {
  w.begin()
    .i32(1, c.type)
    .list(2, 'i32', 2)
    .listI32(Encoding.RLE)
    .listI32(Encoding.PLAIN)
    .list(3, 'string', 1)
    .listString(c.name)
    .i32(4, c.codec)
    .i64(5, c.values)
    .i64(6, c.uncompressedSize)
    .i64(7, c.compressedSize)
    .i64(9, c.dataPageOffset)
    .end();
}

/** A ColumnChunk: where its metadata is in the file, and that metadata (encoded by writeColumnMetaData). */
export function writeColumnChunk(w: CompactWriter, fileOffset: number, metadata: Uint8Array): void {
  w.begin().i64(2, fileOffset).structField(3, metadata).end();
}

/** A RowGroup whose `columns` ColumnChunks are encoded already (one after another, in `chunks`). */
export function writeRowGroup(
  w: CompactWriter,
  columns: number,
  chunks: Uint8Array,
  totalByteSize: number,
  rows: number,
): void {
  w.begin().list(1, 'struct', columns).raw(chunks).i64(2, totalByteSize).i64(3, rows).end();
}

export interface SchemaColumn {
  name: string;
  type: number;
  optional: boolean;
  utf8: boolean;
}

/**
 * The FileMetaData (as parquetjs writes it: version 1, an empty key/value list, its name as
 * `created_by`) of a flat schema, with `rowGroupCount` RowGroups encoded already in `rowGroups`.
 */
export function writeFileMetaData(
  w: CompactWriter,
  columns: readonly SchemaColumn[],
  rows: number,
  rowGroupCount: number,
  rowGroups: Uint8Array,
): void {
  w.begin()
    .i32(1, 1)
    .list(2, 'struct', columns.length + 1);
  w.begin().string(4, 'root').i32(5, columns.length).end();
  for (const column of columns) {
    w.begin()
      .i32(1, column.type)
      .i32(3, column.optional ? REPETITION.OPTIONAL : REPETITION.REQUIRED)
      .string(4, column.name);
    if (column.utf8) w.i32(6, CONVERTED_TYPE_UTF8);
    w.end();
  }
  w.i64(3, rows).list(4, 'struct', rowGroupCount).raw(rowGroups).list(5, 'struct', 0);
  w.string(6, '@dsnp/parquetjs').end();
}

import { createRequire } from 'node:module';
import thriftModule from '@dsnp/parquetjs/dist/gen-nodejs/parquet_types.js';
import { serializeThrift } from '@dsnp/parquetjs/dist/lib/util.js';
import { describe, expect, it } from 'vitest';
import {
  CompactWriter,
  writeColumnChunk,
  writeColumnMetaData,
  writeFileMetaData,
  writePageHeader,
  writeRowGroup,
} from './parquet-thrift.ts';

// The reference: parquetjs's generated Thrift classes and its compact-protocol serialiser.
const thrift = thriftModule as unknown as Record<string, new (args: object) => object> &
  Record<string, Record<string, number>>;
const fromParquetjs = createRequire(createRequire(import.meta.url).resolve('@dsnp/parquetjs'));
const Int64 = fromParquetjs('node-int64') as new (n: number) => object;
const reference = (struct: object) => serializeThrift(struct as never) as Buffer;

const encoded = (write: (w: CompactWriter) => void) => {
  const w = new CompactWriter();
  write(w);
  return w.bytes();
};

/** Sizes and offsets across the varint widths, up to what a 64-bit file offset can be here. */
const NUMBERS = [0, 1, 63, 64, 127, 128, 8191, 8192, 2 ** 21, 2 ** 31 - 1, 2 ** 31, 2 ** 32 + 7, 2 ** 45 + 3];
const NAMES = ['', 'id', 'data_ключ', 'data_"q"\\ 😀', 'x'.repeat(300)];

function columnMetaData(name: string, n: number) {
  return new thrift.ColumnMetaData!({
    type: thrift.Type!.BYTE_ARRAY,
    encodings: [thrift.Encoding!.RLE, thrift.Encoding!.PLAIN],
    path_in_schema: [name],
    codec: thrift.CompressionCodec!.SNAPPY,
    num_values: new Int64(n),
    total_uncompressed_size: new Int64(n + 1),
    total_compressed_size: new Int64(n + 2),
    data_page_offset: new Int64(n + 3),
  });
}

const ourColumnMetaData = (w: CompactWriter, name: string, n: number) =>
  writeColumnMetaData(w, {
    type: 6,
    name,
    codec: 1,
    values: n,
    uncompressedSize: n + 1,
    compressedSize: n + 2,
    dataPageOffset: n + 3,
  });

describe('the compact-protocol encoders write what parquetjs’s Thrift serialiser writes', () => {
  it('PageHeader (DataPageV2)', () => {
    for (const n of NUMBERS.filter((x) => x < 2 ** 30)) // i32 fields
      for (const compressed of [true, false]) {
        const ours = encoded((w) =>
          writePageHeader(w, {
            uncompressedSize: n,
            compressedSize: n + 1,
            rows: n + 2,
            nulls: Math.floor(n / 2),
            definitionLevelsLength: n % 1000,
            compressed,
          }),
        );
        const theirs = reference(
          new thrift.PageHeader!({
            type: thrift.PageType!.DATA_PAGE_V2,
            uncompressed_page_size: n,
            compressed_page_size: n + 1,
            data_page_header_v2: new thrift.DataPageHeaderV2!({
              num_values: n + 2,
              num_nulls: Math.floor(n / 2),
              num_rows: n + 2,
              encoding: thrift.Encoding!.PLAIN,
              definition_levels_byte_length: n % 1000,
              repetition_levels_byte_length: 0,
              is_compressed: compressed,
            }),
          }),
        );
        expect(ours.equals(theirs)).toBe(true);
      }
  });

  it('ColumnMetaData, ColumnChunk and RowGroup', () => {
    for (const name of NAMES)
      for (const n of NUMBERS) {
        expect(encoded((w) => ourColumnMetaData(w, name, n)).equals(reference(columnMetaData(name, n)))).toBe(
          true,
        );
        const metadata = encoded((w) => ourColumnMetaData(w, name, n));
        expect(
          encoded((w) => writeColumnChunk(w, n + 4, metadata)).equals(
            reference(
              new thrift.ColumnChunk!({ file_offset: new Int64(n + 4), meta_data: columnMetaData(name, n) }),
            ),
          ),
        ).toBe(true);
      }
    for (const columns of [0, 1, 14, 15, 16, 300]) {
      const chunks = new CompactWriter();
      for (let i = 0; i < columns; i++) {
        const metadata = encoded((w) => ourColumnMetaData(w, `c${i}`, i * 1000));
        writeColumnChunk(chunks, i * 5000, metadata);
      }
      const ours = encoded((w) => writeRowGroup(w, columns, chunks.view(), 123_456, 789));
      const theirs = reference(
        new thrift.RowGroup!({
          columns: Array.from(
            { length: columns },
            (_, i) =>
              new thrift.ColumnChunk!({
                file_offset: new Int64(i * 5000),
                meta_data: columnMetaData(`c${i}`, i * 1000),
              }),
          ),
          total_byte_size: new Int64(123_456),
          num_rows: new Int64(789),
        }),
      );
      expect(ours.equals(theirs)).toBe(true);
    }
  });

  it('FileMetaData', () => {
    for (const columnCount of [0, 1, 13, 14, 15, 200])
      for (const rowGroupCount of [0, 1, 20]) {
        const columns = Array.from({ length: columnCount }, (_, i) => ({
          name: NAMES[i % NAMES.length]! + i,
          type: [0, 2, 5, 6][i % 4]!,
          optional: i % 3 !== 0,
          utf8: i % 4 === 3,
        }));
        const rowGroups = Array.from(
          { length: rowGroupCount },
          (_, g) =>
            new thrift.RowGroup!({
              columns: columns.map(
                (c, i) =>
                  new thrift.ColumnChunk!({
                    file_offset: new Int64(g * i),
                    meta_data: columnMetaData(c.name, i),
                  }),
              ),
              total_byte_size: new Int64(g * 100),
              num_rows: new Int64(g),
            }),
        );
        const encodedGroups = Buffer.concat(rowGroups.map(reference));
        const ours = encoded((w) => writeFileMetaData(w, columns, 2 ** 33 + 1, rowGroupCount, encodedGroups));
        const theirs = reference(
          new thrift.FileMetaData!({
            version: 1,
            created_by: '@dsnp/parquetjs',
            num_rows: new Int64(2 ** 33 + 1),
            row_groups: rowGroups,
            key_value_metadata: [],
            schema: [
              new thrift.SchemaElement!({ name: 'root', num_children: columns.length }),
              ...columns.map(
                (c) =>
                  new thrift.SchemaElement!({
                    name: c.name,
                    type: c.type,
                    repetition_type: c.optional ? 1 : 0,
                    ...(c.utf8 ? { converted_type: 0 } : {}),
                  }),
              ),
            ],
          }),
        );
        expect(ours.equals(theirs)).toBe(true);
      }
  });
});

import { Writable } from 'node:stream';
import parquetjs from '@dsnp/parquetjs';
import { describe, expect, it } from 'vitest';
import { type ColumnValues, openParquetStream, type ParquetColumn } from './parquet.ts';

/** Everything written into a Buffer. */
function collector() {
  const chunks: Buffer[] = [];
  const output = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      callback();
    },
  });
  return { output, bytes: () => Buffer.concat(chunks) };
}

/** Reads the file back with parquetjs's own reader (a decoder independent of our encoder). */
async function readBack(bytes: Buffer) {
  const reader = await parquetjs.ParquetReader.openBuffer(bytes);
  const rows: Record<string, unknown>[] = [];
  const cursor = reader.getCursor();
  for (let row = await cursor.next(); row; row = await cursor.next())
    rows.push(row as Record<string, unknown>);
  const rowGroups = reader.metadata!.row_groups.length;
  await reader.close();
  return { rows, rowGroups };
}

const COLUMNS: ParquetColumn[] = [
  { name: 'id', type: 'UTF8', optional: false },
  { name: 'text', type: 'UTF8', optional: true },
  { name: 'count', type: 'INT64', optional: true },
  { name: 'ratio', type: 'DOUBLE', optional: true },
  { name: 'flag', type: 'BOOLEAN', optional: true },
  { name: 'version', type: 'INT64', optional: false },
  { name: 'never', type: 'UTF8', optional: true },
];

const TEXTS = [
  '',
  'a',
  'Ama',
  'значение',
  '日本語のテキスト',
  'emoji 🎉 and "quotes", commas\nnewlines',
  'x'.repeat(3000),
];
const INTEGERS = [
  0,
  1,
  -1,
  255,
  -256,
  2 ** 31,
  -(2 ** 31) - 1,
  2 ** 32 + 5,
  -(2 ** 40),
  Number.MAX_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER,
];
const DOUBLES = [0, -0.5, 1.25, Math.PI, -1e300, 5e-324, 123456789.125];

/** Row `i` of the test data: every kind of value, with runs of nulls, runs of values and mixtures. */
function row(i: number): unknown[] {
  const mixed = (i * 7919) % 13;
  return [
    `row-${i}`,
    i % 500 < 100 ? null : TEXTS[mixed % TEXTS.length],
    mixed < 4 ? undefined : INTEGERS[i % INTEGERS.length],
    i % 3 === 0 ? null : DOUBLES[i % DOUBLES.length],
    mixed % 5 === 0 ? null : mixed % 2 === 0,
    i + 1,
    null,
  ];
}

async function writeRows(
  count: number,
  chunkSizes: number[],
  limits: Parameters<typeof openParquetStream>[2],
) {
  const { output, bytes } = collector();
  const writer = await openParquetStream(COLUMNS, output, limits);
  for (let from = 0, n = 0; from < count; n++) {
    const size = Math.min(count - from, chunkSizes[n % chunkSizes.length]!);
    const values: ColumnValues[] = COLUMNS.map((_, c) =>
      Array.from({ length: size }, (_, i) => row(from + i)[c]),
    );
    await writer.append(values, size);
    from += size;
  }
  await writer.close();
  return bytes();
}

/** Row `i` as the reader gives it: absent values are null, INT64 values bigints. */
function expected(i: number) {
  const values = row(i);
  const record: Record<string, unknown> = {};
  for (const [c, column] of COLUMNS.entries()) {
    const value = values[c] ?? null;
    record[column.name] = column.type === 'INT64' && value !== null ? BigInt(value as number) : value;
  }
  return record;
}

describe('openParquetStream', () => {
  it('writes every value back as it was: many pages, several row groups, chunks of any size', async () => {
    const count = 5_003;
    const bytes = await writeRows(count, [1, 999, 250, 3000, 17], {
      rowGroupRows: 2_000,
      pageBytes: 4_096,
    });
    const { rows, rowGroups } = await readBack(bytes);
    expect(rowGroups).toBe(3);
    expect(rows).toHaveLength(count);
    for (let i = 0; i < count; i++) expect(rows[i], `row ${i}`).toEqual(expected(i));
  });

  it('closes a row group when its encoded bytes reach the limit', async () => {
    const bytes = await writeRows(3_000, [1000], { rowGroupBytes: 10_000 });
    const { rows, rowGroups } = await readBack(bytes);
    expect(rowGroups).toBeGreaterThan(1);
    expect(rows.map((r) => r.id)).toEqual(Array.from({ length: 3_000 }, (_, i) => `row-${i}`));
  });

  it('writes a valid file with no rows', async () => {
    const { rows, rowGroups } = await readBack(await writeRows(0, [1], {}));
    expect(rows).toEqual([]);
    expect(rowGroups).toBe(0);
  });

  it('takes bigints for INT64 too', async () => {
    const { output, bytes } = collector();
    const writer = await openParquetStream([{ name: 'n', type: 'INT64', optional: false }], output);
    await writer.append([[-(2n ** 63n), 2n ** 63n - 1n, 0n]], 3);
    await writer.close();
    const { rows } = await readBack(bytes());
    expect(rows.map((r) => r.n)).toEqual([-(2n ** 63n), 2n ** 63n - 1n, 0n]);
  });

  it('takes bigints a double holds for DOUBLE, written as that double', async () => {
    const { output, bytes } = collector();
    const writer = await openParquetStream([{ name: 'x', type: 'DOUBLE', optional: true }], output);
    await writer.append([[2n ** 60n, 0.5, null, -(10n ** 20n)]], 4);
    await writer.close();
    const { rows } = await readBack(bytes());
    expect(rows.map((r) => r.x)).toEqual([2 ** 60, 0.5, null, -1e20]);
  });
});

import type { Writable } from 'node:stream';

/** The thin adapter over @dsnp/parquetjs: the rest of the server never imports it. */

export type ParquetColumnType = 'UTF8' | 'DOUBLE' | 'INT64' | 'BOOLEAN';

export interface ParquetColumn {
  name: string;
  type: ParquetColumnType;
  optional: boolean;
}

export interface ParquetStream {
  append(row: Record<string, unknown>): Promise<void>;
  /** Flushes the last row group and the footer, and ends `output`. */
  close(): Promise<void>;
}

/** Writes rows as Parquet into `output`, a row group at a time (memory: one row group). */
export async function openParquetStream(
  columns: ParquetColumn[],
  output: Writable,
  rowGroupSize: number,
): Promise<ParquetStream> {
  // Loaded on first export only: it is large, and most processes never export.
  const { ParquetSchema, ParquetWriter } = (await import('@dsnp/parquetjs')).default as unknown as {
    ParquetSchema: new (
      fields: Record<string, { type: string; optional?: boolean; compression?: string }>,
    ) => object;
    ParquetWriter: {
      openStream(
        schema: object,
        out: Writable,
        opts: { rowGroupSize: number },
      ): Promise<{ appendRow(row: Record<string, unknown>): Promise<void>; close(): Promise<void> }>;
    };
  };
  const schema = new ParquetSchema(
    Object.fromEntries(
      columns.map((c) => [c.name, { type: c.type, optional: c.optional, compression: 'SNAPPY' }]),
    ),
  );
  const writer = await ParquetWriter.openStream(schema, output, { rowGroupSize });
  return { append: (row) => writer.appendRow(row), close: () => writer.close() };
}

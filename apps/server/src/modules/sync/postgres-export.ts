import type pg from 'pg';
import { EXPORT_READ_MAX_BYTES } from './page-bytes.ts';
import {
  EXPORT_COLUMNS,
  type ExportDataRow,
  type ExportFilter,
  type ExportReader,
  type ExportRow,
} from './sync.store.ts';

/** EXPORT_COLUMNS cast so both dialects read the same tuple (deleted 0/1, version a number). */
const EXPORT_SELECT = EXPORT_COLUMNS.split(', ')
  .map((c) => (c === 'deleted' ? 'deleted::int' : c === 'version' ? 'version::float8' : c))
  .join(', ');

/** An export's reads, on one connection inside one snapshot (see `openExportReader`). */
export class PostgresExportReader implements ExportReader {
  readonly #client: pg.PoolClient;

  constructor(client: pg.PoolClient) {
    this.#client = client;
  }

  async visitExportData(
    filter: ExportFilter,
    afterVersion: number,
    limit: number,
    visit: (row: ExportDataRow) => void,
  ): Promise<number> {
    const { where, values } = exportWhere(filter, afterVersion);
    return this.#visit(
      boundedRead('version::float8, form_type, data', where, values.length),
      [...values, limit],
      visit,
    );
  }

  async visitExportRows(
    formTypes: readonly string[],
    filter: ExportFilter,
    afterVersion: number,
    limit: number,
    visit: (row: ExportRow) => void,
  ): Promise<number> {
    const { where, values } = exportWhere({ ...filter, formTypes }, afterVersion);
    return this.#visit(boundedRead(EXPORT_SELECT, where, values.length), [...values, limit], visit);
  }

  async #visit<Row extends unknown[]>(
    text: string,
    values: unknown[],
    visit: (row: Row) => void,
  ): Promise<number> {
    const { rows } = await this.#client.query<Row>({ text, values, rowMode: 'array' });
    for (const row of rows) visit(row);
    return rows.length;
  }

  async close(): Promise<void> {
    try {
      await this.#client.query('commit');
    } catch (err) {
      // A connection that failed to commit is not given back to the pool, it is closed.
      this.#client.release(err as Error);
      throw err;
    }
    this.#client.release();
  }
}

/**
 * Up to `limit` records (the parameter after the condition's) in version order, kept while the
 * running size of their data is within EXPORT_READ_MAX_BYTES (at least one). octet_length reads a
 * stored value's size without fetching it, so the records cut off are never fetched.
 */
const boundedRead = (select: string, where: string, conditionValues: number) =>
  `select ${select} from (select candidate.*, row_number() over w as n, sum(octet_length(data)) over w as running from (select * from observations where ${where} order by version limit $${conditionValues + 1}) candidate window w as (order by version)) sized where n = 1 or running <= ${EXPORT_READ_MAX_BYTES} order by version`;

/** The records an export reads after `afterVersion`: one condition for both passes. */
function exportWhere(filter: ExportFilter, afterVersion: number): { where: string; values: unknown[] } {
  const values: unknown[] = [Math.max(afterVersion, filter.sinceVersion)];
  let where = 'version > $1';
  if (!filter.includeDeleted) where += ' and not deleted';
  if (filter.formTypes?.length === 1) {
    // Plainly equal, so the (form_type, version) index is certain to serve it in version order.
    values.push(filter.formTypes[0]);
    where += ` and form_type = $${values.length}`;
  } else if (filter.formTypes) {
    values.push(filter.formTypes);
    where += ` and form_type = any($${values.length}::text[])`;
  }
  return { where, values };
}

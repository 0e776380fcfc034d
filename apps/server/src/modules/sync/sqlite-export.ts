import type Database from 'better-sqlite3';
import { EXPORT_READ_MAX_BYTES } from './page-bytes.ts';
import { FORM_TYPE_IN_LIST } from './sqlite-page.ts';
import {
  EXPORT_COLUMNS,
  type ExportDataRow,
  type ExportFilter,
  type ExportReader,
  type ExportRow,
} from './sync.store.ts';

/**
 * A list of form types for export pages, kept off the (form_type, version) index (`+`): read
 * through it, a list of types comes back out of version order, and SQLite would then sort every
 * remaining matching record to return each page. Read in version order, the others are filtered out.
 * One form type is read through that index: its records come in version order, and no others.
 */
const EXPORT_FORM_TYPE_IN_LIST = `+${FORM_TYPE_IN_LIST}`;
const EXPORT_ONE_FORM_TYPE = 'form_type = ?';

/** An export's reads on one connection (its own, in a read transaction, or the shared one). */
export class SqliteExportReader implements ExportReader {
  readonly #db: Database.Database;
  readonly #ready: () => Promise<void>;
  readonly #end: () => void;
  readonly #statements = new Map<string, Database.Statement>();

  /** `ready` resolves when the connection is free for a read; `end` ends the reader's transaction. */
  constructor(db: Database.Database, ready: () => Promise<void>, end: () => void = () => {}) {
    this.#db = db;
    this.#ready = ready;
    this.#end = end;
  }

  #statement(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql).raw();
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  async visitExportData(
    filter: ExportFilter,
    afterVersion: number,
    limit: number,
    visit: (row: ExportDataRow) => void,
  ): Promise<number> {
    await this.#ready();
    const { where, params } = exportWhere(filter, afterVersion);
    const statement = this.#statement(
      `select version, form_type, data from observations where ${where} order by version limit ?`,
    );
    return visitRows(statement, [...params, limit], 2, visit);
  }

  async visitExportRows(
    formTypes: readonly string[],
    filter: ExportFilter,
    afterVersion: number,
    limit: number,
    visit: (row: ExportRow) => void,
  ): Promise<number> {
    await this.#ready();
    const { sql, params } = exportRowsQuery(formTypes, filter, afterVersion, limit);
    return visitRows(this.#statement(sql), params, 3, visit);
  }

  async close(): Promise<void> {
    this.#end();
  }
}

/**
 * Visits each row as it is read, synchronously to the end (nothing else can use the connection
 * meanwhile), or until the data visited (column `dataColumn`) reach EXPORT_READ_MAX_BYTES.
 */
function visitRows<Row extends unknown[]>(
  statement: Database.Statement,
  params: unknown[],
  dataColumn: number,
  visit: (row: Row) => void,
): number {
  let count = 0;
  let bytes = 0;
  for (const row of statement.iterate(...params) as Iterable<Row>) {
    visit(row);
    count++;
    // Characters, for bytes: what the read holds in memory, near enough.
    bytes += (row[dataColumn] as string).length;
    if (bytes >= EXPORT_READ_MAX_BYTES) break; // ends the statement: the next read goes on from here
  }
  return count;
}

/** The query of `visitExportRows` (exported for a test of its plan). */
export function exportRowsQuery(
  formTypes: readonly string[],
  filter: ExportFilter,
  afterVersion: number,
  limit: number,
): { sql: string; params: unknown[] } {
  const { where, params } = exportWhere({ ...filter, formTypes }, afterVersion);
  return {
    sql: `select ${EXPORT_COLUMNS} from observations where ${where} order by version limit ?`,
    params: [...params, limit],
  };
}

/** The records an export reads after `afterVersion`: one condition for both passes. */
function exportWhere(filter: ExportFilter, afterVersion: number): { where: string; params: unknown[] } {
  const clauses = ['version > ?'];
  const params: unknown[] = [Math.max(afterVersion, filter.sinceVersion)];
  if (!filter.includeDeleted) clauses.push('deleted = 0');
  if (filter.formTypes?.length === 1) {
    clauses.push(EXPORT_ONE_FORM_TYPE);
    params.push(filter.formTypes[0]);
  } else if (filter.formTypes) {
    clauses.push(EXPORT_FORM_TYPE_IN_LIST);
    params.push(JSON.stringify(filter.formTypes));
  }
  return { where: clauses.join(' and '), params };
}

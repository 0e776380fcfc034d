import { parseJson } from '@synk/json';
import type { ParquetColumn, ParquetColumnType } from '../../lib/parquet.ts';
import type { ExportRow } from '../sync/sync.store.ts';
import { kindOf, scanTopLevelKinds, type ValueKind } from './json-kinds.ts';

/** The fixed columns every export file starts with (spec §7). */
export const BASE_COLUMNS: ParquetColumn[] = [
  { name: 'observation_id', type: 'UTF8', optional: false },
  { name: 'form_type', type: 'UTF8', optional: false },
  { name: 'form_version', type: 'UTF8', optional: true },
  { name: 'created_at', type: 'UTF8', optional: true },
  { name: 'updated_at', type: 'UTF8', optional: true },
  { name: 'synced_at', type: 'UTF8', optional: false },
  { name: 'deleted', type: 'BOOLEAN', optional: false },
  { name: 'version', type: 'INT64', optional: false },
  { name: 'geolocation', type: 'UTF8', optional: true },
];

/** A `data` key's column; `json`: every value is written as JSON text (mixed or nested values). */
export interface DataColumn {
  key: string;
  json: boolean;
  column: ParquetColumn;
}

/**
 * Learns, from every record of one form type, the type of each top-level `data` key: all numbers
 * → DOUBLE (INT64 when all are integers), all booleans → BOOLEAN, all strings → UTF8, anything
 * mixed, nested or only ever null → UTF8 holding JSON text.
 */
export class DataProfile {
  readonly #kinds = new Map<string, ValueKind>();

  readonly #note = (key: string, kind: ValueKind): void => {
    const seen = this.#kinds.get(key);
    if (seen === undefined || seen === 'null') this.#kinds.set(key, kind);
    else if (kind !== 'null' && kind !== seen) this.#kinds.set(key, merge(seen, kind));
  };

  add(data: Record<string, unknown>): void {
    for (const key in data) this.#note(key, kindOf(data[key]));
  }

  /** The same from a record's `data` text, read without parsing it into objects. */
  addJson(text: string): void {
    if (!scanTopLevelKinds(text, this.#note)) this.add(parseJson(text) as Record<string, unknown>);
  }

  columns(): DataColumn[] {
    return [...this.#kinds.keys()].sort().map((key) => {
      const kind = this.#kinds.get(key)!;
      return {
        key,
        json: kind === 'json' || kind === 'null',
        column: { name: `data_${key}`, type: typeFor(kind), optional: true },
      };
    });
  }
}

function merge(a: ValueKind, b: ValueKind): ValueKind {
  return (a === 'integer' || a === 'number') && (b === 'integer' || b === 'number') ? 'number' : 'json';
}

function typeFor(kind: ValueKind): ParquetColumnType {
  switch (kind) {
    case 'integer':
      return 'INT64';
    case 'number':
      return 'DOUBLE';
    case 'boolean':
      return 'BOOLEAN';
    default:
      return 'UTF8';
  }
}

/**
 * A form type's export layout: the base columns, then one per profiled data key. Converts records
 * a page at a time, column by column (what Parquet stores; CSV reads it row by row).
 */
export class ExportLayout {
  readonly columns: ParquetColumn[];
  readonly #data: DataColumn[];
  readonly #index: Map<string, number>;

  constructor(data: DataColumn[]) {
    this.#data = data;
    this.columns = [...BASE_COLUMNS, ...data.map((c) => c.column)];
    this.#index = new Map(data.map((c, i) => [c.key, BASE_COLUMNS.length + i]));
  }

  /** Cells for up to `rows` records: `cells[c][i]` holds column c's value for record i. */
  newCells(rows: number): unknown[][] {
    return this.columns.map(() => new Array<unknown>(rows));
  }

  /**
   * Writes record `i`'s cells: each value converted to its column's type, left `undefined` when
   * absent. A value that no longer fits (the record changed since profiling) is absent too.
   */
  fill(cells: unknown[][], i: number, row: ExportRow): void {
    for (let c = 0; c < BASE_CELLS.length; c++) cells[c]![i] = row[BASE_CELLS[c]!];
    cells[DELETED]![i] = row[7] === 1;
    const data = parseJson(row[3]) as Record<string, unknown>;
    for (const key in data) {
      const c = this.#index.get(key);
      const value = data[key];
      if (c === undefined || value === null) continue;
      const { json, column } = this.#data[c - BASE_COLUMNS.length]!;
      cells[c]![i] = json ? JSON.stringify(value) : convert(value, column.type);
    }
  }
}

/** Where each base column's value is in an ExportRow (`deleted`, 0/1 there, is converted). */
const BASE_CELLS = [0, 1, 2, 4, 5, 6, 7, 8, 9] as const;
const DELETED = 6;

function convert(value: unknown, type: ParquetColumnType): unknown {
  switch (type) {
    case 'INT64':
      return typeof value === 'number' && Number.isSafeInteger(value) ? value : undefined;
    case 'DOUBLE':
      return typeof value === 'number' ? value : undefined;
    case 'BOOLEAN':
      return typeof value === 'boolean' ? value : undefined;
    default:
      return typeof value === 'string' ? value : JSON.stringify(value);
  }
}

const UNSAFE_FILE_CHARACTERS = /[/\\:*?"<>|]/g;

/** `<form_type>.<ext>` with `/ \ : * ? " < > |` replaced by `_`, made unique on collision. */
export function exportFileNames(formTypes: string[], extension: string): Map<string, string> {
  const used = new Set<string>();
  const names = new Map<string, string>();
  for (const formType of formTypes) {
    const base = formType.replace(UNSAFE_FILE_CHARACTERS, '_');
    let name = `${base}.${extension}`;
    for (let n = 2; used.has(name.toLowerCase()); n++) name = `${base}_${n}.${extension}`;
    used.add(name.toLowerCase());
    names.set(formType, name);
  }
  return names;
}

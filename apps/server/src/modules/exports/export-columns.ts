import { parseJson } from '@synk/json';
import type { ParquetColumn, ParquetColumnType } from '../../lib/parquet.ts';
import type { ExportRow } from '../sync/sync.store.ts';
import { KeyCache, kindOf, scanTopLevelMembers, type ValueKind } from './json-kinds.ts';

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

  readonly #keys = new KeyCache();

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
    if (!scanTopLevelMembers(text, this.#note, this.#keys))
      this.add(parseJson(text) as Record<string, unknown>);
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
   * The top-level values are read from the stored text without parsing it (strings are slices
   * of it, nested values their JSON text as stored); text the scanner declines is parsed.
   */
  fill(cells: unknown[][], i: number, row: ExportRow): void {
    for (let c = 0; c < BASE_CELLS.length; c++) cells[c]![i] = row[BASE_CELLS[c]!];
    cells[DELETED]![i] = row[7] === 1;
    for (let c = BASE_COLUMNS.length; c < cells.length; c++) cells[c]![i] = undefined;
    this.#cells = cells;
    this.#row = i;
    this.#text = row[3];
    if (!scanTopLevelMembers(row[3], this.#put, this.#keys)) this.#fillParsed(cells, i, row[3]);
  }

  readonly #keys = new KeyCache();
  #cells: unknown[][] = [];
  #row = 0;
  #text = '';

  readonly #put = (key: string, kind: ValueKind, start: number, end: number): void => {
    const c = this.#index.get(key);
    if (c === undefined) return;
    this.#cells[c]![this.#row] =
      kind === 'null'
        ? undefined
        : cellFromText(this.#data[c - BASE_COLUMNS.length]!, kind, this.#text, start, end);
  };

  #fillParsed(cells: unknown[][], i: number, text: string): void {
    const data = parseJson(text) as Record<string, unknown>;
    for (const key in data) {
      const c = this.#index.get(key);
      const value = data[key];
      if (c === undefined || value === null) continue;
      const { json, column } = this.#data[c - BASE_COLUMNS.length]!;
      cells[c]![i] = json ? JSON.stringify(value) : cellFromValue(value, column.type);
    }
  }
}

/** The cell of a value written as `text.slice(start, end)` (not null), as `cellFromValue` gives it. */
function cellFromText(
  { json, column }: DataColumn,
  kind: ValueKind,
  text: string,
  start: number,
  end: number,
): unknown {
  if (json) return text.slice(start, end);
  switch (column.type) {
    case 'INT64':
      return kind === 'integer' ? Number(text.slice(start, end)) : undefined;
    case 'DOUBLE':
      return kind === 'integer' || kind === 'number' ? Number(text.slice(start, end)) : undefined;
    case 'BOOLEAN':
      return kind === 'boolean' ? text.charCodeAt(start) === 0x74 /* t */ : undefined;
    default: {
      if (kind !== 'string') return text.slice(start, end);
      const inner = text.slice(start + 1, end - 1);
      return inner.includes('\\') ? (parseJson(text.slice(start, end)) as string) : inner;
    }
  }
}

/** Where each base column's value is in an ExportRow (`deleted`, 0/1 there, is converted). */
const BASE_CELLS = [0, 1, 2, 4, 5, 6, 7, 8, 9] as const;
const DELETED = 6;

/** A data value's cell in a column of `type`: `undefined` when it does not fit the type. */
export function cellFromValue(value: unknown, type: ParquetColumnType): unknown {
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

/**
 * Characters no file name should hold: those Windows refuses and `/`, and the C0 and C1 controls
 * and DEL, which unzip tools cut names at (NUL) or write into names as line breaks and escapes.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE_FILE_CHARACTERS = /[/\\:*?"<>|\u0000-\u001f\u007f-\u009f]/g;

/**
 * `<form_type>.<ext>` with `/ \ : * ? " < > |` and control characters replaced by `_`, made unique
 * (ignoring case, as Windows and macOS file systems compare names) by a `_2`, `_3` … suffix.
 */
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

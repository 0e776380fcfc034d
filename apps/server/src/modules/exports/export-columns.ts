import { isRawJson, parseJson, parseJsonExact } from '@synk/json';
import type { ParquetColumn, ParquetColumnType } from '../../lib/parquet.ts';
import type { ExportRow } from '../sync/sync.store.ts';
import {
  exactInteger,
  isIntegerLiteral,
  KeyCache,
  kindOf,
  scanTopLevelMembers,
  type ValueKind,
} from './json-kinds.ts';

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
 * The last column of a form type with more `data` keys than a file may have columns for: the keys
 * left without a column of their own, as one JSON object per record (absent when it has none). Its
 * name cannot be a data column's (they all start `data_`) nor a base column's.
 */
export const OVERFLOW_COLUMN: ParquetColumn = { name: 'other_data', type: 'UTF8', optional: true };

/**
 * Learns, from every record of one form type, the type of each top-level `data` key: all numbers
 * → DOUBLE (INT64 when all are integers), all booleans → BOOLEAN, all strings → UTF8, anything
 * mixed, nested or only ever null → UTF8 holding JSON text. Numbers that neither INT64 nor DOUBLE
 * would hold exactly (an integer beyond INT64's range no double equals, or integers no double
 * equals among fractions) make the column UTF8 holding JSON text too, their digits as stored:
 * an export never rounds a number (see ValueKind).
 *
 * At most `maxColumns` keys get a column: the first ones in sort order (the spec's column order,
 * cut short); the others go into OVERFLOW_COLUMN. Memory stays bounded however many keys the
 * records hold (one record can carry a million): at most twice that many keys are kept, and past
 * that the ones sorting last are dropped, as is any later key sorting after the last one kept.
 */
export class DataProfile {
  readonly #kinds = new Map<string, ValueKind>();
  readonly #maxColumns: number;
  readonly #keys: KeyCache;
  /** Set once keys were dropped: keys sorting after it never get a column. */
  #lastKept: string | undefined;

  constructor(maxColumns = Number.POSITIVE_INFINITY) {
    this.#maxColumns = maxColumns;
    this.#keys = new KeyCache(2 * maxColumns);
  }

  readonly #note = (key: string, kind: ValueKind): void => {
    const seen = this.#kinds.get(key);
    if (seen === undefined) {
      if (this.#lastKept !== undefined && key > this.#lastKept) return;
      this.#kinds.set(key, kind);
      if (this.#kinds.size > 2 * this.#maxColumns) this.#keepFirst(this.#maxColumns);
    } else if (seen === 'null') this.#kinds.set(key, kind);
    else if (kind !== 'null' && kind !== seen) this.#kinds.set(key, merge(seen, kind));
  };

  /** Drops all but the first `n` keys in sort order. */
  #keepFirst(n: number): void {
    const sorted = [...this.#kinds.keys()].sort();
    for (const key of sorted.slice(n)) this.#kinds.delete(key);
    this.#lastKept = sorted[n - 1];
  }

  /** True when some keys have no column of their own: the layout then ends with OVERFLOW_COLUMN. */
  get overflows(): boolean {
    if (this.#kinds.size > this.#maxColumns) this.#keepFirst(this.#maxColumns);
    return this.#lastKept !== undefined;
  }

  /** Learns from a record's `data` as parseJsonExact reads it (long integers as JSON.rawJSON). */
  add(data: Record<string, unknown>): void {
    for (const key in data) this.#note(key, kindOf(data[key]));
  }

  /** The same from a record's `data` text, read without parsing it into objects. */
  addJson(text: string): void {
    if (!scanTopLevelMembers(text, this.#note, this.#keys))
      this.add(parseJsonExact(text) as Record<string, unknown>);
  }

  /** The data columns, sorted by key (at most `maxColumns`). */
  columns(): DataColumn[] {
    if (this.#kinds.size > this.#maxColumns) this.#keepFirst(this.#maxColumns);
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

const isNumeric = (kind: ValueKind) => kind === 'integer' || kind === 'int64' || kind === 'number';

/**
 * The kind of a column holding values of two different kinds: numbers keep the type that holds
 * both exactly (an `integer` fits any numeric column; `int64` and `number` share none, so they
 * are JSON text), anything else mixed is JSON text. The order values come in does not matter.
 */
function merge(a: ValueKind, b: ValueKind): ValueKind {
  if (!isNumeric(a) || !isNumeric(b)) return 'json';
  if (a === 'integer') return b;
  if (b === 'integer') return a;
  return 'json';
}

function typeFor(kind: ValueKind): ParquetColumnType {
  switch (kind) {
    case 'integer':
    case 'int64':
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
 * A form type's export layout: the base columns, then one per profiled data key, then (when
 * `overflow`) OVERFLOW_COLUMN for the keys without one. Converts records a page at a time, column
 * by column (what Parquet stores; CSV reads it row by row).
 */
export class ExportLayout {
  readonly columns: ParquetColumn[];
  readonly #data: DataColumn[];
  readonly #index: Map<string, number>;
  /** OVERFLOW_COLUMN's index, or -1 when keys without a column are left out. */
  readonly #overflow: number;

  constructor(data: DataColumn[], overflow = false) {
    this.#data = data;
    this.columns = [...BASE_COLUMNS, ...data.map((c) => c.column), ...(overflow ? [OVERFLOW_COLUMN] : [])];
    this.#index = new Map(data.map((c, i) => [c.key, BASE_COLUMNS.length + i]));
    this.#overflow = overflow ? this.columns.length - 1 : -1;
    this.#keys = new KeyCache(2 * Math.max(data.length, BASE_COLUMNS.length));
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
    this.#rest.length = 0;
    if (scanTopLevelMembers(row[3], this.#put, this.#keys)) {
      if (this.#rest.length > 0) cells[this.#overflow]![i] = this.#restJson();
    } else this.#fillParsed(cells, i, row[3]);
    this.#rest.length = 0;
  }

  readonly #keys: KeyCache;
  #cells: unknown[][] = [];
  #row = 0;
  #text = '';
  /**
   * Where the record's members without a column are in its text, for OVERFLOW_COLUMN: runs of
   * members, `[from, to]` pairs. Stored data is canonical JSON (keys sorted), so the members past
   * the last column usually make one run, sliced out as they are: a record with a million keys
   * costs a copy of its text, not a million strings.
   */
  readonly #rest: number[] = [];

  readonly #put = (key: string, kind: ValueKind, start: number, end: number, member: number): void => {
    const c = this.#index.get(key);
    if (c === undefined) {
      if (this.#overflow >= 0) {
        const rest = this.#rest;
        if (rest.length > 0 && onlyCommaBetween(this.#text, rest[rest.length - 1]!, member))
          rest[rest.length - 1] = end;
        else rest.push(member, end);
      }
      return;
    }
    this.#cells[c]![this.#row] =
      kind === 'null'
        ? undefined
        : cellFromText(this.#data[c - BASE_COLUMNS.length]!, kind, this.#text, start, end);
  };

  /** OVERFLOW_COLUMN's cell: the runs of members without a column, as one JSON object. */
  #restJson(): string {
    let json = '{';
    for (let r = 0; r < this.#rest.length; r += 2)
      json += (r > 0 ? ',' : '') + this.#text.slice(this.#rest[r], this.#rest[r + 1]);
    return `${json}}`;
  }

  #fillParsed(cells: unknown[][], i: number, text: string): void {
    const data = parseJsonExact(text) as Record<string, unknown>;
    let rest = '';
    for (const key in data) {
      const c = this.#index.get(key);
      const value = data[key];
      if (c === undefined) {
        if (this.#overflow >= 0)
          rest += `${rest === '' ? '{' : ','}${JSON.stringify(key)}:${JSON.stringify(value)}`;
        continue;
      }
      if (value === null) continue;
      const { json, column } = this.#data[c - BASE_COLUMNS.length]!;
      cells[c]![i] = json ? JSON.stringify(value) : cellFromValue(value, column.type);
    }
    if (rest !== '') cells[this.#overflow]![i] = `${rest}}`;
  }
}

/** Whether `text` holds only one comma and JSON whitespace from `from` to `to`. */
function onlyCommaBetween(text: string, from: number, to: number): boolean {
  let commas = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2c) commas++;
    else if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return false;
  }
  return commas === 1;
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
    case 'DOUBLE': {
      const source = text.slice(start, end);
      return numberCell(kind, Number(source), source, column.type);
    }
    case 'BOOLEAN':
      return kind === 'boolean' ? text.charCodeAt(start) === 0x74 /* t */ : undefined;
    default: {
      if (kind !== 'string') return text.slice(start, end);
      const inner = text.slice(start + 1, end - 1);
      return inner.includes('\\') ? (parseJson(text.slice(start, end)) as string) : inner;
    }
  }
}

/**
 * A number's cell in an INT64 or DOUBLE column (`source`: its JSON text, when known), `undefined`
 * when the column does not hold it exactly. An integer beyond ±(2^53 − 1) is a bigint of its exact
 * value: INT64 needs one, and a DOUBLE column gets one for an integer literal (the double equals
 * it) so that CSV writes its digits: String() writes the shortest digits that read back as the
 * double, 1152921504606847000 for 2^60 (1152921504606846976).
 */
function numberCell(kind: ValueKind, value: number, source: string | undefined, type: 'INT64' | 'DOUBLE') {
  if (type === 'INT64') {
    if (kind !== 'integer' && kind !== 'int64') return undefined;
    return Number.isSafeInteger(value) ? value : exactInteger(value, source);
  }
  if (kind !== 'integer' && kind !== 'number') return undefined;
  if (Number.isInteger(value) && !Number.isSafeInteger(value) && isIntegerLiteral(source))
    return BigInt(source);
  return value;
}

/** Where each base column's value is in an ExportRow (`deleted`, 0/1 there, is converted). */
const BASE_CELLS = [0, 1, 2, 4, 5, 6, 7, 8, 9] as const;
const DELETED = 6;

/**
 * A data value (as parseJsonExact reads it) in a column of `type`: `undefined` when it does not
 * fit the type.
 */
export function cellFromValue(value: unknown, type: ParquetColumnType): unknown {
  switch (type) {
    case 'INT64':
    case 'DOUBLE':
      if (typeof value === 'number') return numberCell(kindOf(value), value, undefined, type);
      if (isRawJson(value)) return numberCell(kindOf(value), Number(value.rawJSON), value.rawJSON, type);
      return undefined;
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

/** Windows device names, which it refuses as a file name's part before its first dot (`NUL.csv`). */
const WINDOWS_DEVICE = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(?=\.|$)/i;
/** Bytes of a name's part before its suffix and extension: file systems stop at 255 bytes. */
const MAX_BASE_BYTES = 200;

/** `formType` as the part of a file name before its extension, on any common file system. */
function fileBase(formType: string): string {
  let base = formType
    .replace(UNSAFE_FILE_CHARACTERS, '_')
    .replace(WINDOWS_DEVICE, '$1_')
    .replace(/[. ]+$/, (end) => '_'.repeat(end.length)); // Windows drops trailing dots and spaces
  if (Buffer.byteLength(base) > MAX_BASE_BYTES) {
    // Cut at a character, never inside one (a 255-character form type in a multibyte script).
    let bytes = 0;
    let end = 0;
    for (const char of base) {
      bytes += Buffer.byteLength(char);
      if (bytes > MAX_BASE_BYTES) break;
      end += char.length;
    }
    base = base.slice(0, end);
  }
  return base;
}

/**
 * `<form_type>.<ext>` with `/ \ : * ? " < > |` and control characters replaced by `_`, Windows
 * device names (`CON`, `NUL` …) and trailing dots or spaces changed, cut to 200 bytes, and made
 * unique (ignoring case, as Windows and macOS file systems compare names) by a `_2`, `_3` … suffix.
 */
export function exportFileNames(formTypes: string[], extension: string): Map<string, string> {
  const used = new Set<string>();
  const names = new Map<string, string>();
  for (const formType of formTypes) {
    const base = fileBase(formType);
    let name = `${base}.${extension}`;
    for (let n = 2; used.has(name.toLowerCase()); n++) name = `${base}_${n}.${extension}`;
    used.add(name.toLowerCase());
    names.set(formType, name);
  }
  return names;
}

import type { ParquetColumn, ParquetColumnType } from '../../lib/parquet.ts';
import type { StoredRecord } from '../sync/sync.store.ts';

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

type Kind = 'integer' | 'number' | 'boolean' | 'string' | 'json';

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
  readonly #kinds = new Map<string, Kind | 'null'>();

  add(data: Record<string, unknown>): void {
    for (const [key, value] of Object.entries(data)) {
      const kind = kindOf(value);
      const seen = this.#kinds.get(key);
      if (seen === undefined || seen === 'null') this.#kinds.set(key, kind);
      else if (kind !== 'null' && kind !== seen) this.#kinds.set(key, merge(seen, kind));
    }
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

function kindOf(value: unknown): Kind | 'null' {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'number') return Number.isSafeInteger(value) ? 'integer' : 'number';
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'string') return 'string';
  return 'json';
}

function merge(a: Kind, b: Kind): Kind {
  const numeric = new Set<Kind>(['integer', 'number']);
  return numeric.has(a) && numeric.has(b) ? 'number' : 'json';
}

function typeFor(kind: Kind | 'null'): ParquetColumnType {
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
 * A record as one export row: base columns, then each profiled data key converted to its
 * column's type. A value that no longer fits (the record changed between the two passes) is null.
 */
export function toRow(record: StoredRecord, data: Record<string, unknown>, columns: DataColumn[]) {
  const row: Record<string, unknown> = {
    observation_id: record.observation_id,
    form_type: record.form_type,
    form_version: record.form_version ?? undefined,
    created_at: record.created_at ?? undefined,
    updated_at: record.updated_at ?? undefined,
    synced_at: record.synced_at,
    deleted: record.deleted,
    version: BigInt(record.version),
    geolocation: record.geolocation ?? undefined,
  };
  for (const { key, json, column } of columns) {
    const value = data[key];
    if (value === null || value === undefined) continue;
    row[column.name] = json ? JSON.stringify(value) : convert(value, column.type);
  }
  return row;
}

function convert(value: unknown, type: ParquetColumnType): unknown {
  switch (type) {
    case 'INT64':
      return typeof value === 'number' && Number.isSafeInteger(value) ? BigInt(value) : undefined;
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

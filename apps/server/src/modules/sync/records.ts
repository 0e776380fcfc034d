import { CanonicalJsonError, canonicalJson, sha256Hex } from '../../lib/canonical-json.ts';

/** A pushed record after validation: every field present, normalised, ready to store. */
export interface IncomingRecord {
  observation_id: string;
  form_type: string;
  form_version: string | null;
  created_at: string | null;
  updated_at: string | null;
  deleted: boolean;
  geolocation: Geolocation | null;
  base_version: number | null;
  /** sha256 of the canonical JSON of {form_type, form_version, data, deleted, geolocation}. */
  hash: string;
  /** `data` as canonical JSON text: what is stored, and what the hash covers (the parsed `data` is not kept). */
  dataJson: string;
}

export interface Geolocation {
  latitude: number;
  longitude: number;
  accuracy: number;
  altitude?: number;
  altitude_accuracy?: number;
}

export interface FieldError {
  path: string;
  message: string;
}

/** How deeply a record's `data` may nest (objects and arrays); form data is seldom ten levels deep. */
export const MAX_DATA_DEPTH = 100;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The decimal number written by the `length` ASCII digits at `at`, or -1 if any is not a digit. */
function digitsAt(value: string, at: number, length: number): number {
  let n = 0;
  for (let i = at; i < at + length; i++) {
    const digit = value.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return -1;
    n = n * 10 + digit;
  }
  return n;
}

/**
 * An RFC 3339 `date-time` that names a real instant: `YYYY-MM-DDTHH:MM:SS`, `T` in either case,
 * an optional fraction of 1–9 digits, then `Z` (either case) or `±hh:mm`; a day of its month, a
 * leap second only at 23:59:60 UTC. Read character by character: every pushed record has two
 * timestamps, and a regular expression's match and captured strings cost ten times as much.
 */
export function isRfc3339(value: string): boolean {
  if (value.length < 20) return false;
  const year = digitsAt(value, 0, 4);
  const month = digitsAt(value, 5, 2);
  const day = digitsAt(value, 8, 2);
  const hour = digitsAt(value, 11, 2);
  const minute = digitsAt(value, 14, 2);
  const second = digitsAt(value, 17, 2);
  const t = value[10];
  if (
    value[4] !== '-' ||
    value[7] !== '-' ||
    (t !== 'T' && t !== 't') ||
    value[13] !== ':' ||
    value[16] !== ':' ||
    (year | month | day | hour | minute | second) < 0
  )
    return false;
  let at = 19;
  if (value[at] === '.') {
    const start = ++at;
    while (at < value.length && at - start < 10 && digitsAt(value, at, 1) >= 0) at++;
    if (at === start || at - start > 9) return false;
  }
  let offset = 0;
  const zone = value[at];
  if (zone === 'Z' || zone === 'z') {
    if (at + 1 !== value.length) return false;
  } else if (zone === '+' || zone === '-') {
    const hours = digitsAt(value, at + 1, 2);
    const minutes = digitsAt(value, at + 4, 2);
    if (at + 6 !== value.length || value[at + 3] !== ':' || (hours | minutes) < 0) return false;
    if (hours > 23 || minutes > 59) return false;
    offset = (zone === '-' ? -1 : 1) * (hours * 60 + minutes);
  } else return false;
  const leapYear = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 && leapYear ? 29 : DAYS_IN_MONTH[month - 1];
  if (days === undefined || day < 1 || day > days || hour > 23 || minute > 59 || second > 60) return false;
  // A leap second is inserted at the end of a UTC day: 23:59:60 with a zero offset (written with
  // another offset it would read 00:59:60+01:00, which the contract's date-time format refuses).
  return second < 60 || (hour === 23 && minute === 59 && offset === 0);
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Length in characters (code points), as JSON Schema's `maxLength` counts: only counted when it
 * could matter, as UTF-16 units are at most twice as many.
 */
const charLength = (s: string, max: number) =>
  s.length <= max || s.length > 2 * max ? s.length : [...s].length;

function checkString(
  errors: FieldError[],
  value: unknown,
  path: string,
  min: number,
  max: number,
): value is string {
  if (typeof value !== 'string') {
    errors.push({ path, message: value === undefined ? 'is required' : 'must be a string' });
    return false;
  }
  const length = charLength(value, max);
  if (length < min || length > max) {
    errors.push({ path, message: `must be ${min}-${max} characters long` });
    return false;
  }
  // Stored as text: UTF-8 has no unpaired surrogate (SQLite would store U+FFFD, PostgreSQL refuses
  // it) and PostgreSQL's text no NUL, so such a value could not be kept as it was sent.
  if (!value.isWellFormed() || value.includes('\0')) {
    errors.push({
      path,
      message: 'must be well-formed Unicode without NUL characters (no unpaired surrogates)',
    });
    return false;
  }
  return true;
}

function checkTimestamp(errors: FieldError[], value: unknown, path: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || !isRfc3339(value)) {
    errors.push({ path, message: 'must be an RFC 3339 timestamp such as 2025-01-31T12:00:00Z' });
    return null;
  }
  return value;
}

function checkNumber(
  errors: FieldError[],
  geo: Record<string, unknown>,
  key: string,
  range: [number, number],
  required: boolean,
): number | undefined {
  const value = geo[key];
  if (value === undefined || (value === null && !required)) {
    if (required) errors.push({ path: `/geolocation/${key}`, message: 'is required' });
    return undefined;
  }
  if (typeof value !== 'number' || !Number.isFinite(value) || value < range[0] || value > range[1]) {
    errors.push({ path: `/geolocation/${key}`, message: `must be a number from ${range[0]} to ${range[1]}` });
    return undefined;
  }
  return value;
}

function checkGeolocation(errors: FieldError[], value: unknown): Geolocation | null {
  if (value === undefined || value === null) return null;
  if (!isPlainObject(value)) {
    errors.push({ path: '/geolocation', message: 'must be an object with latitude, longitude and accuracy' });
    return null;
  }
  const latitude = checkNumber(errors, value, 'latitude', [-90, 90], true);
  const longitude = checkNumber(errors, value, 'longitude', [-180, 180], true);
  const accuracy = checkNumber(errors, value, 'accuracy', [0, Number.MAX_VALUE], true);
  const altitude = checkNumber(errors, value, 'altitude', [-Number.MAX_VALUE, Number.MAX_VALUE], false);
  const altitudeAccuracy = checkNumber(errors, value, 'altitude_accuracy', [0, Number.MAX_VALUE], false);
  if (latitude === undefined || longitude === undefined || accuracy === undefined) return null;
  const geo: Geolocation = { latitude, longitude, accuracy };
  if (altitude !== undefined) geo.altitude = altitude;
  if (altitudeAccuracy !== undefined) geo.altitude_accuracy = altitudeAccuracy;
  return geo;
}

/** The canonical JSON of a checked geolocation: its keys are known, so they are written in order. */
function canonicalGeolocation(geo: Geolocation | null): string {
  if (geo === null) return 'null';
  // Checked numbers are finite, and a finite number's template text is its JSON text.
  let out = `{"accuracy":${geo.accuracy}`;
  if (geo.altitude !== undefined) out += `,"altitude":${geo.altitude}`;
  if (geo.altitude_accuracy !== undefined) out += `,"altitude_accuracy":${geo.altitude_accuracy}`;
  return `${out},"latitude":${geo.latitude},"longitude":${geo.longitude}}`;
}

/**
 * sha256 of the canonical JSON of {form_type, form_version, data, deleted, geolocation}, written
 * out directly (keys already in sorted order) around the record's canonical data text.
 */
export function contentHash(
  record: Pick<IncomingRecord, 'form_type' | 'form_version' | 'deleted' | 'geolocation'>,
  dataJson: string,
): string {
  return sha256Hex(
    `{"data":${dataJson},"deleted":${record.deleted},"form_type":${JSON.stringify(record.form_type)},"form_version":${JSON.stringify(record.form_version)},"geolocation":${canonicalGeolocation(record.geolocation)}}`,
  );
}

/**
 * Checks one pushed record (spec §4.1); returns it normalised, with its `data` as received (for the
 * form schema's check), or every problem found.
 */
export function validateRecord(
  raw: unknown,
):
  | { record: IncomingRecord; data: Record<string, unknown> }
  | { errors: FieldError[]; observationId?: string } {
  if (!isPlainObject(raw)) return { errors: [{ path: '', message: 'a record must be a JSON object' }] };
  const errors: FieldError[] = [];
  const idOk = checkString(errors, raw.observation_id, '/observation_id', 1, 255);
  const typeOk = checkString(errors, raw.form_type, '/form_type', 1, 255);
  let formVersion: string | null = null;
  if (raw.form_version !== undefined && raw.form_version !== null) {
    if (checkString(errors, raw.form_version, '/form_version', 1, 50))
      formVersion = raw.form_version as string;
  }
  if (!isPlainObject(raw.data)) {
    errors.push({ path: '/data', message: raw.data === undefined ? 'is required' : 'must be a JSON object' });
  }
  const createdAt = checkTimestamp(errors, raw.created_at, '/created_at');
  const updatedAt = checkTimestamp(errors, raw.updated_at, '/updated_at');
  let deleted = false;
  if (raw.deleted !== undefined && raw.deleted !== null) {
    if (typeof raw.deleted !== 'boolean') errors.push({ path: '/deleted', message: 'must be true or false' });
    else deleted = raw.deleted;
  }
  const geolocation = checkGeolocation(errors, raw.geolocation);
  let baseVersion: number | null = null;
  if (raw.base_version !== undefined && raw.base_version !== null) {
    if (
      typeof raw.base_version !== 'number' ||
      !Number.isSafeInteger(raw.base_version) ||
      raw.base_version < 0
    ) {
      errors.push({ path: '/base_version', message: 'must be a non-negative integer' });
    } else baseVersion = raw.base_version;
  }
  let dataJson = '';
  if (isPlainObject(raw.data)) {
    try {
      dataJson = canonicalJson(raw.data, MAX_DATA_DEPTH);
    } catch (err) {
      if (!(err instanceof CanonicalJsonError)) throw err;
      errors.push({ path: `/data${pathToUnwritable(raw.data)}`, message: err.message });
    }
  }
  if (errors.length > 0 || !idOk || !typeOk) {
    return typeof raw.observation_id === 'string'
      ? { errors, observationId: raw.observation_id }
      : { errors };
  }
  const record = {
    observation_id: raw.observation_id as string,
    form_type: raw.form_type as string,
    form_version: formVersion,
    created_at: createdAt,
    updated_at: updatedAt,
    deleted,
    geolocation,
    base_version: baseVersion,
    hash: '',
    dataJson,
  };
  record.hash = contentHash(record, record.dataJson);
  return { record, data: raw.data as Record<string, unknown> };
}

/**
 * The JSON pointer (below `data`) of the first value canonical JSON refused in `data`: a number it
 * cannot write, or the container one level past MAX_DATA_DEPTH ('' if none is found).
 */
function pathToUnwritable(data: Record<string, unknown>): string {
  const visit = (value: unknown, depth: number): string | undefined => {
    if (typeof value === 'number') return Number.isFinite(value) ? undefined : '';
    if (typeof value !== 'object' || value === null) return undefined;
    if (depth === MAX_DATA_DEPTH) return '';
    for (const [key, inner] of Object.entries(value)) {
      const below = visit(inner, depth + 1);
      if (below !== undefined) return `/${key.replaceAll('~', '~0').replaceAll('/', '~1')}${below}`;
    }
    return undefined;
  };
  return visit(data, 0) ?? '';
}

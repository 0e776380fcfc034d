import { isRawJson } from '@synk/json';

/**
 * What a top-level `data` value is, as far as choosing its export column's type goes. Numbers are
 * told apart by the column types that hold their exact value, so that no export rounds one:
 * `integer` both INT64 and DOUBLE (every integer within ±(2^53 − 1), and larger ones a double
 * equals, such as 2^60), `int64` only INT64 (an integer literal no double equals, such as a
 * 19-digit identifier), `number` only DOUBLE (fractions, and integers beyond INT64 a double
 * equals, such as 1e20). A number neither holds (an integer literal beyond INT64 no double equals)
 * is `json`: written as its JSON text, which is its digits.
 */
export type ValueKind = 'integer' | 'int64' | 'number' | 'boolean' | 'string' | 'json' | 'null';

/**
 * A value's kind, as parsed by parseJsonExact: integers no double holds are JSON.rawJSON values
 * holding their digits.
 */
export function kindOf(value: unknown): ValueKind {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'number') return numberKind(value);
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'string') return 'string';
  if (isRawJson(value)) return numberKind(Number(value.rawJSON), value.rawJSON);
  return 'json';
}

const INTEGER_LITERAL = /^-?\d+$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * The kind of the number written `source` (its JSON text, when known) that reads as the double
 * `value`. Stored data keeps an integer literal's digits, so a literal's exact value is its own
 * (compared with the double it reads as); any other spelling stands for the double it reads as
 * (`1e21`, `1.5`). Only an integral double beyond ±(2^53 − 1) costs more than a check or two.
 */
export function numberKind(value: number, source?: string): ValueKind {
  if (Number.isSafeInteger(value)) return 'integer';
  if (!Number.isInteger(value)) return 'number'; // a fraction (or ±Infinity, which push refuses)
  const exact = exactInteger(value, source);
  const inDouble = exact === BigInt(value);
  if (exact >= INT64_MIN && exact <= INT64_MAX) return inDouble ? 'integer' : 'int64';
  return inDouble ? 'number' : 'json';
}

/** Whether `source` is JSON text of an integer without fraction or exponent (`-12`, `0`). */
export const isIntegerLiteral = (source: string | undefined): source is string =>
  source !== undefined && INTEGER_LITERAL.test(source);

/**
 * The exact value of the integral number written `source` that reads as the double `value`: the
 * literal's digits when it is an integer literal, else the double's value.
 */
export function exactInteger(value: number, source?: string): bigint {
  return isIntegerLiteral(source) ? BigInt(source) : BigInt(value);
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/**
 * Calls `visit(key, kind, start, end, member)` for each top-level member of the JSON object `text`,
 * where `text.slice(start, end)` is the member's value as written (and `text.slice(member, end)`
 * the whole member, its key's opening quote to its value's end), reading the text without building
 * the object: learning an export's columns needs each value's kind, not the value, and writing
 * its cells needs only the top-level values (JSON.parse would allocate every string and nested
 * object of every record). Gives the kinds parseJsonExact then `kindOf` would. Returns false,
 * possibly after some visits, when `text` is not a JSON object it can read (the caller then
 * parses it).
 *
 * `keys`, kept by the caller across the records of one form type, holds the keys seen at each
 * member position: records of a form usually have the same keys in the same order, and a key
 * found there is that same string again (no copy of it, and its hash is already computed for the
 * caller's map lookups).
 */
export function scanTopLevelMembers(
  text: string,
  visit: (key: string, kind: ValueKind, start: number, end: number, member: number) => void,
  keys: KeyCache = new KeyCache(),
): boolean {
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== OPEN_BRACE) return false;
  i = skipSpace(text, i + 1);
  if (text.charCodeAt(i) === CLOSE_BRACE) return true;
  for (let position = 0; ; position++) {
    const member = i;
    if (text.charCodeAt(i) !== QUOTE) return false;
    const keyEnd = stringEnd(text, i);
    if (keyEnd < 0) return false;
    const key = keys.at(position, text, i, keyEnd);
    i = skipSpace(text, keyEnd);
    if (text.charCodeAt(i) !== COLON) return false;
    i = skipSpace(text, i + 1);
    let end: number;
    let kind: ValueKind;
    switch (text.charCodeAt(i)) {
      case QUOTE:
        end = stringEnd(text, i);
        kind = 'string';
        break;
      case OPEN_BRACE:
      case OPEN_BRACKET:
        end = compositeEnd(text, i);
        kind = 'json';
        break;
      case 0x74: // t
        end = text.startsWith('true', i) ? i + 4 : -1;
        kind = 'boolean';
        break;
      case 0x66: // f
        end = text.startsWith('false', i) ? i + 5 : -1;
        kind = 'boolean';
        break;
      case 0x6e: // n
        end = text.startsWith('null', i) ? i + 4 : -1;
        kind = 'null';
        break;
      default: {
        end = i;
        while (end < text.length && isNumberCharacter(text.charCodeAt(end))) end++;
        const source = text.slice(i, end);
        const value = end > i ? Number(source) : Number.NaN;
        if (Number.isNaN(value)) return false;
        kind = numberKind(value, source);
      }
    }
    if (end < 0) return false;
    visit(key, kind, i, end, member);
    i = skipSpace(text, end);
    const next = text.charCodeAt(i);
    if (next === CLOSE_BRACE) return true;
    if (next !== COMMA) return false;
    i = skipSpace(text, i + 1);
  }
}

/**
 * The keys last seen at each member position, as written (between the quotes) and as read: for
 * the first `positions` members only, so one record with a million keys does not keep them all.
 */
export class KeyCache {
  readonly #written: string[] = [];
  readonly #keys: string[] = [];
  readonly #positions: number;

  constructor(positions = Number.POSITIVE_INFINITY) {
    this.#positions = positions;
  }

  /** The key whose quoted text is `text.slice(start, end)`, seen at member `position`. */
  at(position: number, text: string, start: number, end: number): string {
    const written = this.#written[position];
    if (written !== undefined && written.length === end - start - 2 && text.startsWith(written, start + 1))
      return this.#keys[position]!;
    const raw = text.slice(start + 1, end - 1);
    const key = raw.includes('\\') ? (JSON.parse(text.slice(start, end)) as string) : raw;
    if (position < this.#positions) {
      this.#written[position] = raw;
      this.#keys[position] = key;
    }
    return key;
  }
}

function skipSpace(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

/** The index after the closing quote of the string whose opening quote is at `start`, or -1. */
function stringEnd(text: string, start: number): number {
  let from = start + 1;
  for (;;) {
    const quote = text.indexOf('"', from);
    if (quote < 0) return -1;
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    from = quote + 1;
  }
}

/** The index after the object or array starting at `start`, or -1. */
function compositeEnd(text: string, start: number): number {
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      if (end < 0) return -1;
      i = end - 1;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if ((c === CLOSE_BRACE || c === CLOSE_BRACKET) && --depth === 0) return i + 1;
  }
  return -1;
}

/** - + . 0-9 e E */
function isNumberCharacter(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45;
}

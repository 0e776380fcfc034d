import { parseJsonExact } from '@synk/json';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { kindOf, numberKind, scanTopLevelMembers, type ValueKind } from './json-kinds.ts';

const byKey = (a: [string, ValueKind], b: [string, ValueKind]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/** Each member's kind, sorted by key (objects list integer-like keys first). */
function kinds(data: Record<string, unknown>): [string, ValueKind][] {
  return Object.keys(data)
    .map((key): [string, ValueKind] => [key, kindOf(data[key])])
    .sort(byKey);
}

/**
 * The kinds of the values a JSON text holds, as parseJsonExact reads it: the digits of an integer
 * literal no double holds count (they are what the server stores), not the double nearest them.
 * @synk/json also avoids V8's JSON.parse bug with escaped keys (nodejs/node#63785), which the
 * properties below do hit.
 */
const parsedKinds = (text: string) => kinds(parseJsonExact(text) as Record<string, unknown>);

function scannedKinds(text: string): [string, ValueKind][] | false {
  const kinds: [string, ValueKind][] = [];
  return scanTopLevelMembers(text, (key, kind) => kinds.push([key, kind])) && kinds.sort(byKey);
}

/** Keys and strings with escapes, quotes, backslashes, unicode and JSON-looking text. */
const text = fc.oneof(
  fc.string({ unit: 'grapheme' }),
  fc.constantFrom('', '"', '\\', '\\"', '{"a":1}', '[1,', '}', 'ключ', '🎉', '\u2028', 'a\nb', '__proto__'),
);
/** An integer literal as written (JSON.stringify writes its digits): around 2^53, INT64's range and beyond. */
const rawJson = (text: string) => (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON(text);
const longInteger = fc
  .oneof(
    fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
    fc.constantFrom(2n ** 53n, 2n ** 53n + 1n, 2n ** 60n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 63n, 2n ** 64n),
  )
  .map((n) => rawJson(String(n)));
const number = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, 1e21, 2 ** 53, 2 ** 53 - 1, -(2 ** 53), 1.5, 1e-7, Number.MAX_VALUE),
  longInteger,
);
const value = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    text,
    number,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(text, tie('value'), { maxKeys: 4 }),
  ),
})).value;
/** Canonical JSON (what the server stores) and the same with whitespace (what a reader may meet). */
const data = fc.dictionary(text, value, { maxKeys: 8 });

describe('scanTopLevelMembers', () => {
  it('gives the kinds of the values the JSON text holds, without parsing it', () => {
    fc.assert(
      fc.property(data, fc.boolean(), (object, spaced) => {
        const text = JSON.stringify(object, null, spaced ? 2 : undefined);
        expect(scannedKinds(text)).toEqual(parsedKinds(text));
      }),
      { numRuns: 2000 },
    );
  });

  it('reads number spellings JSON allows as parseJsonExact does', () => {
    for (const n of [
      '1.0',
      '1e2',
      '-0',
      '1E400',
      '-1e-400',
      '9007199254740993',
      '12345678901234567890',
      '0.1e1',
      '9223372036854775807',
      '-9223372036854775808',
      '9223372036854775808',
      '100000000000000000000',
      '1e18',
    ])
      expect(scannedKinds(`{"n":${n}}`)).toEqual(parsedKinds(`{"n":${n}}`));
  });

  it('declines what is not an object', () => {
    for (const json of ['[]', '"x"', '1', 'null', '', '{"a":}', '{"a":1', '{"a" 1}', '{"a":tru}'])
      expect(scannedKinds(json)).toBe(false);
    expect(scannedKinds('{}')).toEqual([]);
    expect(scannedKinds(' { } ')).toEqual([]);
  });
});

describe('numberKind', () => {
  it('tells numbers apart by the column types that hold their exact value', () => {
    const kindOfText = (text: string) => numberKind(Number(text), text);
    const table: [string, ValueKind][] = [
      ['42', 'integer'],
      ['-0', 'integer'],
      ['1.0', 'integer'],
      ['9007199254740991', 'integer'],
      ['9007199254740992', 'integer'], // 2^53: a double equals it
      ['1152921504606846976', 'integer'], // 2^60
      ['1e18', 'integer'],
      ['-9223372036854775808', 'integer'], // −2^63: INT64's least, and a double
      ['9007199254740993', 'int64'], // 2^53 + 1: no double equals it
      ['1234567890123456789', 'int64'],
      ['1152921504606847000', 'int64'], // what String(2^60) writes, but not 2^60
      ['9223372036854775807', 'int64'],
      ['1.5', 'number'],
      ['5e-324', 'number'],
      ['9223372036854775808', 'number'], // 2^63: beyond INT64, a double
      ['100000000000000000000', 'number'],
      ['1e21', 'number'],
      ['-9223372036854775809', 'json'], // beyond INT64, no double
      ['12345678901234567891', 'json'],
      ['98765432109876543210987654321', 'json'],
    ];
    expect(table.map(([text]) => [text, kindOfText(text)])).toEqual(table);
  });

  it('gives a double the kind of its own value, and a JSON.rawJSON integer that of its digits', () => {
    expect(kindOf(2 ** 60)).toBe('integer');
    expect(kindOf(2 ** 63)).toBe('number');
    expect(kindOf(0.5)).toBe('number');
    const digits = (parseJsonExact('{"n":1152921504606847000}') as { n: unknown }).n;
    expect(kindOf(digits)).toBe('int64');
    expect(kindOf(rawJson('12345678901234567891'))).toBe('json');
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, sha256Hex } from '../src/lib/canonical-json.ts';
import { isRfc3339, validateRecord } from '../src/modules/sync/records.ts';

describe('content hash', () => {
  it('is the sha256 of the canonical JSON of {form_type, form_version, data, deleted, geolocation}', () => {
    const raw = {
      observation_id: 'o1',
      form_type: 'f',
      form_version: '2',
      data: { b: [1, 2], a: 'ü' },
      deleted: true,
      geolocation: { longitude: 2, latitude: 1, accuracy: 3 },
      updated_at: '2025-01-01T00:00:00Z',
    };
    const result = validateRecord(raw);
    if (!('record' in result)) throw new Error('expected a valid record');
    const expected = sha256Hex(
      canonicalJson({
        form_type: 'f',
        form_version: '2',
        data: raw.data,
        deleted: true,
        geolocation: raw.geolocation,
      }),
    );
    expect(result.record.hash).toBe(expected);
    expect(result.record.dataJson).toBe('{"a":"ü","b":[1,2]}');

    const geolocation = {
      altitude_accuracy: 0.5,
      longitude: -0,
      altitude: -12.25,
      latitude: 1e-7,
      accuracy: 1e21,
    };
    const located = validateRecord({ ...raw, form_version: null, deleted: false, geolocation });
    if (!('record' in located)) throw new Error('expected a valid record');
    expect(located.record.hash).toBe(
      sha256Hex(
        canonicalJson({ form_type: 'f', form_version: null, data: raw.data, deleted: false, geolocation }),
      ),
    );
  });

  it('ignores key order and timestamps, but not content', () => {
    const hash = (r: object) => {
      const result = validateRecord(r);
      if (!('record' in result)) throw new Error('invalid');
      return result.record.hash;
    };
    const base = { observation_id: 'o', form_type: 'f', data: { x: 1, y: 2 } };
    expect(hash(base)).toBe(
      hash({ data: { y: 2, x: 1 }, form_type: 'f', observation_id: 'o', updated_at: '2025-01-01T00:00:00Z' }),
    );
    expect(hash(base)).not.toBe(hash({ ...base, data: { x: 1, y: 3 } }));
    expect(hash(base)).not.toBe(hash({ ...base, deleted: true }));
    expect(hash(base)).not.toBe(hash({ ...base, form_version: '1' }));
  });
});

describe('RFC 3339 timestamps', () => {
  it('name a real instant: days of the month (leap years), hours, offsets, leap seconds at 23:59:60 UTC', () => {
    const valid = [
      '2024-02-29T00:00:00Z',
      '2000-02-29T12:00:00.5+05:30',
      '2025-12-31t23:59:59.123456789z',
      '2016-12-31T23:59:60Z',
      '2016-12-31T23:59:60-00:00',
      '2025-01-01T00:00:00+23:59',
    ];
    const invalid = [
      '2025-02-29T00:00:00Z',
      '2100-02-29T00:00:00Z',
      '2025-04-31T00:00:00Z',
      '2025-00-10T00:00:00Z',
      '2025-01-00T00:00:00Z',
      '2025-01-01T24:00:00Z',
      '2025-01-01T10:60:00Z',
      '2025-01-01T10:00:61Z',
      '2016-12-31T22:59:60Z',
      '2017-01-01T00:59:60+01:00',
      '2025-01-01T10:00:00+24:00',
      '2025-01-01T10:00:00+01:60',
      '2025-01-01 10:00:00Z',
      '2025-01-01T10:00:00',
      '2025-01-01T10:00:00+0100',
      '2025-01-01T10:00:00.1234567890Z',
    ];
    expect(valid.filter((t) => !isRfc3339(t))).toEqual([]);
    expect(invalid.filter((t) => isRfc3339(t))).toEqual([]);
  });
});

/** The rule as a regular expression and arithmetic on its captures: the reference isRfc3339 must agree with. */
function rfc3339Reference(value: string): boolean {
  const m =
    /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/.exec(
      value,
    );
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as number[] as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (m[7] && (Number(m[8]) > 23 || Number(m[9]) > 59)) return false;
  const offset = m[7] ? Number(m[8]) * 60 + Number(m[9]) : 0;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  if (days === undefined || day < 1 || day > days || hour > 23 || minute > 59 || second > 60) return false;
  return second < 60 || (hour === 23 && minute === 59 && offset === 0);
}

describe('RFC 3339 timestamps, read character by character', () => {
  it('agree with the regular expression on near-timestamps and on text made of their characters', () => {
    const shaped = fc.stringMatching(
      /^\d{4}-[01]\d-[0-3]\d[Tt ][0-2]\d:[0-6]\d:[0-6]\d(\.\d{0,11})?([Zz]|[+-][0-2]\d:[0-6]\d|[+-]\d{2,4})?$/,
    );
    const characters = fc.string({ unit: fc.constantFrom(...'0123456789-:TtZz+. x٣'), maxLength: 40 });
    // A shaped timestamp with one character replaced, dropped or doubled.
    const mutated = fc
      .tuple(shaped, fc.nat(), fc.constantFrom('', 'x', '0', '9', ':', '-', '.', 'Z', '+', '٣'), fc.boolean())
      .map(([text, at, with_, keep]) => {
        const i = at % (text.length + 1);
        return text.slice(0, i) + with_ + text.slice(keep ? i : i + 1);
      });
    fc.assert(
      fc.property(fc.oneof(shaped, characters, mutated), (text) => {
        expect(isRfc3339(text)).toBe(rfc3339Reference(text));
      }),
      { numRuns: 20_000 },
    );
  });
});

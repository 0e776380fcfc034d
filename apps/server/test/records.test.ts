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

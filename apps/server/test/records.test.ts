import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, sha256Hex } from '../src/lib/canonical-json.ts';
import { validateRecord } from '../src/modules/sync/records.ts';

describe('canonicalJson', () => {
  it('sorts keys at every depth, keeps array order, drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null }, u: undefined })).toBe(
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    );
    expect(canonicalJson('x"y')).toBe(JSON.stringify('x"y'));
  });
});

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

describe('canonicalJson on any JSON value', () => {
  /** The definition: keys sorted at every depth, written out by hand. */
  const reference = (value: unknown): string => {
    if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
    if (Array.isArray(value)) return `[${value.map(reference).join(',')}]`;
    const entries = Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined);
    return `{${entries.map((k) => `${JSON.stringify(k)}:${reference((value as Record<string, unknown>)[k])}`).join(',')}}`;
  };

  it('equals the definition, whatever the keys (index-like, __proto__, unicode) and nesting', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const parsed = JSON.parse(JSON.stringify(value));
        expect(canonicalJson(parsed)).toBe(reference(parsed));
      }),
      { numRuns: 500 },
    );
    for (const text of [
      '{"10":1,"9":2,"a":{"2":0,"b":1}}',
      '{"__proto__":{"b":1,"a":2},"x":1}',
      '{"é":1,"e":2,"E":3,"\\u0000":4}',
    ]) {
      const parsed = JSON.parse(text);
      expect(canonicalJson(parsed)).toBe(reference(parsed));
    }
    expect(canonicalJson({ b: undefined, a: [1, { d: 1, c: 2 }] })).toBe('{"a":[1,{"c":2,"d":1}]}');
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../src/index.ts';

describe('canonicalJson', () => {
  it('sorts keys at every depth, keeps array order, drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null }, u: undefined })).toBe(
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    );
    expect(canonicalJson('x"y')).toBe(JSON.stringify('x"y'));
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

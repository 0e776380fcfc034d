import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CanonicalJsonError, canonicalJson, MAX_CANONICAL_DEPTH } from '../src/index.ts';

describe('canonicalJson', () => {
  it('sorts keys at every depth, keeps array order, drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null }, u: undefined })).toBe(
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    );
    expect(canonicalJson('x"y')).toBe(JSON.stringify('x"y'));
  });

  it('refuses a number it would have to write as null, on both of its paths', () => {
    for (const bad of [Infinity, -Infinity, Number.NaN]) {
      expect(() => canonicalJson({ a: [1, { b: bad }] })).toThrow(CanonicalJsonError);
      // An undefined member (dropped) sends the object down the hand-written path.
      expect(() => canonicalJson({ a: undefined, b: { c: bad } })).toThrow(CanonicalJsonError);
      expect(() => canonicalJson(bad)).toThrow(/not a number JSON can hold/);
    }
    expect(canonicalJson(JSON.parse('{"n":1e308,"m":-0,"s":5e-324}'))).toBe('{"m":0,"n":1e+308,"s":5e-324}');
  });

  it('refuses nesting deeper than its limit with an error, never a stack overflow', () => {
    const nested = (depth: number, leaf: unknown = 1): unknown => {
      let value = leaf;
      for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { k: value };
      return value;
    };
    expect(canonicalJson(nested(3), 3)).toBe('{"k":[{"k":1}]}');
    expect(() => canonicalJson(nested(4), 3)).toThrow('nested deeper than 3 levels');
    expect(() => canonicalJson(nested(MAX_CANONICAL_DEPTH + 1))).toThrow(CanonicalJsonError);
    expect(canonicalJson(nested(MAX_CANONICAL_DEPTH)).length).toBeGreaterThan(MAX_CANONICAL_DEPTH);
    // Far past where the recursion would exhaust the stack, on both paths.
    expect(() => canonicalJson(nested(200_000))).toThrow(CanonicalJsonError);
    expect(() => canonicalJson({ a: undefined, b: nested(200_000) })).toThrow(CanonicalJsonError);
    // A limit above the writer's own is capped.
    expect(() => canonicalJson(nested(MAX_CANONICAL_DEPTH + 1), 10 ** 6)).toThrow(CanonicalJsonError);
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

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, isRawJson, parseJson, parseJsonExact, withRoundedNumbers } from '../src/index.ts';

/** JSON text with BigInt values written as their digits (JSON.rawJSON in a replacer). */
const withBigInts = (value: unknown) =>
  JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'bigint' ? (JSON as unknown as { rawJSON(t: string): unknown }).rawJSON(String(v)) : v,
  );

/** JSON values whose numbers include integers no double holds. */
const values = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.integer(),
    fc.string(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 4 }), tie('value'), { maxKeys: 4 }),
  ),
})).value;

describe('parseJsonExact', () => {
  it('gives back every integer literal digit for digit, and every other value as JSON.parse does', () => {
    fc.assert(
      fc.property(values, (value) => {
        const text = withBigInts(value);
        expect(JSON.stringify(parseJsonExact(text))).toBe(text);
        // Without unsafe integers it is parseJson itself.
        if (!/\d{16}/.test(text)) expect(parseJsonExact(text)).toEqual(parseJson(text));
      }),
    );
  });

  it('keeps long integers on the strict path too (a text with an escaped key)', () => {
    const text = '{"\\"":1,"\\\\":2,"n":-123456789012345678901234567890,"m":[9007199254740993]}';
    const parsed = parseJsonExact(text) as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual(['"', '\\', 'n', 'm']);
    expect(JSON.stringify(parsed)).toBe(text);
  });

  it('leaves safe integers, decimals and exponents numbers, and a long digit run in a string a string', () => {
    const parsed = parseJsonExact(
      '{"safe":9007199254740991,"past":9007199254740992,"d":12345678901234567.5,"e":1e400,"s":"12345678901234567890","big":1e20,"point":12345678901234567890.0}',
    ) as Record<string, unknown>;
    // Integral doubles beyond 2^53 written as a decimal or with an exponent are numbers still.
    expect([parsed.big, parsed.point]).toEqual([1e20, Number('12345678901234567890')]);
    expect(parsed.safe).toBe(9007199254740991);
    expect(isRawJson(parsed.past)).toBe(true);
    expect(parsed.d).toBe(Number('12345678901234567.5'));
    expect(parsed.e).toBe(Number.POSITIVE_INFINITY);
    expect(parsed.s).toBe('12345678901234567890');
  });
});

describe('canonicalJson of exact integers', () => {
  it('writes them as their digits, in sorted position', () => {
    const parsed = parseJsonExact('{"b":12345678901234567890,"a":[1,-98765432109876543210]}');
    expect(canonicalJson(parsed)).toBe('{"a":[1,-98765432109876543210],"b":12345678901234567890}');
    // Keys already in order take the JSON.stringify path; it writes them the same.
    expect(canonicalJson(parseJsonExact('{"a":12345678901234567890}'))).toBe('{"a":12345678901234567890}');
  });
});

describe('withRoundedNumbers', () => {
  it('is the value itself without exact integers, else a copy with the nearest numbers', () => {
    const plain = { a: [1, { b: 'x' }], c: null };
    expect(withRoundedNumbers(plain)).toBe(plain);
    const exact = parseJsonExact('{"a":[1,12345678901234567891],"b":{"__proto__":9007199254740993},"c":"s"}');
    const rounded = withRoundedNumbers(exact) as { a: unknown[]; b: Record<string, unknown>; c: string };
    expect(rounded.a).toEqual([1, Number('12345678901234567891')]);
    expect(Object.hasOwn(rounded.b, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(rounded.b, '__proto__')?.value).toBe(Number('9007199254740993'));
    expect(rounded.c).toBe('s');
    // The exact value is untouched.
    expect(JSON.stringify(exact)).toBe(
      '{"a":[1,12345678901234567891],"b":{"__proto__":9007199254740993},"c":"s"}',
    );
  });
});

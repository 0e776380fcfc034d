import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hasEscapedKey, parseJson } from '../src/index.ts';

/** Puts V8's key cache into the state that triggers nodejs/node#63785. */
const poison = () => JSON.parse('{"h":[],"\\\\":0}');

/**
 * Poisons the cache for every key position of every object in `value`: for each prefix of an
 * object's keys, parses an object with that prefix followed by the key `\` (the trigger).
 */
function poisonFor(value: unknown): void {
  if (Array.isArray(value)) {
    for (const item of value) poisonFor(item);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  const keys = Object.keys(value);
  for (let i = 0; i <= keys.length; i++) {
    const prefix = keys
      .slice(0, i)
      .map((k) => `${JSON.stringify(k)}:0,`)
      .join('');
    JSON.parse(`{${prefix}"\\\\":0}`);
  }
  for (const item of Object.values(value)) poisonFor(item);
}

/** Keys and strings drawn to include what needs escaping: quotes, backslashes, controls, unicode. */
const text = fc.string({
  unit: fc.oneof(
    fc.constantFrom(
      '"',
      '\\',
      '\n',
      '\r',
      '\t',
      '\b',
      '\f',
      '\u0000',
      '\u001f',
      '/',
      'é',
      '\u2028',
      '😀',
      'a',
      'h',
    ),
    fc.string({ minLength: 1, maxLength: 1 }),
  ),
  maxLength: 8,
});
const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.integer(),
    text,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(text, fc.constant('__proto__')), tie('value'), { maxKeys: 4 }),
  ),
})).value;

describe('parseJson', () => {
  it('the bug it exists for is present in this runtime (otherwise the fallback is untested here)', () => {
    poison();
    const native = Object.keys(JSON.parse('{"h":1,"\\"":2}'))[1];
    poison();
    const ours = Object.keys(parseJson('{"h":1,"\\"":2}') as object)[1];
    expect(ours).toBe('"');
    // When V8 is fixed this line fails as a reminder that the workaround can go.
    expect(native).toBe('\\');
  });

  it('round-trips any JSON value, with the key cache poisoned before each parse', () => {
    fc.assert(
      fc.property(json, fc.boolean(), (value, pretty) => {
        const serialised = JSON.stringify(value, null, pretty ? 2 : undefined);
        poisonFor(value);
        expect(JSON.stringify(parseJson(serialised))).toBe(JSON.stringify(value));
      }),
      { numRuns: 2000 },
    );
  });

  it('gives the same result as JSON.parse wherever JSON.parse is not affected', () => {
    fc.assert(
      fc.property(fc.json(), (serialised) => {
        expect(parseJson(serialised)).toStrictEqual(JSON.parse(serialised));
      }),
    );
  });

  it('keeps __proto__ as an own property and lets the last duplicate key win, on both paths', () => {
    for (const escaped of ['', '\\"']) {
      const parsed = parseJson(`{"__proto__":{"polluted":1},"k${escaped}":1,"k${escaped}":2}`) as Record<
        string,
        unknown
      >;
      expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
      expect(Object.hasOwn(parsed, '__proto__')).toBe(true);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(parsed[`k${escaped ? '"' : ''}`]).toBe(2);
    }
  });

  it('rejects what JSON.parse rejects, with a SyntaxError, on the strict path too', () => {
    const bad = [
      '',
      ' ',
      '{',
      '{"\\"":}',
      '{"\\"":1,}',
      '[1,]',
      '{"\\"" 1}',
      '{"\\"":01}',
      '{"\\"":.5}',
      '{"\\"":1.}',
      '{"\\"":+1}',
      '{"\\"":"\\x41"}',
      '{"\\"":"\t"}',
      "{'\\\"':1}",
      '{"\\"":1} x',
      '{"\\"":tru}',
      '{"\\"":NaN}',
      '{"\\"":1}}',
      '{"\\"\\u12":1}',
    ];
    for (const input of bad) {
      expect(() => JSON.parse(input), input.slice(0, 40)).toThrow(SyntaxError);
      expect(() => parseJson(input), input.slice(0, 40)).toThrow(SyntaxError);
    }
  });

  it('refuses absurd nesting on the strict path with a SyntaxError rather than a stack overflow', () => {
    const deep = `${'['.repeat(200_000)}{"\\"":1}${']'.repeat(200_000)}`;
    expect(() => parseJson(deep)).toThrow(SyntaxError);
  });

  it('detects escaped keys only: escapes in values keep the native path', () => {
    expect(hasEscapedKey('{"note":"line 1\\nline 2","path":"C:\\\\x"}')).toBe(false);
    expect(hasEscapedKey('{"a":{"b\\"c":1}}')).toBe(true);
    expect(hasEscapedKey('{"a" :1, "\\u00e9"\n: 2}')).toBe(true);
    expect(hasEscapedKey('["\\":", ":"]')).toBe(false);
  });

  it('handles a large body on the strict path', () => {
    const records = Array.from({ length: 2000 }, (_, i) => ({ [`key "${i}"`]: 'x'.repeat(500), n: i }));
    const big = JSON.stringify({ records, note: 'y'.repeat(5_000_000) });
    poison();
    expect(parseJson(big)).toStrictEqual({ records, note: 'y'.repeat(5_000_000) });
  });
});

describe('parseJson on large texts', () => {
  it('handles a 10-million-character string and a key with an escape, with no stack overflow', () => {
    const note = `${'x'.repeat(10_000_000)}\\`;
    expect((parseJson(JSON.stringify({ note, k: 1 })) as { note: string }).note).toBe(note);
    const escapedKey = parseJson(JSON.stringify({ 'k\\': note })) as Record<string, string>;
    expect(escapedKey['k\\']).toBe(note);
  });

  it('scans many strings before a late backslash, and a string of a million escapes, in linear time', () => {
    const records = Array.from({ length: 50_000 }, (_, i) => ({ id: `r${i}`, v: 'plain' }));
    const text = JSON.stringify({ records, last: { 'q"': 1 } });
    expect((parseJson(text) as { last: Record<string, number> }).last['q"']).toBe(1);
    const escapes = '\n'.repeat(1_000_000);
    expect(
      (parseJson(JSON.stringify({ [`k${escapes}`]: escapes })) as Record<string, string>)[`k${escapes}`],
    ).toBe(escapes);
  });
});

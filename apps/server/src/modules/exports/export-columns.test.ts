import { parseJsonExact } from '@synk/json';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ExportRow } from '../sync/sync.store.ts';
import { BASE_COLUMNS, cellFromValue, DataProfile, ExportLayout, exportFileNames } from './export-columns.ts';
import { csvField } from './exports.service.ts';

/** Keys and strings with escapes, quotes, backslashes, unicode and JSON-looking text. */
const text = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.constantFrom('', '"', '\\', '\\"', '{"a":1}', 'ключ', '🎉', '\u2028', 'a\nb', '__proto__', '0', '10'),
);
/** An integer literal as written (JSON.stringify writes its digits): around 2^53, INT64's range and beyond. */
const rawJson = (text: string) => (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON(text);
const longInteger = fc
  .oneof(
    fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
    fc.constantFrom(2n ** 53n + 1n, 2n ** 60n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 63n, 10n ** 20n),
  )
  .map((n) => rawJson(String(n)));
const scalar = fc.oneof(
  text,
  fc.integer(),
  longInteger,
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, 1e21, 2 ** 53, 1.5, 1e-7),
  fc.boolean(),
  fc.constant(null),
);
const value = fc.oneof(
  { weight: 4, arbitrary: scalar },
  fc.array(scalar, { maxLength: 3 }),
  fc.dictionary(text, scalar, { maxKeys: 3 }),
);
/** A few shared keys, so records of one form type overlap and their kinds mix. */
const key = fc.oneof(fc.constantFrom('a', 'b', 'c', 'd', 'é', '"q"', 'x\\y'), text);
const data = fc.dictionary(key, value, { maxKeys: 6 });

const row = (json: string): ExportRow => [
  'id-1',
  'form',
  null,
  json,
  null,
  null,
  '2026-01-01T00:00:00.000Z',
  0,
  7,
  null,
];

/**
 * `record` as the server stores and reads it: its JSON text read back (`-0` is written `0`, a
 * double such as 2^60 as the digits 1152921504606847000, which then count) by @synk/json's
 * parseJsonExact (V8's own JSON.parse can misread escaped keys, nodejs/node#63785).
 */
const stored = (record: Record<string, unknown>) =>
  parseJsonExact(JSON.stringify(record)) as Record<string, unknown>;

/** The cells `fill` must give for `record`: converted from the record as stored. */
function expectedCells(record: Record<string, unknown>, profiled: DataProfile) {
  const values = stored(record);
  return profiled.columns().map(({ key, json, column }) => {
    const value = Object.hasOwn(values, key) ? values[key] : undefined;
    if (value === undefined || value === null) return undefined;
    return json ? JSON.stringify(value) : cellFromValue(value, column.type);
  });
}

describe('ExportLayout.fill', () => {
  it('gives each data cell what converting the record object gives, for records unlike the profiled ones too', () => {
    fc.assert(
      fc.property(fc.array(data, { minLength: 1, maxLength: 4 }), data, (profiledRecords, record) => {
        const profile = new DataProfile();
        for (const r of [...profiledRecords, record]) profile.add(stored(r));
        // Also a layout that never saw `record`: its values may no longer fit the columns.
        const stale = new DataProfile();
        for (const r of profiledRecords) stale.add(stored(r));
        for (const p of [profile, stale]) {
          const layout = new ExportLayout(p.columns());
          const cells = layout.newCells(1);
          layout.fill(cells, 0, row(JSON.stringify(record)));
          const dataCells = cells.slice(BASE_COLUMNS.length).map((column) => column[0]);
          expect(dataCells).toEqual(expectedCells(record, p));
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('reads text written with whitespace (nested values compared as JSON values)', () => {
    fc.assert(
      fc.property(data, (record) => {
        const profile = new DataProfile();
        profile.add(stored(record));
        const layout = new ExportLayout(profile.columns());
        const cells = layout.newCells(1);
        layout.fill(cells, 0, row(JSON.stringify(record, null, 2)));
        const expected = expectedCells(record, profile);
        profile.columns().forEach(({ json }, c) => {
          const cell = cells[BASE_COLUMNS.length + c]![0];
          if (json && cell !== undefined)
            expect(parseJsonExact(cell as string)).toEqual(parseJsonExact(expected[c] as string));
          else expect(cell).toEqual(expected[c]);
        });
      }),
      { numRuns: 1000 },
    );
  });

  it('clears cells a reused row had, and falls back to parsing text the scanner declines', () => {
    const profile = new DataProfile();
    profile.add({ a: 1, b: 'x' });
    const layout = new ExportLayout(profile.columns());
    const cells = layout.newCells(1);
    layout.fill(cells, 0, row('{"a":1,"b":"x"}'));
    layout.fill(cells, 0, row('{"a":null}'));
    expect(cells.slice(BASE_COLUMNS.length).map((c) => c[0])).toEqual([undefined, undefined]);
    // Duplicate keys: the last one wins, as in JSON.parse.
    layout.fill(cells, 0, row('{"a":1,"a":2,"b":"x","b":null}'));
    expect(cells.slice(BASE_COLUMNS.length).map((c) => c[0])).toEqual([2, undefined]);
  });
});

describe('integers no double holds (beyond ±(2^53 − 1))', () => {
  // id: within INT64; level: a fraction and 2^60, which a double holds; reading: a fraction and
  // 2^53 + 1, which no double holds; serial: one beyond INT64; big: 10^20, beyond INT64 but a double.
  const records = [
    '{"big":100000000000000000000,"id":1234567890123456789,"level":0.25,"reading":0.5,"safe":1,"serial":12345678901234567891}',
    '{"big":3,"id":-9223372036854775808,"level":1152921504606846976,"reading":9007199254740993,"safe":2,"serial":7}',
  ];

  it('type each column so that no number in it is rounded, read from the text or parsed', () => {
    const fromText = new DataProfile();
    const parsed = new DataProfile();
    for (const r of records) {
      fromText.addJson(r);
      parsed.add(parseJsonExact(r) as Record<string, unknown>);
    }
    for (const profile of [fromText, parsed])
      expect(profile.columns().map((c) => [c.key, c.column.type, c.json])).toEqual([
        ['big', 'DOUBLE', false],
        ['id', 'INT64', false],
        ['level', 'DOUBLE', false],
        ['reading', 'UTF8', true],
        ['safe', 'INT64', false],
        ['serial', 'UTF8', true],
      ]);
  });

  it('are cells of their exact value (bigints, or their digits as text), which CSV writes digit for digit', () => {
    const profile = new DataProfile();
    for (const r of records) profile.addJson(r);
    const layout = new ExportLayout(profile.columns());
    const cells = layout.newCells(records.length);
    records.forEach((r, i) => {
      layout.fill(cells, i, row(r));
    });
    const dataCells = cells.slice(BASE_COLUMNS.length);
    expect(dataCells).toEqual([
      [10n ** 20n, 3],
      [1234567890123456789n, -(2n ** 63n)],
      [0.25, 2n ** 60n],
      ['0.5', '9007199254740993'],
      [1, 2],
      ['12345678901234567891', '7'],
    ]);
    expect(dataCells.map((column) => column.map(csvField))).toEqual([
      ['100000000000000000000', '3'],
      ['1234567890123456789', '-9223372036854775808'],
      ['0.25', '1152921504606846976'],
      ['0.5', '9007199254740993'],
      ['1', '2'],
      ['12345678901234567891', '7'],
    ]);
  });
});

describe('a form with more keys than EXPORT_MAX_COLUMNS', () => {
  it('gives the first keys in sort order a column each, typed as without the limit, whatever order they come in', () => {
    fc.assert(
      fc.property(
        fc.array(data, { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 5 }),
        (records, max) => {
          const bounded = new DataProfile(max);
          const unbounded = new DataProfile();
          for (const r of records) {
            bounded.addJson(JSON.stringify(r));
            unbounded.add(stored(r));
          }
          const all = unbounded.columns();
          expect(bounded.columns()).toEqual(all.slice(0, max));
          expect(bounded.overflows).toBe(all.length > max);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('keeps at most twice the limit in keys however many a record has', () => {
    const profile = new DataProfile(10);
    const data: Record<string, number> = {};
    for (let k = 100_000; k > 0; k--) data[`k${k}`] = k;
    profile.addJson(JSON.stringify(data));
    const kept = profile.columns().map((c) => c.key);
    expect(kept).toEqual(Object.keys(data).sort().slice(0, 10));
    expect(profile.overflows).toBe(true);
  });

  it('puts every other member of a record into other_data as a JSON object, values as they were', () => {
    fc.assert(
      fc.property(
        fc.array(data, { minLength: 1, maxLength: 4 }),
        data,
        fc.integer({ min: 1, max: 4 }),
        fc.boolean(),
        (profiledRecords, record, max, spaced) => {
          const profile = new DataProfile(max);
          for (const r of [...profiledRecords, record]) profile.add(stored(r));
          const layout = new ExportLayout(profile.columns(), profile.overflows);
          const cells = layout.newCells(1);
          layout.fill(cells, 0, row(JSON.stringify(record, null, spaced ? 2 : undefined)));
          const columns = profile.columns();
          const dataCells = cells
            .slice(BASE_COLUMNS.length, BASE_COLUMNS.length + columns.length)
            .map((c) => c[0]);
          const expected = expectedCells(record, profile);
          columns.forEach(({ json }, c) => {
            if (json && dataCells[c] !== undefined)
              expect(parseJsonExact(dataCells[c] as string)).toEqual(parseJsonExact(expected[c] as string));
            else expect(dataCells[c]).toEqual(expected[c]);
          });
          const named = new Set(columns.map((c) => c.key));
          const rest = Object.fromEntries(Object.entries(stored(record)).filter(([key]) => !named.has(key)));
          if (!profile.overflows) {
            expect(cells).toHaveLength(BASE_COLUMNS.length + columns.length);
            return;
          }
          const other = cells.at(-1)![0];
          if (Object.keys(rest).length === 0) expect(other).toBeUndefined();
          else expect(parseJsonExact(other as string)).toEqual(rest);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('other_data holds the members as written, in runs: read as JSON, the rest of the record', () => {
    const profile = new DataProfile(1);
    profile.add({ a: 1, b: 2, c: 3 });
    const layout = new ExportLayout(profile.columns(), profile.overflows);
    expect(layout.columns.map((c) => c.name).slice(BASE_COLUMNS.length)).toEqual(['data_a', 'other_data']);
    const cells = layout.newCells(1);
    const other = (text: string) => {
      layout.fill(cells, 0, row(text));
      return [cells[BASE_COLUMNS.length]![0], cells[BASE_COLUMNS.length + 1]![0]];
    };
    // Canonical text (what the server stores): the members past the columns are one slice of it.
    expect(other('{"a":1,"b":2,"c":{"d":[1,2]}}')).toEqual([1, '{"b":2,"c":{"d":[1,2]}}']);
    expect(other('{"a":1}')).toEqual([1, undefined]);
    expect(other('{ "b" : 2 , "a" : 3 ,\n"c" : "x" }')).toEqual([3, '{"b" : 2,"c" : "x"}']);
    // A repeated key: JSON readers take its last value, as the record's reader did.
    const [a, rest] = other('{"a":1,"c":[1, 2],"b":2,"c":null,"a":5}');
    expect(a).toBe(5);
    expect(parseJsonExact(rest as string)).toEqual({ c: null, b: 2 });
  });
});

describe('exportFileNames', () => {
  it('replaces / \\ : * ? " < > |, C0 and C1 controls and DEL with _', () => {
    const names = exportFileNames(
      [
        'a/b\\c:d*e?f"g<h>i|j',
        'nul\u0000x',
        'ctl\r\n',
        'tab\tend',
        'del\u007f',
        'c1\u0080\u0085\u009f',
        'ok é 😀 ¡',
      ],
      'parquet',
    );
    expect([...names.values()]).toEqual([
      'a_b_c_d_e_f_g_h_i_j.parquet',
      'nul_x.parquet',
      'ctl__.parquet',
      'tab_end.parquet',
      'del_.parquet',
      'c1___.parquet',
      'ok é 😀 ¡.parquet',
    ]);
  });

  it('changes Windows device names and trailing dots or spaces, and cuts long names at a character', () => {
    const long = 'ж'.repeat(255); // 510 bytes in UTF-8
    const names = exportFileNames(
      ['CON', 'nul.x', 'Com1', 'console', 'lpt9.', 'end. ', long, `${long}!`],
      'csv',
    );
    expect([...names.values()].slice(0, 6)).toEqual([
      'CON_.csv',
      'nul_.x.csv',
      'Com1_.csv',
      'console.csv',
      'lpt9__.csv',
      'end__.csv',
    ]);
    const [cut, cutToo] = [names.get(long)!, names.get(`${long}!`)!];
    expect(cut).toBe(`${'ж'.repeat(100)}.csv`);
    expect(cutToo).toBe(`${'ж'.repeat(100)}_2.csv`);
    expect(Buffer.byteLength(cutToo)).toBeLessThanOrEqual(255);
  });

  it('gives form types that map to the same safe name (in any case) distinct names', () => {
    const formTypes = ['a\u0000b', 'a\u0001b', 'a/b', 'a_b', 'A_B', 'a_b_2', 'a\u001fb'];
    const names = exportFileNames(formTypes, 'csv');
    expect(new Set([...names.values()].map((n) => n.toLowerCase())).size).toBe(formTypes.length);
    expect([...names.keys()]).toEqual(formTypes);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: none may be left
    const safe = /^[^\u0000-\u001f\u007f-\u009f/\\:*?"<>|]+\.csv$/;
    for (const name of names.values()) expect(name).toMatch(safe);
  });
});

import { describe, expect, it } from 'vitest';
import {
  checkCoreFields,
  checkFormRemoval,
  checkLayout,
  checkSchemaCompiles,
  createSchemaCompiler,
  MAX_JSON_DEPTH,
  nestsDeeperThan,
  type ProblemItem,
  parseJsonObject,
  rendererReferences,
  SCHEMA_DRAFTS,
  sameCoreFields,
  sameJson,
} from './index.ts';

const nested = (depth: number, inner = '') => `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;

describe('nesting depth', () => {
  it('counts objects and arrays, not brackets inside strings', () => {
    expect(nestsDeeperThan(nested(3), 3)).toBe(false);
    expect(nestsDeeperThan(nested(4), 3)).toBe(true);
    expect(nestsDeeperThan('{"a":{"b":[1,{"c":2}]}}', 4)).toBe(false);
    expect(nestsDeeperThan('{"a":{"b":[1,{"c":2}]}}', 3)).toBe(true);
    expect(nestsDeeperThan(`{"label":"${'[{'.repeat(500)}"}`, 1)).toBe(false);
    expect(nestsDeeperThan(`{"q\\"[[[":"\\\\","x":[[[]]]}`, 3)).toBe(true);
    expect(nestsDeeperThan(`{"q\\"[[[":"\\\\","x":[[]]}`, 3)).toBe(false);
  });

  it('parseJsonObject names a file nested deeper than MAX_JSON_DEPTH, without parsing it', () => {
    const errors: ProblemItem[] = [];
    const deep = `{"a":${nested(200_000)}}`;
    expect(parseJsonObject('forms/f/ui.json', deep, errors)).toBeUndefined();
    expect(errors).toEqual([
      {
        path: 'forms/f/ui.json',
        message: `nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep`,
        code: 'too_deep',
      },
    ]);
    const deepest = `{"a":${nested(MAX_JSON_DEPTH - 1)}}`;
    expect(parseJsonObject('forms/f/ui.json', deepest, [])).toEqual(JSON.parse(deepest));
  });

  it('rendererReferences walks any depth without recursion', () => {
    let ui: unknown = { options: { format: 'deep-renderer' } };
    for (let i = 0; i < 200_000; i++) ui = i % 2 ? [ui] : { elements: ui };
    expect(rendererReferences('ui', ui)).toEqual(['deep-renderer']);
    const wide = { elements: Array.from({ length: 300_000 }, () => ({ options: { format: 'text' } })) };
    expect(rendererReferences('ui', wide)).toHaveLength(300_000);
  });
});

describe('form schemas', () => {
  const compiler = createSchemaCompiler();
  const problems = (schema: Record<string, unknown>) => {
    const errors: ProblemItem[] = [];
    checkSchemaCompiles(compiler, 'forms/f/schema.json', schema, errors);
    return errors;
  };

  it('compiles each form on its own: two forms may share an $id', () => {
    const a = compiler.compile({ $id: 'https://example.org/form.json', type: 'object', required: ['a'] });
    const b = compiler.compile({ $id: 'https://example.org/form.json', type: 'object', required: ['b'] });
    expect([a({ a: 1 }), a({ b: 1 }), b({ a: 1 }), b({ b: 1 })]).toEqual([true, false, false, true]);
  });

  it.each([
    // Each case uses a keyword with a meaning of its own in that draft.
    ['(none: draft-07)', undefined, { if: { required: ['x'] }, else: { required: ['y'] } }, {}, { x: 1 }],
    [
      'draft-07',
      SCHEMA_DRAFTS['draft-07'],
      { if: { required: ['x'] }, else: { required: ['y'] } },
      {},
      { x: 1 },
    ],
    [
      'draft-06',
      SCHEMA_DRAFTS['draft-06'],
      { properties: { n: { exclusiveMinimum: 5 } } },
      { n: 5 },
      { n: 6 },
    ],
    ['2019-09', SCHEMA_DRAFTS['2019-09'], { dependentRequired: { x: ['y'] } }, { x: 1 }, { x: 1, y: 1 }],
    [
      '2020-12',
      SCHEMA_DRAFTS['2020-12'],
      { properties: { p: { prefixItems: [{ type: 'string' }], items: false } } },
      { p: ['a', 'b'] },
      { p: ['a'] },
    ],
  ])('$schema %s', (_label, uri, keywords, invalid, valid) => {
    const validate = compiler.compile({ ...(uri ? { $schema: uri } : {}), type: 'object', ...keywords });
    expect(validate(invalid)).toBe(false);
    expect(validate(valid)).toBe(true);
  });

  it('accepts the drafts’ URIs with either scheme and with or without the empty fragment', () => {
    for (const uri of [
      'http://json-schema.org/draft-07/schema',
      'https://json-schema.org/draft-07/schema#',
      'http://json-schema.org/draft-06/schema',
      'https://json-schema.org/draft/2019-09/schema#',
      'http://json-schema.org/draft/2020-12/schema',
    ])
      expect(problems({ $schema: uri, type: 'object' }), uri).toEqual([]);
  });

  it('an invalid schema is reported against its own draft’s meta-schema', () => {
    for (const uri of [undefined, ...Object.values(SCHEMA_DRAFTS)]) {
      const [problem] = problems({ ...(uri ? { $schema: uri } : {}), properties: { x: { type: 'nope' } } });
      expect(problem?.code, uri).toBe('invalid_schema');
      expect(problem?.message).toMatch(
        /^is not a valid JSON Schema: schema is invalid: data\/properties\/x\/type/,
      );
    }
    // 2020-12 has no `items` array form any more (prefixItems took its place).
    expect(problems({ $schema: SCHEMA_DRAFTS['2020-12'], items: [{ type: 'string' }] })).toHaveLength(1);
    expect(problems({ type: 'object', properties: { p: { pattern: '(' } } })[0]?.message).toMatch(
      /Invalid regular expression/,
    );
  });

  it('draft-04, an unknown or a non-string $schema → a problem naming the supported drafts', () => {
    for (const $schema of ['http://json-schema.org/draft-04/schema#', 'https://example.org/my-meta', 42]) {
      const errors = problems({ $schema, type: 'object' });
      expect(errors).toEqual([
        {
          path: 'forms/f/schema.json',
          message: `declares "$schema": ${JSON.stringify($schema)}, which is not supported; the supported JSON Schema drafts are draft-07 (the default when "$schema" is absent), draft-06, 2019-09 and 2020-12`,
          code: 'unsupported_schema_draft',
        },
      ]);
    }
  });
});

describe('checkLayout', () => {
  it('checks folder entries (names ending in /) like files: only where the layout has room', () => {
    const errors: ProblemItem[] = [];
    const layout = checkLayout(
      [
        'app/',
        'app/index.html',
        'app/deep/er/',
        'forms/',
        'forms/f/',
        'renderers/',
        'renderers/r/',
        'other/',
        'forms/f/sub/',
        'forms/a+b/',
        'renderers/r/lib/',
      ],
      errors,
    );
    expect(layout.forms.size).toBe(0);
    expect(errors.map((e) => `${e.path}: ${e.message}`)).toEqual([
      'other/: nothing but app/, forms/ and renderers/ may be at the top level',
      'forms/f/sub/: only schema.json and ui.json may be in a form folder',
      'forms/a+b/: is not where the bundle layout allows (forms/{name}/schema.json|ui.json, renderers/{name}/renderer.jsx)',
      'renderers/r/lib/: is not where the bundle layout allows (forms/{name}/schema.json|ui.json, renderers/{name}/renderer.jsx)',
    ]);
  });
});

describe('sameJson', () => {
  it('ignores key order, and compares what canonical JSON cannot write instead of throwing', () => {
    expect(sameJson({ a: 1, b: [1, { c: 2, d: 3 }] }, { b: [1, { d: 3, c: 2 }], a: 1 })).toBe(true);
    expect(sameJson({ a: 1 }, { a: 2 })).toBe(false);
    expect(sameJson({ max: Number.POSITIVE_INFINITY, a: 1 }, { a: 1, max: Number.POSITIVE_INFINITY })).toBe(
      true,
    );
    expect(sameJson({ max: Number.POSITIVE_INFINITY }, { max: 5 })).toBe(false);
    let deep: unknown = 1;
    for (let i = 0; i < 1500; i++) deep = [deep];
    expect(sameJson(deep, structuredClone(deep))).toBe(true);
  });

  it('parseJsonObject refuses numbers too large to represent', () => {
    const errors: ProblemItem[] = [];
    expect(parseJsonObject('forms/f/schema.json', '{"a":[1,{"b":-1e999}]}', errors)).toBeUndefined();
    expect(errors).toEqual([
      {
        path: 'forms/f/schema.json',
        message: 'holds a number too large to represent (such as 1e400)',
        code: 'invalid_json',
      },
    ]);
    expect(parseJsonObject('forms/f/schema.json', '{"a":1.7976931348623157e308}', [])).toEqual({
      a: Number.MAX_VALUE,
    });
  });
});

describe('core fields', () => {
  const schema = (target: unknown, extra: Record<string, unknown> = {}) => ({
    type: 'object',
    properties: { core_id: { $ref: '#/definitions/id' }, core_code: { $ref: '#/$defs/a~1b' }, note: {} },
    definitions: { id: { $ref: '#/definitions/text' }, text: target },
    $defs: { 'a/b': { type: 'string' } },
    ...extra,
  });
  const problems = (before: Record<string, unknown>, after: Record<string, unknown>) => {
    const errors: ProblemItem[] = [];
    checkCoreFields('f', before, after, errors);
    return errors.map((e) => e.message);
  };

  it('a core field changes when a definition its $ref leads to (through other $refs) changes', () => {
    const before = schema({ type: 'string' });
    const after = schema({ type: 'number' });
    expect(problems(before, after)).toEqual(['core field "core_id" may not change its definition']);
    expect(sameCoreFields(before, after)).toBe(false);
  });

  it('leaving out a form removes each of its core fields (top-level only); a form without them may go', () => {
    const errors: ProblemItem[] = [];
    checkFormRemoval('visit', schema({ type: 'string' }), errors);
    checkFormRemoval('notes', { type: 'object', properties: { text: { type: 'string' } } }, errors);
    checkFormRemoval('nested', { properties: { group: { properties: { core_inner: {} } } } }, errors);
    expect(errors).toEqual(
      ['core_id', 'core_code'].map((field) => ({
        path: 'forms/visit/schema.json',
        message: `core field "${field}" may not be removed (by removing form "visit", which has core fields in the active version; once its records are migrated to another form, push with retire_forms=true to retire it)`,
        code: 'core_field_changed',
      })),
    );
  });

  it('other definitions, and unresolvable or recursive references, change nothing by themselves', () => {
    const before = schema({ type: 'string' }, { $defs: { 'a/b': { type: 'string' }, other: { type: 'x' } } });
    const after = schema({ type: 'string' }, { $defs: { 'a/b': { type: 'string' }, other: { type: 'y' } } });
    expect(problems(before, after)).toEqual([]);
    expect(sameCoreFields(before, after)).toBe(true);
    const recursive = (type: string) => ({
      type: 'object',
      properties: { core_tree: { $ref: '#/definitions/node' }, core_missing: { $ref: '#/nowhere' } },
      definitions: {
        node: { type: 'object', properties: { kind: { type }, child: { $ref: '#/definitions/node' } } },
      },
    });
    expect(problems(recursive('string'), recursive('string'))).toEqual([]);
    expect(problems(recursive('string'), recursive('number'))).toEqual([
      'core field "core_tree" may not change its definition',
    ]);
  });
});

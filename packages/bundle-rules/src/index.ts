import { parseJson } from '@synk/json';
import { Ajv, type Options, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import draft06MetaSchema from 'ajv/dist/refs/json-schema-draft-06.json' with { type: 'json' };

/** One problem found in a bundle (the shape of a problem+json `errors[]` item). */
export interface ProblemItem {
  path?: string;
  message: string;
  code?: string;
}

/**
 * The rules an app bundle must follow (spec §6), as pure functions over entry names and parsed
 * JSON, so the same checks can run anywhere (server push, a CLI's local `forms validate`).
 */

export const BUILTIN_RENDERERS = new Set([
  'text',
  'number',
  'integer',
  'boolean',
  'date',
  'time',
  'datetime',
  'range',
  'select',
  'combo',
  'radio',
  'checkbox',
  'toggle',
  'group',
  'categorization',
  'category',
  'multiselect',
  'textarea',
  'slider',
  'rating',
  'builtin-text',
  'image',
  'signature',
  'audio',
  'video',
  'file',
  'qrcode',
]);

const SEGMENT = /^[A-Za-z0-9._@ -]+$/;

/** Problems with one entry name: traversal, absolute paths, backslashes, control characters. */
export function unsafeNameProblem(name: string): string | undefined {
  if (name.includes('\\')) return 'contains a backslash';
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return 'is an absolute path';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'contains control characters';
  const segments = name.replace(/\/$/, '').split('/');
  if (segments.some((s) => s === '..' || s === '.')) return 'contains a . or .. segment';
  if (segments.some((s) => s === '')) return 'contains an empty segment';
  return undefined;
}

export interface BundleLayout {
  forms: Map<string, { schema?: string; ui?: string }>;
  renderers: Set<string>;
  hasIndex: boolean;
}

const OUTSIDE_LAYOUT =
  'is not where the bundle layout allows (forms/{name}/schema.json|ui.json, renderers/{name}/renderer.jsx)';
const OUTSIDE_TOP_LEVEL = 'nothing but app/, forms/ and renderers/ may be at the top level';

/** Folders the layout has room for: app/ and anything in it, forms/{name}/, renderers/{name}/. */
function folderProblem(name: string): string | undefined {
  const parts = name.split('/');
  const [top] = parts;
  if (top === 'app') return undefined;
  if (top !== 'forms' && top !== 'renderers') return OUTSIDE_TOP_LEVEL;
  if (parts.length === 1) return undefined;
  if (!SEGMENT.test(parts[1]!)) return OUTSIDE_LAYOUT;
  if (parts.length === 2) return undefined;
  return top === 'forms' ? 'only schema.json and ui.json may be in a form folder' : OUTSIDE_LAYOUT;
}

/**
 * Checks where each entry sits (a name ending in `/` is a folder, which must fit the layout as
 * much as a file); collects forms and renderers.
 */
export function checkLayout(names: string[], errors: ProblemItem[]): BundleLayout {
  const layout: BundleLayout = { forms: new Map(), renderers: new Set(), hasIndex: false };
  for (const name of names) {
    if (name.endsWith('/')) {
      const problem = folderProblem(name.slice(0, -1));
      if (problem) errors.push({ path: name, message: problem, code: 'layout' });
      continue;
    }
    const parts = name.split('/');
    const [top] = parts;
    if (top === 'app' && parts.length >= 2) {
      if (name === 'app/index.html') layout.hasIndex = true;
      continue;
    }
    if (top === 'forms' && parts.length === 3 && SEGMENT.test(parts[1]!)) {
      const form = layout.forms.get(parts[1]!) ?? {};
      if (parts[2] === 'schema.json') form.schema = name;
      else if (parts[2] === 'ui.json') form.ui = name;
      else {
        errors.push({
          path: name,
          message: 'only schema.json and ui.json may be in a form folder',
          code: 'layout',
        });
        continue;
      }
      layout.forms.set(parts[1]!, form);
      continue;
    }
    if (top === 'renderers' && parts.length === 3 && SEGMENT.test(parts[1]!) && parts[2] === 'renderer.jsx') {
      layout.renderers.add(parts[1]!);
      continue;
    }
    errors.push({
      path: name,
      message: top === 'app' || top === 'forms' || top === 'renderers' ? OUTSIDE_LAYOUT : OUTSIDE_TOP_LEVEL,
      code: 'layout',
    });
  }
  if (!layout.hasIndex) errors.push({ path: 'app/index.html', message: 'is required', code: 'layout' });
  for (const [form, files] of layout.forms) {
    if (!files.schema)
      errors.push({
        path: `forms/${form}/schema.json`,
        message: 'is required for every form',
        code: 'layout',
      });
    if (!files.ui)
      errors.push({ path: `forms/${form}/ui.json`, message: 'is required for every form', code: 'layout' });
  }
  return layout;
}

/**
 * How deeply a form's JSON may nest objects and arrays: far more than any form needs, and far
 * less than what exhausts the stack of a recursive walk (JSON Schema compilation, canonical JSON).
 */
export const MAX_JSON_DEPTH = 100;

/**
 * True when JSON text nests objects and arrays more than `max` levels deep. Counted on the text,
 * without recursion and before parsing: a 5 MiB file of `[` alone parses into millions of arrays.
 */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  for (let at = 0; at < text.length; at++) {
    const c = text.charCodeAt(at);
    if (c === 0x22) {
      // A string: skip to its closing quote (brackets inside it do not count).
      for (at++; at < text.length; at++) {
        const inner = text.charCodeAt(at);
        if (inner === 0x5c) at++;
        else if (inner === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/** Parses a JSON file that must hold an object. */
export function parseJsonObject(
  path: string,
  text: string,
  errors: ProblemItem[],
): Record<string, unknown> | undefined {
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) {
    errors.push({
      path,
      message: `nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep`,
      code: 'too_deep',
    });
    return undefined;
  }
  let value: unknown;
  try {
    value = parseJson(text);
  } catch (err) {
    errors.push({ path, message: `is not valid JSON: ${(err as Error).message}`, code: 'invalid_json' });
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    errors.push({ path, message: 'must be a JSON object', code: 'invalid_json' });
    return undefined;
  }
  if (holdsNonFiniteNumber(value)) {
    errors.push({
      path,
      message: 'holds a number too large to represent (such as 1e400)',
      code: 'invalid_json',
    });
    return undefined;
  }
  return value as Record<string, unknown>;
}

/** `1e400` parses to Infinity, which no JSON can write back (canonical JSON refuses it). */
function holdsNonFiniteNumber(root: unknown): boolean {
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'number' && !Number.isFinite(value)) return true;
    if (value !== null && typeof value === 'object')
      for (const inner of Array.isArray(value) ? value : Object.values(value)) pending.push(inner);
  }
  return false;
}

/**
 * Whether two parsed JSON values are the same, whatever their key order. Compared without
 * recursion and without writing them out, so anything a version was ever stored with compares
 * (canonical JSON refuses 1e400 and nesting past its depth, which older versions may hold).
 */
export function sameJson(a: unknown, b: unknown): boolean {
  const pending: [unknown, unknown][] = [[a, b]];
  while (pending.length > 0) {
    const [x, y] = pending.pop()!;
    if (x === y) continue;
    if (x === null || y === null || typeof x !== 'object' || typeof y !== 'object') return false;
    if (Array.isArray(x) || Array.isArray(y)) {
      if (!Array.isArray(x) || !Array.isArray(y) || x.length !== y.length) return false;
      for (let i = 0; i < x.length; i++) pending.push([x[i], y[i]]);
      continue;
    }
    const keys = Object.keys(x);
    if (keys.length !== Object.keys(y).length) return false;
    for (const key of keys) {
      if (!Object.hasOwn(y, key)) return false;
      pending.push([(x as Record<string, unknown>)[key], (y as Record<string, unknown>)[key]]);
    }
  }
  return true;
}

/** The JSON Schema drafts a form's schema may declare in `$schema`, and the URI of each. */
export const SCHEMA_DRAFTS = {
  'draft-07': 'http://json-schema.org/draft-07/schema#',
  'draft-06': 'http://json-schema.org/draft-06/schema#',
  '2019-09': 'https://json-schema.org/draft/2019-09/schema',
  '2020-12': 'https://json-schema.org/draft/2020-12/schema',
} as const;
export type SchemaDraft = keyof typeof SCHEMA_DRAFTS;

/** A schema without `$schema` is draft-07 (what Ajv, JSON Forms and the existing bundles assume). */
const DEFAULT_DRAFT: SchemaDraft = 'draft-07';

const SUPPORTED_DRAFTS = 'draft-07 (the default when "$schema" is absent), draft-06, 2019-09 and 2020-12';

/** `$schema` URIs with either scheme and with or without the empty fragment name the same draft. */
const draftKey = (uri: string) => uri.replace(/^https:/, 'http:').replace(/#$/, '');
const DRAFT_BY_URI = new Map(
  Object.entries(SCHEMA_DRAFTS).map(([draft, uri]) => [draftKey(uri), draft as SchemaDraft]),
);

/** A schema's `$schema` names a draft this server cannot validate with. */
export class UnsupportedSchemaDraft extends Error {}

function draftOf(schema: Record<string, unknown>): SchemaDraft {
  if (!Object.hasOwn(schema, '$schema')) return DEFAULT_DRAFT;
  const uri = schema.$schema;
  const draft = typeof uri === 'string' ? DRAFT_BY_URI.get(draftKey(uri)) : undefined;
  if (draft) return draft;
  throw new UnsupportedSchemaDraft(
    `declares "$schema": ${JSON.stringify(uri)}, which is not supported; the supported JSON Schema drafts are ${SUPPORTED_DRAFTS}`,
  );
}

/** Tolerant of the vocabulary forms use (x-*, ui hints, formats). */
const AJV_OPTIONS: Options = { strict: false, allErrors: true, validateFormats: false };

function ajvFor(draft: SchemaDraft, options: Options): Ajv | Ajv2019 | Ajv2020 {
  switch (draft) {
    case '2019-09':
      return new Ajv2019(options);
    case '2020-12':
      return new Ajv2020(options);
    case 'draft-06': {
      const ajv = new Ajv(options);
      ajv.addMetaSchema(draft06MetaSchema);
      return ajv;
    }
    case 'draft-07':
      return new Ajv(options);
  }
}

/** Compiles form schemas of the drafts in SCHEMA_DRAFTS. */
export interface SchemaCompiler {
  /**
   * A validator for one form's schema, compiled on its own: nothing it declares (an `$id`, say)
   * is seen by another form's schema. Throws UnsupportedSchemaDraft, or an Error saying why the
   * schema is not a valid JSON Schema.
   */
  compile(schema: Record<string, unknown>): ValidateFunction;
}

export function createSchemaCompiler(): SchemaCompiler {
  // One instance per draft checks schemas against its meta-schema (compiled once, and it never
  // keeps the schemas it checks); each form then compiles in an instance of its own.
  const metaValidators = new Map<SchemaDraft, Ajv | Ajv2019 | Ajv2020>();
  return {
    compile(schema) {
      const draft = draftOf(schema);
      let meta = metaValidators.get(draft);
      if (!meta) {
        meta = ajvFor(draft, AJV_OPTIONS);
        metaValidators.set(draft, meta);
      }
      if (!meta.validate(SCHEMA_DRAFTS[draft], schema))
        throw new Error(`schema is invalid: ${meta.errorsText(meta.errors)}`);
      return ajvFor(draft, { ...AJV_OPTIONS, validateSchema: false }).compile(schema);
    },
  };
}

/** Compiles a form's schema, listing why it cannot be; the validator when it can. */
export function checkSchemaCompiles(
  compiler: SchemaCompiler,
  path: string,
  schema: Record<string, unknown>,
  errors: ProblemItem[],
): ValidateFunction | undefined {
  try {
    return compiler.compile(schema);
  } catch (err) {
    errors.push(
      err instanceof UnsupportedSchemaDraft
        ? { path, message: err.message, code: 'unsupported_schema_draft' }
        : { path, message: `is not a valid JSON Schema: ${(err as Error).message}`, code: 'invalid_schema' },
    );
    return undefined;
  }
}

/** Every renderer a schema (`x-renderer`, `rendererType`) or a ui (`options.format`) refers to. */
export function rendererReferences(kind: 'schema' | 'ui', root: unknown): string[] {
  const found: string[] = [];
  // An explicit stack rather than recursion: the walk's depth is not the call stack's.
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const value = pending.pop();
    if (Array.isArray(value)) {
      for (const item of value) pending.push(item);
    } else if (value && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      if (kind === 'schema') {
        for (const key of ['x-renderer', 'rendererType'])
          if (Object.hasOwn(record, key) && typeof record[key] === 'string')
            found.push(record[key] as string);
      } else if (Object.hasOwn(record, 'options')) {
        const options = record.options as Record<string, unknown> | null;
        if (options && typeof options === 'object' && Object.hasOwn(options, 'format')) {
          if (typeof options.format === 'string') found.push(options.format);
        }
      }
      for (const inner of Object.values(record)) pending.push(inner);
    }
  }
  return found;
}

export function checkRenderers(
  path: string,
  references: string[],
  bundled: Set<string>,
  errors: ProblemItem[],
): void {
  for (const name of new Set(references)) {
    if (!bundled.has(name) && !BUILTIN_RENDERERS.has(name)) {
      errors.push({ path, message: `refers to unknown renderer "${name}"`, code: 'unknown_renderer' });
    }
  }
}

/** A schema's top-level `properties` (its own, and only when it is an object). */
function topLevelProperties(schema: Record<string, unknown>): Record<string, unknown> {
  const properties = Object.hasOwn(schema, 'properties') ? schema.properties : undefined;
  return properties && typeof properties === 'object' && !Array.isArray(properties)
    ? (properties as Record<string, unknown>)
    : {};
}

/** Top-level properties that are core fields: named `core_*` or marked `"x-core": true`. */
export function coreFields(schema: Record<string, unknown>): Map<string, unknown> {
  const core = new Map<string, unknown>();
  for (const [name, definition] of Object.entries(topLevelProperties(schema))) {
    const marked =
      typeof definition === 'object' &&
      definition !== null &&
      Object.hasOwn(definition, 'x-core') &&
      (definition as Record<string, unknown>)['x-core'] === true;
    if (name.startsWith('core_') || marked) core.set(name, definition);
  }
  return core;
}

/** What a JSON pointer fragment (`#/definitions/a~1b`) names in `root`; `undefined` when nothing. */
function resolveLocalRef(root: unknown, ref: string): unknown {
  let value = root;
  let pointer: string;
  try {
    pointer = decodeURIComponent(ref.slice(1));
  } catch {
    return undefined;
  }
  if (pointer === '') return root;
  if (!pointer.startsWith('/')) return undefined; // a plain-name anchor, not a pointer
  for (const token of pointer.slice(1).split('/')) {
    const key = token.replaceAll('~1', '/').replaceAll('~0', '~');
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/**
 * A core field's meaning: its definition and everything its local `$ref`s (`#/…`, in its own
 * schema) lead to, followed transitively, so a core field that refers to a definition changes when
 * that definition does. Each reference is followed once (schemas may be recursive).
 */
function coreMeaning(definition: unknown, root: Record<string, unknown>): unknown {
  const refs: Record<string, unknown> = {};
  const pending: unknown[] = [definition];
  while (pending.length > 0) {
    const value = pending.pop();
    if (value === null || typeof value !== 'object') continue;
    for (const [key, inner] of Object.entries(value)) {
      if (key === '$ref' && typeof inner === 'string' && inner.startsWith('#')) {
        if (Object.hasOwn(refs, inner)) continue;
        const target = resolveLocalRef(root, inner);
        refs[inner] = target ?? null;
        pending.push(target);
      } else {
        pending.push(inner);
      }
    }
  }
  return { definition, refs };
}

/** Core fields of a form that exists in the active version may not be removed, changed or added. */
export function checkCoreFields(
  form: string,
  previous: Record<string, unknown>,
  next: Record<string, unknown>,
  errors: ProblemItem[],
): void {
  const before = coreFields(previous);
  const after = coreFields(next);
  const path = `forms/${form}/schema.json`;
  for (const [name, definition] of before) {
    if (!after.has(name)) {
      const stillThere = Object.hasOwn(topLevelProperties(next), name);
      errors.push({
        path,
        message: stillThere
          ? `core field "${name}" may not stop being a core field`
          : `core field "${name}" may not be removed`,
        code: 'core_field_changed',
      });
    } else if (!sameJson(coreMeaning(definition, previous), coreMeaning(after.get(name), next))) {
      errors.push({
        path,
        message: `core field "${name}" may not change its definition`,
        code: 'core_field_changed',
      });
    }
  }
  for (const name of after.keys()) {
    if (!before.has(name)) {
      errors.push({
        path,
        message: `core field "${name}" may not be added to an existing form`,
        code: 'core_field_changed',
      });
    }
  }
}

/**
 * A form of the active version left out of a new bundle: leaving out a form removes its core
 * fields, which the rule forbids, since records already collected with them would lose the
 * definition of their identity (and their validation). A form without core fields may go.
 */
export function checkFormRemoval(
  form: string,
  previous: Record<string, unknown>,
  errors: ProblemItem[],
): void {
  for (const name of coreFields(previous).keys()) {
    errors.push({
      path: `forms/${form}/schema.json`,
      message: `core field "${name}" may not be removed (by removing form "${form}", which has core fields in the active version; once its records are migrated to another form, push with retire_forms=true to retire it)`,
      code: 'core_field_changed',
    });
  }
}

/** Whether a form's core fields are the same, meaning the same, in two versions of its schema. */
export function sameCoreFields(previous: Record<string, unknown>, next: Record<string, unknown>): boolean {
  const problems: ProblemItem[] = [];
  checkCoreFields('', previous, next, problems);
  return problems.length === 0;
}

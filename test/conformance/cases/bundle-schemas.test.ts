import { beforeAll, describe, expect, it } from 'vitest';
import { pushBundle, zipOf } from '../src/bundles.ts';
import { useTarget } from '../src/harness.ts';
import { adminToken, userWithRole } from '../src/http.ts';
import { push } from '../src/sync.ts';

/** Form schemas: each compiles on its own, in the JSON Schema draft it declares (spec §6). */
const target = useTarget({ SYNC_VALIDATION: 'reject' });

let admin: string;
let writer: string;
beforeAll(async () => {
  admin = await adminToken(target);
  writer = (await userWithRole(target, 'read-write')).token;
});

const failedIds = (body: { failed_records: { observation_id: string }[] }) =>
  body.failed_records.map((f) => f.observation_id).sort();

describe('form schemas compile each on their own', () => {
  it('two forms whose schemas share an $id → 200, and records are checked against their own form’s schema', async () => {
    const shared = 'https://example.org/form.json';
    const res = await pushBundle(
      target,
      admin,
      zipOf({
        person: { schema: { $id: shared, type: 'object', required: ['name'] } },
        place: { schema: { $id: shared, type: 'object', required: ['where'] } },
      }),
      { query: '?activate=true' },
    );
    expect(res.status, await res.clone().text()).toBe(200);
    const sync = await push(target, writer, [
      { observation_id: 'person-ok', form_type: 'person', data: { name: 'a' } },
      { observation_id: 'person-bad', form_type: 'person', data: { where: 'b' } },
      { observation_id: 'place-ok', form_type: 'place', data: { where: 'b' } },
      { observation_id: 'place-bad', form_type: 'place', data: { name: 'a' } },
    ]);
    expect(failedIds(sync.body)).toEqual(['person-bad', 'place-bad']);
  });
});

describe('JSON Schema drafts', () => {
  it('draft-07 (also without $schema), draft-06, 2019-09 and 2020-12 → 200; records follow each draft’s rules', async () => {
    const res = await pushBundle(
      target,
      admin,
      zipOf({
        plain: { schema: { type: 'object', properties: { n: { type: 'integer' } } } },
        d07: {
          schema: {
            $schema: 'http://json-schema.org/draft-07/schema#',
            type: 'object',
            if: { required: ['x'] },
            else: { required: ['y'] },
          },
        },
        d06: {
          schema: {
            $schema: 'http://json-schema.org/draft-06/schema#',
            type: 'object',
            properties: { n: { exclusiveMinimum: 5 } },
          },
        },
        d2019: {
          schema: {
            $schema: 'https://json-schema.org/draft/2019-09/schema',
            type: 'object',
            dependentRequired: { x: ['y'] },
          },
        },
        d2020: {
          schema: {
            $schema: 'https://json-schema.org/draft/2020-12/schema',
            type: 'object',
            properties: { p: { prefixItems: [{ type: 'string' }], items: false } },
          },
        },
      }),
      { query: '?activate=true' },
    );
    expect(res.status, await res.clone().text()).toBe(200);
    const sync = await push(target, writer, [
      { observation_id: 'plain-ok', form_type: 'plain', data: { n: 1 } },
      { observation_id: 'plain-bad', form_type: 'plain', data: { n: 1.5 } },
      { observation_id: 'd07-ok', form_type: 'd07', data: { x: 1 } },
      { observation_id: 'd07-bad', form_type: 'd07', data: {} },
      { observation_id: 'd06-ok', form_type: 'd06', data: { n: 6 } },
      { observation_id: 'd06-bad', form_type: 'd06', data: { n: 5 } },
      { observation_id: 'd2019-ok', form_type: 'd2019', data: { x: 1, y: 2 } },
      { observation_id: 'd2019-bad', form_type: 'd2019', data: { x: 1 } },
      { observation_id: 'd2020-ok', form_type: 'd2020', data: { p: ['a'] } },
      { observation_id: 'd2020-bad', form_type: 'd2020', data: { p: ['a', 'b'] } },
    ]);
    expect(failedIds(sync.body)).toEqual(['d06-bad', 'd07-bad', 'd2019-bad', 'd2020-bad', 'plain-bad']);
    expect(sync.body.success_count).toBe(5);
  });

  it('draft-04 or an unknown $schema → 400 naming the file and the supported drafts', async () => {
    const before = (await (await pushBundle(target, admin, zipOf({}))).json()).manifest.version;
    const res = await pushBundle(
      target,
      admin,
      zipOf({
        old: { schema: { $schema: 'http://json-schema.org/draft-04/schema#', type: 'object' } },
        odd: { schema: { $schema: 'https://example.org/meta', type: 'object' } },
      }),
    );
    const body = await res.json();
    expect(res.status).toBe(400);
    expect(body.code).toBe('invalid_bundle');
    const supported =
      'the supported JSON Schema drafts are draft-07 (the default when "$schema" is absent), draft-06, 2019-09 and 2020-12';
    expect(body.errors).toEqual([
      {
        path: 'forms/old/schema.json',
        message: `declares "$schema": "http://json-schema.org/draft-04/schema#", which is not supported; ${supported}`,
        code: 'unsupported_schema_draft',
      },
      {
        path: 'forms/odd/schema.json',
        message: `declares "$schema": "https://example.org/meta", which is not supported; ${supported}`,
        code: 'unsupported_schema_draft',
      },
    ]);
    const after = (await (await pushBundle(target, admin, zipOf({}))).json()).manifest.version;
    expect(Number(after)).toBe(Number(before) + 1); // nothing was kept of the refused push
  });
});

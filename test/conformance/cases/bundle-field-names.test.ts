import { beforeAll, describe, expect, it } from 'vitest';
import { pushBundle, zipOf } from '../src/bundles.ts';
import { useTarget } from '../src/harness.ts';
import { adminToken, call } from '../src/http.ts';

/**
 * Field names are the form author's to choose: names every JavaScript object inherits
 * (`constructor`, `toString`, `valueOf`, `__proto__`) are fields like any other in the bundle
 * diff and the core-field rules.
 */
const target = useTarget();

let admin: string;
beforeAll(async () => {
  admin = await adminToken(target);
});

async function pushForm(properties: Record<string, unknown>, activate = false): Promise<string> {
  const res = await pushBundle(target, admin, zipOf({ visit: { schema: { type: 'object', properties } } }), {
    query: activate ? '?activate=true' : '',
  });
  const body = await res.json();
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body.manifest.version;
}

describe('field names that objects inherit', () => {
  it('GET /app-bundle/changes lists them as added and removed like any other field', async () => {
    const older = await pushForm({ name: { type: 'string' }, toString: { type: 'string' } });
    const newer = await pushForm({
      name: { type: 'string' },
      constructor: { type: 'string' },
      valueOf: { type: 'number' },
      ['__proto__']: { type: 'boolean' },
    });
    const res = await call(target, 'GET', `/app-bundle/changes?current=${newer}&target=${older}`, {
      token: admin,
    });
    expect(res.status).toBe(200);
    expect(res.body.modified_forms).toEqual([
      {
        form: 'visit',
        schema_changed: true,
        ui_changed: false,
        core_changed: false,
        added_fields: [
          { field: '__proto__', type: 'boolean' },
          { field: 'constructor', type: 'string' },
          { field: 'valueOf', type: 'number' },
        ],
        removed_fields: [{ field: 'toString', type: 'string' }],
      },
    ]);
  });

  it('a core field named constructor cannot be removed from the active form (and is named as removed)', async () => {
    await pushForm({ constructor: { type: 'string', 'x-core': true }, toString: { type: 'string' } }, true);
    const res = await pushBundle(
      target,
      admin,
      zipOf({ visit: { schema: { type: 'object', properties: { toString: { type: 'string' } } } } }),
    );
    const body = await res.json();
    expect(res.status).toBe(400);
    expect(body.errors).toEqual([
      {
        path: 'forms/visit/schema.json',
        message: 'core field "constructor" may not be removed',
        code: 'core_field_changed',
      },
    ]);
  });
});

import { buildZip } from '@synk/test-support/zip';
import { beforeAll, describe, expect, it } from 'vitest';
import { bundleEntries, householdSchema, pushBundle, zipOf } from '../src/bundles.ts';
import { useTarget } from '../src/harness.ts';
import { adminToken, call } from '../src/http.ts';

/**
 * Leaving a form out of a new bundle removes its core fields with it: records already collected
 * with them would lose the definition of their identity, so it is refused like removing one field.
 */
const target = useTarget();

let admin: string;
beforeAll(async () => {
  admin = await adminToken(target);
});

const clinic = { schema: { type: 'object', properties: { core_clinic_id: { type: 'string' } } } };
const survey = { schema: { type: 'object', properties: { answer: { type: 'string' } } } };

describe('removing a form of the active version', () => {
  it('with core fields → 400 naming the form and each core field; without core fields → allowed', async () => {
    const first = await pushBundle(
      target,
      admin,
      zipOf({ household: { schema: householdSchema() }, clinic, survey }),
      {
        activate: true,
      },
    );
    expect(first.status).toBe(200);
    const before = (await call(target, 'GET', '/app-bundle/versions', { token: admin })).body;

    const dropped = await pushBundle(target, admin, zipOf({ survey }));
    const body = await dropped.json();
    expect(dropped.status, JSON.stringify(body)).toBe(400);
    expect(body.code).toBe('invalid_bundle');
    expect(body.errors).toEqual([
      {
        path: 'forms/clinic/schema.json',
        message:
          'core field "core_clinic_id" may not be removed (by removing form "clinic", which has core fields in the active version)',
        code: 'core_field_changed',
      },
      {
        path: 'forms/household/schema.json',
        message:
          'core field "core_household_id" may not be removed (by removing form "household", which has core fields in the active version)',
        code: 'core_field_changed',
      },
      {
        path: 'forms/household/schema.json',
        message:
          'core field "head_name" may not be removed (by removing form "household", which has core fields in the active version)',
        code: 'core_field_changed',
      },
    ]);
    expect((await call(target, 'GET', '/app-bundle/versions', { token: admin })).body).toEqual(before);

    // Renamed (only the case differs): the old form is removed all the same.
    const renamed = await pushBundle(
      target,
      admin,
      zipOf({ Clinic: clinic, household: { schema: householdSchema() } }),
    );
    expect(renamed.status).toBe(400);
    expect((await renamed.json()).errors).toEqual([
      expect.objectContaining({ path: 'forms/clinic/schema.json', code: 'core_field_changed' }),
    ]);

    // A form whose files are there but broken is not taken for removed: only its own problem is listed.
    const broken = await pushBundle(
      target,
      admin,
      buildZip([
        ...bundleEntries({ household: { schema: householdSchema() } }),
        { name: 'forms/clinic/schema.json', data: '{"type": "object", "properties": {' },
        { name: 'forms/clinic/ui.json', data: '{}' },
      ]),
    );
    expect(broken.status).toBe(400);
    expect((await broken.json()).errors).toEqual([
      expect.objectContaining({ path: 'forms/clinic/schema.json', code: 'invalid_json' }),
    ]);

    const withoutSurvey = await pushBundle(
      target,
      admin,
      zipOf({ household: { schema: householdSchema() }, clinic }),
    );
    expect(withoutSurvey.status).toBe(200);
  });
});

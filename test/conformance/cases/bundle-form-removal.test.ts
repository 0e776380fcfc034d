import { buildZip } from '@synk/test-support/zip';
import { beforeAll, describe, expect, it } from 'vitest';
import { bundleEntries, householdSchema, pushBundle, zipOf } from '../src/bundles.ts';
import { useTarget } from '../src/harness.ts';
import { adminToken, call, send } from '../src/http.ts';

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
          'core field "core_clinic_id" may not be removed (by removing form "clinic", which has core fields in the active version; once its records are migrated to another form, push with retire_forms=true to retire it)',
        code: 'core_field_changed',
      },
      {
        path: 'forms/household/schema.json',
        message:
          'core field "core_household_id" may not be removed (by removing form "household", which has core fields in the active version; once its records are migrated to another form, push with retire_forms=true to retire it)',
        code: 'core_field_changed',
      },
      {
        path: 'forms/household/schema.json',
        message:
          'core field "head_name" may not be removed (by removing form "household", which has core fields in the active version; once its records are migrated to another form, push with retire_forms=true to retire it)',
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

  it('with retire_forms=true (query or form field) → allowed: a form whose records were migrated goes', async () => {
    const household = { schema: householdSchema() };
    expect((await pushBundle(target, admin, zipOf({ household, clinic }), { activate: true })).status).toBe(
      200,
    );
    const retired = await pushBundle(target, admin, zipOf({ household }), {
      query: '?retire_forms=true&activate=true',
    });
    expect(retired.status, await retired.clone().text()).toBe(200);
    const forms = (await retired.json()).manifest.files.map((f: { path: string }) => f.path);
    expect(forms.filter((p: string) => p.startsWith('forms/'))).toEqual([
      'forms/household/schema.json',
      'forms/household/ui.json',
    ]);
    // As a form field, as `activate` may be sent.
    const back = await pushBundle(target, admin, zipOf({ household, clinic }), { activate: true });
    expect(back.status).toBe(200);
    const form = new FormData();
    form.append(
      'bundle',
      new Blob([new Uint8Array(zipOf({ household }))], { type: 'application/zip' }),
      'b.zip',
    );
    form.append('retire_forms', 'true');
    const viaField = await send(target, '/app-bundle/push', {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}` },
      body: form,
    });
    expect(viaField.status).toBe(200);
  });
});

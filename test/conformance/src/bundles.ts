import { buildZip, type ZipInput } from '@synk/test-support/zip';
import type { Target } from './harness.ts';
import { send } from './http.ts';

export interface FormFiles {
  schema: unknown;
  ui?: unknown;
}

/** A valid bundle: app/index.html plus the given forms (ui defaults to a simple layout). */
export function bundleEntries(forms: Record<string, FormFiles>, extra: ZipInput[] = []): ZipInput[] {
  return [
    { name: 'app/index.html', data: '<!doctype html><title>field app</title>' },
    { name: 'app/js/main.js', data: 'console.log("hi")' },
    ...Object.entries(forms).flatMap(([form, files]) => [
      { name: `forms/${form}/schema.json`, data: JSON.stringify(files.schema) },
      {
        name: `forms/${form}/ui.json`,
        data: JSON.stringify(files.ui ?? { type: 'VerticalLayout', elements: [] }),
      },
    ]),
    ...extra,
  ];
}

export function pushBundle(
  target: Target,
  token: string,
  zip: Buffer,
  options: { activate?: boolean; field?: string; query?: string } = {},
) {
  const form = new FormData();
  form.append(
    options.field ?? 'bundle',
    new Blob([new Uint8Array(zip)], { type: 'application/zip' }),
    'bundle.zip',
  );
  if (options.activate) form.append('activate', 'true');
  return send(target, `/app-bundle/push${options.query ?? ''}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    body: form,
  });
}

export const zipOf = (forms: Record<string, FormFiles>, extra: ZipInput[] = []) =>
  buildZip(bundleEntries(forms, extra));

export const householdSchema = (extraProps: Record<string, unknown> = {}) => ({
  type: 'object',
  properties: {
    core_household_id: { type: 'string' },
    head_name: { type: 'string', 'x-core': true },
    members: { type: 'integer', minimum: 0 },
    notes: { type: 'string' },
    ...extraProps,
  },
  required: ['core_household_id'],
});

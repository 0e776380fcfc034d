import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  checkLayout,
  checkRenderers,
  checkSchemaCompiles,
  coreFields,
  createSchemaCompiler,
  type ProblemItem,
  parseJsonObject,
  rendererReferences,
  unsafeNameProblem,
} from '@synk/bundle-rules';
import { parseJson } from '@synk/json';
import { ApiError, type SyncClient } from '@synk/sdk/node';
import type { Command } from 'commander';
import { context, ok, output, problemOf, table } from '../cli.ts';

async function activeForms(client: SyncClient): Promise<string[]> {
  const manifest = ok(await client.api.GET('/app-bundle/manifest'));
  return manifest.files
    .map((f) => /^forms\/([^/]+)\/schema\.json$/.exec(f.path)?.[1])
    .filter((f): f is string => !!f);
}

async function bundleJson(client: SyncClient, file: string): Promise<unknown> {
  const res = await client.api.GET('/app-bundle/download/{path}', {
    params: { path: { path: file } },
    parseAs: 'text',
  });
  if (!res.response.ok) throw new ApiError(res.response.status, problemOf(res.error));
  return parseJson(res.data as unknown as string);
}

export function registerForms(program: Command): void {
  const forms = program.command('forms').description('the forms of the active app bundle');

  forms
    .command('list')
    .description('list the forms of the active app bundle')
    .action(async () => {
      const { client } = await context();
      const names = await activeForms(client);
      output(names, () => names.join('\n') || 'The active bundle has no forms');
    });
  forms
    .command('show <form>')
    .description('show a form’s fields (type, core) and, with --json, its schema and ui')
    .action(async (form: string) => {
      const { client } = await context();
      const schema = (await bundleJson(client, `forms/${form}/schema.json`)) as Record<string, unknown>;
      const ui = await bundleJson(client, `forms/${form}/ui.json`);
      const core = [...coreFields(schema).keys()];
      output({ form, schema, ui, coreFields: core }, () => {
        const properties = (schema.properties ?? {}) as Record<string, { type?: unknown }>;
        const rows = Object.entries(properties).map(([field, def]) => ({
          field,
          type: String(def?.type ?? ''),
          core: core.includes(field) ? 'core' : '',
        }));
        return `${form}\n${table(rows, ['field', 'type', 'core'])}`;
      });
    });
  forms
    .command('validate <path>')
    .description(
      'check a bundle folder (or one schema.json) with the rules the server applies; lists every problem',
    )
    .action(async (target: string) => {
      const errors: ProblemItem[] = [];
      const info = await stat(target);
      if (info.isDirectory()) {
        // Folders as `name/`, as a ZIP of the folder lists them: the layout rules cover both.
        const entries = await readdir(target, { recursive: true, withFileTypes: true });
        const relative = (e: (typeof entries)[number]) =>
          path.relative(target, path.join(e.parentPath, e.name)).split(path.sep).join('/');
        const names = entries
          .filter((e) => e.isFile() || e.isDirectory())
          .map((e) => relative(e) + (e.isDirectory() ? '/' : ''));
        for (const name of names) {
          const problem = unsafeNameProblem(name);
          if (problem) errors.push({ path: name, message: `entry name ${problem}` });
        }
        for (const link of entries.filter((e) => e.isSymbolicLink()))
          errors.push({ path: relative(link), message: 'symbolic links are not allowed' });
        const layout = checkLayout(names, errors);
        const compiler = createSchemaCompiler();
        for (const files of layout.forms.values()) {
          if (files.schema) {
            const schema = parseJsonObject(
              files.schema,
              await readFile(path.join(target, files.schema), 'utf8'),
              errors,
            );
            if (schema) {
              checkSchemaCompiles(compiler, files.schema, schema, errors);
              checkRenderers(files.schema, rendererReferences('schema', schema), layout.renderers, errors);
            }
          }
          if (files.ui) {
            const ui = parseJsonObject(files.ui, await readFile(path.join(target, files.ui), 'utf8'), errors);
            if (ui) checkRenderers(files.ui, rendererReferences('ui', ui), layout.renderers, errors);
          }
        }
      } else {
        const schema = parseJsonObject(target, await readFile(target, 'utf8'), errors);
        if (schema) {
          checkSchemaCompiles(createSchemaCompiler(), target, schema, errors);
          checkRenderers(target, rendererReferences('schema', schema), new Set(), errors);
        }
      }
      output({ valid: errors.length === 0, errors }, () =>
        errors.length === 0
          ? `${target}: valid`
          : `${target}: ${errors.length} problem(s)\n${errors.map((e) => `  - ${e.path ? `${e.path}: ` : ''}${e.message}`).join('\n')}`,
      );
      if (errors.length > 0) process.exitCode = 1;
    });
}

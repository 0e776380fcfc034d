import path from 'node:path';
import type { components } from '@synk/sdk/node';
import type { Command } from 'commander';
import { context, ok, output, table, warn } from '../cli.ts';
import { destinationPath, STDOUT, saveResponse, uploadFile } from '../transfer.ts';

export function registerAppBundle(program: Command): void {
  const bundle = program.command('app-bundle').description('app bundles: forms and the field app');
  bundle
    .command('upload <zip>')
    .description('push a new app bundle version (a ZIP); it becomes active only with --activate (admin)')
    .option('--activate', 'make it the active version right away')
    .option(
      '--retire-forms',
      'let forms of the active version that the bundle leaves out go with their core fields (once their records are migrated to a new form)',
    )
    .option(
      '--version <version>',
      'the version you expect (the Go CLI’s option): the server numbers versions itself (0001, 0002, …) and a warning says when it gave another',
    )
    .action(async (zip: string, options: { activate?: boolean; retireForms?: boolean; version?: string }) => {
      const { client, baseUrl } = await context();
      const query = new URLSearchParams({
        ...(options.activate ? { activate: 'true' } : {}),
        ...(options.retireForms ? { retire_forms: 'true' } : {}),
      }).toString();
      const url = `${baseUrl}/app-bundle/push${query ? `?${query}` : ''}`;
      const result = await uploadFile<components['schemas']['AppBundlePushResponse']>(client, 'POST', url, {
        field: 'bundle',
        file: zip,
        filename: path.basename(zip),
        contentType: 'application/zip',
      });
      output(
        result,
        `${result.message}: version ${result.manifest.version} (${result.manifest.files.length} files)${options.activate ? ', active' : ''}`,
      );
      // Scripts written for the Go CLI (and its documentation) pass a version of their own; the
      // API has no way to ask for one. Refusing them would stop those scripts for nothing, and
      // saying nothing would let them go on to switch to a version that does not exist.
      if (options.version !== undefined && options.version !== result.manifest.version)
        warn(
          `the server numbers versions itself: this bundle is version ${result.manifest.version}, not ${options.version}`,
        );
    });
  bundle
    .command('versions')
    .description('list the versions, newest first; * marks the active one')
    .action(async () => {
      const { client } = await context();
      const versions = ok(await client.api.GET('/app-bundle/versions'));
      output(
        versions,
        () =>
          versions.versions.map((v) => `${v === versions.current ? '*' : ' '} ${v}`).join('\n') ||
          'No versions yet',
      );
    });
  bundle
    .command('current')
    .description('print the active version')
    .action(async () => {
      const { client } = await context();
      const versions = ok(await client.api.GET('/app-bundle/versions'));
      output({ current: versions.current ?? null }, versions.current ?? 'No active version');
    });
  bundle
    .command('switch <version>')
    .description('make a version (e.g. 0002) the active one (admin)')
    .action(async (version: string) => {
      const { client } = await context();
      output(
        ok(await client.api.POST('/app-bundle/switch/{version}', { params: { path: { version } } })),
        `Switched to app bundle version ${version}`,
      );
    });
  bundle
    .command('manifest')
    .description('list the files of the active version, with its hash')
    .option('--preview', 'the latest version instead of the active one')
    .action(async (options: { preview?: boolean }) => {
      const { client } = await context();
      const manifest = ok(
        await client.api.GET('/app-bundle/manifest', {
          params: { query: options.preview ? { preview: true } : {} },
        }),
      );
      output(
        manifest,
        () =>
          `version ${manifest.version}, hash ${manifest.hash}\n${table(manifest.files, ['path', 'size', 'mimeType'])}`,
      );
    });
  bundle
    .command('download')
    .description('download the active version (or --version) as a ZIP, or one --file of it')
    .option('--version <version>', 'a version other than the active one')
    .option('--file <path>', 'one file of the bundle instead of the whole ZIP')
    .option(
      '-o, --output <file>',
      'where to write it: a file, a directory (the default name inside it) or - for standard output (default: app-bundle-<version>.zip, or the file’s name)',
    )
    .action(async (options: { version?: string; file?: string; output?: string }) => {
      const { client } = await context();
      const res = options.file
        ? await client.api.GET('/app-bundle/download/{path}', {
            params: { path: { path: options.file } },
            parseAs: 'stream',
          })
        : await client.api.GET('/app-bundle/download-zip', {
            params: { query: options.version ? { version: options.version } : {} },
            parseAs: 'stream',
          });
      const name = options.file
        ? path.basename(options.file)
        : `app-bundle-${options.version ?? 'active'}.zip`;
      const target = await destinationPath(options.output ?? name, name);
      const bytes = await saveResponse(res, target);
      if (target !== STDOUT) output({ file: target, bytes }, `Wrote ${target} (${bytes} bytes)`);
    });
  bundle
    .command('diff <from> <to>')
    .description('what changed from one version to a later one (diff 0001 0002), as git diff reads')
    .action(async (from: string, to: string) => {
      const { client } = await context();
      // The server's `changes` describes `current` relative to `target`.
      const changes = ok(
        await client.api.GET('/app-bundle/changes', { params: { query: { current: to, target: from } } }),
      );
      output(changes, () => {
        const rows = [
          ...changes.new_forms.map((f) => ({ form: f.form, change: 'new form', fields: '' })),
          ...changes.removed_forms.map((f) => ({ form: f.form, change: 'removed form', fields: '' })),
          ...changes.modified_forms.map((f) => ({
            form: f.form,
            change: [f.schema_changed && 'schema', f.ui_changed && 'ui', f.core_changed && 'CORE']
              .filter(Boolean)
              .join('+'),
            fields: [
              ...f.added_fields.map((x) => `+${x.field}:${x.type}`),
              ...f.removed_fields.map((x) => `-${x.field}:${x.type}`),
            ].join(' '),
          })),
        ];
        return rows.length ? table(rows, ['form', 'change', 'fields']) : `No changes from ${from} to ${to}`;
      });
    });
}

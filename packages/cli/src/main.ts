import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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
import {
  ApiError,
  createClient,
  FileStorage,
  NetworkError,
  type Problem,
  type SyncClient,
} from '@synk/sdk/node';
import cliProgress from 'cli-progress';
import { Command, Option } from 'commander';
import { type CliConfig, profileStateDir, readConfig, writeConfig } from './config.ts';

interface GlobalOptions {
  server?: string;
  profile?: string;
  json?: boolean;
}

class CliError extends Error {}

const { SingleBar, Presets } = cliProgress;

const program = new Command('synk')
  .description('Administer a synk (Synkronus 1.0.3 compatible) sync server')
  .version('0.1.0')
  .addOption(new Option('--server <url>', 'server URL (overrides the profile)').env('SYNK_SERVER'))
  .option('--profile <name>', 'configuration profile to use')
  .option('--json', 'print machine-readable JSON')
  .showHelpAfterError();

function globals(): GlobalOptions {
  return program.opts<GlobalOptions>();
}

async function context() {
  const config = await readConfig();
  const profileName = globals().profile ?? config.current;
  const profile = config.profiles[profileName];
  const server = globals().server ?? profile?.server;
  if (!server)
    throw new CliError(`No server configured: run "synk config init --server <url>" or pass --server`);
  const client = createClient({
    baseUrl: server.replace(/\/+$/, ''),
    storage: new FileStorage(profileStateDir(profileName)),
    retry: { retries: 2 },
  });
  return { config, profileName, profile, server, client };
}

/** Prints `value` as JSON with --json, otherwise as the given human text. */
function output(value: unknown, human?: string | (() => string)): void {
  if (globals().json || human === undefined) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else process.stdout.write(`${typeof human === 'function' ? human() : human}\n`);
}

/** Unwraps an openapi-fetch result, turning problem details into a readable error. */
function ok<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.data !== undefined) return result.data;
  throw new ApiError(result.response.status, result.error as Problem | undefined);
}

function table(rows: Record<string, unknown>[], columns: string[]): string {
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [
    line(columns),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((r) => line(columns.map((c) => String(r[c] ?? '')))),
  ].join('\n');
}

/** Streams a download to a file, with a progress bar on an interactive terminal. */
async function saveResponse(response: Response, file: string): Promise<number> {
  if (!response.ok || !response.body) {
    const problem = (await response.json().catch(() => undefined)) as Problem | undefined;
    throw new ApiError(response.status, problem);
  }
  const total = Number(response.headers.get('content-length') ?? 0);
  const bar =
    process.stderr.isTTY && !globals().json
      ? new SingleBar(
          { format: `${path.basename(file)} [{bar}] {value}/{total} bytes`, stream: process.stderr },
          Presets.shades_classic,
        )
      : undefined;
  bar?.start(total || 1, 0);
  let bytes = 0;
  const counting = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream).on(
    'data',
    (chunk: Buffer) => {
      bytes += chunk.length;
      if (bar) {
        if (!total) bar.setTotal(bytes);
        bar.update(bytes);
      }
    },
  );
  try {
    await pipeline(counting, createWriteStream(file));
  } finally {
    bar?.stop();
  }
  return bytes;
}

/**
 * Streams a file as the one part of a multipart body, with a progress bar on an interactive
 * terminal (bytes are counted as the network takes them).
 */
async function uploadFile(
  client: SyncClient,
  method: 'PUT' | 'POST',
  url: string,
  field: string,
  file: string,
  name: string,
  contentType: string,
) {
  const size = (await stat(file)).size;
  const boundary = `synk-${crypto.randomUUID()}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${name.replaceAll('"', '')}"\r\nContent-Type: ${contentType}\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const bar =
    process.stderr.isTTY && !globals().json
      ? new SingleBar(
          { format: `${name} [{bar}] {value}/{total} bytes`, stream: process.stderr },
          Presets.shades_classic,
        )
      : undefined;
  bar?.start(size || 1, 0);
  let sent = 0;
  async function* parts() {
    yield head;
    for await (const chunk of createReadStream(file)) {
      sent += (chunk as Buffer).length;
      bar?.update(sent);
      yield chunk as Buffer;
    }
    yield tail;
  }
  try {
    const response = await client.fetch(
      new Request(url, {
        method,
        body: Readable.toWeb(Readable.from(parts())) as unknown as BodyInit,
        headers: {
          'content-type': `multipart/form-data; boundary=${boundary}`,
          'content-length': String(head.length + size + tail.length),
        },
        duplex: 'half',
      } as RequestInit),
    );
    const body = (await response.json()) as unknown;
    if (!response.ok) throw new ApiError(response.status, body as Problem);
    return body;
  } finally {
    bar?.stop();
  }
}

// ---------------------------------------------------------------- configuration
const configCommand = program.command('config').description('manage profiles (server URL, username)');
configCommand
  .command('init')
  .description('create or update a profile (--server, --profile) and make it current')
  .option('--username <name>', 'default username for login')
  .action(async (options: { username?: string }) => {
    const server = globals().server;
    if (!server) throw new CliError('config init needs --server <url>');
    const config = await readConfig();
    const name = globals().profile ?? config.current ?? 'default';
    config.profiles[name] = { server, ...(options.username ? { username: options.username } : {}) };
    config.current = name;
    await writeConfig(config);
    output({ profile: name, ...config.profiles[name] }, `Profile "${name}" now points at ${server}`);
  });
configCommand
  .command('view')
  .description('show the configuration')
  .action(async () => {
    const config = await readConfig();
    output(
      config,
      () =>
        Object.entries(config.profiles)
          .map(
            ([name, p]) =>
              `${name === config.current ? '*' : ' '} ${name}\t${p.server}${p.username ? `\t${p.username}` : ''}`,
          )
          .join('\n') || 'No profiles yet: synk config init --server <url>',
    );
  });
configCommand
  .command('set <key> <value>')
  .description('set server or username of the current profile')
  .action(async (key: string, value: string) => {
    if (key !== 'server' && key !== 'username') throw new CliError('Only "server" and "username" can be set');
    const config: CliConfig = await readConfig();
    const name = globals().profile ?? config.current;
    config.profiles[name] = { ...(config.profiles[name] ?? { server: '' }), [key]: value };
    await writeConfig(config);
    output(config.profiles[name], `${name}.${key} = ${value}`);
  });
configCommand
  .command('use <profile>')
  .description('make a profile current')
  .action(async (name: string) => {
    const config = await readConfig();
    if (!config.profiles[name]) throw new CliError(`No profile "${name}"`);
    config.current = name;
    await writeConfig(config);
    output({ current: name }, `Now using profile "${name}"`);
  });

// ---------------------------------------------------------------- session
program
  .command('login')
  .description('log in and keep the session for this profile')
  .option('-u, --username <name>', 'username (default: the profile’s)')
  .addOption(new Option('-p, --password <password>', 'password').env('SYNK_PASSWORD'))
  .action(async (options: { username?: string; password?: string }) => {
    const { client, profile } = await context();
    const username = options.username ?? profile?.username;
    if (!username || !options.password)
      throw new CliError('login needs --username and --password (or SYNK_PASSWORD)');
    const tokens = await client.auth.login(username, options.password);
    output(
      { username, expiresAt: tokens.expiresAt },
      `Logged in as ${username} (token valid until ${new Date(tokens.expiresAt * 1000).toISOString()})`,
    );
  });
program
  .command('logout')
  .description('end this profile’s session')
  .action(async () => {
    const { client } = await context();
    await client.auth.logout();
    output({ loggedOut: true }, 'Logged out');
  });
program
  .command('status')
  .description('server, version and who you are logged in as')
  .action(async () => {
    const { client, server } = await context();
    const health = ok(await client.api.GET('/health'));
    const tokens = await client.auth.tokens();
    const claims = tokens
      ? (JSON.parse(Buffer.from(tokens.token.split('.')[1]!, 'base64url').toString()) as {
          username: string;
          role: string;
        })
      : undefined;
    const status = {
      server,
      health: health.status,
      version: health.version,
      user: claims?.username ?? null,
      role: claims?.role ?? null,
    };
    output(
      status,
      `${server}: ${health.status} (server ${health.version}); ${claims ? `logged in as ${claims.username} (${claims.role})` : 'not logged in'}`,
    );
  });
program
  .command('health')
  .description('server health')
  .action(async () => {
    const { client } = await context();
    const res = await client.api.GET('/health');
    const health = res.data ?? ((await res.response.json().catch(() => ({}))) as object);
    output(health, () => JSON.stringify(health, null, 2));
    if (res.response.status !== 200) process.exitCode = 1;
  });
program
  .command('version')
  .description('server version and system information')
  .action(async () => {
    const { client } = await context();
    const version = ok(await client.api.GET('/version'));
    output(
      version,
      `server ${version.server.version} on ${version.database.type} ${version.database.version}, ${version.build.runtime}`,
    );
  });

// ---------------------------------------------------------------- users
const users = program.command('users').description('user administration (admin)');
users.command('list').action(async () => {
  const { client } = await context();
  const list = ok(await client.api.GET('/users'));
  output(list, () => table(list, ['username', 'role', 'createdAt']));
});
users
  .command('create <username>')
  .requiredOption('--role <role>', 'read-only, read-write or admin')
  .addOption(
    new Option('--password <password>', 'initial password').env('SYNK_NEW_PASSWORD').makeOptionMandatory(),
  )
  .action(
    async (username: string, options: { role: 'read-only' | 'read-write' | 'admin'; password: string }) => {
      const { client } = await context();
      const user = ok(
        await client.api.POST('/users/create', {
          body: { username, password: options.password, role: options.role },
        }),
      );
      output(user, `Created ${user.username} (${user.role})`);
    },
  );
users.command('delete <username>').action(async (username: string) => {
  const { client } = await context();
  output(
    ok(await client.api.DELETE('/users/{username}', { params: { path: { username } } })),
    `Deleted ${username}`,
  );
});
users
  .command('reset-password <username>')
  .addOption(
    new Option('--password <password>', 'the new password').env('SYNK_NEW_PASSWORD').makeOptionMandatory(),
  )
  .action(async (username: string, options: { password: string }) => {
    const { client } = await context();
    output(
      ok(
        await client.api.POST('/users/reset-password', { body: { username, newPassword: options.password } }),
      ),
      `Password of ${username} reset`,
    );
  });
users
  .command('change-password')
  .requiredOption('--current <password>', 'your current password')
  .requiredOption('--new <password>', 'the new password')
  .action(async (options: { current: string; new: string }) => {
    const { client } = await context();
    output(
      ok(
        await client.api.POST('/users/change-password', {
          body: { currentPassword: options.current, newPassword: options.new },
        }),
      ),
      'Password changed; log in again',
    );
  });
users
  .command('set-role <username> <role>')
  .action(async (username: string, role: 'read-only' | 'read-write' | 'admin') => {
    const { client } = await context();
    const user = ok(
      await client.api.PATCH('/users/{username}', { params: { path: { username } }, body: { role } }),
    );
    output(user, `${user.username} is now ${user.role}`);
  });

// ---------------------------------------------------------------- app bundles
const bundle = program.command('app-bundle').description('app bundles: forms and the field app');
bundle
  .command('upload <zip>')
  .option('--activate', 'make it the active version right away')
  .action(async (zip: string, options: { activate?: boolean }) => {
    const { client, server } = await context();
    const url = `${server.replace(/\/+$/, '')}/app-bundle/push${options.activate ? '?activate=true' : ''}`;
    const result = (await uploadFile(
      client,
      'POST',
      url,
      'bundle',
      zip,
      path.basename(zip),
      'application/zip',
    )) as {
      message: string;
      manifest: { version: string; files: unknown[] };
    };
    output(
      result,
      `${result.message}: version ${result.manifest.version} (${result.manifest.files.length} files)${options.activate ? ', active' : ''}`,
    );
  });
bundle.command('versions').action(async () => {
  const { client } = await context();
  const versions = ok(await client.api.GET('/app-bundle/versions'));
  output(
    versions,
    () =>
      versions.versions.map((v) => `${v === versions.current ? '*' : ' '} ${v}`).join('\n') ||
      'No versions yet',
  );
});
bundle.command('current').action(async () => {
  const { client } = await context();
  const versions = ok(await client.api.GET('/app-bundle/versions'));
  output({ current: versions.current ?? null }, versions.current ?? 'No active version');
});
bundle.command('switch <version>').action(async (version: string) => {
  const { client } = await context();
  output(
    ok(await client.api.POST('/app-bundle/switch/{version}', { params: { path: { version } } })),
    `Switched to app bundle version ${version}`,
  );
});
bundle
  .command('manifest')
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
  .option('--version <version>', 'a version other than the active one')
  .option('--file <path>', 'one file of the bundle instead of the whole ZIP')
  .option('-o, --output <file>', 'where to write it')
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
    const target =
      options.output ??
      (options.file ? path.basename(options.file) : `app-bundle-${options.version ?? 'active'}.zip`);
    const bytes = await saveResponse(res.response, target);
    output({ file: target, bytes }, `Wrote ${target} (${bytes} bytes)`);
  });
bundle
  .command('diff <a> <b>')
  .description('what changed from version b to version a')
  .action(async (a: string, b: string) => {
    const { client } = await context();
    const changes = ok(
      await client.api.GET('/app-bundle/changes', { params: { query: { current: a, target: b } } }),
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
      return rows.length ? table(rows, ['form', 'change', 'fields']) : `No changes between ${b} and ${a}`;
    });
  });

// ---------------------------------------------------------------- forms
const forms = program.command('forms').description('the forms of the active app bundle');

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
  if (!res.response.ok) throw new ApiError(res.response.status, undefined);
  return JSON.parse(res.data as unknown as string);
}

forms.command('list').action(async () => {
  const { client } = await context();
  const names = await activeForms(client);
  output(names, () => names.join('\n') || 'The active bundle has no forms');
});
forms.command('show <form>').action(async (form: string) => {
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
      const names = (await readdir(target, { recursive: true, withFileTypes: true }))
        .filter((e) => e.isFile())
        .map((e) => path.relative(target, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
      for (const name of names) {
        const problem = unsafeNameProblem(name);
        if (problem) errors.push({ path: name, message: `entry name ${problem}` });
      }
      const layout = checkLayout(names, errors);
      const ajv = createSchemaCompiler();
      for (const files of layout.forms.values()) {
        if (files.schema) {
          const schema = parseJsonObject(
            files.schema,
            await readFile(path.join(target, files.schema), 'utf8'),
            errors,
          );
          if (schema) {
            checkSchemaCompiles(ajv, files.schema, schema, errors);
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

// ---------------------------------------------------------------- records
const sync = program.command('sync').description('records');
sync
  .command('pull <out>')
  .description('pull every record (all pages) into a JSON file')
  .option('--schema-types <types>', 'comma-separated form types')
  .option('--since <version>', 'only changes after this version', '0')
  .action(async (out: string, options: { schemaTypes?: string; since: string }) => {
    const { client } = await context();
    const schemaTypes = options.schemaTypes?.split(',').filter(Boolean) ?? [];
    const records = await client.pullAll({
      since: Number(options.since),
      ...(schemaTypes.length ? { schemaTypes } : {}),
    });
    await writeFile(out, `${JSON.stringify(records, null, 2)}\n`);
    output({ file: out, records: records.length }, `Wrote ${records.length} records to ${out}`);
  });
sync
  .command('push <file>')
  .description('push the records of a JSON file (an array, or {records: [...]})')
  .action(async (file: string) => {
    const { client } = await context();
    const parsed = JSON.parse(await readFile(file, 'utf8')) as unknown;
    const list = Array.isArray(parsed) ? parsed : (parsed as { records?: unknown[] }).records;
    if (!Array.isArray(list)) throw new CliError(`${file} holds no array of records`);
    let success = 0;
    const failed: unknown[] = [];
    for (let i = 0; i < list.length; i += 500) {
      const batch = list.slice(i, i + 500);
      const result = ok(
        await client.api.POST('/sync/push', {
          body: { transmission_id: crypto.randomUUID(), client_id: await client.clientId(), records: batch },
        }),
      );
      success += result.success_count;
      failed.push(...result.failed_records.map((f) => ({ ...f, index: f.index + i })));
    }
    output(
      { success_count: success, failed_records: failed },
      `Pushed ${success} records${failed.length ? `, ${failed.length} failed` : ''}`,
    );
    if (failed.length) process.exitCode = 1;
  });

// ---------------------------------------------------------------- exports
const exporter = program.command('export').description('export observations');
for (const format of ['parquet', 'csv'] as const) {
  exporter
    .command(format)
    .description(`a ZIP of ${format} files, one per form type`)
    .argument('<out>', 'the ZIP to write')
    .option('--form-type <type...>', 'only these form types')
    .option('--since <version>', 'only records with a newer version')
    .option('--include-deleted', 'include deleted records')
    .action(
      async (out: string, options: { formType?: string[]; since?: string; includeDeleted?: boolean }) => {
        const { client } = await context();
        const query = {
          ...(options.formType ? { form_type: options.formType } : {}),
          ...(options.since ? { since_version: Number(options.since) } : {}),
          ...(options.includeDeleted ? { include_deleted: true } : {}),
        };
        const res =
          format === 'parquet'
            ? await client.api.GET('/dataexport/parquet', { params: { query }, parseAs: 'stream' })
            : await client.api.GET('/dataexport/csv', { params: { query }, parseAs: 'stream' });
        const bytes = await saveResponse(res.response, out);
        output({ file: out, bytes }, `Wrote ${out} (${bytes} bytes)`);
      },
    );
}

// ---------------------------------------------------------------- attachments
const attachments = program.command('attachments').description('attachments (photos, files)');
attachments
  .command('upload <file>')
  .option('--id <id>', 'attachment id (default: the file name)')
  .action(async (file: string, options: { id?: string }) => {
    const { client, server } = await context();
    const id = options.id ?? path.basename(file);
    const url = `${server.replace(/\/+$/, '')}/attachments/${encodeURIComponent(id)}`;
    const result = (await uploadFile(client, 'PUT', url, 'file', file, id, 'application/octet-stream')) as {
      id: string;
      size: number;
      hash: string;
    };
    output(result, `Uploaded ${result.id} (${result.size} bytes, sha256 ${result.hash})`);
  });
attachments
  .command('download <id>')
  .option('-o, --output <file>', 'where to write it')
  .action(async (id: string, options: { output?: string }) => {
    const { client } = await context();
    const res = await client.api.GET('/attachments/{attachment_id}', {
      params: { path: { attachment_id: id } },
      parseAs: 'stream',
    });
    const target = options.output ?? id;
    const bytes = await saveResponse(res.response, target);
    output({ file: target, bytes }, `Wrote ${target} (${bytes} bytes)`);
  });
attachments.command('exists <id>').action(async (id: string) => {
  const { client } = await context();
  const res = await client.api.HEAD('/attachments/{attachment_id}', {
    params: { path: { attachment_id: id } },
  });
  const exists = res.response.status === 200;
  output({ id, exists }, exists ? `${id} exists` : `${id} does not exist`);
  if (!exists) process.exitCode = 1;
});
attachments
  .command('manifest')
  .option('--since <version>', 'changes after this version', '0')
  .action(async (options: { since: string }) => {
    const { client } = await context();
    const manifest = ok(
      await client.api.POST('/attachments/manifest', {
        body: { client_id: await client.clientId(), since_version: Number(options.since) },
      }),
    );
    output(manifest, () => table(manifest.operations, ['operation', 'attachment_id', 'size', 'version']));
  });

// ---------------------------------------------------------------- completion
program
  .command('completion')
  .description('print a bash completion script: eval "$(synk completion)" (zsh: autoload bashcompinit first)')
  .action(() => {
    const top = program.commands.map((c) => c.name());
    const cases = program.commands
      .filter((c) => c.commands.length > 0)
      .map((c) => `    ${c.name()}) words="${c.commands.map((s) => s.name()).join(' ')}" ;;`)
      .join('\n');
    process.stdout.write(`_synk() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" words
  case "$prev" in
${cases}
    *) words="${top.join(' ')} --server --profile --json --help" ;;
  esac
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}
complete -F _synk synk
`);
  });

function describe(err: unknown): string {
  if (err instanceof ApiError) {
    const p = err.problem;
    const details = p?.errors?.map((e) => `  - ${e.path ? `${e.path}: ` : ''}${e.message}`).join('\n');
    return `Error ${err.status}${p?.code ? ` (${p.code})` : ''}: ${p?.detail ?? err.message}${details ? `\n${details}` : ''}`;
  }
  if (err instanceof NetworkError)
    return `Cannot reach the server: ${(err.cause as Error)?.message ?? err.message}`;
  if (err instanceof CliError) return `Error: ${err.message}`;
  return `Error: ${(err as Error)?.message ?? String(err)}`;
}

export async function run(argv: string[]): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (globals().json)
      process.stderr.write(
        `${JSON.stringify({ error: describe(err), problem: err instanceof ApiError ? err.problem : undefined })}\n`,
      );
    else process.stderr.write(`${describe(err)}\n`);
    process.exitCode = err instanceof ApiError && err.status === 401 ? 3 : 1;
  }
}

export type { SyncClient };

await run(process.argv);

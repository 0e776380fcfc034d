import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FileStorage } from '@synk/sdk/node';
import { startServerProcess } from '@synk/test-support/server-process';
import { buildZip } from '@synk/test-support/zip';
import { decodeJwt } from 'jose';
import { describe, expect, it, vi } from 'vitest';
import { householdSchema, zipOf } from '../src/bundles.ts';
import { type Interception, startRecordingProxy } from '../src/recording-proxy.ts';
import { cliServer, SYNK_BIN } from '../src/synk-cli.ts';

/** The real `synk` binary against a real server process. */
const BIN = SYNK_BIN;
const server = cliServer('cli');
const { work, configDir, synk, synkWith } = server;

const json = async (...args: string[]) => {
  const res = await synk('--json', ...args);
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout);
};

describe('synk CLI', () => {
  it('has --help everywhere and prints a completion script', async () => {
    for (const args of [
      ['--help'],
      ['users', '--help'],
      ['app-bundle', 'upload', '--help'],
      ['export', 'parquet', '--help'],
    ]) {
      const res = await synk(...args);
      expect(res.code).toBe(0);
      expect(res.stdout).toMatch(/Usage: synk/);
    }
    const script = (await synk('completion')).stdout;
    expect(script).toMatch(/complete -F _synk synk/);
    expect(script).toMatch(/app-bundle\) words="upload versions current switch manifest download diff"/);
  });

  it('fails readably without a server', async () => {
    const none = await synk('health');
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/No server configured/);
    const unreachable = await synk('--server', 'http://127.0.0.1:1', 'version');
    expect(unreachable.code).not.toBe(0);
    expect(unreachable.stderr).toMatch(/Cannot reach the server/);
  });

  it('prints the health document of an unhealthy server and exits non-zero', async () => {
    const unhealthy = await startServerProcess({
      DATA_DIR: path.join(work, 'data-unhealthy'),
      NODE_ENV: 'test',
      HEALTH_MIN_FREE_BYTES: String(Number.MAX_SAFE_INTEGER),
    });
    try {
      const res = await synk('--json', '--server', unhealthy.url, 'health');
      expect(res.code).toBe(1);
      expect(JSON.parse(res.stdout)).toMatchObject({
        status: 'error',
        checks: { storage: { status: 'error' } },
      });
    } finally {
      await unhealthy.stop();
    }
  });

  it('configures a profile, refuses a wrong password, logs in, reports status', async () => {
    expect((await json('config', 'init', '--server', server.url, '--username', 'admin')).server).toBe(
      server.url,
    );
    expect((await json('config', 'view')).current).toBe('default');
    const wrong = await synk('login', '--password', 'not-it');
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/Error 401 \(invalid_credentials\)/);
    expect((await json('login', '--password', 'cli-admin-password')).username).toBe('admin');
    expect(await json('status')).toMatchObject({
      health: 'ok',
      user: 'admin',
      role: 'admin',
      session: 'active',
      expiresAt: expect.stringMatching(/^\d{4}-/),
    });
    expect((await json('version')).database.type).toBe('sqlite');
    expect((await json('health')).status).toBe('ok');
  });

  it('administers users', async () => {
    expect(
      await json('users', 'create', 'field-1', '--role', 'read-only', '--password', 'field-password-1'),
    ).toMatchObject({
      username: 'field-1',
      role: 'read-only',
    });
    expect((await json('users', 'list')).map((u: { username: string }) => u.username)).toEqual([
      'admin',
      'field-1',
    ]);
    expect((await json('users', 'set-role', 'field-1', 'read-write')).role).toBe('read-write');
    expect(
      (await json('users', 'reset-password', 'field-1', '--password', 'field-password-2')).message,
    ).toMatch(/reset/);
    const weak = await synk('users', 'create', 'field-2', '--role', 'admin', '--password', 'short');
    expect(weak.code).not.toBe(0);
    expect(weak.stderr).toMatch(/Error 400/);
    expect((await json('users', 'delete', 'field-1')).message).toBe('User deleted successfully');
  });

  it('says once that a read-only user may not push, and lists each record only with --json', async () => {
    await json('users', 'create', 'viewer-1', '--role', 'read-only', '--password', 'viewer-password-1');
    const as = ['--profile', 'viewer', '--server', server.url];
    await json(...as, 'login', '-u', 'viewer-1', '--password', 'viewer-password-1');
    const input = path.join(work, 'viewer.json');
    const records = Array.from({ length: 30 }, (_, i) => ({
      observation_id: `v${i}`,
      form_type: 'household',
      data: { members: i },
    }));
    writeFileSync(input, JSON.stringify(records));
    const human = await synk(...as, 'sync', 'push', input);
    expect(human.code).toBe(1);
    const lines = human.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe('Pushed 0 records, 30 failed');
    expect(lines[1]).toMatch(/^ {2}the server refused the push: .*role/i);
    const listed = await synk('--json', ...as, 'sync', 'push', input);
    expect(listed.code).toBe(1);
    expect(JSON.parse(listed.stdout).failed_records).toHaveLength(30);
    expect(JSON.parse(listed.stdout).refused_batches).toEqual([
      {
        transmission_id: expect.any(String),
        status: 403,
        code: 'forbidden',
        detail: expect.stringMatching(/role/i),
        observation_ids: records.map((r) => r.observation_id),
      },
    ]);
    expect((await json('users', 'delete', 'viewer-1')).message).toBe('User deleted successfully');
  });

  it('runs the app-bundle workflow: upload, versions, switch, manifest, download, diff; rejects a bad bundle', async () => {
    const v1 = path.join(work, 'v1.zip');
    const v2 = path.join(work, 'v2.zip');
    writeFileSync(v1, zipOf({ household: { schema: householdSchema() } }));
    writeFileSync(v2, zipOf({ household: { schema: householdSchema({ roof: { type: 'string' } }) } }));
    expect((await json('app-bundle', 'upload', v1, '--activate')).manifest.version).toBe('0001');
    expect((await json('app-bundle', 'upload', v2)).manifest.version).toBe('0002');
    expect(await json('app-bundle', 'versions')).toEqual({ versions: ['0002', '0001'], current: '0001' });
    expect((await json('app-bundle', 'switch', '0002')).message).toBe('Switched to app bundle version 0002');
    expect((await json('app-bundle', 'current')).current).toBe('0002');
    expect((await json('app-bundle', 'manifest')).version).toBe('0002');
    // Old then new, as the seed's `diff 1.2.2 1.2.3` and git diff read: the field 0002 added is +.
    const diff = await synk('app-bundle', 'diff', '0001', '0002');
    expect(diff.stdout).toMatch(/household\s+schema\s+\+roof:string/);
    const back = await synk('app-bundle', 'diff', '0002', '0001');
    expect(back.stdout).toMatch(/household\s+schema\s+-roof:string/);
    await json('app-bundle', 'download', '--output', path.join(work, 'active.zip'));
    expect(readFileSync(path.join(work, 'active.zip')).subarray(0, 2).toString()).toBe('PK');
    // The command's --version is the bundle's, not a request for synk's own version.
    const older = await json(
      'app-bundle',
      'download',
      '--version',
      '0001',
      '--output',
      path.join(work, 'v1-copy.zip'),
    );
    expect(older).toEqual({ file: path.join(work, 'v1-copy.zip'), bytes: expect.any(Number) });
    expect(readFileSync(path.join(work, 'v1-copy.zip'))).not.toEqual(
      readFileSync(path.join(work, 'active.zip')),
    );
    expect((await synk('--version')).stdout).toBe('0.1.0\n');
    await json(
      'app-bundle',
      'download',
      '--file',
      'app/index.html',
      '--output',
      path.join(work, 'index.html'),
    );
    expect(readFileSync(path.join(work, 'index.html'), 'utf8')).toMatch(/field app/);

    const bad = path.join(work, 'bad.zip');
    writeFileSync(bad, buildZip([{ name: '../../evil', data: 'x' }]));
    const rejected = await synk('app-bundle', 'upload', bad);
    expect(rejected.code).not.toBe(0);
    expect(rejected.stderr).toMatch(/Error 400 \(invalid_bundle\)/);
    expect(rejected.stderr).toMatch(/app\/index.html: is required/);
  });

  it('lists and shows the active forms, and validates bundles locally with the server’s rules', async () => {
    expect(await json('forms', 'list')).toEqual(['household']);
    const shown = await json('forms', 'show', 'household');
    expect(shown.coreFields).toEqual(['core_household_id', 'head_name']);
    expect(shown.schema.properties.roof).toEqual({ type: 'string' });
    // A form the bundle does not have: the server's problem details, not a bare "HTTP 404".
    const missing = await synk('forms', 'show', 'nope');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^Error 404 \(not_found\): .*forms\/nope\/schema\.json/);

    const good = path.join(work, 'bundle-good');
    mkdirSync(path.join(good, 'app'), { recursive: true });
    mkdirSync(path.join(good, 'forms', 'visit'), { recursive: true });
    writeFileSync(path.join(good, 'app', 'index.html'), '<p>ok</p>');
    writeFileSync(
      path.join(good, 'forms', 'visit', 'schema.json'),
      JSON.stringify({ type: 'object', properties: { at: { type: 'string' } } }),
    );
    writeFileSync(path.join(good, 'forms', 'visit', 'ui.json'), '{}');
    expect(await json('forms', 'validate', good)).toEqual({ valid: true, errors: [] });

    const bad = path.join(work, 'bundle-bad');
    mkdirSync(path.join(bad, 'forms', 'visit'), { recursive: true });
    writeFileSync(
      path.join(bad, 'forms', 'visit', 'schema.json'),
      '{"type": "object", "properties": {"s": {"type": "string", "x-renderer": "nope"}}}',
    );
    writeFileSync(path.join(bad, 'README.md'), 'stray');
    const res = await synk('forms', 'validate', bad);
    expect(res.code).not.toBe(0);
    expect(res.stdout).toMatch(/app\/index.html: is required/);
    expect(res.stdout).toMatch(/forms\/visit\/ui.json: is required/);
    expect(res.stdout).toMatch(/unknown renderer "nope"/);
    expect(res.stdout).toMatch(
      /README.md: nothing but app\/, forms\/ and renderers\/ may be at the top level/,
    );
  });

  it('forms validate agrees with the server on JSON Schema drafts, shared $ids, deep JSON and stray folders', async () => {
    const folder = (name: string, forms: Record<string, string>) => {
      const dir = path.join(work, name);
      mkdirSync(path.join(dir, 'app'), { recursive: true });
      writeFileSync(path.join(dir, 'app', 'index.html'), '<p>ok</p>');
      for (const [form, schema] of Object.entries(forms)) {
        mkdirSync(path.join(dir, 'forms', form), { recursive: true });
        writeFileSync(path.join(dir, 'forms', form, 'schema.json'), schema);
        writeFileSync(path.join(dir, 'forms', form, 'ui.json'), '{}');
      }
      return dir;
    };
    const schema = (extra: Record<string, unknown>) => JSON.stringify({ type: 'object', ...extra });
    const good = folder('bundle-drafts', {
      a: schema({
        $id: 'https://example.org/form.json',
        $schema: 'https://json-schema.org/draft/2020-12/schema',
      }),
      b: schema({ $id: 'https://example.org/form.json', $schema: 'http://json-schema.org/draft-06/schema#' }),
      c: schema({ $schema: 'https://json-schema.org/draft/2019-09/schema' }),
    });
    expect(await json('forms', 'validate', good)).toEqual({ valid: true, errors: [] });
    const bad = folder('bundle-draft-04', {
      old: schema({ $schema: 'http://json-schema.org/draft-04/schema#' }),
      deep: `{"type":"object","x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
    });
    mkdirSync(path.join(bad, 'other')); // an empty folder: a ZIP of the folder would list `other/`
    const res = await synk('--json', 'forms', 'validate', bad);
    expect(res.code).toBe(1);
    const { errors } = JSON.parse(res.stdout) as { errors: { path: string; code: string }[] };
    expect(errors.map((e) => `${e.path} ${e.code}`).sort()).toEqual([
      'forms/deep/schema.json too_deep',
      'forms/old/schema.json unsupported_schema_draft',
      'other/ layout',
    ]);
  });

  it('pushes and pulls records, exports them, and handles attachments', async () => {
    const input = path.join(work, 'records.json');
    writeFileSync(
      input,
      JSON.stringify([
        { observation_id: 'c1', form_type: 'household', data: { core_household_id: 'h1', members: 2 } },
        { observation_id: 'c2', form_type: 'household', data: { core_household_id: 'h2', members: 5 } },
      ]),
    );
    expect((await json('sync', 'push', input)).success_count).toBe(2);
    const out = path.join(work, 'pulled.json');
    expect((await json('sync', 'pull', out, '--schema-types', 'household')).records).toBe(2);
    expect(
      JSON.parse(readFileSync(out, 'utf8')).map((r: { observation_id: string }) => r.observation_id),
    ).toEqual(['c1', 'c2']);
    // `-` is standard output (it wrote a file named "-"), with nothing else on it.
    const piped = await synk('--json', 'sync', 'pull', '-', '--schema-types', 'household');
    expect(piped.code, piped.stderr).toBe(0);
    expect(JSON.parse(piped.stdout).map((r: { observation_id: string }) => r.observation_id)).toEqual([
      'c1',
      'c2',
    ]);
    expect(existsSync(path.join(work, '-'))).toBe(false);
    expect(readdirSync(work).filter((f) => f.endsWith('.part'))).toEqual([]);
    // A version is a whole number (`abc` was sent as null).
    for (const bad of [
      ['sync', 'pull', out, '--since', 'abc'],
      ['export', 'csv', out, '--since', '-1'],
    ]) {
      const refused = await synk(...bad);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/--since.*whole number/);
    }

    await json('export', 'parquet', path.join(work, 'export.zip'));
    await json('export', 'csv', path.join(work, 'export-csv.zip'), '--form-type', 'household');
    // Before the file too (a variadic option took it for a form type), repeated or comma-separated.
    const only = path.join(work, 'export-only.zip');
    await json('export', 'csv', '--form-type', 'household', '--form-type', 'nope,other', only);
    expect(readFileSync(only).subarray(0, 2).toString()).toBe('PK');
    expect(readFileSync(path.join(work, 'export.zip')).subarray(0, 2).toString()).toBe('PK');
    expect(existsSync(path.join(work, 'export-csv.zip'))).toBe(true);

    const photo = path.join(work, 'photo.jpg');
    writeFileSync(photo, Buffer.from('not really a jpeg'));
    expect((await json('attachments', 'upload', photo)).id).toBe('photo.jpg');
    expect((await json('attachments', 'exists', 'photo.jpg')).exists).toBe(true);
    expect(await synk('attachments', 'exists', 'nope.jpg')).toEqual({
      code: 1,
      stdout: 'nope.jpg does not exist\n',
      stderr: '',
    });
    // Only a 404 is a no: without a session it is an authentication error (exit 3) …
    const anonymous = await synk(
      '--profile',
      'anonymous',
      '--server',
      server.url,
      'attachments',
      'exists',
      'photo.jpg',
    );
    expect(anonymous).toMatchObject({ code: 3, stdout: '' });
    expect(anonymous.stderr).toMatch(/^Error 401/);
    // … and a gateway's 503 an error too.
    const gateway = await startRecordingProxy(server.url, {
      intercept: (req) => (req.method === 'HEAD' ? { status: 503 } : undefined),
    });
    try {
      await json('--server', gateway.url, 'login', '-u', 'admin', '--password', 'cli-admin-password');
      const unavailable = await synk('--server', gateway.url, 'attachments', 'exists', 'photo.jpg');
      expect(unavailable).toMatchObject({ code: 1, stdout: '' });
      expect(unavailable.stderr).toMatch(/^Error 503/);
    } finally {
      await gateway.close();
    }
    await json('attachments', 'download', 'photo.jpg', '--output', path.join(work, 'copy.jpg'));
    expect(readFileSync(path.join(work, 'copy.jpg'), 'utf8')).toBe('not really a jpeg');
    // `-` is standard output, with nothing else on it (not a file named "-").
    expect(await synk('attachments', 'download', 'photo.jpg', '-o', '-')).toEqual({
      code: 0,
      stdout: 'not really a jpeg',
      stderr: '',
    });
    expect(existsSync(path.join(work, '-'))).toBe(false);
    // A refused download says why, in the server's words.
    const missing = await synk('attachments', 'download', 'nope.jpg', '--output', path.join(work, 'nope'));
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/Error 404 \(not_found\)/);
    writeFileSync(path.join(work, 'second.txt'), 'a second attachment');
    await json('attachments', 'upload', path.join(work, 'second.txt'));
    const all = await json('attachments', 'manifest');
    expect(all.operations.length).toBeGreaterThan(1);
    expect(all.operations.map((o: { attachment_id: string }) => o.attachment_id)).toContain('photo.jpg');
    // --limit pages it: the first operation, and where the rest start.
    const first = await json('attachments', 'manifest', '--limit', '1');
    expect(first).toMatchObject({ operations: [all.operations[0]], has_more: true });
    const human = await synk('attachments', 'manifest', '--limit', '1');
    expect(human.stdout).toMatch(new RegExp(`More operations follow: --since ${first.change_cutoff}\n$`));
    const rest = await json('attachments', 'manifest', '--since', String(first.change_cutoff));
    expect(rest.operations).toEqual(all.operations.slice(1));
    expect((await synk('attachments', 'manifest', '--limit', '5001')).stderr).toMatch(/at most 5000/);
  });

  it('writes a download whole or not at all: one cut, interrupted or killed leaves the old file and no temporary file', async () => {
    const bytes = randomBytes(4 * 1024 * 1024);
    writeFileSync(path.join(work, 'big-upload.bin'), bytes);
    await json('attachments', 'upload', path.join(work, 'big-upload.bin'), '--id', 'big.bin');
    const dir = mkdtempSync(path.join(work, 'downloads-'));
    const target = path.join(dir, 'big.bin');
    writeFileSync(target, 'the old file');
    let how: Interception;
    const proxy = await startRecordingProxy(server.url, {
      intercept: (req) => (req.url === '/attachments/big.bin' ? how : undefined),
    });
    try {
      const at = ['--server', proxy.url];
      await json(...at, 'login', '-u', 'admin', '--password', 'cli-admin-password');
      const download = [...at, 'attachments', 'download', 'big.bin', '-o', target];
      how = 'cut';
      const cut = await synk(...download);
      expect(readFileSync(target, 'utf8')).toBe('the old file');
      expect(readdirSync(dir)).toEqual(['big.bin']);
      expect(cut.code).toBe(1);
      expect(cut.stderr).toMatch(/^Error: download of big\.bin interrupted: \S/);

      how = 'stall';
      for (const [signal, code] of [
        ['SIGINT', 130],
        ['SIGTERM', 143],
      ] as const) {
        const child = spawn(process.execPath, [BIN, ...download], {
          cwd: work,
          env: { PATH: process.env.PATH ?? '', SYNK_CONFIG_DIR: configDir },
          stdio: 'ignore',
        });
        const exited = once(child, 'exit');
        await vi.waitFor(() => expect(readdirSync(dir).filter((f) => f.endsWith('.part'))).toHaveLength(1), {
          timeout: 10_000,
          interval: 20,
        });
        child.kill(signal);
        expect((await exited)[0], signal).toBe(code);
        expect(readFileSync(target, 'utf8')).toBe('the old file');
        expect(readdirSync(dir)).toEqual(['big.bin']);
      }

      how = undefined;
      expect(await json(...download)).toEqual({ file: target, bytes: bytes.length });
      expect(readFileSync(target).equals(bytes)).toBe(true);
      expect(readdirSync(dir)).toEqual(['big.bin']);
    } finally {
      await proxy.close();
    }
  });

  it('writes a download, an export or a pull asked to go to a directory into it, under its own name', async () => {
    writeFileSync(path.join(work, 'in-a-folder.txt'), 'kept in a folder');
    await json('attachments', 'upload', path.join(work, 'in-a-folder.txt'));
    const dir = mkdtempSync(path.join(work, 'into dir ü-'));
    const written = [
      await json('attachments', 'download', 'in-a-folder.txt', '-o', dir),
      await json('app-bundle', 'download', '--output', dir),
      await json('app-bundle', 'download', '--file', 'app/index.html', '-o', `${dir}/`),
      await json('export', 'csv', dir),
      await json('sync', 'pull', `${dir}/`),
    ].map((res: { file: string }) => res.file);
    expect(written).toEqual(
      [
        'in-a-folder.txt',
        'app-bundle-active.zip',
        'index.html',
        'observations_export_csv.zip',
        'records.json',
      ].map((name) => path.join(dir, name)),
    );
    expect(readFileSync(path.join(dir, 'in-a-folder.txt'), 'utf8')).toBe('kept in a folder');
    expect(readdirSync(dir).sort()).toEqual(written.map((f) => path.basename(f)).sort());
  });

  it('logs out here but warns and exits 1 when the server does not confirm the logout', async () => {
    const proxy = await startRecordingProxy(server.url, {
      intercept: (req) => (req.url === '/auth/logout' ? { status: 502 } : undefined),
    });
    try {
      const at = ['--server', proxy.url];
      await json(...at, 'login', '-u', 'admin', '--password', 'cli-admin-password');
      const res = await synk(...at, 'logout');
      expect(res.stdout).toBe('Logged out here (the session is deleted locally)\n');
      expect(res.stderr).toMatch(
        /^Warning: the server did not confirm the logout \(HTTP 502\).+may still be valid/,
      );
      expect(res.code).toBe(1);
      const status = await synk('--json', ...at, 'status');
      expect(status.code).toBe(3);
      expect(JSON.parse(status.stdout)).toMatchObject({ user: null, session: null });

      await json(...at, 'login', '-u', 'admin', '--password', 'cli-admin-password');
      const quiet = await synk('--json', ...at, 'logout');
      expect(quiet.code).toBe(1);
      expect(JSON.parse(quiet.stdout)).toEqual({ loggedOut: true, confirmed: false, status: 502 });
      expect(JSON.parse(quiet.stderr).warning).toMatch(/did not confirm/);
    } finally {
      await proxy.close();
    }
  });

  it('uploads an attachment with its sha256 in X-Content-SHA256 (the server refuses bytes that do not match it)', async () => {
    const proxy = await startRecordingProxy(server.url);
    try {
      await json('--server', proxy.url, 'login', '-u', 'admin', '--password', 'cli-admin-password');
      const scan = path.join(work, 'scan.bin');
      const bytes = randomBytes(200_000);
      writeFileSync(scan, bytes);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      expect(
        await json('--server', proxy.url, 'attachments', 'upload', scan, '--id', 'scan-1'),
      ).toMatchObject({
        id: 'scan-1',
        size: 200_000,
        hash: sha256,
      });
      const uploads = proxy.requests.filter((r) => r.method === 'PUT');
      expect(uploads.map((r) => [r.url, r.headers['x-content-sha256']])).toEqual([
        ['/attachments/scan-1', sha256],
      ]);
    } finally {
      await proxy.close();
    }
  });

  it('pushes more records than the server takes per request by splitting the batch, and reports failed ones by their place in the file', async () => {
    const small = await startServerProcess({
      DATA_DIR: path.join(work, 'data-small'),
      ADMIN_PASSWORD: 'cli-admin-password',
      NODE_ENV: 'test',
      SYNC_MAX_RECORDS: '3',
    });
    try {
      await json('--server', small.url, 'login', '-u', 'admin', '--password', 'cli-admin-password');
      const records: unknown[] = Array.from({ length: 10 }, (_, i) => ({
        observation_id: `s${i}`,
        form_type: 'household',
        data: { n: i },
      }));
      records[2] = { form_type: 'household', data: {} };
      records[7] = { observation_id: 's7', form_type: 7, data: {} };
      const input = path.join(work, 'many.json');
      writeFileSync(input, JSON.stringify({ records }));
      const res = await synk('--json', '--server', small.url, 'sync', 'push', input);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(1);
      const result = JSON.parse(res.stdout);
      expect(result.success_count).toBe(8);
      expect(result.failed_records).toMatchObject([
        { index: 2, code: 'invalid_record' },
        { index: 7, observation_id: 's7', code: 'invalid_record' },
      ]);
      // Pushing the same records again changes nothing; the failures are listed by place and id.
      const human = await synk('--server', small.url, 'sync', 'push', input);
      expect(human.stdout).toMatch(
        /^Pushed 8 records, 2 failed\n {2}- #2: invalid_record: .+\n {2}- #7 s7: invalid_record: .+\n$/,
      );
      // Only the sessions and the client ids are on disk: each command's outbox went with it.
      const servers = path.join(configDir, 'profiles', 'default', 'servers');
      const kept = readdirSync(servers).flatMap((server) => readdirSync(path.join(servers, server)));
      expect(new Set(kept)).toEqual(new Set(['auth%3Atokens.json', 'client%3Aid.json']));
      const out = path.join(work, 'many-pulled.json');
      expect((await json('--server', small.url, 'sync', 'pull', out)).records).toBe(8);
      expect(
        JSON.parse(readFileSync(out, 'utf8'))
          .map((r: { observation_id: string }) => r.observation_id)
          .sort(),
      ).toEqual(['s0', 's1', 's3', 's4', 's5', 's6', 's8', 's9']);
    } finally {
      await small.stop();
    }
  });

  it("lists the server's details of failed records: field errors, a conflict's server version and copy", async () => {
    const strict = await startServerProcess({
      DATA_DIR: path.join(work, 'data-strict'),
      ADMIN_PASSWORD: 'cli-admin-password',
      NODE_ENV: 'test',
      SYNC_VALIDATION: 'reject',
      CONFLICT_POLICY: 'reject',
    });
    try {
      const at = ['--server', strict.url];
      await json(...at, 'login', '-u', 'admin', '--password', 'cli-admin-password');
      const bundle = path.join(work, 'strict.zip');
      writeFileSync(bundle, zipOf({ household: { schema: householdSchema() } }));
      await json(...at, 'app-bundle', 'upload', bundle, '--activate');
      const input = path.join(work, 'strict.json');
      const h1 = {
        observation_id: 'h1',
        form_type: 'household',
        data: { core_household_id: 'h1', members: 2 },
      };
      writeFileSync(
        input,
        JSON.stringify([
          h1,
          { observation_id: 'h2', form_type: 'household', data: { members: -1 } },
          { observation_id: 'h3', form_type: 7, data: {} },
        ]),
      );
      const invalid = await synk('--json', ...at, 'sync', 'push', input);
      expect(invalid.code).toBe(1);
      const failures = JSON.parse(invalid.stdout).failed_records;
      expect(failures).toMatchObject([
        { index: 1, observation_id: 'h2', code: 'schema_validation' },
        { index: 2, observation_id: 'h3', code: 'invalid_record', errors: [{ path: '/form_type' }] },
      ]);
      expect(failures[0].errors.map((e: { path: string }) => e.path)).toEqual(
        expect.arrayContaining(['/data', '/data/members']),
      );
      // The schema's complaints are not in the server's message, so the human output adds them;
      // an invalid record's are.
      const human = await synk(...at, 'sync', 'push', input);
      expect(human.stdout).toMatch(/^ {2}- #2 h3: invalid_record: \/form_type must be a string$/m);
      expect(human.stdout).toMatch(
        /^ {2}- #1 h2: schema_validation: .+ \(.*\/data\/members must be >= 0.*\)$/m,
      );

      writeFileSync(input, JSON.stringify([{ ...h1, base_version: 0, data: { ...h1.data, members: 3 } }]));
      const conflict = await synk('--json', ...at, 'sync', 'push', input);
      expect(conflict.code).toBe(1);
      const [refused] = JSON.parse(conflict.stdout).failed_records;
      expect(refused).toMatchObject({
        index: 0,
        observation_id: 'h1',
        code: 'conflict',
        server_version: expect.any(Number),
        server_record: h1,
      });
      expect(refused.server_record.version).toBe(refused.server_version);
    } finally {
      await strict.stop();
    }
  });

  it('keeps the session an earlier version stored for the profile, for the profile’s own server', async () => {
    await json('--profile', 'legacy', '--server', server.url, 'config', 'init', '--username', 'admin');
    await json('config', 'use', 'default');
    const login = await fetch(`${server.url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: 'cli-admin-password' }),
    });
    // Where and how versions before per-server sessions kept one (a FileStorage in the profile's directory).
    const legacyDir = path.join(configDir, 'profiles', 'legacy');
    await new FileStorage(legacyDir).set('auth:tokens', await login.json());
    expect(await json('--profile', 'legacy', 'status')).toMatchObject({ user: 'admin' });
    expect(await new FileStorage(legacyDir).get('auth:tokens')).toBeUndefined();
    expect(await json('--profile', 'legacy', 'status')).toMatchObject({ user: 'admin' });
  });

  it('commands run side by side refresh a rejected session once and keep it (the refresh token rotates)', async () => {
    // Refreshes take a second on this "network": the commands' refreshes would all overlap.
    const proxy = await startRecordingProxy(server.url, (r) => (r.url === '/auth/refresh' ? 1_000 : 0));
    try {
      await json('--profile', 'parallel', '--server', proxy.url, 'config', 'init', '--username', 'admin');
      await json('config', 'use', 'default');
      await json('--profile', 'parallel', 'login', '--password', 'cli-admin-password');
      const servers = path.join(configDir, 'profiles', 'parallel', 'servers');
      const session = new FileStorage(path.join(servers, readdirSync(servers)[0]!));
      const tokens = await session.get<{ token: string; refreshToken: string }>('auth:tokens');
      // The access token is rejected from now on (as once it has expired): each command must refresh.
      await session.set('auth:tokens', { ...tokens, token: `${tokens!.token}x` });
      const results = await Promise.all(
        Array.from({ length: 4 }, () => synk('--json', '--profile', 'parallel', 'users', 'list')),
      );
      for (const res of results) expect(res.code, res.stderr).toBe(0);
      // One refresh, under the lock; the other commands took its tokens instead of spending the
      // rotated refresh token again, which would have revoked the session.
      expect(proxy.requests.filter((r) => r.url === '/auth/refresh').length).toBe(1);
      const refreshed = await session.get<{ token: string; refreshToken: string }>('auth:tokens');
      expect(refreshed!.refreshToken).not.toBe(tokens!.refreshToken);
      await session.set('auth:tokens', { ...refreshed, token: `${refreshed!.token}x` });
      expect((await synk('--profile', 'parallel', 'users', 'list')).code).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  it('manages profiles and changes its own password', async () => {
    expect((await json('config', 'set', 'username', 'admin')).username).toBe('admin');
    await json('--profile', 'other', '--server', 'http://127.0.0.1:1', 'config', 'init');
    expect((await json('config', 'view')).current).toBe('other');
    expect((await json('config', 'use', 'default')).current).toBe('default');
    expect((await synk('config', 'use', 'missing')).code).not.toBe(0);
    expect(
      (
        await json(
          'users',
          'change-password',
          '--current',
          'cli-admin-password',
          '--new',
          'cli-admin-password-2',
        )
      ).message,
    ).toMatch(/changed/);
    // The session ended with the password change; status says so (the token alone does not); log
    // in with the new one.
    expect((await synk('users', 'list')).code).toBe(3);
    const ended = await synk('--json', 'status');
    expect(ended.code).toBe(3);
    expect(JSON.parse(ended.stdout)).toMatchObject({ health: 'ok', user: 'admin', session: 'expired' });
    expect((await synk('status')).stdout).toMatch(
      /; the session of admin has expired or was revoked: log in again\n$/,
    );
    expect((await json('login', '--password', 'cli-admin-password-2')).username).toBe('admin');
    expect((await json('sync', 'pull', path.join(work, 'since.json'), '--since', '1')).records).toBe(1);
    // Both passwords may come from the environment instead of the command line (visible to ps).
    const fromEnv = await synkWith(
      { SYNK_PASSWORD: 'cli-admin-password-2', SYNK_NEW_PASSWORD: 'cli-admin-password-3' },
      'users',
      'change-password',
    );
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect((await json('login', '--password', 'cli-admin-password-3')).username).toBe('admin');
  });

  it('pushes and pulls records with integers too long for a double, digit for digit', async () => {
    const input = path.join(work, 'exact.json');
    const data = '{"serial":12345678901234567891,"list":[-98765432109876543210,1.5]}';
    writeFileSync(input, `[{"observation_id":"exact-cli","form_type":"meters","data":${data}}]`);
    expect((await json('sync', 'push', input)).success_count).toBe(1);
    const out = path.join(work, 'exact-pulled.json');
    expect((await json('sync', 'pull', out, '--schema-types', 'meters')).records).toBe(1);
    const pulled = readFileSync(out, 'utf8');
    expect(pulled).toContain('"serial": 12345678901234567891');
    expect(pulled).toContain('-98765432109876543210');
    // Pushed back from the file it is the same record: no new version.
    const again = await json('sync', 'push', out);
    expect(again.success_count).toBe(1);
    const repulled = path.join(work, 'exact-repulled.json');
    await json('sync', 'pull', repulled, '--schema-types', 'meters');
    expect(JSON.parse(readFileSync(repulled, 'utf8'))[0].version).toBe(JSON.parse(pulled)[0].version);
  });

  it('reports the warnings of a push: the count, the first few, all of them with --json', async () => {
    const input = path.join(work, 'warned.json');
    writeFileSync(
      input,
      JSON.stringify([
        { observation_id: 'w0', form_type: 'household', data: { core_household_id: 'w0', members: 1 } },
        { observation_id: 'w1', form_type: 'household', data: { core_household_id: 'w1', members: -1 } },
        ...Array.from({ length: 6 }, (_, i) => ({
          observation_id: `w${i + 2}`,
          form_type: 'no-such-form',
          data: {},
        })),
      ]),
    );
    const res = await synk('--json', 'sync', 'push', input);
    expect(res.code, res.stderr).toBe(0);
    const result = JSON.parse(res.stdout);
    expect(result.success_count).toBe(8);
    expect(result.warnings.map((w: { index: number; code: string }) => `#${w.index} ${w.code}`)).toEqual([
      '#1 SCHEMA_VALIDATION',
      ...Array.from({ length: 6 }, (_, i) => `#${i + 2} UNKNOWN_FORM_TYPE`),
    ]);
    expect(result.warnings[0].errors.map((e: { path: string }) => e.path)).toContain('/data/members');
    const human = await synk('sync', 'push', input);
    expect(human.code).toBe(0);
    const lines = human.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('Pushed 8 records, 7 warnings');
    expect(lines[1]).toMatch(/^ {2}! #1 w1: SCHEMA_VALIDATION: .+\/data\/members must be >= 0/);
    expect(lines.slice(2, 6).every((l) => /^ {2}! #\d w\d: UNKNOWN_FORM_TYPE: /.test(l))).toBe(true);
    expect(lines.slice(6)).toEqual(['  … 2 more warnings (--json lists all)']);
  });

  it('reports records of a push merged into a later copy with the same observation_id, so the counts add up', async () => {
    const copy = (id: string, members: number) => ({
      observation_id: id,
      form_type: 'household',
      data: { core_household_id: id, members },
    });
    const input = path.join(work, 'duplicates.json');
    writeFileSync(input, JSON.stringify([copy('d1', 1), copy('d2', 1), copy('d1', 2), copy('d1', 3)]));
    const result = await json('sync', 'push', input);
    expect(result).toMatchObject({ success_count: 2, failed_records: [], warnings: [] });
    expect(result.merged_duplicates).toEqual([
      { index: 0, observation_id: 'd1' },
      { index: 2, observation_id: 'd1' },
    ]);
    expect((await synk('sync', 'push', input)).stdout).toBe(
      'Pushed 2 records; merged 2 duplicate ids (the last copy of each is pushed)\n',
    );
    const out = path.join(work, 'duplicates-pulled.json');
    await json('sync', 'pull', out, '--schema-types', 'household');
    const pulled = JSON.parse(readFileSync(out, 'utf8')) as { observation_id: string; data: unknown }[];
    expect(pulled.find((r) => r.observation_id === 'd1')?.data).toEqual(copy('d1', 3).data);
  });

  it('sends a session only to the server it came from, whatever --server, SYNK_SERVER or the profile point at', async () => {
    // Another URL for the same server: a session from the profile's URL would be accepted there,
    // so only the proxy's record shows whether one was sent.
    const proxy = await startRecordingProxy(server.url);
    try {
      expect((await synk('--server', `${server.url}/`, 'users', 'list')).code).toBe(0);
      expect((await synk('--server', proxy.url, 'users', 'list')).code).toBe(3);
      expect((await synkWith({ SYNK_SERVER: proxy.url }, 'users', 'list')).code).toBe(3);
      await json('config', 'set', 'server', proxy.url);
      expect((await synk('users', 'list')).code).toBe(3);
      await json('config', 'set', 'server', server.url);
      expect(proxy.requests.length).toBeGreaterThanOrEqual(3);
      expect(proxy.requests.filter((r) => r.headers.authorization !== undefined)).toEqual([]);

      // A login there is kept for there; the profile keeps its own server's session.
      await json('users', 'create', 'field-3', '--role', 'read-write', '--password', 'field-password-3');
      const login = ['login', '-u', 'field-3', '--password', 'field-password-3'];
      expect((await json('--server', proxy.url, ...login)).username).toBe('field-3');
      expect(await json('--server', proxy.url, 'status')).toMatchObject({ user: 'field-3' });
      expect(await json('status')).toMatchObject({ user: 'admin' });
      expect((await synk('users', 'list')).code).toBe(0);
      const bearers = proxy.requests.flatMap((r) => r.headers.authorization ?? []);
      expect(bearers.length).toBeGreaterThan(0);
      for (const bearer of bearers)
        expect(decodeJwt(bearer.replace(/^Bearer /, '')).username).toBe('field-3');
    } finally {
      await proxy.close();
    }
  });

  it('takes the Go CLI’s app-bundle upload --version, and warns that the server numbered the bundle itself', async () => {
    const zip = path.join(work, 'numbered.zip');
    writeFileSync(zip, zipOf({ household: { schema: householdSchema() } }));
    const { versions } = await json('app-bundle', 'versions');
    const next = String(Number(versions[0]) + 1).padStart(4, '0');
    const res = await synk('--json', 'app-bundle', 'upload', zip, '--version', '1.2.3');
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).manifest.version).toBe(next);
    expect(JSON.parse(res.stderr)).toEqual({
      warning: `the server numbers versions itself: this bundle is version ${next}, not 1.2.3`,
    });
    // The version it was going to get: nothing to warn about.
    const expected = String(Number(next) + 1).padStart(4, '0');
    expect(await synk('app-bundle', 'upload', zip, '--version', expected)).toMatchObject({
      code: 0,
      stderr: '',
    });
  });

  it('pushes the records of standard input for -, so a pull can be piped into a push', async () => {
    const child = spawn(process.execPath, [BIN, '--json', 'sync', 'push', '-'], {
      cwd: work,
      env: { PATH: process.env.PATH ?? '', SYNK_CONFIG_DIR: configDir },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.stdin.end(
      JSON.stringify({
        records: [{ observation_id: 'from-stdin', form_type: 'household', data: { members: 1 } }],
      }),
    );
    const [code] = await once(child, 'exit');
    expect(code, stderr).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ success_count: 1, failed_records: [] });
    expect(existsSync(path.join(work, '-'))).toBe(false);
    const pulled = await json('sync', 'pull', '-', '--schema-types', 'household');
    expect(pulled.map((r: { observation_id: string }) => r.observation_id)).toContain('from-stdin');
  });

  it('lists the conflict log page by page: every entry, or --limit of them from --after, with both copies in --json', async () => {
    // More conflicts than the server gives in one page (500), all from one push over records the
    // devices had not seen (base_version 0 for records the server has).
    const input = path.join(work, 'conflicting.json');
    const ids = Array.from({ length: 501 }, (_, i) => `k${String(i).padStart(3, '0')}`);
    const records = (members: number, base?: number) =>
      ids.map((observation_id) => ({
        observation_id,
        form_type: 'household',
        data: { members },
        ...(base !== undefined ? { base_version: base } : {}),
      }));
    writeFileSync(input, JSON.stringify(records(1)));
    expect((await json('sync', 'push', input)).success_count).toBe(501);
    writeFileSync(input, JSON.stringify(records(2, 0)));
    const { warnings } = await json('sync', 'push', input);
    expect(warnings.filter((w: { code: string }) => w.code === 'CONFLICT')).toHaveLength(501);

    // Printed page by page as the server gives them: across its pages, the array one JSON.stringify gives.
    const listed = await synk('--json', 'sync', 'conflicts');
    expect(listed.code, listed.stderr).toBe(0);
    const log = JSON.parse(listed.stdout);
    expect(listed.stdout).toBe(`${JSON.stringify(log, null, 2)}\n`);
    const all = log.filter((c: { observation_id: string }) => ids.includes(c.observation_id));
    // As tables of 500 rows (the server's page), each with its header: every entry once, in order.
    const human = await synk('sync', 'conflicts');
    expect(human.code, human.stderr).toBe(0);
    const tables = human.stdout
      .trimEnd()
      .split('\n\n')
      .map((table) => table.split('\n'));
    const sizes = Array.from({ length: Math.ceil(log.length / 500) }, (_, i) =>
      Math.min(500, log.length - i * 500),
    );
    expect(sizes.length).toBeGreaterThan(1);
    expect(tables.map((t) => t.length - 2)).toEqual(sizes);
    for (const table of tables) expect(table[0]).toMatch(/^id\s+observation_id\s+form_type\s/);
    expect(tables.flatMap((t) => t.slice(2)).map((row) => Number(row.split(' ')[0]))).toEqual(
      log.map((c: { id: number }) => c.id),
    );
    expect(all.map((c: { observation_id: string }) => c.observation_id)).toEqual(ids);
    expect(all[0]).toMatchObject({
      form_type: 'household',
      policy: 'last-write-wins',
      base_version: 0,
      username: 'admin',
      incoming: { observation_id: 'k000', data: { members: 2 } },
      server: { observation_id: 'k000', data: { members: 1 } },
    });
    expect(all[0].server_version).toBe(all[0].server.version);

    // --after the first of them, --limit 2: the next two, and a line saying where the rest start.
    const after = String(all[0].id);
    expect(
      (await json('sync', 'conflicts', '--after', after, '--limit', '2')).map((c: { id: number }) => c.id),
    ).toEqual([all[1].id, all[2].id]);
    const limited = await synk('sync', 'conflicts', '--after', after, '--limit', '2');
    expect(limited.code, limited.stderr).toBe(0);
    const lines = limited.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^id\s+observation_id\s+form_type\s+policy\s+base\/server\s+by\s+detected_at$/);
    expect(lines.slice(2, 4)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^${all[1].id}\\s+k001\\s+household\\s+last-write-wins\\s+0/${all[1].server_version}\\s+admin \\(`,
        ),
      ),
      expect.stringMatching(new RegExp(`^${all[2].id}\\s+k002\\s`)),
    ]);
    expect(lines[4]).toBe(`… more after ${all[2].id}: synk sync conflicts --after ${all[2].id}`);
    expect(lines).toHaveLength(5);
    // After the last entry: nothing, said in words.
    const last = String(all.at(-1).id);
    expect(await synk('sync', 'conflicts', '--after', last)).toEqual({
      code: 0,
      stdout: `No conflicts after ${last}\n`,
      stderr: '',
    });

    for (const [option, value] of [
      ['--limit', '0'],
      ['--after', '-1'],
    ]) {
      const refused = await synk('sync', 'conflicts', option!, value!);
      expect(refused.code, `${option} ${value}`).toBe(2);
      expect(refused.stderr).toMatch(new RegExp(`${option}.*whole number`));
    }
    // An administrator's view: another role is refused by the server (exit 1), not shown an empty log.
    await json('users', 'create', 'writer-c', '--role', 'read-write', '--password', 'writer-password-c');
    const as = ['--profile', 'writer-c', '--server', server.url];
    await json(...as, 'login', '-u', 'writer-c', '--password', 'writer-password-c');
    const forbidden = await synk(...as, 'sync', 'conflicts');
    expect(forbidden).toMatchObject({ code: 1, stdout: '' });
    expect(forbidden.stderr).toMatch(/^Error 403/);
    await json('users', 'delete', 'writer-c');
  });

  it('deletes an attachment (admin): a delete operation in the manifest, 404 for one it does not have', async () => {
    const file = path.join(work, 'to-delete.jpg');
    writeFileSync(file, 'bytes to delete');
    await json('attachments', 'upload', file);
    const deleted = await json('attachments', 'delete', 'to-delete.jpg');
    expect(deleted).toEqual({ status: 'success', id: 'to-delete.jpg', version: expect.any(Number) });
    expect((await json('attachments', 'manifest')).operations).toContainEqual(
      expect.objectContaining({
        operation: 'delete',
        attachment_id: 'to-delete.jpg',
        version: deleted.version,
      }),
    );
    expect(await synk('attachments', 'exists', 'to-delete.jpg')).toMatchObject({ code: 1 });

    // Deleting it again: the server has no such attachment, and says so (exit 1; --json: the problem).
    const again = await synk('--json', 'attachments', 'delete', 'to-delete.jpg');
    expect(again).toMatchObject({ code: 1, stdout: '' });
    expect(JSON.parse(again.stderr)).toMatchObject({ problem: { status: 404, code: 'not_found' } });
    const human = await synk('attachments', 'delete', 'to-delete.jpg');
    expect(human.code).toBe(1);
    expect(human.stderr).toMatch(/^Error 404 \(not_found\)/);
    expect((await synk('attachments', 'delete')).code).toBe(2);

    // Not an administrator: refused (exit 1), and the attachment is still there.
    writeFileSync(file, 'bytes to keep');
    await json('attachments', 'upload', file, '--id', 'kept.jpg');
    await json('users', 'create', 'writer-d', '--role', 'read-write', '--password', 'writer-password-d');
    const as = ['--profile', 'writer-d', '--server', server.url];
    await json(...as, 'login', '-u', 'writer-d', '--password', 'writer-password-d');
    const forbidden = await synk(...as, 'attachments', 'delete', 'kept.jpg');
    expect(forbidden).toMatchObject({ code: 1, stdout: '' });
    expect(forbidden.stderr).toMatch(/^Error 403/);
    expect((await json('attachments', 'exists', 'kept.jpg')).exists).toBe(true);
    await json('users', 'delete', 'writer-d');
  });

  it('logs out', async () => {
    expect(await json('logout')).toEqual({ loggedOut: true, confirmed: true });
    // Without a session, status says so and exits 3, as any command that needs one would.
    const status = await synk('--json', 'status');
    expect(status.code).toBe(3);
    expect(JSON.parse(status.stdout)).toMatchObject({ health: 'ok', user: null, role: null, session: null });
    expect(await synk('status')).toEqual({
      code: 3,
      stdout: `${server.url}: ok (server ${JSON.parse(status.stdout).version}); not logged in\n`,
      stderr: '',
    });
  });
});

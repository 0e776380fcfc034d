import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { usePostgres } from '@synk/test-support/hooks';
import { postgresAvailable } from '@synk/test-support/postgres';
import { buildZip } from '@synk/test-support/zip';
import pino from 'pino';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/lib/logger.ts';
import { closeContext, createContext, startServer } from '../src/server.ts';
import { ADMIN_PASSWORD, createTestApp, tempDir } from './helpers.ts';

const validZip = (marker: string) =>
  buildZip([
    { name: 'app/index.html', data: `<p>${marker}</p>` },
    {
      name: 'forms/f/schema.json',
      data: JSON.stringify({ type: 'object', properties: { core_id: { type: 'string' } } }),
    },
    { name: 'forms/f/ui.json', data: '{}' },
  ]);

/** POST /app-bundle/push of `zip` (as b.zip), activated when asked. */
const pushBundle = (
  app: Parameters<typeof request>[0],
  authorization: string,
  zip: Buffer,
  options: { activate?: boolean } = {},
) =>
  request(app)
    .post(`/app-bundle/push${options.activate ? '?activate=true' : ''}`)
    .set('authorization', authorization)
    .attach('bundle', zip, 'b.zip');

describe('app bundles (server side)', () => {
  it('413 for a ZIP over BUNDLE_MAX_ZIP_BYTES, leaving no temporary file', async () => {
    const t = await createTestApp({ BUNDLE_MAX_ZIP_BYTES: '2048' });
    const big = buildZip([{ name: 'app/index.html', data: Buffer.alloc(10_000, 7), store: true }]);
    const res = await pushBundle(t.app, `Bearer ${await t.tokenFor('admin')}`, big);
    expect(res.status).toBe(413);
    expect(res.body.code).toBe('payload_too_large');
    expect(readdirSync(path.join(t.ctx.config.appBundlePath, '.tmp'))).toEqual([]);
    await t.close();
  });

  it('concurrent pushes get distinct consecutive versions', async () => {
    const t = await createTestApp({ MAX_VERSIONS_KEPT: '50' });
    const token = `Bearer ${await t.tokenFor('admin')}`;
    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) => pushBundle(t.app, token, validZip(`v${i}`))),
    );
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(results.map((r) => r.body.manifest.version).sort()).toEqual([
      '0001',
      '0002',
      '0003',
      '0004',
      '0005',
    ]);
    expect(readdirSync(path.join(t.ctx.config.appBundlePath, 'versions')).sort()).toEqual([
      '0001',
      '0002',
      '0003',
      '0004',
      '0005',
    ]);
    await t.close();
  });

  it('the active version and the manifest ETag survive a restart', async () => {
    const dataDir = tempDir();
    const env = { DATA_DIR: dataDir, DB_CONNECTION: path.join(dataDir, 'db.sqlite'), ADMIN_PASSWORD };
    const first = await createContext(loadConfig(env), createLogger('silent'));
    const app = createApp(first);
    const { token } = await first.services.auth.login('admin', ADMIN_PASSWORD, '127.0.0.1');
    await pushBundle(app, `Bearer ${token}`, validZip('a'), { activate: true });
    await pushBundle(app, `Bearer ${token}`, validZip('b'));
    const before = await request(app).get('/app-bundle/manifest').set('authorization', `Bearer ${token}`);
    await closeContext(first);

    const second = await createContext(loadConfig(env), createLogger('silent'));
    const after = await request(createApp(second))
      .get('/app-bundle/manifest')
      .set('authorization', `Bearer ${token}`);
    expect(after.status).toBe(200);
    expect(after.headers.etag).toBe(before.headers.etag);
    expect(after.body).toEqual(before.body);
    expect(after.body.version).toBe('0001');
    await closeContext(second);
  });
});

describe('GET /app-bundle/download/{path} with Range', () => {
  it('as RFC 9110 reads it, like attachments: a suffix longer than the file is all of it; only a strong If-Range', async () => {
    const t = await createTestApp();
    const admin = `Bearer ${await t.tokenFor('admin')}`;
    const pushed = await pushBundle(
      t.app,
      admin,
      buildZip([{ name: 'app/index.html', data: '0123456789' }]),
      { activate: true },
    );
    expect(pushed.status).toBe(200);
    const etag = `"${pushed.body.manifest.files[0].hash}"`;
    const get = (headers: Record<string, string>, method: 'get' | 'head' = 'get') =>
      request(t.app)[method]('/app-bundle/download/app/index.html').set('authorization', admin).set(headers);
    for (const [range, start, end] of [
      ['bytes=-5000', 0, 9],
      ['bytes=2-4', 2, 4],
      ['BYTES=7-', 7, 9],
    ] as const) {
      const res = await get({ range });
      expect(res.status, range).toBe(206);
      expect(res.headers['content-range'], range).toBe(`bytes ${start}-${end}/10`);
      expect(res.headers['content-length'], range).toBe(String(end - start + 1));
      expect(res.text, range).toBe('0123456789'.slice(start, end + 1));
    }
    const unsatisfiable = await get({ range: 'bytes=10-' });
    expect(unsatisfiable.status).toBe(416);
    expect(unsatisfiable.headers['content-range']).toBe('bytes */10');
    expect(unsatisfiable.body.code).toBe('range_not_satisfiable');
    // The problem is the representation sent: nothing may describe the file it is not (RFC 9110 §15.5.17).
    expect(unsatisfiable.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(unsatisfiable.headers.etag).toBeUndefined();
    expect(unsatisfiable.headers['accept-ranges']).toBeUndefined();
    for (const ifRange of [etag, `W/${etag}`]) {
      const res = await get({ range: 'bytes=2-4', 'if-range': ifRange });
      expect(res.status, ifRange).toBe(ifRange === etag ? 206 : 200);
    }
    const head = await get({ range: 'bytes=2-4' }, 'head');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('10');
    expect(head.headers['accept-ranges']).toBe('bytes');
    await t.close();
  });
});

describe('GET /app-bundle/download-zip cut short', () => {
  const big = (n: number) => ({ name: `app/big-${n}.bin`, data: randomBytes(2 * 1024 * 1024), store: true });
  const bigZip = buildZip([{ name: 'app/index.html', data: 'old' }, big(1), big(2), big(3)]);

  /** A test app listening on loopback, with a large version 0001 active. */
  async function serving(env: Record<string, string> = {}) {
    const t = await createTestApp(env);
    const admin = `Bearer ${await t.tokenFor('admin')}`;
    const server = t.app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const pushed = await pushBundle(t.app, admin, bigZip, { activate: true });
    expect(pushed.status).toBe(200);
    const download = () =>
      new Promise<http.IncomingMessage>((resolve, reject) =>
        http
          .get(
            `http://127.0.0.1:${(server.address() as AddressInfo).port}/app-bundle/download-zip?version=0001`,
            { headers: { authorization: admin } },
            resolve,
          )
          .on('error', reject),
      );
    return {
      t,
      admin,
      download,
      async close() {
        server.close();
        await t.close();
      },
    };
  }

  /** Files under `dir` this process holds open (Linux). */
  const openFilesUnder = (dir: string) =>
    readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir);
      } catch {
        return false; // closed meanwhile
      }
    });

  it.skipIf(process.platform !== 'linux')(
    'by the client: the file being read is closed (it stayed open, and the process died of an unhandled rejection)',
    async () => {
      const s = await serving();
      try {
        for (let i = 0; i < 3; i++) {
          const res = await s.download();
          expect(res.statusCode).toBe(200);
          await once(res, 'data');
          res.destroy();
        }
        await expect.poll(() => openFilesUnder(s.t.ctx.config.appBundlePath), { timeout: 5000 }).toEqual([]);
        await expect.poll(() => snapshotsLeft(s.t)).toEqual([]);
        expect((await request(s.t.app).get('/health')).status).toBe(200);
      } finally {
        await s.close();
      }
    },
  );

  /** Download folders left under APP_BUNDLE_PATH/.tmp. */
  const snapshotsLeft = (t: { ctx: { config: { appBundlePath: string } } }) => {
    try {
      return readdirSync(path.join(t.ctx.config.appBundlePath, '.tmp')).filter((n) =>
        n.startsWith('download-'),
      );
    } catch {
      return [];
    }
  };

  it('a prune of its version meanwhile does not cut it: the whole ZIP arrives (it was cut mid-way)', async () => {
    const s = await serving({ MAX_VERSIONS_KEPT: '1' });
    const { t, admin } = s;
    try {
      const res = await s.download();
      expect(res.statusCode).toBe(200);
      // The archive waits, its first files read, while the client does not read on.
      res.pause();
      // Activating another version prunes 0001 (MAX_VERSIONS_KEPT=1) under the paused download.
      const next = await pushBundle(t.app, admin, validZip('new'), { activate: true });
      expect(next.status).toBe(200);
      expect(readdirSync(path.join(t.ctx.config.appBundlePath, 'versions'))).toEqual(['0002']);
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      const ended = new Promise<string>((resolve) => {
        res.on('end', () => resolve('complete'));
        res.on('error', () => resolve('cut'));
        res.on('aborted', () => resolve('cut'));
      });
      res.resume();
      expect(await ended).toBe('complete');
      const { default: unzipper } = await import('unzipper');
      const zip = await unzipper.Open.buffer(Buffer.concat(chunks));
      const files = new Map(
        await Promise.all(zip.files.map(async (f) => [f.path, await f.buffer()] as const)),
      );
      expect([...files.keys()].sort()).toEqual([
        'app/big-1.bin',
        'app/big-2.bin',
        'app/big-3.bin',
        'app/index.html',
      ]);
      expect(files.get('app/index.html')?.toString()).toBe('old');
      expect(files.get('app/big-3.bin')).toHaveLength(2 * 1024 * 1024);
      await expect.poll(() => snapshotsLeft(t)).toEqual([]);
      expect((await request(t.app).get('/health')).status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('a version pruned after its manifest was read, before its files are held → 404 before any byte', async () => {
    const s = await serving({ MAX_VERSIONS_KEPT: '1' });
    const { t, admin } = s;
    try {
      const { bundles } = t.ctx.services;
      const manifest = await bundles.versionManifest('0001');
      expect((await pushBundle(t.app, admin, validZip('new'), { activate: true })).status).toBe(200);
      const err = await bundles.openVersion(manifest).catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 404, message: 'App bundle version 0001 was just removed' });
      expect(snapshotsLeft(t)).toEqual([]);
    } finally {
      await s.close();
    }
  });
});

describe('core fields defined through $ref', () => {
  it('changing the definition a core field refers to → 400, and changes reports core_changed', async () => {
    const t = await createTestApp();
    const admin = `Bearer ${await t.tokenFor('admin')}`;
    const withIdType = (type: string, marker: string) =>
      buildZip([
        { name: 'app/index.html', data: marker },
        {
          name: 'forms/f/schema.json',
          data: JSON.stringify({
            type: 'object',
            properties: { core_id: { $ref: '#/definitions/id' } },
            definitions: { id: { type } },
          }),
        },
        { name: 'forms/f/ui.json', data: '{}' },
      ]);
    const push = (zip: Buffer, query = '') =>
      request(t.app)
        .post(`/app-bundle/push${query}`)
        .set('authorization', admin)
        .attach('bundle', zip, 'b.zip');
    expect((await push(withIdType('string', 'a'), '?activate=true')).status).toBe(200);
    const retyped = await push(withIdType('integer', 'b'));
    expect(retyped.status).toBe(400);
    expect(retyped.body.errors).toEqual([
      {
        path: 'forms/f/schema.json',
        message: 'core field "core_id" may not change its definition',
        code: 'core_field_changed',
      },
    ]);
    expect((await push(withIdType('string', 'c'))).status).toBe(200);

    // Version 0002 stored by a server before this rule: the diff still tells the core field changed.
    writeFileSync(
      path.join(t.ctx.config.appBundlePath, 'versions', '0002', 'forms', 'f', 'schema.json'),
      JSON.stringify({
        type: 'object',
        properties: { core_id: { $ref: '#/definitions/id' } },
        definitions: { id: { type: 'integer' } },
      }),
    );
    const diff = await request(t.app)
      .get('/app-bundle/changes?current=0002&target=0001')
      .set('authorization', admin);
    expect(diff.status).toBe(200);
    expect(diff.body.modified_forms).toMatchObject([{ form: 'f', schema_changed: true, core_changed: true }]);
    await t.close();
  });
});

describe('record validation against the active bundle', () => {
  it('SYNC_VALIDATION=warn accepts the record and reports SCHEMA_VALIDATION; off checks nothing', async () => {
    for (const mode of ['warn', 'off'] as const) {
      const t = await createTestApp({ SYNC_VALIDATION: mode });
      const admin = `Bearer ${await t.tokenFor('admin')}`;
      const zip = buildZip([
        { name: 'app/index.html', data: 'x' },
        {
          name: 'forms/f/schema.json',
          data: JSON.stringify({ type: 'object', properties: { n: { type: 'integer' } } }),
        },
        { name: 'forms/f/ui.json', data: '{}' },
      ]);
      await pushBundle(t.app, admin, zip, { activate: true });
      const res = await request(t.app)
        .post('/sync/push')
        .set('authorization', admin)
        .send({
          transmission_id: crypto.randomUUID(),
          client_id: 'c',
          records: [
            { observation_id: 'a', form_type: 'f', data: { n: 'not a number' } },
            { observation_id: 'b', form_type: 'other', data: {} },
          ],
        });
      expect(res.body.success_count).toBe(2);
      expect(res.body.failed_records).toEqual([]);
      if (mode === 'warn') {
        expect(res.body.warnings.map((w: { id: string; code: string }) => `${w.id}:${w.code}`)).toEqual([
          'a:SCHEMA_VALIDATION',
          'b:UNKNOWN_FORM_TYPE',
        ]);
        expect(res.body.warnings[0].errors).toEqual([{ path: '/data/n', message: 'must be integer' }]);
      } else {
        expect(res.body.warnings).toEqual([]);
      }
      await t.close();
    }
  });
});

describe('versions stored before a rule existed', () => {
  it('a stored schema canonical JSON cannot write (1e400, pushed when such numbers were taken) does not break later pushes or the diff', async () => {
    const t = await createTestApp();
    const admin = `Bearer ${await t.tokenFor('admin')}`;
    const pushed = await pushBundle(t.app, admin, validZip('a'), { activate: true });
    expect(pushed.status).toBe(200);
    // What an older server kept: a core field whose definition holds 1e400.
    writeFileSync(
      path.join(t.ctx.config.appBundlePath, 'versions', '0001', 'forms', 'f', 'schema.json'),
      '{"type":"object","properties":{"core_id":{"type":"string","maxLength":1e400}}}',
    );
    const next = await pushBundle(t.app, admin, validZip('b'));
    expect(next.status, JSON.stringify(next.body)).toBe(400);
    expect(next.body.errors).toEqual([
      {
        path: 'forms/f/schema.json',
        message: 'core field "core_id" may not change its definition',
        code: 'core_field_changed',
      },
    ]);
    const same = buildZip([
      { name: 'app/index.html', data: 'c' },
      {
        name: 'forms/f/schema.json',
        data: JSON.stringify({ type: 'object', properties: { core_id: { type: 'string' } }, title: 'x' }),
      },
      { name: 'forms/f/ui.json', data: '{}' },
    ]);
    await request(t.app).post('/app-bundle/switch/0001').set('authorization', admin);
    writeFileSync(
      path.join(t.ctx.config.appBundlePath, 'versions', '0001', 'forms', 'f', 'schema.json'),
      '{"type":"object","properties":{"core_id":{"type":"string"},"n":{"maximum":1e400}}}',
    );
    const third = await pushBundle(t.app, admin, same);
    expect(third.status, JSON.stringify(third.body)).toBe(200);
    const diff = await request(t.app)
      .get(`/app-bundle/changes?current=${third.body.manifest.version}&target=0001`)
      .set('authorization', admin);
    expect(diff.status, JSON.stringify(diff.body)).toBe(200);
    expect(diff.body.modified_forms).toEqual([
      {
        form: 'f',
        schema_changed: true,
        ui_changed: false,
        core_changed: false,
        added_fields: [],
        removed_fields: [{ field: 'n', type: '' }],
      },
    ]);
    await t.close();
  });
});

describe.skipIf(!postgresAvailable())('concurrent activating pushes (PostgreSQL)', () => {
  const postgres = usePostgres();

  it('never both activate a form with different core fields: the second is checked against the first', async () => {
    const dataDir = tempDir();
    const server = await startServer(
      loadConfig({
        PORT: '0',
        HOST: '127.0.0.1',
        ADMIN_PASSWORD,
        LOG_LEVEL: 'error',
        DATA_DIR: dataDir,
        DB_CONNECTION: await postgres.server.createDatabase(),
        MAX_VERSIONS_KEPT: '1000',
      }),
      createLogger('silent'),
    );
    try {
      const url = `http://127.0.0.1:${server.port}`;
      const { token } = (await (
        await fetch(`${url}/auth/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
        })
      ).json()) as { token: string };
      const push = async (zip: Buffer) => {
        const form = new FormData();
        form.append('bundle', new Blob([zip]), 'b.zip');
        const res = await fetch(`${url}/app-bundle/push?activate=true`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
          body: form,
        });
        await res.arrayBuffer();
        return res.status;
      };
      const formWith = (form: string, coreField: string) => [
        {
          name: `forms/${form}/schema.json`,
          data: JSON.stringify({ type: 'object', properties: { [coreField]: { type: 'string' } } }),
        },
        { name: `forms/${form}/ui.json`, data: '{}' },
      ];
      // Every bundle keeps the forms activated in earlier rounds: leaving one out would remove its
      // core field.
      const kept: { name: string; data: string }[] = [];
      const withCoreField = (form: string, name: string) =>
        buildZip([{ name: 'app/index.html', data: name }, ...kept, ...formWith(form, name)]);
      expect(await push(buildZip([{ name: 'app/index.html', data: 'no forms' }]))).toBe(200);
      const outcomes: string[] = [];
      for (let round = 0; round < 20; round++) {
        // Both are checked against the active version (no form x<round>), where any core field may be new.
        const fields = [`core_a${round}`, `core_b${round}`];
        const statuses = await Promise.all(fields.map((field) => push(withCoreField(`x${round}`, field))));
        outcomes.push([...statuses].sort().join(' '));
        const winner = fields[statuses.indexOf(200)];
        if (winner) kept.push(...formWith(`x${round}`, winner));
      }
      // One is activated; the other then adds a core field to a form of the active version.
      expect(outcomes).toEqual(Array(20).fill('200 400'));
    } finally {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('a download the client abandons', () => {
  it('is logged as abandoned (info), not as a failed request with a stack trace (error)', async () => {
    const entries: { level: number; msg: string }[] = [];
    const logger = pino(
      { level: 'debug' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          for (const line of chunk.toString().split('\n').filter(Boolean)) entries.push(JSON.parse(line));
          done();
        },
      }),
    );
    const dataDir = tempDir();
    const config = loadConfig({ DATA_DIR: dataDir, DB_CONNECTION: ':memory:', ADMIN_PASSWORD });
    const ctx = await createContext(config, logger);
    const app = createApp(ctx);
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { token } = await ctx.services.auth.login(config.adminUsername, ADMIN_PASSWORD, '127.0.0.1');
      // Random bytes, stored: the archive is far larger than the socket buffers can hold unread.
      const zip = buildZip([
        { name: 'app/index.html', data: '<p>big</p>' },
        { name: 'app/big.bin', data: randomBytes(32 * 1024 * 1024), store: true },
      ]);
      expect((await pushBundle(app, `Bearer ${token}`, zip, { activate: true })).status).toBe(200);
      const { port } = server.address() as AddressInfo;
      const req = http.get({
        host: '127.0.0.1',
        port,
        path: '/app-bundle/download-zip',
        headers: { authorization: `Bearer ${token}` },
      });
      const [res] = (await once(req, 'response')) as [http.IncomingMessage];
      expect(res.statusCode).toBe(200);
      // Not read: the server's writes fill the buffers and wait; then the client goes away.
      await new Promise((resolve) => setTimeout(resolve, 200));
      req.destroy();
      const ended = () => entries.some((e) => /abandoned|request failed/.test(e.msg));
      for (let i = 0; i < 100 && !ended(); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(entries.filter((e) => e.msg === 'answer abandoned by the client')).toHaveLength(1);
      expect(entries.filter((e) => e.level >= 50)).toEqual([]);
    } finally {
      server.close();
      await closeContext(ctx);
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});

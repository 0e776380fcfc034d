import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { listOperations } from '../src/http/openapi.ts';
import { createLogger } from '../src/lib/logger.ts';
import { createContext } from '../src/server.ts';
import { createTestApp, type TestApp, tempDir } from './helpers.ts';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ CORS_ORIGINS: 'https://field.example' });
});
afterAll(() => t.close());

function expectProblem(res: request.Response, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, code, type: `urn:synk:problem:${code}` });
  expect(typeof res.body.title).toBe('string');
  expect(typeof res.body.detail).toBe('string');
  expect(res.body.request_id).toBe(res.headers['x-request-id']);
  expect(JSON.stringify(res.body)).not.toMatch(/at .+\.ts:\d+|node_modules|select /i);
}

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
}

/** (method, path) pairs the Express app really registered, in openapi.yaml's path syntax. */
function registeredRoutes(app: ReturnType<typeof createApp>): string[] {
  const found: string[] = [];
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const [method, on] of Object.entries(layer.route.methods)) {
          if (on && method !== '_all')
            found.push(`${method.toUpperCase()} ${layer.route.path.replace(/:(\w+)/g, '{$1}')}`);
        }
      } else if (layer.handle.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack);
  return found.sort();
}

describe('contract coverage', () => {
  it('registers exactly the operations of openapi.yaml', () => {
    const inSpec = listOperations(t.ctx.spec)
      .map(({ method, path }) => `${method.toUpperCase()} ${path}`)
      .sort();
    expect(inSpec.length).toBeGreaterThanOrEqual(30);
    expect(registeredRoutes(t.app)).toEqual(inSpec);
  });

  it('gives every operation an operationId and a default problem response', () => {
    for (const { operation } of listOperations(t.ctx.spec)) {
      expect(operation.operationId).toMatch(/^[a-z][A-Za-z]+$/);
      expect(operation.responses?.default).toBeDefined();
    }
  });
});

describe('runtime', () => {
  it('runs on Node 24 inside npm scripts', () => {
    expect(process.version).toMatch(/^v24\./);
  });
});

describe('GET/HEAD /health', () => {
  it('reports ok with real database and storage checks', async () => {
    const res = await request(t.app).get('/health');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'ok',
      version: t.ctx.build.version,
      checks: { database: { status: 'ok' } },
    });
    expect(res.body.checks.storage.status).toBe('ok');
    expect(res.body.checks.storage.free_bytes).toBeGreaterThan(0);
    expect(Date.parse(res.body.timestamp)).not.toBeNaN();
  });

  it('answers HEAD with the status and no body', async () => {
    const res = await request(t.app).head('/health');
    expect(res.status).toBe(200);
    expect(res.text ?? '').toBe('');
  });

  it('answers 503 naming the storage check when the data directory cannot be written', async () => {
    const file = path.join(tempDir(), 'not-a-directory');
    writeFileSync(file, 'x');
    const ctx = await createContext(loadConfig({ DB_CONNECTION: ':memory:' }), createLogger('silent'));
    const broken = createApp({ ...ctx, config: { ...ctx.config, dataDir: file } });
    const res = await request(broken).get('/health');
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({
      status: 'error',
      checks: { database: { status: 'ok' }, storage: { status: 'error' } },
    });
    expect((await request(broken).head('/health')).status).toBe(503);
    await ctx.orm.close();
  });

  it('answers 503 when free space is below the threshold', async () => {
    const tight = await createTestApp({ HEALTH_MIN_FREE_BYTES: String(Number.MAX_SAFE_INTEGER) });
    const res = await request(tight.app).get('/health');
    expect(res.status).toBe(503);
    expect(res.body.checks.storage).toMatchObject({ status: 'error' });
    await tight.close();
  });

  it('answers 503 naming the database check when the database is gone', async () => {
    const dbDir = tempDir();
    const doomed = await createTestApp({ DB_CONNECTION: path.join(dbDir, 'doomed.db') });
    await doomed.ctx.orm.close(true);
    rmSync(dbDir, { recursive: true });
    const res = await request(doomed.app).get('/health');
    expect(res.status).toBe(503);
    expect(res.body.checks.database.status).toBe('error');
    expect(res.body.checks.storage.status).toBe('ok');
  });
});

describe('GET /version and /api/versions', () => {
  it('reports real server, database, system and build facts', async () => {
    const res = await request(t.app).get('/version');
    expect(res.status).toBe(200);
    expect(res.body.server.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(res.body.database).toMatchObject({ type: 'sqlite', database_name: ':memory:' });
    expect(res.body.database.version).toMatch(/^3\.\d+\.\d+$/);
    expect(res.body.system).toEqual({
      os: process.platform,
      architecture: process.arch,
      cpus: expect.any(Number),
    });
    expect(res.body.system.cpus).toBeGreaterThan(0);
    expect(res.body.build.runtime).toBe(`node ${process.version}`);
    expect(res.body.build.commit).toEqual(expect.any(String));
  });

  it('lists the supported API versions, newest first, with the current one', async () => {
    const res = await request(t.app).get('/api/versions');
    expect(res.status).toBe(200);
    expect(res.body.current).toBe(res.body.versions[0].version);
    expect(res.body.versions.map((v: { version: string }) => v.version)).toContain('1.0.3');
    for (const v of res.body.versions)
      expect(v).toEqual({ version: expect.any(String), releaseDate: expect.any(String), deprecated: false });
  });
});

describe('x-api-version negotiation', () => {
  it('says which version it served', async () => {
    expect((await request(t.app).get('/health')).headers['x-api-version-used']).toBe('1.1.0');
    expect(
      (await request(t.app).get('/health').set('x-api-version', '1.0.3')).headers['x-api-version-used'],
    ).toBe('1.0.3');
    expect(
      (await request(t.app).get('/health').set('x-api-version', '1.0.1')).headers['x-api-version-used'],
    ).toBe('1.0.0');
  });

  it.each(['abc', '1.0', '1.0.0.0', 'v1.0.0'])('rejects malformed %j with 400', async (value) => {
    expectProblem(
      await request(t.app).get('/health').set('x-api-version', value),
      400,
      'invalid_api_version',
    );
  });

  it('rejects an unsupported major with 406, even on unknown routes', async () => {
    expectProblem(
      await request(t.app).get('/version').set('x-api-version', '2.0.0'),
      406,
      'unsupported_api_version',
    );
    expectProblem(
      await request(t.app).get('/nope').set('x-api-version', '0.1.0'),
      406,
      'unsupported_api_version',
    );
  });
});

describe('problem+json for every error', () => {
  it('404 for unknown routes', async () => {
    expectProblem(await request(t.app).get('/no/such/route'), 404, 'not_found');
    expectProblem(await request(t.app).post('/sync/pulll').send({}), 404, 'not_found');
  });

  it('405 with Allow for a wrong method', async () => {
    const res = await request(t.app).delete('/health');
    expectProblem(res, 405, 'method_not_allowed');
    expect(res.headers.allow).toMatch(/GET/);
  });

  it('405 lists every method of every matching path (literal and templated)', async () => {
    const res = await request(t.app).post('/users/alice');
    expectProblem(res, 405, 'method_not_allowed');
    expect(res.headers.allow?.split(', ').sort()).toEqual(['DELETE', 'PATCH']);
    const create = await request(t.app).get('/users/create');
    expect(create.status).toBe(405);
    expect(create.headers.allow).toContain('POST');
  });

  it('prefers literal path segments over parameters', async () => {
    // POST /users/create is the create operation (401: protected), not a method error on /users/{username}.
    expectProblem(await request(t.app).post('/users/create').send({}), 401, 'unauthorized');
  });

  it('takes a path parameter spelled like a literal segment as the parameter (a user named create, an attachment named manifest)', async () => {
    // The validator matched /users/create and /attachments/manifest first and answered 405.
    const admin = { authorization: `Bearer ${await t.tokenFor('admin')}` };
    for (const username of ['create', 'change-password', 'reset-password']) {
      const created = await request(t.app)
        .post('/users/create')
        .set(admin)
        .send({ username, password: 'password-of-user', role: 'read-only' });
      expect(created.status).toBe(201);
      const refused = await request(t.app).patch(`/users/${username}`).set(admin).send({ role: 'owner' });
      expectProblem(refused, 400, 'validation_failed');
      expect(refused.body.instance).toBe(`/users/${username}`);
      const patched = await request(t.app)
        .patch(`/users/${username}`)
        .set(admin)
        .send({ role: 'read-write' });
      expect(patched.status).toBe(200);
      expect(patched.body).toMatchObject({ username, role: 'read-write' });
      expect((await request(t.app).delete(`/users/${username}`).set(admin)).status).toBe(200);
    }
    const writer = { authorization: `Bearer ${await t.tokenFor('read-write')}` };
    const put = await request(t.app)
      .put('/attachments/manifest')
      .set(writer)
      .attach('file', Buffer.from('named manifest'), 'manifest.txt');
    expect(put.status).toBe(200);
    const got = await request(t.app).get('/attachments/manifest').set(writer);
    expect(got.status).toBe(200);
    expect(got.text).toBe('named manifest');
    const manifest = await request(t.app)
      .post('/attachments/manifest')
      .set(writer)
      .send({ client_id: 'c', since_version: 0 });
    expect(manifest.status).toBe(200);
    expect(manifest.body.operations.map((o: { attachment_id: string }) => o.attachment_id)).toContain(
      'manifest',
    );
  });

  it('400 malformed_json for a broken JSON body', async () => {
    const res = await request(t.app)
      .post('/auth/login')
      .set('content-type', 'application/json')
      .send('{"username": "a",');
    expectProblem(res, 400, 'malformed_json');
  });

  it('400 for a JSON body that is not an object where one is required', async () => {
    const res = await request(t.app)
      .post('/auth/login')
      .set('content-type', 'application/json')
      .send('"just a string"');
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('400 validation_failed naming the field for a schema violation', async () => {
    const res = await request(t.app).post('/auth/login').send({ username: 'admin' });
    expectProblem(res, 400, 'validation_failed');
    expect(JSON.stringify(res.body.errors)).toMatch(/password/);
  });

  it('a request with no body and no content type: 400 naming what is missing, not 415; fine where the body is optional', async () => {
    const login = await request(t.app).post('/auth/login');
    expectProblem(login, 400, 'validation_failed');
    expect(JSON.stringify(login.body.errors)).toMatch(/username/);
    const token = await t.tokenFor('read-write');
    const pull = await request(t.app).post('/sync/pull').set('authorization', `Bearer ${token}`);
    expectProblem(pull, 400, 'validation_failed');
    expect(JSON.stringify(pull.body.errors)).toMatch(/client_id/);
    const upload = await request(t.app).put('/attachments/a.jpg').set('authorization', `Bearer ${token}`);
    expectProblem(upload, 400, 'validation_failed');
    expect(upload.body.detail).toMatch(/multipart\/form-data/);
    // The logout's body is optional: without one it ends all of the caller's sessions.
    await t.ctx.services.users.create('bodyless-user', 'password-of-user', 'read-only');
    const own = (await t.ctx.services.auth.login('bodyless-user', 'password-of-user', '127.0.0.1')).token;
    const logout = await request(t.app).post('/auth/logout').set('authorization', `Bearer ${own}`);
    expect(logout.status).toBe(200);
  });

  it('415 for a wrong content type', async () => {
    const res = await request(t.app)
      .post('/auth/login')
      .set('content-type', 'text/plain')
      .send('username=a&password=b');
    expectProblem(res, 415, 'unsupported_media_type');
    const form = await request(t.app)
      .post('/sync/push')
      .set('authorization', `Bearer ${await t.tokenFor('read-write')}`)
      .type('form')
      .send({ a: 1 });
    expectProblem(form, 415, 'unsupported_media_type');
    // Authentication is checked before the input: no token → 401 even for a wrong content type.
    expectProblem(await request(t.app).post('/sync/push').type('form').send({ a: 1 }), 401, 'unauthorized');
  });

  it('413 for an oversized JSON body, before it is parsed', async () => {
    const small = await createTestApp({ MAX_JSON_BODY_BYTES: '2048' });
    const res = await request(small.app)
      .post('/auth/login')
      .send({ username: 'a', password: 'x'.repeat(4096) });
    expectProblem(res, 413, 'payload_too_large');
    await small.close();
  });

  it('413 for a body over the default 16 MiB limit', async () => {
    const huge = JSON.stringify({
      client_id: 'c',
      transmission_id: crypto.randomUUID(),
      records: ['x'.repeat(17 * 1024 * 1024)],
    });
    const res = await request(t.app)
      .post('/sync/push')
      .set('authorization', `Bearer ${await t.tokenFor('read-write')}`)
      .set('content-type', 'application/json')
      .send(huge);
    expectProblem(res, 413, 'payload_too_large');
  });
});

describe('request ids', () => {
  it('echoes a sane X-Request-Id and replaces a hostile one', async () => {
    const echoed = await request(t.app).get('/nope').set('x-request-id', 'abc-123.X:y_z');
    expect(echoed.headers['x-request-id']).toBe('abc-123.X:y_z');
    expect(echoed.body.request_id).toBe('abc-123.X:y_z');
    const replaced = await request(t.app)
      .get('/health')
      .set('x-request-id', 'has spaces <and> "quotes"'.padEnd(200, 'x'));
    expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('logs every request, successful ones too, at info with its id (spec §0.7)', async () => {
    const lines: {
      msg: string;
      level: number;
      req?: { id: string; url: string };
      res?: { statusCode: number };
    }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const ctx = await createContext(loadConfig({ DB_CONNECTION: ':memory:', DATA_DIR: tempDir() }), logger);
    try {
      const app = createApp(ctx);
      const ok = await request(app).get('/health').set('x-request-id', 'logged-200');
      const missing = await request(app).get('/nope').set('x-request-id', 'logged-404');
      expect([ok.status, missing.status]).toEqual([200, 404]);
      for (const [id, status] of [
        ['logged-200', 200],
        ['logged-404', 404],
      ] as const) {
        const line = lines.find((l) => l.req?.id === id);
        expect(line).toMatchObject({ msg: 'request completed', level: 30, res: { statusCode: status } });
      }
    } finally {
      await ctx.orm.close();
    }
  });

  it('gives every request a fresh id', async () => {
    const a = await request(t.app).get('/health');
    const b = await request(t.app).get('/health');
    expect(a.headers['x-request-id']).not.toBe(b.headers['x-request-id']);
  });
});

describe('CORS', () => {
  it('answers a preflight from a configured origin with the negotiated headers', async () => {
    const res = await request(t.app)
      .options('/sync/push')
      .set('origin', 'https://field.example')
      .set('access-control-request-method', 'POST')
      .set('access-control-request-headers', 'authorization, content-type, idempotency-key');
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('https://field.example');
    expect(res.headers['access-control-allow-headers']).toMatch(/idempotency-key/);
    const actual = await request(t.app).get('/health').set('origin', 'https://field.example');
    expect(actual.headers['access-control-expose-headers']).toMatch(/x-api-version-used/);
  });

  it('lets browser apps send attachment digests and ranges, and read what the SDK needs back', async () => {
    const res = await request(t.app)
      .options('/attachments/photo.jpg')
      .set('origin', 'https://field.example')
      .set('access-control-request-method', 'PUT')
      .set('access-control-request-headers', 'authorization, x-content-sha256, content-digest, range');
    const allowed = String(res.headers['access-control-allow-headers']).split(',');
    expect(allowed).toEqual(expect.arrayContaining(['x-content-sha256', 'content-digest', 'range']));
    const actual = await request(t.app).get('/health').set('origin', 'https://field.example');
    const exposed = String(actual.headers['access-control-expose-headers']).split(',');
    expect(exposed).toEqual(expect.arrayContaining(['retry-after', 'content-range', 'etag']));
  });

  it('lets browser apps resume an event stream with Last-Event-ID', async () => {
    const res = await request(t.app)
      .options('/sync/events')
      .set('origin', 'https://field.example')
      .set('access-control-request-method', 'GET')
      .set('access-control-request-headers', 'authorization, last-event-id');
    expect(res.status).toBe(204);
    expect(String(res.headers['access-control-allow-headers']).split(',')).toContain('last-event-id');
  });

  it('OPTIONS: a route answers 204 with its methods in Allow; a path the server does not have is a 404 problem', async () => {
    const pull = await request(t.app).options('/sync/pull');
    expect(pull.status).toBe(204);
    expect(pull.headers.allow).toBe('POST, OPTIONS');
    const attachment = await request(t.app).options('/attachments/photo.jpg');
    expect(attachment.headers.allow?.split(', ').sort()).toEqual(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PUT']);
    for (const preflight of [false, true]) {
      let req = request(t.app).options('/no/such/route');
      if (preflight)
        req = req.set('origin', 'https://field.example').set('access-control-request-method', 'POST');
      const res = await req;
      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.code).toBe('not_found');
    }
  });

  it('grants nothing to an origin that is not configured', async () => {
    const res = await request(t.app).get('/health').set('origin', 'https://evil.example');
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('contract and docs', () => {
  it('serves openapi.yaml as YAML', async () => {
    const res = await request(t.app).get('/openapi.yaml');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/yaml/);
    expect(res.text).toBe(t.ctx.spec.text);
  });

  it('serves a human-readable docs page naming every operation', async () => {
    const res = await request(t.app).get('/docs');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    for (const { operation } of listOperations(t.ctx.spec))
      expect(res.text).toContain(`id="${operation.operationId}"`);
    expect(res.text).not.toMatch(/<script/i);
  });
});

describe('SQLite durability', () => {
  it('commits with synchronous = FULL, also when it reopens an existing WAL database', async () => {
    const dbDir = tempDir();
    const file = path.join(dbDir, 'durable.db');
    try {
      for (let start = 0; start < 2; start++) {
        const app = await createTestApp({ DB_CONNECTION: file });
        const [row] = await app.ctx.orm.em.getConnection().execute('pragma synchronous');
        expect(row).toEqual({ synchronous: 2 });
        await app.close();
      }
    } finally {
      rmSync(dbDir, { recursive: true, force: true });
    }
  });
});

describe('the validator’s route matching (patched until express-openapi-validator#1217 ships)', () => {
  it('looks the matcher up through the patched path-to-regexp, which compiles each route once', async () => {
    const here = createRequire(import.meta.url);
    const validatorRequire = createRequire(here.resolve('express-openapi-validator'));
    const module = validatorRequire('path-to-regexp') as {
      pathToRegexp: ((...args: unknown[]) => unknown) & { cached?: true };
    };
    expect(module.pathToRegexp.cached).toBe(true);
    const patched = module.pathToRegexp;
    const results: unknown[] = [];
    let calls = 0;
    module.pathToRegexp = Object.assign(
      (...args: unknown[]) => {
        calls++;
        const matcher = patched(...args);
        if (args[0] === '/users/:username') results.push(matcher);
        return matcher;
      },
      { cached: true as const },
    );
    try {
      const admin = `Bearer ${await t.tokenFor('admin')}`;
      for (let i = 0; i < 2; i++)
        expect((await request(t.app).delete('/users/nobody-here').set('authorization', admin)).status).toBe(
          404,
        );
      // The validator calls it on every request (so the patch is in its path), and gets the
      // same compiled matcher back each time.
      expect(calls).toBeGreaterThan(0);
      expect(results.length).toBeGreaterThanOrEqual(2);
      expect(new Set(results).size).toBe(1);
    } finally {
      module.pathToRegexp = patched;
    }
  });
});

import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { useTarget } from '../src/harness.ts';
import { adminToken, send } from '../src/http.ts';
import { expectProblem } from '../src/problem.ts';
import { rawRequest } from '../src/raw-http.ts';

const target = useTarget();

const postJson = (path: string, body: string, headers: Record<string, string> = {}) =>
  send(target, path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });

describe('problem+json', () => {
  it('404 for unknown routes, including near-misses and traversal-looking paths', async () => {
    for (const path of [
      '/nope',
      '/sync',
      '/sync/pull/extra',
      '/health/',
      '/..%2f..%2fetc%2fpasswd',
      '/users/a/b',
    ]) {
      const res = await send(target, path);
      await expectProblem(res, 404, 'not_found');
    }
  });

  it('405 with an Allow header for a wrong method', async () => {
    const res = await send(target, '/health', { method: 'POST' });
    await expectProblem(res, 405, 'method_not_allowed');
    expect(res.headers.get('allow')).toMatch(/GET/);
    await expectProblem(await send(target, '/auth/login'), 405, 'method_not_allowed');
  });

  it('400 malformed_json for broken JSON', async () => {
    for (const body of ['{', '{"username":', 'nul', '{"a":1}}', '\u0000']) {
      await expectProblem(await postJson('/auth/login', body), 400, 'malformed_json');
    }
  });

  it('400 malformed_body for a body whose Content-Encoding does not decode (it was a 500)', async () => {
    const token = await adminToken(target);
    const pull = (encoding: string, body: BodyInit) =>
      send(target, '/sync/pull', {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-encoding': encoding,
        },
        body,
      });
    for (const encoding of ['gzip', 'deflate', 'br']) {
      await expectProblem(await pull(encoding, '{"client_id":"x"}'), 400, 'malformed_body');
    }
    expect((await pull('gzip', gzipSync('{"client_id":"x"}'))).status).toBe(200);
  });

  it('small bodies for everything but push and pull: no decompression (415), at most 64 KiB (413)', async () => {
    // A 14 KB gzip body of nested arrays inflating to 14 MB held the event loop ~3 s on /auth/login.
    const bomb = gzipSync(`{"username":"zz","password":"yyyyyyyy","x":${'['.repeat(1e6)}${']'.repeat(1e6)}}`);
    const login = (headers: Record<string, string>, body: BodyInit) =>
      send(target, '/auth/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
    await expectProblem(await login({ 'content-encoding': 'gzip' }, bomb), 415, 'unsupported_media_type');
    const padded = `{"username":"nobody","password":"bbbbbbbb","pad":"${'x'.repeat(64 * 1024)}"}`;
    await expectProblem(await login({}, padded), 413, 'payload_too_large');
    await expectProblem(
      await login({}, '{"username":"nobody","password":"bbbbbbbb"}'),
      401,
      'invalid_credentials',
    );
  });

  it('a username no user can have (NUL) is an unknown user or 404, not a 500', async () => {
    await expectProblem(
      await postJson('/auth/login', '{"username":"a\\u0000b","password":"password9"}'),
      401,
      'invalid_credentials',
    );
    const admin = await adminToken(target);
    for (const [method, path, body] of [
      ['DELETE', '/users/alice%00', undefined],
      ['PATCH', '/users/alice%00', '{"role":"admin"}'],
      ['POST', '/users/reset-password', '{"username":"a\\u0000b","newPassword":"password9"}'],
    ] as const) {
      const res = await send(target, path, {
        method,
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        ...(body ? { body } : {}),
      });
      await expectProblem(res, 404, 'not_found');
    }
  });

  it('version cursors past 2^53 - 1 are 400, on every database (PostgreSQL gave 500)', async () => {
    const token = await adminToken(target);
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    for (const body of [
      '{"client_id":"x","since":{"version":1e20}}',
      '{"client_id":"x","since":{"version":9223372036854775807}}',
      '{"client_id":"x","after_change_id":1e19}',
    ]) {
      await expectProblem(
        await send(target, '/sync/pull', { method: 'POST', headers: auth, body }),
        400,
        'validation_failed',
      );
    }
    await expectProblem(
      await send(target, '/attachments/manifest', {
        method: 'POST',
        headers: auth,
        body: '{"client_id":"x","since_version":1e20}',
      }),
      400,
      'validation_failed',
    );
    for (const path of [
      '/dataexport/csv?since_version=100000000000000000000',
      '/sync/conflicts?after=100000000000000000000',
    ]) {
      await expectProblem(await send(target, path, { headers: auth }), 400, 'validation_failed');
    }
    const edge = await send(target, '/sync/pull', {
      method: 'POST',
      headers: auth,
      body: '{"client_id":"x","since":{"version":9007199254740991}}',
    });
    expect(edge.status).toBe(200);
  });

  it('integer query parameters are decimal digits: 1e1, 0x10, 5.0 are 400 naming the parameter', async () => {
    // JavaScript's number coercion read them as 10, 16 and 5; 1.0.3's Go server refused them.
    const auth = { authorization: `Bearer ${await adminToken(target)}` };
    for (const [path, parameter] of [
      ['/dataexport/csv?since_version=1e1', 'since_version'],
      ['/sync/conflicts?after=0x10', 'after'],
      ['/sync/clients?limit=5.0', 'limit'],
    ]) {
      const problem = await expectProblem(
        await send(target, path!, { headers: auth }),
        400,
        'validation_failed',
      );
      expect((problem.errors as { path: string }[]).map((e) => e.path)).toEqual([`/query/${parameter}`]);
    }
    const decimal = await send(target, '/sync/conflicts?after=010&limit=5', { headers: auth });
    expect(decimal.status).toBe(200);
  });

  it('400 validation_failed for an empty or wrong-typed body, listing the fields', async () => {
    const empty = await expectProblem(await postJson('/auth/login', '{}'), 400, 'validation_failed');
    expect(JSON.stringify(empty.errors)).toMatch(/username/);
    const wrong = await expectProblem(
      await postJson('/auth/login', '{"username": 5, "password": []}'),
      400,
      'validation_failed',
    );
    expect((wrong.errors as unknown[]).length).toBeGreaterThan(0);
    await expectProblem(await postJson('/auth/login', '[]'), 400, 'validation_failed');
  });

  it('a POST with no body, no Content-Length and no Content-Type (curl -X POST) is an empty JSON body: the 400 names the missing fields', async () => {
    // Written by hand: fetch and node:http both send `Content-Length: 0` for a POST without a
    // body, and that case was fine; `curl -X POST` sends no Content-Length at all, and the 400
    // then said only "must have required property 'body'".
    const bodyless = (path: string, token?: string) =>
      rawRequest(target.baseUrl, [
        `POST ${path} HTTP/1.1`,
        `Host: ${new URL(target.baseUrl).host}`,
        ...(token ? [`Authorization: Bearer ${token}`] : []),
        'Connection: close',
      ]) as Promise<{ status: number; body: { code?: string; errors?: unknown } }>;
    const login = await bodyless('/auth/login');
    expect(login.status).toBe(400);
    expect(login.body.code).toBe('validation_failed');
    expect(JSON.stringify(login.body.errors)).toMatch(/username/);
    const pull = await bodyless('/sync/pull', await adminToken(target));
    expect(pull.status).toBe(400);
    expect(JSON.stringify(pull.body.errors)).toMatch(/client_id/);
  });

  it('415 for a content type the operation does not take', async () => {
    for (const type of ['text/plain', 'application/xml', 'application/x-www-form-urlencoded']) {
      const res = await send(target, '/auth/login', {
        method: 'POST',
        headers: { 'content-type': type },
        body: 'x=1',
      });
      await expectProblem(res, 415, 'unsupported_media_type');
    }
  });

  it('413 for a body over the limit, without reading it all', async () => {
    const huge = `{"username":"${'a'.repeat(17 * 1024 * 1024)}","password":"x"}`;
    await expectProblem(await postJson('/auth/login', huge), 413, 'payload_too_large');
  });

  it('401 before anything else for a protected operation without a token', async () => {
    await expectProblem(await postJson('/sync/push', '{'), 401, 'unauthorized');
    await expectProblem(await send(target, '/users'), 401, 'unauthorized');
  });

  it('the server stays healthy after all of that', async () => {
    expect((await send(target, '/health')).status).toBe(200);
  });
});

describe('x-api-version', () => {
  it('reports the version used on every response, errors included', async () => {
    const ok = await send(target, '/health', { headers: { 'x-api-version': '1.0.3' } });
    expect(ok.headers.get('x-api-version-used')).toBe('1.0.3');
    const missing = await send(target, '/nope');
    expect(missing.headers.get('x-api-version-used')).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('serves the highest supported version not above the requested one', async () => {
    const res = await send(target, '/health', { headers: { 'x-api-version': '1.0.2' } });
    expect(res.headers.get('x-api-version-used')).toBe('1.0.0');
  });

  it('400 for malformed, 406 for an unsupported major', async () => {
    for (const v of ['one', '1.0', '1.0.0-rc1', ' ']) {
      const res = await send(target, '/health', { headers: { 'x-api-version': v } });
      await expectProblem(res, 400, 'invalid_api_version');
    }
    await expectProblem(
      await send(target, '/health', { headers: { 'x-api-version': '2.0.0' } }),
      406,
      'unsupported_api_version',
    );
  });
});

describe('X-Request-Id', () => {
  it('echoes a sane client id and generates one otherwise', async () => {
    const mine = await send(target, '/health', { headers: { 'x-request-id': 'field-device-42:abc' } });
    expect(mine.headers.get('x-request-id')).toBe('field-device-42:abc');
    const generated = await send(target, '/health', { headers: { 'x-request-id': 'x'.repeat(500) } });
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

import { describe, expect, inject, it } from 'vitest';
import { useTarget } from '../src/harness.ts';
import { send } from '../src/http.ts';

const target = useTarget();

describe('GET /health', () => {
  it('returns the JSON health with database and storage checks', async () => {
    const res = await send(target, '/health');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = await res.json();
    expect(body).toMatchObject({
      status: 'ok',
      version: expect.any(String),
      checks: { database: { status: 'ok' }, storage: { status: 'ok', free_bytes: expect.any(Number) } },
    });
    expect(new Date(body.timestamp).toString()).not.toBe('Invalid Date');
  });

  it('answers HEAD with GET’s status and headers, and no body', async () => {
    const res = await send(target, '/health', { method: 'HEAD' });
    const get = await send(target, '/health');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
    expect(res.headers.get('content-type')).toBe(get.headers.get('content-type'));
    expect(res.headers.get('cache-control')).toBe('no-store');
    // The same body but for its timestamp, whose length does not change.
    expect(res.headers.get('content-length')).toBe(String(Buffer.byteLength(await get.text())));
  });

  it('is public: a garbage token does not matter', async () => {
    const res = await send(target, '/health', { headers: { authorization: 'Bearer garbage' } });
    expect(res.status).toBe(200);
  });
});

describe('GET /version', () => {
  it('is public and reports real values', async () => {
    const res = await send(target, '/version');
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.server.version).toMatch(/^\d+\.\d+\.\d+/);
    // The suite runs once per database (SYNK_TEST_DB): make sure it really talks to that one.
    if (target.owned) expect(body.database.type).toBe(inject('pgUrl') ? 'postgresql' : 'sqlite');
    else expect(['sqlite', 'postgresql']).toContain(body.database.type);
    expect(body.database.version).toMatch(/^\d+\.\d+/);
    expect(body.database.database_name).toEqual(expect.any(String));
    expect(body.system.cpus).toBeGreaterThan(0);
    expect(body.system.os).toEqual(expect.any(String));
    expect(body.build.runtime).toMatch(/^node v\d+/);
  });
});

describe('GET /api/versions', () => {
  it('lists versions newest first and names the current one', async () => {
    const res = await send(target, '/api/versions');
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.versions.length).toBeGreaterThan(0);
    expect(body.current).toBe(body.versions[0].version);
    for (const v of body.versions) {
      expect(v.version).toMatch(/^\d+\.\d+\.\d+$/);
      expect(typeof v.deprecated).toBe('boolean');
      expect(v.releaseDate).toEqual(expect.any(String));
    }
  });
});

describe('contract and docs', () => {
  it('serves the OpenAPI document', async () => {
    const res = await send(target, '/openapi.yaml');
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^openapi: 3\./m);
    expect(text).toContain('operationId: syncPush');
  });

  it('serves a human-readable docs page', async () => {
    const res = await send(target, '/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toContain('/sync/push');
    expect(html).toContain('/app-bundle/manifest');
  });
});

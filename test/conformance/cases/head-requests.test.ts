import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { householdSchema, pushBundle, zipOf } from '../src/bundles.ts';
import { useTarget } from '../src/harness.ts';
import { adminToken, send, userWithRole } from '../src/http.ts';

/**
 * HEAD on every GET route (RFC 9110 §9.3.2): the same status and headers as GET, no body. Only
 * /health (tested with it) and /attachments/{id} declare a HEAD operation of their own; every
 * other GET route answers HEAD through its GET operation.
 */
const target = useTarget();

let admin: string;
let reader: string;
const attachmentId = 'head-check.bin';
const attachment = randomBytes(777);

beforeAll(async () => {
  admin = await adminToken(target);
  reader = (await userWithRole(target, 'read-only')).token;
  const writer = (await userWithRole(target, 'read-write')).token;
  for (const marker of ['one', 'two']) {
    const res = await pushBundle(
      target,
      admin,
      zipOf({ household: { schema: householdSchema({ [marker]: { type: 'string' } }) } }),
      { query: '?activate=true' },
    );
    expect(res.status).toBe(200);
  }
  const form = new FormData();
  form.append('file', new Blob([attachment], { type: 'application/octet-stream' }), 'a.bin');
  const uploaded = await send(target, `/attachments/${attachmentId}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${writer}` },
    body: form,
  });
  expect(uploaded.status).toBe(200);
});

const request = (method: 'GET' | 'HEAD', path: string, token: string | undefined, headers = {}) =>
  send(target, path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
  });

/** The headers a HEAD must repeat from its GET (the rest are per response: date, request id…). */
const COMPARED = [
  'content-type',
  'content-length',
  'etag',
  'cache-control',
  'x-is-preview',
  'content-disposition',
  'accept-ranges',
  'x-api-version-used',
];

describe('HEAD answers like GET without a body', () => {
  it.each([
    ['/app-bundle/manifest', 'reader'],
    ['/app-bundle/manifest?preview=true', 'reader'],
    ['/app-bundle/versions', 'reader'],
    ['/app-bundle/changes', 'reader'],
    ['/app-bundle/download/app/index.html', 'reader'],
    ['/app-bundle/download/app%2Findex.html', 'reader'],
    ['/app-bundle/download/forms/household/schema.json?preview=true', 'reader'],
    [`/attachments/${attachmentId}`, 'reader'],
    ['/users', 'admin'],
    ['/api/versions', 'anonymous'],
    ['/version', 'anonymous'],
  ])('%s', async (path, who) => {
    const token = who === 'admin' ? admin : who === 'reader' ? reader : undefined;
    const get = await request('GET', path, token);
    const getBody = Buffer.from(await get.arrayBuffer());
    const head = await request('HEAD', path, token);
    expect(head.status, await head.clone().text()).toBe(get.status);
    expect(get.status).toBe(200);
    expect(getBody.length).toBeGreaterThan(0);
    for (const name of COMPARED) {
      // /version reports live measurements: its length may differ.
      if (name === 'content-length' && path === '/version') continue;
      expect(head.headers.get(name), name).toBe(get.headers.get(name));
    }
    expect(await head.text()).toBe('');
  });

  it('download-zip: the same status and type, no body', async () => {
    const head = await request('HEAD', '/app-bundle/download-zip', reader);
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('application/zip');
    expect(head.headers.get('content-disposition')).toMatch(/^attachment; filename="app-bundle-\d{4}\.zip"$/);
    expect(await head.text()).toBe('');
  });

  it('conditional HEAD → 304 like GET', async () => {
    for (const path of [
      '/app-bundle/manifest',
      '/app-bundle/download/app/index.html',
      `/attachments/${attachmentId}`,
    ]) {
      const etag = (await request('GET', path, reader)).headers.get('etag')!;
      const head = await request('HEAD', path, reader, { 'if-none-match': etag });
      expect(head.status, path).toBe(304);
      expect(head.headers.get('etag')).toBe(etag);
    }
  });

  it('errors keep their status and headers: 401, 404, 400 (bad input), 405', async () => {
    expect((await request('HEAD', '/app-bundle/manifest', undefined)).status).toBe(401);
    const missing = await request('HEAD', '/app-bundle/download/app/nothing.html', reader);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await missing.text()).toBe('');
    const invalid = await request('HEAD', '/app-bundle/changes?target=abc', reader);
    expect(invalid.status).toBe(400);
    expect(await invalid.text()).toBe('');
    const notAllowed = await request('HEAD', '/sync/push', reader);
    expect(notAllowed.status).toBe(405);
    expect(notAllowed.headers.get('allow')).toBe('POST');
  });
});

import { createHash, randomBytes } from 'node:crypto';
import { createClient, type LocalFiles } from '@synk/sdk';
import { beforeAll, describe, expect, it } from 'vitest';
import { householdSchema, pushBundle, zipOf } from '../src/bundles.ts';
import { useTarget } from '../src/harness.ts';
import { adminToken, call, userWithRole } from '../src/http.ts';

const target = useTarget();

/** A local file store in memory, as an app would keep files on the device. */
function memoryFiles(): LocalFiles & { files: Map<string, Uint8Array> } {
  const files = new Map<string, Uint8Array>();
  return {
    files,
    hashOf: async (id) =>
      files.has(id) ? createHash('sha256').update(files.get(id)!).digest('hex') : undefined,
    write: async (id, bytes) => {
      files.set(id, bytes);
    },
    remove: async (id) => {
      files.delete(id);
    },
  };
}

let writer: { username: string; password: string };
beforeAll(async () => {
  writer = await userWithRole(target, 'read-write');
});

describe('SDK attachment helpers', () => {
  it('uploads with a hash, then a second device downloads only what it lacks and drops deleted ones', async () => {
    const a = createClient({ baseUrl: target.baseUrl, credentials: writer });
    await a.auth.login();
    const photo = randomBytes(3000);
    const sketch = randomBytes(500);
    expect((await a.attachments.upload('photo.jpg', photo, 'image/jpeg')).status).toBe('success');
    await a.attachments.upload('sketch.png', sketch, 'image/png');

    const b = createClient({ baseUrl: target.baseUrl, credentials: writer });
    await b.auth.login();
    const local = memoryFiles();
    local.files.set('sketch.png', sketch); // already on this device
    const first = await b.attachments.syncTo(local, 0);
    expect(first.downloaded).toEqual(['photo.jpg']);
    expect(Buffer.from(local.files.get('photo.jpg')!).equals(photo)).toBe(true);

    await call(target, 'DELETE', '/attachments/photo.jpg', { token: await adminToken(target) });
    const second = await b.attachments.syncTo(local, first.version);
    expect(second).toMatchObject({ downloaded: [], removed: ['photo.jpg'] });
    expect(local.files.has('photo.jpg')).toBe(false);
  });

  it('an upload of different bytes under an existing id is refused', async () => {
    const a = createClient({ baseUrl: target.baseUrl, credentials: writer });
    await a.auth.login();
    await a.attachments.upload('once.bin', Buffer.from('one'));
    await expect(a.attachments.upload('once.bin', Buffer.from('two'))).rejects.toMatchObject({ status: 409 });
  });
});

describe('SDK app bundle helpers', () => {
  it('caches the manifest by ETag and downloads only changed files', async () => {
    const admin = await adminToken(target);
    await pushBundle(target, admin, zipOf({ household: { schema: householdSchema() } }), { activate: true });
    const client = createClient({ baseUrl: target.baseUrl, credentials: writer });
    await client.auth.login();
    const local = memoryFiles();
    const all = await client.bundles.syncTo(local);
    expect(all).toContain('app/index.html');
    expect((await client.bundles.manifest()).changed).toBe(false);
    expect(await client.bundles.syncTo(local)).toEqual([]);

    await pushBundle(
      target,
      admin,
      zipOf({ household: { schema: householdSchema({ roof: { type: 'string' } }) } }),
      { activate: true },
    );
    expect(await client.bundles.syncTo(local)).toEqual(['forms/household/schema.json']);
    expect(
      JSON.parse(Buffer.from(local.files.get('forms/household/schema.json')!).toString()).properties.roof,
    ).toEqual({ type: 'string' });
  });
});

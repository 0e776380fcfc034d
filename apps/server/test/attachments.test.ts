import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobTooLarge, FileBlobStorage } from '../src/lib/blob-storage.ts';
import { createTestApp, type TestApp } from './helpers.ts';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ PUBLIC_URL: 'https://sync.example.org/base/' });
});
afterAll(() => t.close());

const blobPath = (bytes: string) => {
  const hash = createHash('sha256').update(bytes).digest('hex');
  return path.join(t.dataDir, 'attachments', hash.slice(0, 2), hash);
};

async function upload(id: string, bytes: string) {
  return request(t.app)
    .put(`/attachments/${id}`)
    .set('authorization', `Bearer ${await t.tokenFor('read-write')}`)
    .attach('file', Buffer.from(bytes), 'x.bin');
}

describe('attachments storage', () => {
  it('builds download URLs from PUBLIC_URL when it is set', async () => {
    expect((await upload('public.jpg', 'public')).status).toBe(200);
    const res = await request(t.app)
      .post('/attachments/manifest')
      .set('authorization', `Bearer ${await t.tokenFor('read-only')}`)
      .send({ client_id: 'c', since_version: 0 });
    expect(res.body.operations[0].download_url).toBe('https://sync.example.org/base/attachments/public.jpg');
  });

  it('stores identical bytes once, and removes them only when no live attachment uses them', async () => {
    await upload('one.bin', 'shared bytes');
    await upload('two.bin', 'shared bytes');
    expect(existsSync(blobPath('shared bytes'))).toBe(true);
    const admin = `Bearer ${await t.tokenFor('admin')}`;
    expect((await request(t.app).delete('/attachments/one.bin').set('authorization', admin)).status).toBe(
      200,
    );
    expect(existsSync(blobPath('shared bytes'))).toBe(true);
    expect((await request(t.app).delete('/attachments/two.bin').set('authorization', admin)).status).toBe(
      200,
    );
    expect(existsSync(blobPath('shared bytes'))).toBe(false);
  });

  it('the storage interface reads blobs whole and by inclusive range, and stats them', async () => {
    const storage = new FileBlobStorage(path.join(t.dataDir, 'blob-test'));
    const blob = await storage.put(Readable.from([Buffer.from('0123456789')]), { maxBytes: 100 });
    const read = async (range?: { start: number; end: number }) =>
      Buffer.concat(await storage.get(blob.hash, range).toArray()).toString();
    expect(await read()).toBe('0123456789');
    expect(await read({ start: 2, end: 4 })).toBe('234');
    expect(await storage.stat(blob.hash)).toEqual({ size: 10 });
    await storage.delete(blob.hash);
    expect(await storage.stat(blob.hash)).toBeUndefined();
    await expect(storage.put(Readable.from([Buffer.alloc(101)]), { maxBytes: 100 })).rejects.toBeInstanceOf(
      BlobTooLarge,
    );
  });

  it('leaves no temporary files behind after failed uploads', async () => {
    const res = await request(t.app)
      .put('/attachments/bad-digest.bin')
      .set('authorization', `Bearer ${await t.tokenFor('read-write')}`)
      .set('x-content-sha256', '0'.repeat(64))
      .attach('file', Buffer.from('content'), 'x.bin');
    expect(res.status).toBe(400);
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(path.join(t.dataDir, 'attachments', '.tmp'))).toEqual([]);
  });
});

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

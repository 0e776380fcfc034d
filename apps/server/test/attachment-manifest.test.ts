import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { components } from '@synk/contract';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MANIFEST_CHUNK_ROWS } from '../src/modules/attachments/manifest.ts';
import { SqliteSyncStore } from '../src/modules/sync/sqlite.store.ts';
import { createTestApp, type TestApp } from './helpers.ts';

/**
 * The manifest written as it is read (response validation off, as in production), over more
 * attachments than one chunk of rows: rows are written straight into the index, since thousands of
 * uploads would only slow the test.
 */
const COUNT = MANIFEST_CHUNK_ROWS * 2 + 500;

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ VALIDATE_RESPONSES: 'false' });
  const connection = t.ctx.orm.em.getConnection();
  for (let first = 1; first <= COUNT; first += 500) {
    const rows = Array.from({ length: Math.min(500, COUNT - first + 1) }, (_, i) => first + i);
    await connection.execute(
      `insert into attachments (attachment_id, hash, size, content_type, deleted, version, created_at, updated_at) values ${rows
        .map(
          (v) =>
            `('photo-${v}.jpg', '${'ab'.repeat(32)}', ${v}, 'image/jpeg', ${v % 10 === 0 ? 1 : 0}, ${v}, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')`,
        )
        .join(', ')}`,
    );
  }
  await connection.execute(`update sync_counter set value = ${COUNT} where id = 1`);
});
afterAll(() => t.close());

async function manifest(since: number, query = '') {
  const res = await request(t.app)
    .post(`/attachments/manifest${query}`)
    .set('authorization', `Bearer ${await t.tokenFor('read-only')}`)
    .send({ client_id: 'many', since_version: since });
  expect(res.status).toBe(200);
  return res.body as components['schemas']['AttachmentManifestResponse'];
}

const versions = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('POST /attachments/manifest over several chunks of rows', () => {
  it('answers every operation once, in version order, with totals over all of them', async () => {
    const all = await manifest(0);
    expect(all.operations.map((o) => o.version)).toEqual(versions(1, COUNT));
    const deletes = COUNT / 10;
    expect(all.operation_count).toEqual({ download: COUNT - deletes, delete: deletes });
    const sizes = versions(1, COUNT).filter((v) => v % 10 !== 0);
    expect(all.total_download_size).toBe(sizes.reduce((n, v) => n + v, 0));
    expect(all.operations[9]).toEqual({ operation: 'delete', attachment_id: 'photo-10.jpg', version: 10 });
    expect(all).toMatchObject({ current_version: COUNT, has_more: false, change_cutoff: COUNT });
  });

  it('pages with a limit above a chunk, from any starting version', async () => {
    const first = await manifest(7, `?limit=${MANIFEST_CHUNK_ROWS + 200}`);
    expect(first.operations.map((o) => o.version)).toEqual(versions(8, MANIFEST_CHUNK_ROWS + 207));
    expect(first).toMatchObject({ has_more: true, change_cutoff: MANIFEST_CHUNK_ROWS + 207 });
    const rest = await manifest(first.change_cutoff, '?limit=5000');
    expect(rest.operations.map((o) => o.version)).toEqual(versions(MANIFEST_CHUNK_ROWS + 208, COUNT));
    expect(rest).toMatchObject({ has_more: false, change_cutoff: COUNT });
  });
});

describe('a manifest whose database fails after the first chunk was sent', () => {
  it('is cut, never a short answer that parses as whole', async () => {
    const read = SqliteSyncStore.prototype.attachmentChanges;
    let calls = 0;
    const failing = vi.spyOn(SqliteSyncStore.prototype, 'attachmentChanges').mockImplementation(function (
      this: SqliteSyncStore,
      query,
    ) {
      calls += 1;
      return calls === 2 ? Promise.reject(new Error('disk I/O error')) : read.call(this, query);
    });
    try {
      const server = t.app.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const body = JSON.stringify({ client_id: 'many', since_version: 0 });
      const token = await t.tokenFor('read-only');
      // How the answer ended for the client: a clean end (whatever the body), or cut.
      const outcome = await new Promise<string>((resolve) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port: (server.address() as AddressInfo).port,
            method: 'POST',
            path: '/attachments/manifest',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(`ended with ${res.statusCode}`));
            res.on('error', () => resolve('cut'));
          },
        );
        req.on('error', () => resolve('cut'));
        req.end(body);
      });
      server.close();
      expect(calls).toBe(2);
      expect(outcome).toBe('cut');
    } finally {
      failing.mockRestore();
    }
  });
});

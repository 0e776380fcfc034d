import { createHash } from 'node:crypto';
import { existsSync, readdirSync, rmSync, truncateSync } from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
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

async function upload(id: string, bytes: string, contentType?: string) {
  return request(t.app)
    .put(`/attachments/${id}`)
    .set('authorization', `Bearer ${await t.tokenFor('read-write')}`)
    .attach('file', Buffer.from(bytes), { filename: 'x.bin', ...(contentType ? { contentType } : {}) });
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

  it('serves uploads as sandboxed documents, never sniffed, and active types (HTML, SVG, XML, scripts) as downloads', async () => {
    const reader = `Bearer ${await t.tokenFor('read-only')}`;
    const cases: [id: string, declared: string | undefined, disposition: 'inline' | 'attachment'][] = [
      ['page.html', 'text/html', 'attachment'],
      ['page.bin', 'text/html', 'attachment'], // the declared type wins over the extension
      ['drawing.svg', undefined, 'attachment'],
      ['drawing.png', 'image/svg+xml', 'attachment'],
      ['page.xhtml', 'application/xhtml+xml', 'attachment'],
      ['data.xml', 'text/xml', 'attachment'],
      ['code.js', 'text/javascript', 'attachment'],
      ['photo.jpg', undefined, 'inline'],
      ['clip.mp4', undefined, 'inline'],
      ['notes.txt', 'text/plain', 'inline'],
      ['scan.pdf', undefined, 'inline'],
    ];
    for (const [id, declared, disposition] of cases) {
      expect((await upload(id, `<svg onload="alert(1)"> ${id}`, declared)).status, id).toBe(200);
      for (const method of ['get', 'head'] as const) {
        const res = await request(t.app)[method](`/attachments/${id}`).set('authorization', reader);
        expect(res.status, `${method} ${id}`).toBe(200);
        expect(res.headers['content-security-policy'], `${method} ${id}`).toBe("default-src 'none'; sandbox");
        expect(res.headers['x-content-type-options'], `${method} ${id}`).toBe('nosniff');
        expect(res.headers['content-disposition'], `${method} ${id}`).toBe(
          `${disposition}; filename="${id}"`,
        );
      }
    }
  });

  it('a part sent without a Content-Type gets the type of its extension, not the multipart default text/plain', async () => {
    // As Python's requests and other raw multipart writers send a file: no Content-Type on the part.
    const bareUpload = async (id: string, filename: string) =>
      request(t.app)
        .put(`/attachments/${id}`)
        .set('authorization', `Bearer ${await t.tokenFor('read-write')}`)
        .set('content-type', 'multipart/form-data; boundary=b0und')
        .send(
          `--b0und\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\n\r\n${id}\r\n--b0und--\r\n`,
        );
    const reader = `Bearer ${await t.tokenFor('read-only')}`;
    const cases: [id: string, filename: string, type: string][] = [
      ['bare-photo.jpg', 'photo.jpg', 'image/jpeg'],
      ['bare-scan', 'scan.pdf', 'application/pdf'],
      ['bare-note', 'note', 'text/plain'],
    ];
    for (const [id, filename, type] of cases) {
      expect((await bareUpload(id, filename)).status, id).toBe(200);
      const res = await request(t.app).head(`/attachments/${id}`).set('authorization', reader);
      expect(res.headers['content-type'], id).toBe(type);
    }
  });

  it('Range as RFC 9110 reads it: a suffix longer than the file is all of it, the unit in any case, empty list elements', async () => {
    const bytes = '0123456789';
    expect((await upload('ranged.txt', bytes)).status).toBe(200);
    const reader = `Bearer ${await t.tokenFor('read-only')}`;
    const get = (range: string) =>
      request(t.app).get('/attachments/ranged.txt').set('authorization', reader).set('range', range);
    for (const [range, start, end] of [
      ['bytes=-50', 0, 9],
      ['bytes=-10', 0, 9],
      ['bytes=-3', 7, 9],
      ['BYTES=2-4', 2, 4],
      ['bytes=2-4,', 2, 4],
      ['bytes= 2-4 , ', 2, 4],
      ['bytes=2-4, 50-60', 2, 4], // the only satisfiable one
      ['bytes=8-99999999999999999999', 8, 9],
    ] as const) {
      const res = await get(range);
      expect(res.status, range).toBe(206);
      expect(res.headers['content-range'], range).toBe(`bytes ${start}-${end}/10`);
      expect(res.text, range).toBe(bytes.slice(start, end + 1));
    }
    for (const range of ['bytes=-0', 'bytes=10-', 'bytes=50-60,70-', 'bytes=5-2']) {
      const res = await get(range);
      expect(res.status, range).toBe(416);
      expect(res.headers['content-range'], range).toBe('bytes */10');
      expect(res.body.code, range).toBe('range_not_satisfiable');
    }
    for (const range of ['bytes=0-1,3-4', 'items=0-1', 'bytes=', 'bytes=--1', 'bytes=a-b', 'bytes 0-1']) {
      const res = await get(range);
      expect(res.status, range).toBe(200);
      expect(res.text, range).toBe(bytes);
    }
  });

  it('a suffix range of an empty file is the empty file (RFC 9110 §14.1.1: satisfiable), any other range 416', async () => {
    expect((await upload('empty-ranged.txt', '')).status).toBe(200);
    const reader = `Bearer ${await t.tokenFor('read-only')}`;
    const get = (range: string) =>
      request(t.app).get('/attachments/empty-ranged.txt').set('authorization', reader).set('range', range);
    for (const range of ['bytes=-1', 'bytes=-500', 'bytes=0-5,-10']) {
      const res = await get(range);
      expect(res.status, range).toBe(200);
      expect(res.headers['content-length'], range).toBe('0');
    }
    for (const range of ['bytes=0-', 'bytes=-0', 'bytes=0-0']) {
      const res = await get(range);
      expect(res.status, range).toBe(416);
      expect(res.headers['content-range'], range).toBe('bytes */0');
    }
  });

  it('a conditional HEAD answers 304 like GET (RFC 9110 §13.1.2)', async () => {
    expect((await upload('conditional-head.bin', 'conditional head')).status).toBe(200);
    const reader = `Bearer ${await t.tokenFor('read-only')}`;
    const etag = (await request(t.app).head('/attachments/conditional-head.bin').set('authorization', reader))
      .headers.etag as string;
    for (const value of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const res = await request(t.app)
        .head('/attachments/conditional-head.bin')
        .set('authorization', reader)
        .set('if-none-match', value);
      expect(res.status, value).toBe(304);
      expect(res.headers.etag).toBe(etag);
    }
    const other = await request(t.app)
      .head('/attachments/conditional-head.bin')
      .set('authorization', reader)
      .set('if-none-match', '"other"');
    expect(other.status).toBe(200);
    expect(other.headers['content-length']).toBe('16');
  });

  it('Content-Digest without its = padding is verified (RFC 8941 §4.2.7); with X-Content-SHA256 both must agree', async () => {
    const bytes = 'digest me';
    const digest = createHash('sha256').update(bytes).digest();
    const other = createHash('sha256').update('something else').digest();
    const put = (id: string, headers: Record<string, string>) =>
      t
        .tokenFor('read-write')
        .then((token) =>
          request(t.app)
            .put(`/attachments/${id}`)
            .set('authorization', `Bearer ${token}`)
            .set(headers)
            .attach('file', Buffer.from(bytes), 'x.bin'),
        );
    const unpadded = digest.toString('base64').replace(/=+$/, '');
    expect((await put('unpadded.bin', { 'content-digest': `sha-256=:${unpadded}:` })).status).toBe(200);
    const wrongUnpadded = other.toString('base64').replace(/=+$/, '');
    const wrong = await put('unpadded-wrong.bin', { 'content-digest': `sha-256=:${wrongUnpadded}:` });
    expect(wrong.body.code).toBe('digest_mismatch');

    const both = (contentDigest: Buffer) => ({
      'x-content-sha256': digest.toString('hex'),
      'content-digest': `sha-256=:${contentDigest.toString('base64')}:`,
    });
    expect((await put('both-agree.bin', both(digest))).status).toBe(200);
    const disagree = await put('both-disagree.bin', both(other));
    expect(disagree.status).toBe(400);
    expect(disagree.body.code).toBe('digest_mismatch');
    const reader = `Bearer ${await t.tokenFor('read-only')}`;
    expect(
      (await request(t.app).head('/attachments/both-disagree.bin').set('authorization', reader)).status,
    ).toBe(404);
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

  it('a live attachment whose file is missing answers a problem (500 blob_missing), not a dropped connection', async () => {
    const bytes = 'bytes that will vanish';
    expect((await upload('vanished.bin', bytes)).status).toBe(200);
    rmSync(blobPath(bytes));
    const reader = `Bearer ${await t.tokenFor('read-only')}`;
    for (const range of [undefined, 'bytes=0-3']) {
      const get = request(t.app).get('/attachments/vanished.bin').set('authorization', reader);
      const res = await (range ? get.set('range', range) : get);
      expect(res.status).toBe(500);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.headers['content-range']).toBeUndefined();
      expect(res.headers.etag).toBeUndefined();
      expect(res.body).toMatchObject({ status: 500, code: 'blob_missing' });
    }
    const head = await request(t.app).head('/attachments/vanished.bin').set('authorization', reader);
    expect(head.status).toBe(500);

    // A file cut short is found before anything is sent, so that is a problem too.
    const short = 'bytes that will be cut short';
    expect((await upload('truncated.bin', short)).status).toBe(200);
    truncateSync(blobPath(short), 0);
    const cut = await request(t.app).get('/attachments/truncated.bin').set('authorization', reader);
    expect(cut.status).toBe(500);
    expect(cut.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(cut.headers.etag).toBeUndefined();
    expect(cut.body).toMatchObject({ status: 500, code: 'blob_damaged' });
    expect(
      (await request(t.app).head('/attachments/truncated.bin').set('authorization', reader)).status,
    ).toBe(500);
  });

  it('the storage interface stages, publishes, reads whole and by inclusive range, stats and deletes blobs', async () => {
    const root = path.join(t.dataDir, 'blob-test');
    const storage = new FileBlobStorage(root);
    const blob = await storage.stage(Readable.from([Buffer.from('0123456789')]), { maxBytes: 100 });
    expect(await storage.stat(blob.hash)).toBeUndefined(); // staged, not yet visible
    await blob.publish();
    await blob.discard(); // after publish: nothing to do
    const read = async (range?: { start: number; end: number }) => {
      const reader = await storage.open(blob.hash);
      const sink = new PassThrough();
      const chunks = sink.toArray();
      await reader!.copyTo(sink, range);
      sink.end();
      await reader!.close();
      return Buffer.concat(await chunks).toString();
    };
    expect(await read()).toBe('0123456789');
    expect(await read({ start: 2, end: 4 })).toBe('234');
    expect(await storage.stat(blob.hash)).toEqual({ size: 10 });
    await storage.delete(blob.hash);
    expect(await storage.stat(blob.hash)).toBeUndefined();
    expect(await storage.open(blob.hash)).toBeUndefined();
    const discarded = await storage.stage(Readable.from([Buffer.from('never published')]), { maxBytes: 100 });
    await discarded.discard();
    expect(await storage.stat(discarded.hash)).toBeUndefined();
    await expect(storage.stage(Readable.from([Buffer.alloc(101)]), { maxBytes: 100 })).rejects.toBeInstanceOf(
      BlobTooLarge,
    );
    expect(readdirSync(path.join(root, '.tmp'))).toEqual([]);
  });

  it('leaves no temporary files behind after failed uploads', async () => {
    const res = await request(t.app)
      .put('/attachments/bad-digest.bin')
      .set('authorization', `Bearer ${await t.tokenFor('read-write')}`)
      .set('x-content-sha256', '0'.repeat(64))
      .attach('file', Buffer.from('content'), 'x.bin');
    expect(res.status).toBe(400);
    expect(readdirSync(path.join(t.dataDir, 'attachments', '.tmp'))).toEqual([]);
  });
});

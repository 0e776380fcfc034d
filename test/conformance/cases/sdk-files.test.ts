import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient, type LocalFiles } from '@synk/sdk';
import { DirectoryFiles } from '@synk/sdk/node';
import { beforeAll, describe, expect, it } from 'vitest';
import { householdSchema, pushBundle, zipOf } from '../src/bundles.ts';
import { useTarget } from '../src/harness.ts';
import { adminToken, call, send, userWithRole } from '../src/http.ts';

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

  it('reads the attachment manifest page by page, applying each before asking for the next', async () => {
    const a = createClient({ baseUrl: target.baseUrl, credentials: writer });
    await a.auth.login();
    const start = (
      await call(target, 'POST', '/attachments/manifest', {
        token: await adminToken(target),
        body: { client_id: 'probe', since_version: Number.MAX_SAFE_INTEGER },
      })
    ).body.current_version as number;
    const ids = Array.from({ length: 5 }, (_, i) => `paged-${i}.bin`);
    for (const id of ids) await a.attachments.upload(id, randomBytes(100));

    const manifests: string[] = [];
    const local = memoryFiles();
    const written: number[] = [];
    const b = createClient({
      baseUrl: target.baseUrl,
      credentials: writer,
      fetch: (input: RequestInfo | URL, init?: RequestInit) => {
        const url = new URL(input instanceof Request ? input.url : String(input));
        // How many files were written when each page was asked for.
        if (url.pathname === '/attachments/manifest') {
          manifests.push(url.search);
          written.push(local.files.size);
        }
        return fetch(input, init);
      },
    });
    await b.auth.login();
    const result = await b.attachments.syncTo(local, start, { pageSize: 2 });
    expect(result.downloaded).toEqual(ids);
    expect(result.version).toBe(start + ids.length);
    expect(manifests).toEqual(['?limit=2', '?limit=2', '?limit=2']);
    expect(written).toEqual([0, 2, 4]);
  });

  it('a 40 MiB attachment is streamed into a directory of local files, with its exact bytes', async () => {
    const a = createClient({ baseUrl: target.baseUrl, credentials: writer });
    await a.auth.login();
    const survey = randomBytes(40 * 1024 * 1024);
    await a.attachments.upload('survey.tif', survey, 'image/tiff');

    const b = createClient({ baseUrl: target.baseUrl, credentials: writer });
    await b.auth.login();
    const dir = mkdtempSync(path.join(tmpdir(), 'synk-conformance-files-'));
    const wholeWrites: string[] = [];
    const local = new (class extends DirectoryFiles {
      override async write(name: string, bytes: Uint8Array): Promise<void> {
        wholeWrites.push(name);
        await super.write(name, bytes);
      }
    })(dir);
    const result = await b.attachments.syncTo(local, 0);
    expect(result.downloaded).toContain('survey.tif');
    expect(result.failed).toEqual([]);
    expect(wholeWrites).toEqual([]);
    expect(readFileSync(path.join(dir, 'survey.tif')).equals(survey)).toBe(true);
    expect(readdirSync(dir).filter((name) => !result.downloaded.includes(name))).toEqual([]);
  });

  it('reports upload progress chunk by chunk, and the server stores the exact bytes', async () => {
    const a = createClient({ baseUrl: target.baseUrl, credentials: writer });
    await a.auth.login();
    const video = randomBytes(1024 * 1024 + 123);
    const seen: { id: string; loaded: number; total: number }[] = [];
    a.on('upload:progress', (event) => seen.push(event));
    await a.attachments.upload('clip.mp4', video, 'video/mp4');
    expect(seen.length).toBeGreaterThan(16); // 64 KiB chunks
    expect(seen.every((e) => e.id === 'clip.mp4' && e.total === video.length)).toBe(true);
    const loaded = seen.map((e) => e.loaded);
    expect(loaded[0]).toBe(0);
    expect(loaded.at(-1)).toBe(video.length);
    expect(loaded.every((n, i) => i === 0 || n > loaded[i - 1]!)).toBe(true);
    const back = await send(target, '/attachments/clip.mp4', {
      headers: { authorization: `Bearer ${(await a.auth.tokens())!.token}` },
    });
    expect(Buffer.from(await back.arrayBuffer()).equals(video)).toBe(true);
  });

  it('an upload can be cancelled with an AbortSignal, and nothing is stored', async () => {
    const a = createClient({ baseUrl: target.baseUrl, credentials: writer });
    await a.auth.login();
    const controller = new AbortController();
    a.on('upload:progress', ({ loaded }) => {
      if (loaded > 256 * 1024) controller.abort();
    });
    await expect(
      a.attachments.upload('cancelled.bin', randomBytes(8 * 1024 * 1024), undefined, {
        signal: controller.signal,
      }),
    ).rejects.toThrow(/abort/i);
    const token = (await a.auth.tokens())!.token;
    await expect
      .poll(
        async () =>
          (
            await send(target, '/attachments/cancelled.bin', {
              method: 'HEAD',
              headers: { authorization: `Bearer ${token}` },
            })
          ).status,
      )
      .toBe(404);
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

import { createHash } from 'node:crypto';
import { loopbackServer } from '@synk/test-support/hooks';
import { describe, expect, it } from 'vitest';
import { createClient } from '../src/client.ts';
import { ApiError } from '../src/errors.ts';
import type { LocalFiles } from '../src/files.ts';
import { MemoryStorage } from '../src/storage.ts';

const session = { token: 'access', refreshToken: 'refresh', expiresAt: 4_000_000_000 };
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Local files that only record what they were asked to do. */
function recordingFiles(): LocalFiles & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    hashOf: async () => undefined,
    write: async (name, bytes) => {
      calls.push(`write ${name} ${Buffer.from(bytes).toString()}`);
    },
    remove: async (name) => {
      calls.push(`remove ${name}`);
    },
  };
}

/** Local files that take downloads as streams, and record whether one ever came whole instead. */
function streamingFiles(): LocalFiles & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    hashOf: async () => undefined,
    write: async (name, bytes) => {
      calls.push(`whole ${name} ${Buffer.from(bytes).toString()}`);
    },
    writeStream: async (name, body) => {
      const hash = createHash('sha256');
      let text = '';
      const reader = body.getReader();
      for (let next = await reader.read(); !next.done; next = await reader.read()) {
        hash.update(next.value);
        text += Buffer.from(next.value).toString();
      }
      calls.push(`stream ${name} ${text}`);
      return hash.digest('hex');
    },
    remove: async (name) => {
      calls.push(`remove ${name}`);
    },
  };
}

/**
 * A server that answers as a hostile or broken one (or a proxy in front of a good one) would: the
 * manifests name what `manifest` holds, and every download is answered with `download`.
 */
const answers = {
  bundlePaths: [] as string[],
  /** The size the bundle manifest gives each file (whatever `download` is). */
  bundleFileSize: 4,
  attachmentIds: [] as string[],
  download: '',
  /** Downloads answered with a server fault (a blob damaged on the server's disk), by URL. */
  damaged: [] as string[],
};
const server = loopbackServer(async (req, res) => {
  for await (const _ of req);
  const json = (body: unknown) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  if (req.method === 'PUT') {
    // A reverse proxy's own refusal (nginx's client_max_body_size), an HTML page.
    res
      .writeHead(413, { 'content-type': 'text/html' })
      .end('<html><body><h1>413 Request Entity Too Large</h1></body></html>');
  } else if (req.url === '/app-bundle/manifest') {
    json({
      version: '0001',
      hash: 'h',
      generatedAt: new Date().toISOString(),
      files: answers.bundlePaths.map((path) => ({
        path,
        size: answers.bundleFileSize,
        hash: sha256('good'),
        mimeType: 'text/plain',
        modTime: new Date().toISOString(),
      })),
    });
  } else if (req.url?.startsWith('/attachments/manifest')) {
    // A 1.0.3 server: no paging (`?limit` ignored, no `has_more`), so the whole manifest is one page.
    json({
      current_version: 2,
      operations: answers.attachmentIds.map((id, i) => ({
        operation: i === 0 ? 'delete' : 'download',
        attachment_id: id,
        version: i + 1,
        hash: sha256('good'),
      })),
      total_download_size: 0,
      operation_count: { download: answers.attachmentIds.length - 1, delete: 1 },
    });
  } else if (answers.damaged.includes(req.url ?? ''))
    res
      .writeHead(500, { 'content-type': 'application/problem+json' })
      .end(JSON.stringify({ status: 500, code: 'blob_damaged', detail: 'The stored content is damaged' }));
  else res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(answers.download);
});
const client = (storage?: MemoryStorage) =>
  createClient({
    baseUrl: server.base,
    tokens: session,
    retry: { retries: 0 },
    ...(storage ? { storage } : {}),
  });

describe('attachments.upload', () => {
  it('rejects with an ApiError of the status when the refusal is not JSON (a proxy’s HTML page)', async () => {
    const error = await client()
      .attachments.upload('a.bin', new Uint8Array([1, 2, 3]))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 413, problem: undefined });
  });
});

describe('bundles.syncTo', () => {
  it('writes a file only when its bytes have the hash of the manifest', async () => {
    answers.bundlePaths = ['app/index.html'];
    const local = recordingFiles();
    answers.download = 'goo'; // cut short on the way
    await expect(client().bundles.syncTo(local)).rejects.toThrow(
      'app bundle file app/index.html arrived corrupted',
    );
    expect(local.calls).toEqual([]);
    answers.download = 'good';
    expect(await client().bundles.syncTo(local)).toEqual(['app/index.html']);
    expect(local.calls).toEqual(['write app/index.html good']);
  });

  it('removes the files of the bundle synced before that the new one no longer has, also after a restart', async () => {
    answers.download = 'good';
    const storage = new MemoryStorage();
    const local = recordingFiles();
    answers.bundlePaths = ['app/index.html', 'forms/retired/schema.json'];
    await client(storage).bundles.syncTo(local);
    answers.bundlePaths = ['app/index.html', 'forms/new/schema.json'];
    local.calls.length = 0;
    expect(await client(storage).bundles.syncTo(local)).toEqual(['app/index.html', 'forms/new/schema.json']);
    expect(local.calls).toEqual([
      'write app/index.html good',
      'write forms/new/schema.json good',
      'remove forms/retired/schema.json',
    ]);
  });

  it('writes nothing of a new bundle until all its changed files have arrived', async () => {
    answers.bundlePaths = ['forms/a/schema.json', 'forms/a/ui.json'];
    answers.download = 'good';
    answers.damaged = ['/app-bundle/download/forms/a/ui.json'];
    const local = recordingFiles();
    try {
      await expect(client().bundles.syncTo(local)).rejects.toThrow('The stored content is damaged');
      expect(local.calls).toEqual([]);
    } finally {
      answers.damaged = [];
    }
    expect(await client().bundles.syncTo(local)).toEqual(['forms/a/schema.json', 'forms/a/ui.json']);
    expect(local.calls).toEqual(['write forms/a/schema.json good', 'write forms/a/ui.json good']);
  });

  it('works as a function of its own, passed around without its object (a callback, a destructured helper)', async () => {
    answers.bundlePaths = ['app/index.html'];
    answers.download = 'good';
    const local = recordingFiles();
    const { syncTo } = client().bundles;
    expect(await syncTo(local)).toEqual(['app/index.html']);
    expect(local.calls).toEqual(['write app/index.html good']);
  });

  it('holds a change it can hold and writes it whole, and streams one too large to hold', async () => {
    answers.bundlePaths = ['forms/a/schema.json', 'forms/a/ui.json'];
    answers.download = 'good';
    const held = streamingFiles();
    expect(await client().bundles.syncTo(held)).toEqual(['forms/a/schema.json', 'forms/a/ui.json']);
    expect(held.calls).toEqual(['whole forms/a/schema.json good', 'whole forms/a/ui.json good']);

    answers.bundlePaths = ['app/index.html', 'app/video.mp4'];
    answers.bundleFileSize = 40 * 1024 * 1024;
    const streamed = streamingFiles();
    try {
      expect(await client().bundles.syncTo(streamed)).toEqual(['app/index.html', 'app/video.mp4']);
    } finally {
      answers.bundleFileSize = 4;
    }
    // Not held, a file read whole would cost its size in memory for nothing.
    expect(streamed.calls).toEqual(['stream app/index.html good', 'stream app/video.mp4 good']);
  });

  it('can be cancelled with an AbortSignal, as every other request', async () => {
    answers.bundlePaths = ['app/index.html'];
    answers.download = 'good';
    const local = recordingFiles();
    const c = client();
    const controller = new AbortController();
    controller.abort();
    await expect(c.bundles.syncTo(local, { signal: controller.signal })).rejects.toThrow(/abort/i);
    await expect(c.bundles.manifest({ signal: controller.signal })).rejects.toThrow(/abort/i);
    expect(local.calls).toEqual([]);
  });

  it.each([
    ['../../.bashrc'],
    ['app/../../x'],
    ['/etc/hosts'],
    ['app\\..\\..\\x'],
    ['C:/x'],
    ['app//x'],
    ['app/'],
  ])('refuses a manifest naming %s before writing anything', async (unsafe) => {
    answers.bundlePaths = ['app/index.html', unsafe];
    answers.download = 'good';
    const local = recordingFiles();
    await expect(client().bundles.syncTo(local)).rejects.toThrow('not a safe relative path');
    expect(local.calls).toEqual([]);
  });
});

describe('attachments.syncTo', () => {
  it.each([['../../.bashrc'], ['..'], ['a/b'], ['a\\b'], ['']])(
    'refuses a manifest naming the attachment %j before removing or writing anything',
    async (unsafe) => {
      answers.attachmentIds = ['old.jpg', 'new.jpg', unsafe];
      answers.download = 'good';
      const local = recordingFiles();
      await expect(client().attachments.syncTo(local)).rejects.toThrow('not a safe file name');
      expect(local.calls).toEqual([]);
    },
  );

  it('goes on past an attachment the server cannot give, and returns a version that has it asked for again', async () => {
    answers.attachmentIds = ['old.jpg', 'broken.jpg', 'new.jpg'];
    answers.damaged = ['/attachments/broken.jpg'];
    answers.download = 'good';
    const local = recordingFiles();
    try {
      const result = await client().attachments.syncTo(local);
      // Every attachment after it would otherwise never arrive: each sync stopped at the same one.
      expect(result).toMatchObject({ downloaded: ['new.jpg'], removed: ['old.jpg'], version: 1 });
      expect(result.failed).toEqual([{ id: 'broken.jpg', error: expect.any(ApiError) }]);
      expect(result.failed[0]?.error).toMatchObject({ status: 500 });
      expect(local.calls).toEqual(['remove old.jpg', 'write new.jpg good']);
    } finally {
      answers.damaged = [];
    }
  });

  it('hands each download to local files that take a stream, never whole', async () => {
    answers.attachmentIds = ['old.jpg', 'new.jpg', 'other.jpg'];
    answers.download = 'good';
    const local = streamingFiles();
    expect(await client().attachments.syncTo(local)).toEqual({
      downloaded: ['new.jpg', 'other.jpg'],
      removed: ['old.jpg'],
      failed: [],
      version: 2,
    });
    expect(local.calls).toEqual(['remove old.jpg', 'stream new.jpg good', 'stream other.jpg good']);
  });

  it('lists a streamed download whose bytes lack the manifest’s hash in failed, and goes on', async () => {
    answers.attachmentIds = ['old.jpg', 'new.jpg'];
    answers.download = 'goo'; // cut short on the way
    const local = streamingFiles();
    const result = await client().attachments.syncTo(local);
    expect(result).toMatchObject({ downloaded: [], removed: ['old.jpg'], version: 1 });
    expect(result.failed).toEqual([{ id: 'new.jpg', error: expect.any(Error) }]);
    expect(String(result.failed[0]?.error)).toContain('attachment new.jpg arrived corrupted');
    expect(local.calls).toEqual(['remove old.jpg', 'stream new.jpg goo']);
  });

  it('applies a manifest of safe names', async () => {
    answers.attachmentIds = ['old.jpg', 'new.jpg'];
    answers.download = 'good';
    const local = recordingFiles();
    expect(await client().attachments.syncTo(local)).toEqual({
      downloaded: ['new.jpg'],
      removed: ['old.jpg'],
      failed: [],
      version: 2,
    });
    expect(local.calls).toEqual(['remove old.jpg', 'write new.jpg good']);
  });
});

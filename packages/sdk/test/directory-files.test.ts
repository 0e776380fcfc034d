import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loopbackServer } from '@synk/test-support/hooks';
import { describe, expect, it } from 'vitest';
import { createClient } from '../src/client.ts';
import { DirectoryFiles } from '../src/node.ts';

const session = { token: 'access', refreshToken: 'refresh', expiresAt: 4_000_000_000 };
const MiB = 1024 * 1024;
const SIZE = 48 * MiB;

/** 1 MiB of random bytes, numbered: the download is made of them, generated as it is sent. */
const block = randomBytes(MiB);
function chunk(index: number): Buffer {
  const numbered = Buffer.from(block);
  numbered.writeUInt32BE(index);
  return numbered;
}
const expectedHash = (() => {
  const hash = createHash('sha256');
  for (let i = 0; i < SIZE / MiB; i++) hash.update(chunk(i));
  return hash.digest('hex');
})();

/**
 * How the server sends `big.bin`: whole, with one byte altered (a proxy, a damaged copy), or cut
 * off midway (by the server, or by the client's cancelling once half has arrived).
 */
let mode: 'whole' | 'altered' | 'cut' | 'cancelled' = 'whole';
const cancel = { controller: new AbortController() };

const server = loopbackServer(async (req, res) => {
  for await (const _ of req);
  if (req.url?.startsWith('/attachments/manifest')) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        current_version: 1,
        operations: [
          { operation: 'download', attachment_id: 'big.bin', version: 1, size: SIZE, hash: expectedHash },
        ],
        total_download_size: SIZE,
        operation_count: { download: 1, delete: 0 },
      }),
    );
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(SIZE) });
  for (let i = 0; i < SIZE / MiB; i++) {
    if (i === SIZE / MiB / 2 && mode === 'cut') {
      res.destroy();
      return;
    }
    if (i === SIZE / MiB / 2 && mode === 'cancelled') cancel.controller.abort();
    const next = chunk(i);
    if (mode === 'altered' && i === SIZE / MiB - 1) next[next.length - 1]! ^= 1;
    // Waits for the client to take it, so the download is not buffered whole in the socket.
    if (!res.write(next)) await new Promise((resolve) => res.once('drain', resolve));
    if (res.destroyed) return;
  }
  res.end();
});

/** Directory files that fail any download handed to them whole: these must all arrive as streams. */
class StreamedOnly extends DirectoryFiles {
  override async write(name: string): Promise<void> {
    throw new Error(`${name} was read whole into memory`);
  }
}

function syncTo(local: DirectoryFiles) {
  cancel.controller = new AbortController();
  return createClient({ baseUrl: server.base, tokens: session, retry: { retries: 0 } }).attachments.syncTo(
    local,
    0,
    { signal: cancel.controller.signal },
  );
}

/**
 * The files in `dir` but the hashes DirectoryFiles remembers beside them (written when it hashed a
 * previous copy, unless that copy was racily clean: see HashCache).
 */
const filesIn = (dir: string) => readdirSync(dir).filter((name) => name !== '.synk-hashes~.json');

const hashOfFile = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('DirectoryFiles receiving attachments.syncTo', () => {
  it('streams a 48 MiB download into place, with its bytes, and nothing else left beside it', async () => {
    mode = 'whole';
    const dir = mkdtempSync(path.join(tmpdir(), 'synk-directory-files-'));
    const local = new StreamedOnly(dir);
    expect(await syncTo(local)).toEqual({ downloaded: ['big.bin'], removed: [], failed: [], version: 1 });
    expect(filesIn(dir)).toEqual(['big.bin']);
    expect(hashOfFile(path.join(dir, 'big.bin'))).toBe(expectedHash);
    expect(await local.hashOf('big.bin')).toBe(expectedHash);
    // Already here: not downloaded again.
    expect(await syncTo(local)).toMatchObject({ downloaded: [], failed: [] });
  });

  it.each([['without'], ['over']])(
    'keeps nothing of a download whose bytes lack the manifest’s hash (%s a previous copy), and lists it in failed',
    async (previous) => {
      mode = 'altered';
      const dir = mkdtempSync(path.join(tmpdir(), 'synk-directory-files-'));
      if (previous === 'over') writeFileSync(path.join(dir, 'big.bin'), 'the previous copy');
      const result = await syncTo(new StreamedOnly(dir));
      expect(result).toMatchObject({ downloaded: [], version: 0 });
      expect(result.failed.map((f) => [f.id, String(f.error)])).toEqual([
        ['big.bin', 'Error: attachment big.bin arrived corrupted'],
      ]);
      if (previous === 'over') {
        expect(filesIn(dir)).toEqual(['big.bin']);
        expect(readFileSync(path.join(dir, 'big.bin'), 'utf8')).toBe('the previous copy');
      } else expect(filesIn(dir)).toEqual([]);
    },
  );

  it.each([
    ['cut off by the server', 'cut', /terminated|other side closed|socket/i],
    ['cancelled by the app', 'cancelled', /abort/i],
  ] as const)('keeps nothing of a download %s midway, and the previous copy stays', async (_, how, error) => {
    mode = how;
    const dir = mkdtempSync(path.join(tmpdir(), 'synk-directory-files-'));
    writeFileSync(path.join(dir, 'big.bin'), 'the previous copy');
    await expect(syncTo(new StreamedOnly(dir))).rejects.toThrow(error);
    expect(filesIn(dir)).toEqual(['big.bin']);
    expect(readFileSync(path.join(dir, 'big.bin'), 'utf8')).toBe('the previous copy');
  });
});

describe('DirectoryFiles', () => {
  it('keeps bundle files under their relative paths, and refuses a name outside its directory', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'synk-directory-files-'));
    const local = new DirectoryFiles(dir);
    await local.write('forms/a/schema.json', Buffer.from('{}'));
    expect(readFileSync(path.join(dir, 'forms', 'a', 'schema.json'), 'utf8')).toBe('{}');
    expect(readdirSync(path.join(dir, 'forms', 'a'))).toEqual(['schema.json']);
    await local.remove('forms/a/schema.json');
    expect(await local.hashOf('forms/a/schema.json')).toBeUndefined();
    await expect(local.write('../outside', Buffer.from('x'))).rejects.toThrow('names no file inside');
  });
});

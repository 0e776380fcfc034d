import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loopbackServer } from '@synk/test-support/hooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createClient } from '../src/client.ts';
import { hashFile } from '../src/file-hash.ts';
import { DirectoryFiles } from '../src/node.ts';

// Every read of a file's bytes to hash them goes through hashFile: counting its calls counts reads.
vi.mock('../src/file-hash.ts', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../src/file-hash.ts')>();
  return { hashFile: vi.fn(actual.hashFile) };
});
const reads = () => vi.mocked(hashFile).mock.calls.map(([file]) => path.basename(file));
afterEach(() => vi.mocked(hashFile).mockClear());

const CACHE = '.synk-hashes~.json';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
/** An hour ago: files the device has had for a while (not racily clean, see HashCache). */
const longAgo = new Date(Date.now() - 3600_000);

/** A directory with `files` (name → content), each last modified an hour ago. */
function directoryWith(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'synk-hash-cache-'));
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(dir, ...name.split('/'));
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content);
    utimesSync(file, longAgo, longAgo);
  }
  return dir;
}

describe('DirectoryFiles remembers the hashes of its files', () => {
  it('reads each file once: not again in the same instance, nor in a new one once flushed', async () => {
    const dir = directoryWith({ 'a.jpg': 'photo a', 'forms/b/schema.json': '{"b":1}' });
    const local = new DirectoryFiles(dir);
    expect(await local.hashOf('a.jpg')).toBe(sha256('photo a'));
    expect(await local.hashOf('forms/b/schema.json')).toBe(sha256('{"b":1}'));
    expect(reads()).toEqual(['a.jpg', 'schema.json']);
    expect(await local.hashOf('a.jpg')).toBe(sha256('photo a'));
    expect(reads()).toHaveLength(2);
    await local.flush();
    // Written durably (no temporary file left beside it), it outlives the instance (a restart).
    expect(readdirSync(dir).sort()).toEqual([CACHE, 'a.jpg', 'forms']);
    const restarted = new DirectoryFiles(dir);
    expect(await restarted.hashOf('a.jpg')).toBe(sha256('photo a'));
    expect(await restarted.hashOf('forms/b/schema.json')).toBe(sha256('{"b":1}'));
    expect(reads()).toHaveLength(2);
    expect(await restarted.hashOf('missing.jpg')).toBeUndefined();
  });

  it('reads a file again once its mtime, size or ctime changed (new bytes with the old mtime put back too)', async () => {
    const dir = directoryWith({ 'a.jpg': 'photo a', 'b.jpg': 'photo b', 'c.jpg': 'photo c' });
    const local = new DirectoryFiles(dir);
    for (const name of ['a.jpg', 'b.jpg', 'c.jpg']) await local.hashOf(name);
    await local.flush();
    vi.mocked(hashFile).mockClear();
    const earlier = new Date(longAgo.getTime() - 60_000);
    utimesSync(path.join(dir, 'a.jpg'), earlier, earlier); // touched: same bytes
    writeFileSync(path.join(dir, 'b.jpg'), 'photo b, edited'); // another size
    writeFileSync(path.join(dir, 'c.jpg'), 'photo C'); // same size, and the mtime set back: only the ctime tells
    utimesSync(path.join(dir, 'c.jpg'), longAgo, longAgo);
    const restarted = new DirectoryFiles(dir);
    expect(await restarted.hashOf('a.jpg')).toBe(sha256('photo a'));
    expect(await restarted.hashOf('b.jpg')).toBe(sha256('photo b, edited'));
    expect(await restarted.hashOf('c.jpg')).toBe(sha256('photo C'));
    expect(reads()).toEqual(['a.jpg', 'b.jpg', 'c.jpg']);
    // Each is remembered again as it now is.
    expect(await restarted.hashOf('c.jpg')).toBe(sha256('photo C'));
    expect(reads()).toHaveLength(3);
  });

  it('does not trust a file modified no earlier than the hash was taken (racily clean): it is read each time', async () => {
    const dir = directoryWith({ 'old.jpg': 'old' });
    // Its mtime is not older than any sample of the clock: as if written in the very tick it was read.
    writeFileSync(path.join(dir, 'new.jpg'), 'new');
    const future = new Date(Date.now() + 3600_000);
    utimesSync(path.join(dir, 'new.jpg'), future, future);
    const local = new DirectoryFiles(dir);
    for (const name of ['old.jpg', 'new.jpg', 'new.jpg']) await local.hashOf(name);
    await local.flush();
    expect(await new DirectoryFiles(dir).hashOf('new.jpg')).toBe(sha256('new'));
    expect(await new DirectoryFiles(dir).hashOf('old.jpg')).toBe(sha256('old'));
    expect(reads()).toEqual(['old.jpg', 'new.jpg', 'new.jpg', 'new.jpg']);
  });

  it('takes no entry of the cache file whose mtime is not older than the file’s own (git’s racy rule)', async () => {
    const dir = directoryWith({ 'a.jpg': 'photo a' });
    const local = new DirectoryFiles(dir);
    await local.hashOf('a.jpg');
    await local.flush();
    // A cache file claiming another hash for a.jpg, written (its mtime) in the same tick as a.jpg.
    const cache = path.join(dir, CACHE);
    writeFileSync(cache, readFileSync(cache, 'utf8').replace(sha256('photo a'), sha256('tampered')));
    utimesSync(cache, longAgo, longAgo);
    expect(await new DirectoryFiles(dir).hashOf('a.jpg')).toBe(sha256('photo a'));
    expect(reads()).toEqual(['a.jpg', 'a.jpg']);
  });

  it.each([
    ['not JSON', () => '{"format":1,"entries":{"a.jpg":['],
    ['of another format', (text: string) => text.replace('"format":1', '"format":2')],
    ['with a malformed entry', (text: string) => text.replace(/"[0-9a-f]{64}"/, '"not-a-hash"')],
  ])('ignores a cache file %s, and writes a good one over it', async (_, corrupt) => {
    const dir = directoryWith({ 'a.jpg': 'photo a' });
    const local = new DirectoryFiles(dir);
    await local.hashOf('a.jpg');
    await local.flush();
    const cache = path.join(dir, CACHE);
    writeFileSync(cache, corrupt(readFileSync(cache, 'utf8')));
    const restarted = new DirectoryFiles(dir);
    expect(await restarted.hashOf('a.jpg')).toBe(sha256('photo a'));
    expect(reads()).toEqual(['a.jpg', 'a.jpg']);
    await restarted.flush();
    expect(await new DirectoryFiles(dir).hashOf('a.jpg')).toBe(sha256('photo a'));
    expect(reads()).toHaveLength(2);
  });

  it('forgets a file it removes or replaces', async () => {
    const dir = directoryWith({ 'a.jpg': 'photo a', 'b.jpg': 'photo b' });
    const local = new DirectoryFiles(dir);
    await local.hashOf('a.jpg');
    await local.hashOf('b.jpg');
    await local.remove('a.jpg');
    await local.write('b.jpg', Buffer.from('photo B'));
    await local.flush();
    // b.jpg, written just now, is racily clean: not remembered until a later sync reads it.
    expect(JSON.parse(readFileSync(path.join(dir, CACHE), 'utf8')).entries).toEqual({});
    expect(await local.hashOf('a.jpg')).toBeUndefined();
    expect(await local.hashOf('b.jpg')).toBe(sha256('photo B'));
  });
});

describe('attachments.syncTo and bundles.syncTo flush the local files', () => {
  const files = { 'a.jpg': 'photo a', 'app/index.html': '<html></html>' };
  const server = loopbackServer(async (req, res) => {
    for await (const _ of req);
    const json = (body: unknown) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (req.url?.startsWith('/attachments/manifest'))
      return json({
        current_version: 1,
        operations: [
          {
            operation: 'download',
            attachment_id: 'a.jpg',
            version: 1,
            size: 7,
            hash: sha256(files['a.jpg']),
          },
        ],
        total_download_size: 7,
        operation_count: { download: 1, delete: 0 },
      });
    if (req.url === '/app-bundle/manifest')
      return json({
        version: '0001',
        generatedAt: new Date().toISOString(),
        hash: 'h',
        files: [
          {
            path: 'app/index.html',
            size: 13,
            hash: sha256(files['app/index.html']),
            mimeType: 'text/html',
            modTime: new Date().toISOString(),
          },
        ],
      });
    res.writeHead(404).end();
  });

  it('so that the next sync, in a new process, reads none of the files already there', async () => {
    const dir = directoryWith(files);
    const client = createClient({
      baseUrl: server.base,
      tokens: { token: 'access', refreshToken: 'refresh', expiresAt: 4_000_000_000 },
      retry: { retries: 0 },
    });
    expect((await client.attachments.syncTo(new DirectoryFiles(dir))).downloaded).toEqual([]);
    expect(await client.bundles.syncTo(new DirectoryFiles(dir))).toEqual([]);
    expect(reads()).toEqual(['a.jpg', 'index.html']);
    const local = new DirectoryFiles(dir);
    expect((await client.attachments.syncTo(local)).downloaded).toEqual([]);
    expect(await client.bundles.syncTo(local)).toEqual([]);
    expect(reads()).toHaveLength(2);
  });
});

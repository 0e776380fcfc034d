import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, open, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { releaseTransferGarbage, TRANSFER_GC_INTERVAL } from './memory.ts';

export class StreamTooLarge extends Error {
  readonly limit: number;
  constructor(limit: number) {
    super(`larger than ${limit} bytes`);
    this.limit = limit;
  }
}

/**
 * Streams `source` into a new file (exclusive create, fsynced before close), hashing it on the
 * way and refusing more than `maxBytes`. On any failure the partial file is removed.
 */
export async function streamToFile(
  source: Readable,
  target: string,
  maxBytes: number,
  onChunk?: (chunk: Buffer, sizeSoFar: number) => void,
): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  let sinceCollection = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length;
      if (size > maxBytes) {
        callback(new StreamTooLarge(maxBytes));
        return;
      }
      sinceCollection += chunk.length;
      if (sinceCollection >= TRANSFER_GC_INTERVAL) {
        sinceCollection = 0;
        releaseTransferGarbage();
      }
      hash.update(chunk);
      onChunk?.(chunk, size);
      callback(null, chunk);
    },
  });
  try {
    await pipeline(source, meter, createWriteStream(target, { flags: 'wx', mode: 0o600, flush: true }));
  } catch (err) {
    await rm(target, { force: true });
    throw err;
  }
  return { size, sha256: hash.digest('hex') };
}

/**
 * Removes what a crash left in a temporary directory: every entry (a file, or a directory with
 * everything in it) not modified for `maxAgeMs`. Newer entries may belong to another process
 * sharing the directory, still writing them. Returns how many entries were removed; a missing
 * directory is empty.
 */
export async function removeStale(dir: string, maxAgeMs: number, now = Date.now()): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  let removed = 0;
  for (const name of names) {
    const entry = path.join(dir, name);
    try {
      if (now - (await lastModified(entry)) < maxAgeMs) continue;
      await rm(entry, { recursive: true, force: true });
      removed += 1;
    } catch (err) {
      // Removed meanwhile by its owner: nothing left to do.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return removed;
}

/** The newest modification time in a tree (a directory's own time only changes with its direct entries). */
async function lastModified(entry: string): Promise<number> {
  const stats = await lstat(entry);
  let newest = stats.mtimeMs;
  if (stats.isDirectory()) {
    for (const name of await readdir(entry))
      newest = Math.max(newest, await lastModified(path.join(entry, name)));
  }
  return newest;
}

/** fsyncs a file, or a directory (so that names created or renamed in it survive a crash). */
export async function syncPath(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

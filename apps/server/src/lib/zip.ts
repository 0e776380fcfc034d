import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StreamTooLarge, streamToFile } from './files.ts';

/** The thin adapter over unzipper and archiver (loaded on first use): the rest of the server never imports them. */

export interface ZipEntry {
  name: string;
  isDirectory: boolean;
  isSymlink: boolean;
  compressedSize: number;
  uncompressedSize: number;
  modifiedAt: Date;
  open(): Readable;
}

export class NotAZip extends Error {}

export class EntryTooLarge extends Error {}

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

/** Reads a ZIP's central directory (no entry is decompressed yet). */
export async function readZipDirectory(file: string): Promise<ZipEntry[]> {
  const { default: unzipper } = await import('unzipper');
  let directory: Awaited<ReturnType<typeof unzipper.Open.file>>;
  try {
    directory = await unzipper.Open.file(file);
  } catch (err) {
    throw new NotAZip((err as Error).message);
  }
  return directory.files.map((entry) => ({
    name: entry.path,
    isDirectory: entry.type === 'Directory',
    // Unix mode lives in the high 16 bits of the external attributes (when made on Unix).
    isSymlink: ((entry.externalFileAttributes >>> 16) & S_IFMT) === S_IFLNK,
    compressedSize: entry.compressedSize,
    uncompressedSize: entry.uncompressedSize,
    modifiedAt: entry.lastModifiedDateTime,
    open: () => entry.stream() as unknown as Readable,
  }));
}

/**
 * Decompresses one entry to `target`, hashing it, and refusing to write more than `maxBytes`
 * whatever the entry's header claims (a lying header is how ZIP bombs get past size checks).
 */
export async function extractEntry(
  entry: ZipEntry,
  target: string,
  maxBytes: number,
  collect?: { limit: number; chunks: Buffer[] },
): Promise<{ size: number; sha256: string }> {
  await mkdir(path.dirname(target), { recursive: true });
  try {
    return await streamToFile(entry.open(), target, maxBytes, (chunk, size) => {
      if (collect && size <= collect.limit) collect.chunks.push(chunk);
    });
  } catch (err) {
    if (err instanceof StreamTooLarge)
      throw new EntryTooLarge(`${entry.name} inflates beyond ${maxBytes} bytes`);
    throw err;
  }
}

/** Streams the files (name in the ZIP → path on disk) as a ZIP into `output`. */
export async function writeZip(
  files: { name: string; file: string; modifiedAt?: Date }[],
  output: Writable,
): Promise<void> {
  const { ZipArchive } = await import('archiver');
  const archive = new ZipArchive({ zlib: { level: 6 } });
  const done = pipeline(archive, output);
  for (const f of files)
    archive.file(f.file, { name: f.name, ...(f.modifiedAt ? { date: f.modifiedAt } : {}) });
  await archive.finalize();
  await done;
}

/** A ZIP written as it is produced: each entry is a stream, added one after the other. */
export interface ZipStream {
  /** A writable for the next entry's content; end it before starting another entry. `compress: false`: stored as is. */
  entry(name: string, options?: { compress?: boolean }): Writable;
  finalize(): Promise<void>;
}

export async function createZipStream(output: Writable): Promise<ZipStream> {
  const { ZipArchive } = await import('archiver');
  const archive = new ZipArchive({ zlib: { level: 1 } });
  const done = pipeline(archive, output);
  const open = new Set<PassThrough>();
  // When the output fails (the client went away), entries still being written would wait for
  // 'drain' forever: fail them too, so whoever writes them stops and lets go of what it holds.
  // Their writers learn of it from their writes (callbacks, or 'close' instead of 'drain'), so
  // the entries' own 'error' events are not left unhandled.
  let failed: Error | undefined;
  const fail = (content: PassThrough, err: Error) => {
    content.on('error', () => {});
    content.destroy(err);
  };
  done.catch((err: Error) => {
    failed = err;
    for (const content of open) fail(content, err);
  });
  return {
    entry(name, options) {
      const content = new PassThrough();
      // An entry begun after the output failed fails at once (it would take data and drop it).
      if (failed) {
        fail(content, failed);
        return content;
      }
      open.add(content);
      content.once('close', () => open.delete(content));
      archive.append(content, { name, store: options?.compress === false });
      return content;
    },
    async finalize() {
      await archive.finalize();
      await done;
    },
  };
}

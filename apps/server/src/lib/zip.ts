import { createReadStream } from 'node:fs';
import { type FileHandle, mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import { StreamTooLarge, streamToFile } from './files.ts';

/** The thin adapter over unzipper and archiver (loaded on first use): the rest of the server never imports them. */

export interface ZipEntry {
  name: string;
  isDirectory: boolean;
  isSymlink: boolean;
  compressedSize: number;
  uncompressedSize: number;
  modifiedAt: Date;
  /** 0 stored, 8 deflate; anything else cannot be extracted. */
  compressionMethod: number;
  encrypted: boolean;
  /** The CRC-32 of the uncompressed data, as the central directory states it. */
  crc32: number;
  open(): Readable;
}

export class NotAZip extends Error {}

export class EntryTooLarge extends Error {}

/** The ZIP's end record declares more entries than allowed (found before its directory is read). */
export class TooManyEntries extends Error {
  readonly count: number;
  constructor(count: number) {
    super(`the archive declares ${count} entries`);
    this.count = count;
  }
}

const STORED = 0;
const DEFLATED = 8;

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

const END_SIGNATURE = 0x06054b50;
const END_SIZE = 22;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_LOCATOR_SIZE = 20;
const ZIP64_END_SIGNATURE = 0x06064b50;
const ZIP64_END_SIZE = 56;

async function readAt(file: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await file.read(buffer, 0, length, position);
  if (bytesRead !== length) throw new NotAZip('the archive is truncated');
  return buffer;
}

/**
 * Where the end of central directory record starts and how many entries it declares (from the
 * ZIP64 end record when the classic one says so), read from the file's tail alone. The record is
 * the last one whose comment reaches exactly to the end of the file.
 */
async function readEndRecord(file: FileHandle, size: number): Promise<{ offset: number; entries: number }> {
  if (size < END_SIZE) throw new NotAZip('too short to be a ZIP archive');
  const tailLength = Math.min(size, END_SIZE + 0xffff);
  const tail = await readAt(file, size - tailLength, tailLength);
  for (let at = tailLength - END_SIZE; at >= 0; at--) {
    if (tail.readUInt32LE(at) !== END_SIGNATURE) continue;
    if (at + END_SIZE + tail.readUInt16LE(at + 20) !== tailLength) continue;
    const offset = size - tailLength + at;
    const entries = tail.readUInt16LE(at + 10);
    // The same test unzipper (and Go's archive/zip) applies for ZIP64.
    const zip64 =
      tail.readUInt16LE(at + 4) === 0xffff || entries === 0xffff || tail.readUInt32LE(at + 16) === 0xffffffff;
    if (!zip64) return { offset, entries };
    if (offset < ZIP64_LOCATOR_SIZE) throw new NotAZip('the ZIP64 end record locator is missing');
    const locator = await readAt(file, offset - ZIP64_LOCATOR_SIZE, ZIP64_LOCATOR_SIZE);
    if (locator.readUInt32LE(0) !== ZIP64_LOCATOR_SIGNATURE)
      throw new NotAZip('the ZIP64 end record locator is missing');
    const zip64Offset = Number(locator.readBigUInt64LE(8));
    if (zip64Offset + ZIP64_END_SIZE > size) throw new NotAZip('the ZIP64 end record is outside the archive');
    const record = await readAt(file, zip64Offset, ZIP64_END_SIZE);
    if (record.readUInt32LE(0) !== ZIP64_END_SIGNATURE) throw new NotAZip('the ZIP64 end record is missing');
    return { offset, entries: Number(record.readBigUInt64LE(32)) };
  }
  throw new NotAZip('no end of central directory record');
}

/**
 * Reads a ZIP's central directory (no entry is decompressed yet). The entry count its end record
 * declares is checked against `maxEntries` first: the directory is only parsed (one object per
 * entry, all in memory) when the count is allowed.
 */
export async function readZipDirectory(file: string, maxEntries: number): Promise<ZipEntry[]> {
  let end: { offset: number; entries: number };
  let size: number;
  const handle = await open(file, 'r');
  try {
    size = (await handle.stat()).size;
    end = await readEndRecord(handle, size);
  } finally {
    await handle.close();
  }
  if (end.entries > maxEntries) throw new TooManyEntries(end.entries);

  const { default: unzipper } = await import('unzipper');
  let directory: Awaited<ReturnType<typeof unzipper.Open.file>>;
  try {
    // unzipper looks for the end record from `tailSize` bytes before the end of the file: pointed
    // at the one read above, it parses exactly the entries that were counted.
    const openFile = unzipper.Open.file as (
      name: string,
      options: { tailSize: number },
    ) => ReturnType<typeof unzipper.Open.file>;
    directory = await openFile(file, { tailSize: size - end.offset });
  } catch (err) {
    throw new NotAZip((err as Error).message);
  }
  if (directory.files.length !== end.entries)
    throw new NotAZip('the central directory does not match its end record');
  return directory.files.map((entry) => ({
    name: entry.path,
    isDirectory: entry.type === 'Directory',
    // Unix mode lives in the high 16 bits of the external attributes (when made on Unix).
    isSymlink: ((entry.externalFileAttributes >>> 16) & S_IFMT) === S_IFLNK,
    compressedSize: entry.compressedSize,
    uncompressedSize: entry.uncompressedSize,
    modifiedAt: entry.lastModifiedDateTime,
    compressionMethod: entry.compressionMethod,
    encrypted: (entry.flags & 1) === 1,
    crc32: entry.crc32 >>> 0,
    open: () => entry.stream() as unknown as Readable,
  }));
}

/**
 * An entry that cannot be extracted for a reason of its own: unsupported or corrupt data, or a
 * name the file system refuses. The message is the client's to read (it names no server path).
 */
export class BadEntry extends Error {}

/** File system errors an entry's own name causes (anything else is the server's fault). */
const NAME_ERRORS: Record<string, string> = {
  ENAMETOOLONG: 'its name is too long for the file system',
  EEXIST: 'its name clashes with another entry',
  ENOTDIR: 'its name clashes with another entry',
  EISDIR: 'its name clashes with another entry',
};

function badEntryOf(err: unknown): BadEntry | undefined {
  const { code, syscall, message } = err as NodeJS.ErrnoException;
  if (typeof syscall === 'string')
    return code && NAME_ERRORS[code] ? new BadEntry(NAME_ERRORS[code]) : undefined;
  if (code?.startsWith('Z_')) return new BadEntry(`its compressed data is corrupt (${message})`);
  if (message === 'MISSING_PASSWORD' || message === 'BAD_PASSWORD') return new BadEntry('it is encrypted');
  if (message === 'FILE_ENDED') return new BadEntry('its data is cut short');
  // unzipper's own complaints about the archive's structure (plain Errors; their text is not
  // passed on). Anything else is a fault of the server's.
  if (err instanceof Error && err.constructor === Error) return new BadEntry('its data cannot be read');
  return undefined;
}

/**
 * Decompresses one entry to `target`, hashing it, and refusing to write more than `maxBytes`
 * whatever the entry's header claims (a lying header is how ZIP bombs get past size checks).
 * Throws EntryTooLarge, BadEntry, or (a server fault) what the file system threw.
 */
export async function extractEntry(
  entry: ZipEntry,
  target: string,
  maxBytes: number,
  collect?: { limit: number; chunks: Buffer[] },
): Promise<{ size: number; sha256: string }> {
  if (entry.encrypted) throw new BadEntry('it is encrypted');
  if (entry.compressionMethod !== STORED && entry.compressionMethod !== DEFLATED)
    throw new BadEntry(
      `it uses compression method ${entry.compressionMethod}; only stored (0) and deflate (8) are supported`,
    );
  let crc = 0;
  try {
    await mkdir(path.dirname(target), { recursive: true });
    const written = await streamToFile(entry.open(), target, maxBytes, (chunk, size) => {
      crc = crc32(chunk, crc);
      if (collect && size <= collect.limit) collect.chunks.push(chunk);
    });
    // A header that declares more than the data holds (the other way is EntryTooLarge): the
    // archive is corrupt, and the size checks were made against a size the file does not have.
    if (written.size !== entry.uncompressedSize)
      throw new BadEntry(
        `it holds ${written.size} bytes where its header declares ${entry.uncompressedSize}`,
      );
    // unzipper does not check it: a stored entry with flipped bytes would be taken as it is.
    if (crc >>> 0 !== entry.crc32)
      throw new BadEntry('its data does not match its CRC-32 checksum (the archive is corrupt)');
    return written;
  } catch (err) {
    if (err instanceof StreamTooLarge)
      throw new EntryTooLarge(`${entry.name} inflates beyond ${maxBytes} bytes`);
    throw err instanceof BadEntry ? err : (badEntryOf(err) ?? err);
  }
}

/**
 * Streams the files (name in the ZIP → path on disk) as a ZIP into `output`, one open file at a
 * time. When the output fails (the client went away) the file being read is closed; when a file
 * cannot be read (its version was pruned meanwhile) the output is cut, so the client sees a failed
 * transfer rather than a short archive. Either way this rejects, and nothing is left open.
 */
export async function writeZip(
  files: { name: string; file: string; modifiedAt?: Date }[],
  output: Writable,
): Promise<void> {
  const zip = await createZipStream(output);
  try {
    for (const f of files)
      await pipeline(
        createReadStream(f.file),
        zip.entry(f.name, f.modifiedAt ? { modifiedAt: f.modifiedAt } : {}),
      );
    await zip.finalize();
  } catch (err) {
    output.destroy(err as Error);
    throw err;
  }
}

/** A ZIP written as it is produced: each entry is a stream, added one after the other. */
export interface ZipStream {
  /**
   * A writable for the next entry's content; end it before starting another entry. `compress:
   * false`: stored as is. `modifiedAt`: the entry's time (else now).
   */
  entry(name: string, options?: { compress?: boolean; modifiedAt?: Date }): Writable;
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
      archive.append(content, {
        name,
        store: options?.compress === false,
        ...(options?.modifiedAt ? { date: options.modifiedAt } : {}),
      });
      return content;
    },
    async finalize() {
      await archive.finalize();
      await done;
    },
  };
}

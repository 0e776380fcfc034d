import { randomUUID } from 'node:crypto';
import { type FileHandle, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { removeStale, StreamTooLarge, streamToFile, syncPath } from './files.ts';

export class BlobTooLarge extends Error {
  readonly limit: number;
  constructor(limit: number) {
    super(`larger than ${limit} bytes`);
    this.limit = limit;
  }
}

export class BlobDigestMismatch extends Error {
  readonly expected: string;
  readonly actual: string;
  constructor(expected: string, actual: string) {
    super('content digest mismatch');
    this.expected = expected;
    this.actual = actual;
  }
}

export interface StoredBlob {
  /** sha256 of the content, hex: also the blob's key. */
  hash: string;
  size: number;
}

/**
 * Bytes received and verified but not yet visible under their hash. Whoever receives one must
 * `publish` or `discard` it; `discard` after `publish` does nothing.
 */
export interface StagedBlob extends StoredBlob {
  /** Makes the blob readable under its hash (atomically; an existing copy has the same bytes). */
  publish(): Promise<void>;
  /** Removes the staged bytes. */
  discard(): Promise<void>;
}

/** An open blob: its bytes stay readable until `close`, even if the blob is deleted meanwhile. */
export interface BlobReader {
  size: number;
  /**
   * Writes the blob (or an inclusive range) into `destination` through two reused buffers: memory
   * stays flat however large the blob, since nothing new is allocated per chunk.
   */
  copyTo(destination: Writable, range?: { start: number; end: number }): Promise<void>;
  close(): Promise<void>;
}

/**
 * Content-addressed blob storage: a blob's key is its sha256, so the same bytes stored twice are
 * one blob and concurrent writers never overwrite each other's content. Attachments (and later
 * other files) live here; a different backend (object storage) implements the same interface.
 * Deciding when a blob may be deleted (no attachment uses it) is the caller's job.
 */
export interface BlobStorage {
  /** Streams `source` in, hashing on the way; keeps it only if it is complete, within `maxBytes` and matches `expectedSha256`. */
  stage(source: Readable, options: { maxBytes: number; expectedSha256?: string }): Promise<StagedBlob>;
  /** Opens a blob for reading; `undefined` when there is none. */
  open(hash: string): Promise<BlobReader | undefined>;
  stat(hash: string): Promise<{ size: number } | undefined>;
  delete(hash: string): Promise<void>;
  /** Removes staged files older than `maxAgeMs` (left by a crash): newer ones may be another process's uploads. */
  sweepStaged(maxAgeMs: number): Promise<number>;
}

const HASH = /^[0-9a-f]{64}$/;
const COPY_CHUNK = 256 * 1024;

/**
 * Files under `root`: `root/ab/abcdef…` by hash. A blob is staged in `root/.tmp`, fsynced, and
 * renamed into place when published (then the directory is fsynced), so a crash leaves either no
 * blob or a complete one; a failed, aborted or refused upload leaves nothing behind.
 */
export class FileBlobStorage implements BlobStorage {
  readonly #root: string;

  constructor(root: string) {
    this.#root = root;
  }

  #path(hash: string): string {
    if (!HASH.test(hash)) throw new Error('invalid blob key');
    return path.join(this.#root, hash.slice(0, 2), hash);
  }

  get #staging(): string {
    return path.join(this.#root, '.tmp');
  }

  async stage(source: Readable, options: { maxBytes: number; expectedSha256?: string }): Promise<StagedBlob> {
    await mkdir(this.#staging, { recursive: true });
    const temp = path.join(this.#staging, randomUUID());
    let stored: { size: number; sha256: string };
    try {
      stored = await streamToFile(source, temp, options.maxBytes);
    } catch (err) {
      if (err instanceof StreamTooLarge) throw new BlobTooLarge(err.limit);
      throw err;
    }
    const { size, sha256: hash } = stored;
    if (options.expectedSha256 !== undefined && options.expectedSha256 !== hash) {
      await rm(temp, { force: true });
      throw new BlobDigestMismatch(options.expectedSha256, hash);
    }
    const target = this.#path(hash);
    let settled = false;
    return {
      hash,
      size,
      publish: async () => {
        if (settled) throw new Error('the staged blob was already published or discarded');
        await mkdir(path.dirname(target), { recursive: true });
        await rename(temp, target);
        settled = true;
        await syncPath(path.dirname(target));
      },
      discard: async () => {
        if (settled) return;
        settled = true;
        await rm(temp, { force: true });
      },
    };
  }

  async open(hash: string): Promise<BlobReader | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(this.#path(hash), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const { size } = await handle.stat();
      return {
        size,
        copyTo: (destination, range) => copyFrom(handle, size, destination, range),
        close: () => handle.close(),
      };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async stat(hash: string): Promise<{ size: number } | undefined> {
    try {
      return { size: (await stat(this.#path(hash))).size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async delete(hash: string): Promise<void> {
    await rm(this.#path(hash), { force: true });
  }

  sweepStaged(maxAgeMs: number): Promise<number> {
    return removeStale(this.#staging, maxAgeMs);
  }
}

async function copyFrom(
  handle: FileHandle,
  size: number,
  destination: Writable,
  range?: { start: number; end: number },
): Promise<void> {
  const gone = new Promise<never>((_, reject) => {
    destination.once('close', () => reject(new Error('destination closed')));
  });
  gone.catch(() => undefined);
  const end = range ? range.end + 1 : size;
  let position = range?.start ?? 0;
  const buffers = [Buffer.allocUnsafe(COPY_CHUNK), Buffer.allocUnsafe(COPY_CHUNK)];
  const inFlight: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
  for (let slot = 0; position < end; slot ^= 1) {
    await Promise.race([inFlight[slot], gone]); // this buffer's last write has been flushed
    const buffer = buffers[slot]!;
    const { bytesRead } = await handle.read(buffer, 0, Math.min(COPY_CHUNK, end - position), position);
    if (bytesRead === 0) throw new Error('blob is shorter than expected');
    position += bytesRead;
    inFlight[slot] = new Promise<void>((resolve, reject) => {
      destination.write(buffer.subarray(0, bytesRead), (err?: Error | null) =>
        err ? reject(err) : resolve(),
      );
    });
    inFlight[slot]!.catch(() => undefined);
  }
  await Promise.race([Promise.all(inFlight), gone]);
}

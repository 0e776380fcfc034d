import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { removeAbandonedTemps, syncDirectory } from './durable-files.ts';
import { hashFile } from './file-hash.ts';
import type { LocalFiles } from './files.ts';
import { fingerprintOf, HashCache } from './hash-cache.ts';

/**
 * A download on its way in. `~` is in no attachment id the server accepts, so no attachment is ever
 * taken for one.
 */
const TEMP_NAME = /^\.[0-9a-f-]{36}\.part~$/;
const tempName = () => `.${randomUUID()}.part~`;

/**
 * The hashes of the files, kept at the top of the directory: no attachment id has a `~`, and an app
 * bundle has nothing at its top level but `app/`, `forms/` and `renderers/`.
 */
const HASH_CACHE = '.synk-hashes~.json';

/** The chunks of a stream; cancels it when left early (a full disk), which releases its connection. */
async function* chunksOf(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) return;
      yield next.value;
    }
  } finally {
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/**
 * Local files in a directory (Node): attachments by id, app bundle files by their relative path.
 * Downloads stream into a temporary file beside their place, hashed on the way and fsynced, and are
 * renamed into place only when they have the manifest's hash: a file of any size costs a chunk of
 * memory, and a download cut short, cancelled or corrupted leaves the previous copy as it was and
 * nothing of its own. The hashes of the files are remembered (see HashCache) so that a sync does not
 * read every file again; a sync (`attachments.syncTo`, `bundles.syncTo`) ends with `flush()`.
 */
export class DirectoryFiles implements LocalFiles {
  readonly #root: string;
  /** The directories this instance has looked in for temporary files of writes that died. */
  readonly #swept = new Set<string>();
  readonly #hashes: HashCache;

  constructor(root: string) {
    this.#root = path.resolve(root);
    this.#hashes = new HashCache(path.join(this.#root, HASH_CACHE), tempName);
  }

  /** The file of a name; the SDK checks the server's names first, this keeps an app's own inside too. */
  #file(name: string): string {
    const file = path.resolve(this.#root, ...name.split('/'));
    if (!file.startsWith(this.#root + path.sep))
      throw new Error(`${JSON.stringify(name)} names no file inside ${this.#root}`);
    return file;
  }

  /** The file's sha256: remembered while the file is unchanged, else read (and then remembered). */
  async hashOf(name: string): Promise<string | undefined> {
    const file = this.#file(name);
    try {
      const was = fingerprintOf(await stat(file, { bigint: true }));
      const known = await this.#hashes.hashOf(name, was);
      if (known !== undefined) return known;
      const clock = await this.#hashes.clock();
      const hash = await hashFile(file);
      await this.#hashes.remember(name, was, hash, clock);
      return hash;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await this.#hashes.forget(name);
      return undefined;
    }
  }

  async write(name: string, bytes: Uint8Array): Promise<void> {
    await this.#replace(name, [bytes]);
  }

  writeStream(name: string, body: ReadableStream<Uint8Array>, meta: { hash?: string }): Promise<string> {
    return this.#replace(name, chunksOf(body), meta.hash);
  }

  async remove(name: string): Promise<void> {
    await rm(this.#file(name), { force: true });
    await this.#hashes.forget(name);
  }

  /** Writes the remembered hashes beside the files, so that they outlive this process. */
  flush(): Promise<void> {
    return this.#hashes.flush();
  }

  /**
   * Writes `chunks` to a temporary file, then renames it over the file of `name` unless `expected`
   * is given and differs from their sha256, which it returns either way.
   */
  async #replace(
    name: string,
    chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
    expected?: string,
  ): Promise<string> {
    const file = this.#file(name);
    const dir = path.dirname(file);
    await mkdir(dir, { recursive: true });
    if (!this.#swept.has(dir)) {
      this.#swept.add(dir);
      await removeAbandonedTemps(dir, TEMP_NAME);
    }
    // In the same directory, so the rename stays on one file system.
    const temp = path.join(dir, tempName());
    const hash = createHash('sha256');
    try {
      const handle = await open(temp, 'wx');
      try {
        for await (const chunk of chunks) {
          hash.update(chunk);
          for (let offset = 0; offset < chunk.byteLength; )
            offset += (await handle.write(chunk, offset)).bytesWritten;
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      const received = hash.digest('hex');
      if (expected !== undefined && received !== expected) {
        await rm(temp, { force: true });
        return received;
      }
      await rename(temp, file);
      await syncDirectory(dir);
      // Not remembered: written just now, it is racily clean (see HashCache); the next sync reads it.
      await this.#hashes.forget(name);
      return received;
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }
}

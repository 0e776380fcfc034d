import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { removeAbandonedTemps, syncDirectory } from './durable-files.ts';
import type { LocalFiles } from './files.ts';

/**
 * A download on its way in. `~` is in no attachment id the server accepts, so no attachment is ever
 * taken for one.
 */
const TEMP_NAME = /^\.[0-9a-f-]{36}\.part~$/;

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
 * nothing of its own.
 */
export class DirectoryFiles implements LocalFiles {
  readonly #root: string;
  /** The directories this instance has looked in for temporary files of writes that died. */
  readonly #swept = new Set<string>();

  constructor(root: string) {
    this.#root = path.resolve(root);
  }

  /** The file of a name; the SDK checks the server's names first, this keeps an app's own inside too. */
  #file(name: string): string {
    const file = path.resolve(this.#root, ...name.split('/'));
    if (!file.startsWith(this.#root + path.sep))
      throw new Error(`${JSON.stringify(name)} names no file inside ${this.#root}`);
    return file;
  }

  async hashOf(name: string): Promise<string | undefined> {
    const hash = createHash('sha256');
    try {
      for await (const chunk of createReadStream(this.#file(name))) hash.update(chunk as Buffer);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return hash.digest('hex');
  }

  async write(name: string, bytes: Uint8Array): Promise<void> {
    await this.#replace(name, [bytes]);
  }

  writeStream(name: string, body: ReadableStream<Uint8Array>, meta: { hash?: string }): Promise<string> {
    return this.#replace(name, chunksOf(body), meta.hash);
  }

  async remove(name: string): Promise<void> {
    await rm(this.#file(name), { force: true });
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
    const temp = path.join(dir, `.${randomUUID()}.part~`);
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
      return received;
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }
}

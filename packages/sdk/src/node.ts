import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { parseJson } from '@synk/json';
import { removeAbandonedTemps, syncDirectory } from './durable-files.ts';
import { CorruptValueError } from './errors.ts';
import { FILE_LOCK_DEFAULTS, type FileLockOptions, withFileLock } from './file-lock.ts';
import type { SyncStorage } from './storage.ts';

const TEMP_NAME = /^\.[0-9a-f-]{36}\.tmp$/;

/**
 * One JSON file per key in a directory (Node). Each write goes to a temporary file that is
 * fsynced and renamed over the old one, so a crash leaves the old value or the new one, never half;
 * the directory is fsynced after the rename, which is only durable once the directory entry is.
 * A delete is not fsynced (the next write's fsync of the directory makes it durable): a power cut
 * right after one may bring the value back, so what must stay gone is written over instead.
 * Processes sharing the directory are coordinated by lock directories next to the values (see
 * `withFileLock`); `lockOptions` is for tests.
 */
export class FileStorage implements SyncStorage {
  readonly #dir: string;
  readonly #lockOptions: FileLockOptions;
  /** Whether this instance has looked for temporary files of writes that died. */
  #swept = false;

  constructor(dir: string, lockOptions: FileLockOptions = FILE_LOCK_DEFAULTS) {
    this.#dir = dir;
    this.#lockOptions = lockOptions;
  }

  #file(key: string): string {
    // Upper-case letters outside encodeURIComponent's own escapes are escaped too (`%4a` for J, in
    // lower-case hex, which it never writes), so keys differing only in case stay apart on
    // case-insensitive file systems (macOS, Windows), while a key without upper-case letters keeps
    // the name earlier versions gave it (`outbox%3Aqueue.json`). File names stop at 255 bytes;
    // long keys (a 255-character record id) are hashed.
    const name = encodeURIComponent(key).replace(/%[0-9A-F]{2}|[A-Z]/g, (match) =>
      match.length === 3 ? match : `%${match.charCodeAt(0).toString(16)}`,
    );
    if (name.length <= 200) return path.join(this.#dir, `${name}.json`);
    return path.join(this.#dir, `sha256-${createHash('sha256').update(key).digest('hex')}.json`);
  }

  /** Throws CorruptValueError, naming the file, for a file that is not JSON. */
  async get<T>(key: string): Promise<T | undefined> {
    const file = this.#file(key);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return CorruptValueError.parse(text, parseJson, key, file) as T;
  }

  async set(key: string, value: unknown): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    if (!this.#swept) {
      this.#swept = true;
      await removeAbandonedTemps(this.#dir, TEMP_NAME);
    }
    const temp = path.join(this.#dir, `.${randomUUID()}.tmp`);
    try {
      const handle = await open(temp, 'w', 0o600);
      try {
        await handle.writeFile(JSON.stringify(value));
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, this.#file(key));
    } catch (err) {
      // A write that failed (a full disk) must not leave its part behind: nothing would ever delete
      // it, and it holds the very space the next writes need.
      await rm(temp, { force: true });
      throw err;
    }
    await syncDirectory(this.#dir);
  }

  async delete(key: string): Promise<void> {
    await rm(this.#file(key), { force: true });
  }

  async lock<T>(name: string, critical: () => Promise<T>): Promise<T> {
    await mkdir(this.#dir, { recursive: true });
    const lockPath = path.join(this.#dir, `.${path.basename(this.#file(name), '.json')}.lock`);
    return withFileLock(lockPath, critical, this.#lockOptions);
  }
}

export { DirectoryFiles } from './directory-files.ts';
export * from './index.ts';

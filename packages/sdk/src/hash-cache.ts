import type { BigIntStats } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { parseJson } from '@synk/json';
import { syncDirectory } from './durable-files.ts';

/**
 * What a file is known by between two looks at it, as git's index and rsync know it: a file whose
 * size, modification time (in ns where the file system keeps them), inode and change time are all
 * as they were is taken to hold the same bytes. Writing a file changes its mtime; setting the mtime
 * back (`touch -d`, an unpacked archive) changes its ctime, which no program can set.
 */
interface Fingerprint {
  size: string;
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
}

export function fingerprintOf(info: BigIntStats): Fingerprint {
  return {
    size: String(info.size),
    mtimeNs: String(info.mtimeNs),
    ctimeNs: String(info.ctimeNs),
    ino: String(info.ino),
  };
}

const sameFile = (a: Fingerprint, b: Fingerprint) =>
  a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;

type Entry = Fingerprint & { hash: string };

/** The layout of the cache file; another one (a later version's) is not read, only rebuilt over. */
const FORMAT = 1;
const DIGITS = /^\d{1,30}$/;
const SHA256 = /^[0-9a-f]{64}$/;

/** An entry of the cache file as stored (`[size, mtimeNs, ctimeNs, ino, hash]`), if it is one. */
function entryOf(stored: unknown): Entry | undefined {
  if (!Array.isArray(stored) || stored.length !== 5) return undefined;
  const [size, mtimeNs, ctimeNs, ino, hash] = stored as unknown[];
  const numbers = [size, mtimeNs, ctimeNs, ino];
  if (!numbers.every((n) => typeof n === 'string' && DIGITS.test(n))) return undefined;
  if (typeof hash !== 'string' || !SHA256.test(hash)) return undefined;
  return { size, mtimeNs, ctimeNs, ino, hash } as Entry;
}

/**
 * Entries not yet written that make the cache file be written on their own, before the end of a
 * sync (`flush`): at least this many, and at least half as many as it holds, so that a first sync
 * of 100,000 files writes it a few times, not once per file.
 */
const FLUSH_AT_LEAST = 1000;

/**
 * The sha256 of the files of a directory, remembered in one small JSON file beside them (`file`)
 * so that a sync does not read every local file again (a device with 5 GB of photos would read
 * 5 GB each time), across restarts too. Nothing in it is trusted blindly:
 *
 * - an entry counts only while the file's fingerprint (size, mtime, inode, ctime) is the one it was
 *   hashed with; any change has the file read again;
 * - "racily clean" files, as git calls them: a file written in the same tick of the file system's
 *   clock as it was hashed (timestamps are coarse: a jiffy, or 1–2 s on some file systems) could be
 *   written again without its mtime moving. So a hash is remembered only when the file's mtime is
 *   older than a sample of that clock taken before the file was read (the mtime of a file created
 *   for it), and an entry read back from the file only when its mtime is older than the cache
 *   file's own (git's rule for its index). A file written just now is read again at the next sync,
 *   once;
 * - a cache file that cannot be read or parsed, or of another format, is ignored and rebuilt; a
 *   malformed entry is dropped.
 *
 * It is written as every durable file here is: to a temporary file (named as `tempName` gives,
 * which its owner's sweep of abandoned temporary files matches), fsynced, renamed over it, and the
 * directory fsynced. Two instances on one directory each write what they know; the last one wins,
 * and what the other knew is hashed again later. Failing to write it (a full disk) is no error:
 * the next sync reads the files again.
 */
export class HashCache {
  readonly #file: string;
  readonly #dir: string;
  readonly #tempName: () => string;
  #entries: Promise<Map<string, Entry>> | undefined;
  /** A time of the file system's clock from before every read since the last write of the cache. */
  #clock: Promise<bigint> | undefined;
  #unwritten = 0;

  constructor(file: string, tempName: () => string) {
    this.#file = file;
    this.#dir = path.dirname(file);
    this.#tempName = tempName;
  }

  #load(): Promise<Map<string, Entry>> {
    this.#entries ??= (async () => {
      const entries = new Map<string, Entry>();
      try {
        // The text and the mtime of one file, even if another instance renames a new one over it.
        const handle = await open(this.#file, 'r');
        let text: string;
        let writtenAt: bigint;
        try {
          writtenAt = (await handle.stat({ bigint: true })).mtimeNs;
          text = await handle.readFile('utf8');
        } finally {
          await handle.close();
        }
        const stored = parseJson(text) as { format?: unknown; entries?: unknown } | null;
        if (stored?.format !== FORMAT || typeof stored.entries !== 'object' || stored.entries === null)
          return entries;
        for (const [name, value] of Object.entries(stored.entries)) {
          const entry = entryOf(value);
          if (entry && BigInt(entry.mtimeNs) < writtenAt) entries.set(name, entry);
        }
      } catch {
        // Missing, unreadable or not JSON: rebuilt from the files themselves.
      }
      return entries;
    })();
    return this.#entries;
  }

  /** The hash remembered for `name`, if the file is still the one it was taken of. */
  async hashOf(name: string, now: Fingerprint): Promise<string | undefined> {
    const entry = (await this.#load()).get(name);
    return entry && sameFile(entry, now) ? entry.hash : undefined;
  }

  /**
   * A time of the file system's clock before a file is read (call it first): the mtime of a file
   * created for the purpose, once per sync (each write of the cache starts a new one).
   */
  clock(): Promise<bigint> {
    this.#clock ??= (async () => {
      const probe = path.join(this.#dir, this.#tempName());
      try {
        const handle = await open(probe, 'wx');
        try {
          return (await handle.stat({ bigint: true })).mtimeNs;
        } finally {
          await handle.close();
          await rm(probe, { force: true });
        }
      } catch {
        return 0n; // no sample (a read-only directory): every file is then racily clean, none remembered
      }
    })();
    return this.#clock;
  }

  /**
   * Remembers `hash` for the file of `name` as it was (`was`, its fingerprint before it was read),
   * unless it is racily clean: its mtime not older than `clock`, taken before the read.
   */
  async remember(name: string, was: Fingerprint, hash: string, clock: bigint): Promise<void> {
    const entries = await this.#load();
    if (BigInt(was.mtimeNs) >= clock) {
      if (entries.delete(name)) this.#unwritten++;
      return;
    }
    entries.set(name, { ...was, hash });
    this.#unwritten++;
    if (this.#unwritten >= Math.max(FLUSH_AT_LEAST, entries.size / 2)) await this.flush();
  }

  /** Forgets the hash of `name` (its file is replaced or removed). */
  async forget(name: string): Promise<void> {
    if (!this.#entries) return; // not loaded: a stale entry would not match the file's fingerprint
    if ((await this.#entries).delete(name)) this.#unwritten++;
  }

  /** Writes the cache file, if anything changed; never fails (see the class). */
  async flush(): Promise<void> {
    if (!this.#entries || this.#unwritten === 0) return;
    const entries = await this.#entries;
    const written = this.#unwritten;
    const stored: Record<string, [string, string, string, string, string]> = {};
    for (const [name, e] of entries) stored[name] = [e.size, e.mtimeNs, e.ctimeNs, e.ino, e.hash];
    const temp = path.join(this.#dir, this.#tempName());
    try {
      const handle = await open(temp, 'wx');
      try {
        await handle.writeFile(JSON.stringify({ format: FORMAT, entries: stored }));
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, this.#file);
      await syncDirectory(this.#dir);
      this.#unwritten = Math.max(0, this.#unwritten - written);
      this.#clock = undefined;
    } catch {
      await rm(temp, { force: true }).catch(() => {});
    }
  }
}

import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';

export interface FileLockOptions {
  /**
   * A lock of another host not refreshed for this long is taken to be abandoned (ten times as long
   * for a lock whose process still exists on this host: its id may have been reused).
   */
  staleMs: number;
  /** How often the holder refreshes its lock. */
  refreshMs: number;
}

export const FILE_LOCK_DEFAULTS: FileLockOptions = { staleMs: 30_000, refreshMs: 5_000 };

interface Owner {
  pid: number;
  host: string;
  /** This holding of the lock, so that a holder never deletes a lock taken over from it. */
  token: string;
}

/**
 * Runs `critical` holding the lock directory `lockPath` against every other process (or client)
 * using the same path. Creating a directory is atomic on every local file system and on NFS, so
 * exactly one creator holds the lock; it names its process in an `owner` file and refreshes the
 * directory's time while `critical` runs. A waiter takes the lock over when its holder is gone: a
 * process of this host that no longer exists (a crash: no waiting), or a lock not refreshed for
 * `staleMs` (a holder on another host).
 */
export async function withFileLock<T>(
  lockPath: string,
  critical: () => Promise<T>,
  options: FileLockOptions = FILE_LOCK_DEFAULTS,
): Promise<T> {
  const token = await acquire(lockPath, options);
  const refresh = setInterval(() => {
    const now = new Date();
    utimes(lockPath, now, now).catch(() => undefined);
  }, options.refreshMs);
  refresh.unref();
  try {
    return await critical();
  } finally {
    clearInterval(refresh);
    if ((await readOwner(lockPath))?.token === token) await rm(lockPath, { recursive: true, force: true });
  }
}

async function readOwner(lockPath: string): Promise<Owner | undefined> {
  try {
    return JSON.parse(await readFile(path.join(lockPath, 'owner'), 'utf8')) as Owner;
  } catch {
    return undefined;
  }
}

/** Takes the lock; returns the token of this holding. */
async function acquire(lockPath: string, options: FileLockOptions): Promise<string> {
  let pause = 2;
  for (;;) {
    try {
      await mkdir(lockPath);
      const owner: Owner = { pid: process.pid, host: hostname(), token: randomUUID() };
      await writeFile(path.join(lockPath, 'owner'), JSON.stringify(owner));
      return owner.token;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (await takeOverAbandoned(lockPath, options)) continue;
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, 50);
  }
}

/**
 * Moves an abandoned lock out of the way (then deletes it); true when the caller should try to
 * take the lock again. The lock is renamed aside first and checked to be the very directory judged
 * abandoned: when another waiter replaced it in between, the live lock is put back.
 */
async function takeOverAbandoned(lockPath: string, options: FileLockOptions): Promise<boolean> {
  const judged = await stat(lockPath).catch(() => undefined);
  if (!judged) return true; // released meanwhile
  if (!(await abandoned(lockPath, judged.mtimeMs, options))) return false;
  const aside = `${lockPath}.abandoned-${randomUUID()}`;
  try {
    await rename(lockPath, aside);
  } catch {
    return true; // another waiter moved it first
  }
  const moved = await stat(aside).catch(() => undefined);
  if (moved && moved.ino !== judged.ino) {
    // A lock taken after the judgement: give it back. (Only a third waiter creating the directory
    // again within these microseconds, all three on one abandoned lock, could still get in too.)
    await rename(aside, lockPath).catch(() => rm(aside, { recursive: true, force: true }));
    return true;
  }
  await rm(aside, { recursive: true, force: true });
  return true;
}

async function abandoned(lockPath: string, mtimeMs: number, options: FileLockOptions): Promise<boolean> {
  const age = Date.now() - mtimeMs;
  const owner = await readOwner(lockPath);
  // No owner yet: just created (or its creator died right then, and it goes stale).
  if (owner?.host !== hostname()) return age > options.staleMs;
  return !processExists(owner.pid) || age > options.staleMs * 10;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

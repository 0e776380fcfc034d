import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
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
    heldHere.delete(token);
  }
}

async function readOwner(lockPath: string): Promise<Owner | undefined> {
  try {
    return JSON.parse(await readFile(path.join(lockPath, 'owner'), 'utf8')) as Owner;
  } catch {
    return undefined;
  }
}

/** The holdings of this process (an owner with this process's id and another token is a previous process's). */
const heldHere = new Set<string>();

/** Takes the lock; returns the token of this holding. */
async function acquire(lockPath: string, options: FileLockOptions): Promise<string> {
  let pause = 2;
  for (;;) {
    if (await created(lockPath)) return own(lockPath);
    if (await takeOverAbandoned(lockPath, options)) continue;
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, 50);
  }
}

/** Creates the directory `dir`; false when it exists already. */
async function created(dir: string): Promise<boolean> {
  try {
    await mkdir(dir);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  }
}

/** Names this process as the owner of the lock it just created; returns the token of this holding. */
async function own(lockPath: string): Promise<string> {
  const owner: Owner = { pid: process.pid, host: hostname(), token: randomUUID() };
  heldHere.add(owner.token);
  try {
    await writeFile(path.join(lockPath, 'owner'), JSON.stringify(owner));
    return owner.token;
  } catch (err) {
    // Not left behind without an owner (a full disk): every waiter, here or in another process,
    // would take it for one being created and wait `staleMs` before taking it over.
    heldHere.delete(owner.token);
    await rm(lockPath, { recursive: true, force: true });
    throw err;
  }
}

interface LockState {
  mtimeMs: number;
  owner: Owner | undefined;
}

async function inspect(lockPath: string): Promise<LockState | undefined> {
  const info = await stat(lockPath).catch(() => undefined);
  return info && { mtimeMs: info.mtimeMs, owner: await readOwner(lockPath) };
}

/**
 * Removes an abandoned lock; true when the caller should try to take the lock again. One waiter at
 * a time does it, holding `<lock>.break` (created the same atomic way), and removes the lock only
 * after reading it again under that: nobody else removes a lock meanwhile, and a new lock can only
 * be created once this one is gone, so the lock it removes is the one it judged abandoned (same
 * owner token, still abandoned). A breaker that crashed mid-way is removed after `staleMs`.
 */
async function takeOverAbandoned(lockPath: string, options: FileLockOptions): Promise<boolean> {
  const judged = await inspect(lockPath);
  if (!judged) return true; // released meanwhile
  if (!abandoned(judged, options)) return false;
  const breaker = `${lockPath}.break`;
  if (!(await created(breaker))) {
    const since = (await stat(breaker).catch(() => undefined))?.mtimeMs;
    if (since !== undefined && Date.now() - since > options.staleMs)
      await rm(breaker, { recursive: true, force: true });
    return false; // another waiter is removing it
  }
  try {
    const again = await inspect(lockPath);
    if (again && again.owner?.token === judged.owner?.token && abandoned(again, options))
      await rm(lockPath, { recursive: true, force: true });
  } finally {
    await rm(breaker, { recursive: true, force: true });
  }
  return true;
}

function abandoned({ mtimeMs, owner }: LockState, options: FileLockOptions): boolean {
  const age = Date.now() - mtimeMs;
  // No owner yet: just created (or its creator died right then, and it goes stale).
  if (owner?.host !== hostname()) return age > options.staleMs;
  // This process's id with a token it does not hold: a process before it had the same id (a
  // restarted container's process 1) and died holding the lock.
  if (owner.pid === process.pid) return !heldHere.has(owner.token);
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

import { open, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';

/** A temporary file untouched this long was left by a write that died (a crash, a killed app). */
const ABANDONED_TEMP_MS = 60 * 60 * 1000;

/** Errors of platforms that cannot open or fsync a directory (Windows, some file systems). */
const NO_DIRECTORY_SYNC = new Set(['EISDIR', 'EPERM', 'EINVAL', 'ENOTSUP']);

/**
 * Fsyncs a directory after a rename into it: the renamed file is only durable once the directory
 * entry is. Skipped where the platform cannot.
 */
export async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (!NO_DIRECTORY_SYNC.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
  }
}

/**
 * Deletes the temporary files (named as `pattern` says) of writes that died before their rename (a
 * crash mid-write): nothing else ever would, and they hold the very space the next writes need. Only
 * old ones: another process sharing the directory may be writing its own right now.
 */
export async function removeAbandonedTemps(dir: string, pattern: RegExp): Promise<void> {
  const now = Date.now();
  for (const name of await readdir(dir).catch(() => [])) {
    if (!pattern.test(name)) continue;
    const file = path.join(dir, name);
    const info = await stat(file).catch(() => undefined);
    if (info && now - info.mtimeMs > ABANDONED_TEMP_MS) await rm(file, { force: true });
  }
}

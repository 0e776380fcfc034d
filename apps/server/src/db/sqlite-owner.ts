import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';

/** How often the owner marks its claim as alive, and after how long without that it is abandoned. */
export const OWNER_REFRESH_MS = 10_000;
export const OWNER_STALE_MS = 60_000;

interface Owner {
  pid: number;
  host: string;
  token: string;
}

/** Another server process uses the SQLite database: this one must not start on it. */
export class SqliteInUse extends Error {}

/**
 * Claims the SQLite database `file` for this server process, for as long as it runs: a directory
 * `<file>.owner` (creating a directory is atomic), naming the process, touched every
 * OWNER_REFRESH_MS. Everything that keeps the data consistent beyond the database's own
 * transactions (the bundle, blob and login locks) lives in one process with SQLite, so a second
 * server on the same file would race the first (several processes need PostgreSQL). A claim is
 * abandoned when its process is gone (same host) or it has not been touched for OWNER_STALE_MS
 * (a crash on another host sharing the volume, or a process id reused after a crash): it is then
 * taken over. Returns the release.
 */
export async function claimSqliteFile(file: string): Promise<() => Promise<void>> {
  const claim = `${file}.owner`;
  const owner: Owner = { pid: process.pid, host: hostname(), token: randomUUID() };
  for (let attempt = 0; ; attempt++) {
    try {
      await mkdir(claim);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 3) throw err;
    }
    const holder = await readOwner(claim);
    const touched = (await stat(claim).catch(() => undefined))?.mtimeMs;
    if (touched === undefined) continue; // released meanwhile
    const gone = holder?.host === hostname() && !processExists(holder.pid);
    if (!gone && Date.now() - touched <= OWNER_STALE_MS) {
      throw new SqliteInUse(
        `The SQLite database ${file} is in use by another synk server (${holder ? `process ${holder.pid} on ${holder.host}` : 'starting'}). ` +
          'Stop it first; several server processes need PostgreSQL (DB_CONNECTION=postgres://…).',
      );
    }
    // Abandoned: moved aside (one taker wins the rename), then claimed again.
    const aside = `${claim}.abandoned-${randomUUID()}`;
    if (
      await rename(claim, aside).then(
        () => true,
        () => false,
      )
    )
      await rm(aside, { recursive: true, force: true });
  }
  await writeFile(path.join(claim, 'owner'), JSON.stringify(owner));
  const refresh = setInterval(() => {
    const now = new Date();
    utimes(claim, now, now).catch(() => undefined);
  }, OWNER_REFRESH_MS);
  refresh.unref();
  return async () => {
    clearInterval(refresh);
    if ((await readOwner(claim))?.token === owner.token) await rm(claim, { recursive: true, force: true });
  };
}

async function readOwner(claim: string): Promise<Owner | undefined> {
  try {
    return JSON.parse(await readFile(path.join(claim, 'owner'), 'utf8')) as Owner;
  } catch {
    return undefined;
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

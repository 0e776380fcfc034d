import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import Database from 'better-sqlite3';

/** Another server process uses the SQLite database: this one must not start on it. */
export class SqliteInUse extends Error {}

/**
 * Claims the SQLite database `file` for this server process, for as long as it runs: an exclusive
 * SQLite lock on a file of its own beside it (`<file>.owner.lock`, `locking_mode = EXCLUSIVE` and
 * a write transaction kept open). Everything that keeps the data consistent beyond the database's
 * own transactions (the bundle, blob and login locks) lives in one process with SQLite, so a
 * second server on the same file would race the first (several processes need PostgreSQL).
 *
 * The lock is the operating system's (what SQLite itself locks with): it is released when the
 * process ends however it ends, a crash or a kill included, so a restart never waits and no
 * process id or clock is judged (a container's restarted server is process 1 again). Two
 * connections of one process exclude each other too. Who holds it is written beside it
 * (`<file>.owner`), only to name it. Returns the release.
 */
export function claimSqliteFile(file: string): () => void {
  const lock = new Database(`${file}.owner.lock`, { timeout: 0 });
  try {
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec('begin exclusive');
  } catch (err) {
    lock.close();
    if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
    throw new SqliteInUse(
      `The SQLite database ${file} is in use by another synk server (${holder(file)}). ` +
        'Stop it first; several server processes need PostgreSQL (DB_CONNECTION=postgres://…).',
    );
  }
  writeFileSync(`${file}.owner`, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date() }));
  let released = false;
  return () => {
    if (released) return;
    released = true;
    rmSync(`${file}.owner`, { force: true });
    lock.close();
  };
}

function holder(file: string): string {
  try {
    const { pid, host } = JSON.parse(readFileSync(`${file}.owner`, 'utf8')) as { pid: number; host: string };
    return `process ${pid} on ${host}`;
  } catch {
    return 'starting';
  }
}

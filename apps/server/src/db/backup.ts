import { randomUUID } from 'node:crypto';
import { access, cp, mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import Database from 'better-sqlite3';
import type { Config } from '../config.ts';
import { BlobDigestMismatch, FileBlobStorage } from '../lib/blob-storage.ts';
import { syncPath } from '../lib/files.ts';
import { SECRET_FILE } from '../lib/secret.ts';

/** The backup cannot be made (its message says why and what to do). */
export class BackupError extends Error {}

export interface BackupSummary {
  directory: string;
  records: number;
  attachments: number;
  attachmentBytes: number;
  bundleVersions: string[];
  activeBundle: string | null;
}

/** A blob or bundle version the snapshot names was deleted before it was copied: snapshot again. */
const ATTEMPTS = 3;

/**
 * How far the backup's change counter is moved on. After a restore, devices that synced after the
 * backup hold cursors past its counter: had the restored server handed out those versions again,
 * such a device would never pull the changes that got them. Far more versions than a server issues
 * between two backups (at 50,000 changes a second, 231 days' worth), and room for thousands of
 * restores below 2^53.
 */
export const RESTORE_VERSION_GAP = 10 ** 12;

/**
 * Copies a SQLite server's data into `target`, a new directory that is itself a data directory
 * (`DATA_DIR=<target>` starts a server on it): a consistent snapshot of the database (`VACUUM
 * INTO`, one read transaction, which never blocks the running server's writes; its change counter
 * moved on by RESTORE_VERSION_GAP), the attachment blobs and app bundle versions that snapshot refers to, and the generated signing secret (so
 * tokens stay valid after a restore).
 *
 * Safe while the server runs. Files are copied after the snapshot, so one deleted meanwhile (an
 * attachment deleted, a bundle version pruned) is missing: then a newer snapshot, which no longer
 * needs it, is taken. Every blob is checked against its hash on the way, so a backup never copies
 * a damaged file silently. Built beside `target` and renamed into place, fsynced: a backup cut
 * short leaves no directory that looks complete.
 */
export async function backupData(config: Config, target: string): Promise<BackupSummary> {
  const { database } = config;
  if (database.kind !== 'sqlite') {
    throw new BackupError(
      'This server uses PostgreSQL: back its database up with pg_dump, then copy the data directory ' +
        '(attachments/, app-bundles/ and jwt-secret), in that order (see the README).',
    );
  }
  const directory = path.resolve(target);
  if (await exists(directory)) throw new BackupError(`${directory} already exists; name a new directory`);
  await access(database.file).catch(() => {
    throw new BackupError(`There is no database at ${database.file} (check DATA_DIR / DB_CONNECTION)`);
  });
  const staging = `${directory}.partial-${randomUUID()}`;
  await mkdir(staging, { recursive: true, mode: 0o700 });
  try {
    const summary = await copyInto(config, database.file, staging);
    await rename(staging, directory);
    await syncPath(path.dirname(directory));
    return { ...summary, directory };
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
}

async function copyInto(
  config: Config,
  databaseFile: string,
  staging: string,
): Promise<Omit<BackupSummary, 'directory'>> {
  const sourceBlobs = new FileBlobStorage(path.join(config.dataDir, 'attachments'));
  const blobs = new FileBlobStorage(path.join(staging, 'attachments'));
  const snapshotFile = path.join(staging, 'synkronus.db');
  const copiedBlobs = new Set<string>();
  const copiedVersions = new Set<string>();
  for (let attempt = 1; ; attempt++) {
    await rm(snapshotFile, { force: true });
    const snapshot = takeSnapshot(databaseFile, snapshotFile);
    const missing: string[] = [];
    for (const { attachment_id: id, hash } of snapshot.blobs) {
      if (copiedBlobs.has(hash)) continue;
      if (await copyBlob(sourceBlobs, blobs, hash, id)) copiedBlobs.add(hash);
      else missing.push(`attachment ${id}`);
    }
    for (const version of snapshot.bundleVersions) {
      if (copiedVersions.has(version)) continue;
      const from = path.join(config.appBundlePath, 'versions', version);
      if (!(await exists(from))) {
        missing.push(`app bundle version ${version}`);
        continue;
      }
      const to = path.join(staging, 'app-bundles', 'versions', version);
      await cp(from, to, { recursive: true });
      await syncTree(to);
      copiedVersions.add(version);
    }
    if (missing.length === 0) {
      await copySecret(config.dataDir, staging);
      await syncPath(snapshotFile);
      return {
        records: snapshot.records,
        attachments: snapshot.blobs.length,
        attachmentBytes: snapshot.attachmentBytes,
        bundleVersions: snapshot.bundleVersions,
        activeBundle: snapshot.activeBundle,
      };
    }
    if (attempt === ATTEMPTS) {
      throw new BackupError(
        `The database names files that are not in the data directory: ${missing.slice(0, 5).join(', ')}` +
          `${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}. Nothing was written.`,
      );
    }
  }
}

interface Snapshot {
  records: number;
  blobs: { attachment_id: string; hash: string }[];
  attachmentBytes: number;
  bundleVersions: string[];
  activeBundle: string | null;
}

/** The database as of one moment, written to `file`, and what it refers to outside itself. */
function takeSnapshot(databaseFile: string, file: string): Snapshot {
  const source = new Database(databaseFile, { fileMustExist: true, timeout: 10_000 });
  try {
    source.prepare('vacuum into ?').run(file);
  } finally {
    source.close();
  }
  const db = new Database(file, { fileMustExist: true });
  try {
    db.prepare('update sync_counter set value = value + ? where id = 1').run(RESTORE_VERSION_GAP);
    const blobs = db
      .prepare('select attachment_id, hash from attachments where deleted = 0 order by attachment_id')
      .all() as { attachment_id: string; hash: string }[];
    const active = db.prepare('select active_version from app_bundle_state where id = 1').get() as
      | { active_version: string | null }
      | undefined;
    return {
      records: (db.prepare('select count(*) as n from observations').get() as { n: number }).n,
      blobs,
      attachmentBytes: (
        db.prepare('select coalesce(sum(size), 0) as n from attachments where deleted = 0').get() as {
          n: number;
        }
      ).n,
      bundleVersions: (
        db.prepare('select version from app_bundle_versions order by version').all() as { version: string }[]
      ).map((row) => row.version),
      activeBundle: active?.active_version ?? null,
    };
  } finally {
    db.close();
  }
}

/**
 * Copies one blob, checking its bytes against its hash; false when the source has none (deleted
 * after the snapshot). A blob whose bytes do not match is damaged: the backup stops and says which.
 */
async function copyBlob(
  source: FileBlobStorage,
  target: FileBlobStorage,
  hash: string,
  attachmentId: string,
): Promise<boolean> {
  const reader = await source.open(hash);
  if (!reader) return false;
  try {
    const pipe = new PassThrough();
    const staged = target.stage(pipe, { maxBytes: Number.MAX_SAFE_INTEGER, expectedSha256: hash });
    await reader.copyTo(pipe).finally(() => pipe.end());
    await (await staged).publish();
    return true;
  } catch (err) {
    if (err instanceof BlobDigestMismatch) {
      throw new BackupError(
        `The stored file of attachment ${attachmentId} is damaged (its sha256 is ${err.actual}, not ${hash}). ` +
          'Nothing was written; restore that file from an earlier backup or delete the attachment.',
      );
    }
    throw err;
  } finally {
    await reader.close();
  }
}

async function copySecret(dataDir: string, staging: string): Promise<void> {
  const from = path.join(dataDir, SECRET_FILE);
  if (!(await exists(from))) return; // JWT_SECRET is set: the secret is in the configuration
  const to = path.join(staging, SECRET_FILE);
  await cp(from, to);
  await syncPath(to);
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** fsyncs every file and directory under `dir` (a copied bundle version: a few dozen files). */
async function syncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const inner = path.join(dir, entry.name);
    if (entry.isDirectory()) await syncTree(inner);
    else await syncPath(inner);
  }
  await syncPath(dir);
}

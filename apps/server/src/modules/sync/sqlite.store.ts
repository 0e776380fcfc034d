import type { MikroORM } from '@mikro-orm/core';
import type { SqliteConnection } from '@mikro-orm/sqlite';
import type Database from 'better-sqlite3';
import DatabaseConstructor from 'better-sqlite3';
import { activityValues, type ClientActivity, type SyncClientRow } from './client-activity.ts';
import { SqliteExportReader } from './sqlite-export.ts';
import { SqlitePageReader } from './sqlite-page.ts';
import { MERGE_ACTIVITY_SQL, SqlitePushThread, SqlitePushWriter } from './sqlite-push.ts';
import type {
  AttachmentChangesQuery,
  AttachmentPutOutcome,
  AttachmentRow,
  ExportReader,
  PullPage,
  PullQuery,
  PushOutcome,
  PushRequest,
  StoredConflict,
  SyncStore,
  TombstonePurge,
  TombstonePurgeRequest,
} from './sync.store.ts';
import { dryRunOutcome, highest, purgeBatches, purgeOutcome } from './tombstone-purge.ts';

type AttachmentDbRow = Omit<AttachmentRow, 'deleted'> & { deleted: number };
const toAttachment = (row: AttachmentDbRow): AttachmentRow => ({ ...row, deleted: row.deleted === 1 });

/** Where pushes are written: on the ORM's connection, or by a thread of their own. */
interface PushPath {
  write(request: PushRequest): Promise<PushOutcome>;
  close(): Promise<void>;
}

/**
 * The sync hot path on SQLite, with prepared statements on the ORM's own better-sqlite3
 * connection. Each pull, and each write here, runs as one synchronous transaction: nothing else in
 * this process can interleave with it on that connection, and it starts only when the ORM has no
 * transaction open on the connection, so it never nests inside another request's transaction.
 * Writes begin `IMMEDIATE`, taking the write lock up front.
 *
 * Pushes to a database file are written by a worker thread on a connection of its own
 * (SqlitePushThread); an in-memory database has only the ORM's connection, which writes them here.
 */
export class SqliteSyncStore implements SyncStore {
  readonly #db: Database.Database;
  readonly #statements: ReturnType<typeof prepare>;
  readonly #pages: SqlitePageReader;
  readonly #pushes: PushPath;

  private constructor(db: Database.Database) {
    this.#db = db;
    this.#statements = prepare(db);
    this.#pages = new SqlitePageReader(db);
    if (db.memory) {
      const writer = new SqlitePushWriter(db);
      this.#pushes = {
        write: (request) => this.#whenIdle(() => writer.write(request)),
        close: async () => {},
      };
    } else {
      this.#pushes = new SqlitePushThread(db.name);
    }
  }

  static async open(orm: MikroORM): Promise<SqliteSyncStore> {
    const db = await (orm.em.getConnection() as unknown as SqliteConnection).getNativeClient();
    return new SqliteSyncStore(db);
  }

  /**
   * Waits until no ORM transaction is open on the shared connection: a turn of the event loop at a
   * time at first, then a millisecond at a time, so that a long one (a bundle push holds one while
   * it writes files) is not waited for at full CPU.
   */
  async #idle(): Promise<void> {
    for (let turns = 0; this.#db.inTransaction; turns++) {
      await new Promise((resolve) => (turns < 10 ? setImmediate(resolve) : setTimeout(resolve, 1)));
    }
  }

  /**
   * Runs `work` (synchronous: one statement or transaction of its own) once the connection is idle,
   * checked right before it runs, so that no ORM transaction can begin in between and have it run
   * nested inside (as a savepoint of someone else's transaction).
   */
  async #whenIdle<T>(work: () => T): Promise<T> {
    while (this.#db.inTransaction) await this.#idle();
    return work();
  }

  async push(request: PushRequest): Promise<PushOutcome> {
    return this.#pushes.write(request);
  }

  async pull(query: PullQuery): Promise<PullPage> {
    return this.#whenIdle(() => this.#pages.read(query));
  }

  async conflicts(afterId: number, limit: number): Promise<StoredConflict[]> {
    return this.#statements.conflicts.all(afterId, limit) as StoredConflict[];
  }

  async recordActivity(activity: readonly ClientActivity[]): Promise<void> {
    const { mergeActivity } = this.#statements;
    const run = this.#db.transaction(() => {
      for (const a of activity) mergeActivity.run(...activityValues(a));
    });
    await this.#whenIdle(() => run.immediate());
  }

  async syncClients(
    afterClientId: string,
    limit: number,
  ): Promise<{ currentVersion: number; clients: SyncClientRow[] }> {
    const s = this.#statements;
    return this.#whenIdle(() =>
      this.#db
        .transaction(() => ({
          currentVersion: (s.counter.get() as { value: number }).value,
          clients: s.syncClients.all(afterClientId, limit) as SyncClientRow[],
        }))
        .deferred(),
    );
  }

  async purgeTransmissions(nowMs: number): Promise<number> {
    return this.#whenIdle(() => this.#statements.purge.run(nowMs).changes);
  }

  async currentVersion(): Promise<number> {
    return this.#whenIdle(() => (this.#statements.counter.get() as { value: number }).value);
  }

  async purgeTombstones(request: TombstonePurgeRequest): Promise<TombstonePurge> {
    const s = this.#statements;
    const repository = () => {
      const [generation, purgedThrough] = s.generation.get() as [number, number];
      return { generation, purgedThrough };
    };
    if (request.dryRun) {
      const [count, lastVersion] = s.oldTombstones.get(request.syncedBefore) as [number, number | null];
      return dryRunOutcome({ count, lastVersion }, repository(), request.batchSize);
    }
    // Immediate, as a push: it takes the write lock up front, so no push commits in between.
    const batch = this.#db.transaction((batchSize: number): TombstonePurge => {
      const versions = s.deleteTombstones.all(request.syncedBefore, batchSize) as number[];
      const outcome = purgeOutcome({ count: versions.length, lastVersion: highest(versions) }, repository());
      if (outcome.purged > 0) s.setGeneration.run(outcome.generation, outcome.purgedThrough);
      return outcome;
    });
    return purgeBatches(request, (batchSize) => this.#whenIdle(() => batch.immediate(batchSize)));
  }

  async close(): Promise<void> {
    // The ORM's connection is the ORM's to close; the push thread's is this store's.
    await this.#pushes.close();
  }

  async putAttachment(a: {
    id: string;
    hash: string;
    size: number;
    contentType: string;
    now: string;
  }): Promise<AttachmentPutOutcome> {
    const s = this.#statements;
    return this.#whenIdle(() =>
      this.#db
        .transaction((): AttachmentPutOutcome => {
          const existing = s.attachment.get(a.id) as AttachmentDbRow | undefined;
          if (existing && existing.deleted === 0) {
            return existing.hash === a.hash
              ? { kind: 'same', version: existing.version }
              : { kind: 'conflict', hash: existing.hash };
          }
          const version = (s.bumpCounter.get(1) as { value: number }).value;
          s.upsertAttachment.run(
            a.id,
            a.hash,
            a.size,
            a.contentType,
            version,
            existing?.created_at ?? a.now,
            a.now,
          );
          return { kind: 'created', version };
        })
        .immediate(),
    );
  }

  async deleteAttachment(
    id: string,
    now: string,
  ): Promise<{ version: number; hash: string; orphaned: boolean } | undefined> {
    const s = this.#statements;
    return this.#whenIdle(() =>
      this.#db
        .transaction(() => {
          const existing = s.attachment.get(id) as AttachmentDbRow | undefined;
          if (!existing || existing.deleted === 1) return undefined;
          const version = (s.bumpCounter.get(1) as { value: number }).value;
          s.tombstoneAttachment.run(version, now, id);
          const users = (s.liveBlobUsers.get(existing.hash) as { n: number }).n;
          return { version, hash: existing.hash, orphaned: users === 0 };
        })
        .immediate(),
    );
  }

  /**
   * A file database is read for an export on a connection of its own, in one read transaction
   * (WAL: it sees the records as they were when it began and blocks no push). An in-memory
   * database has no second connection: its pages are read between pushes, without a snapshot.
   */
  async openExportReader(): Promise<ExportReader> {
    if (this.#db.memory) return new SqliteExportReader(this.#db, () => this.#idle());
    const db = new DatabaseConstructor(this.#db.name, { readonly: true, fileMustExist: true });
    try {
      db.prepare('begin').run();
      db.prepare('select value from sync_counter where id = 1').get(); // the snapshot starts at the first read
    } catch (err) {
      db.close();
      throw err;
    }
    return new SqliteExportReader(
      db,
      async () => {},
      () => {
        try {
          db.prepare('commit').run();
        } finally {
          db.close();
        }
      },
    );
  }

  async getAttachment(id: string): Promise<AttachmentRow | undefined> {
    const row = await this.#whenIdle(
      () => this.#statements.attachment.get(id) as AttachmentDbRow | undefined,
    );
    return row && row.deleted === 0 ? toAttachment(row) : undefined;
  }

  async attachmentChanges(
    query: AttachmentChangesQuery,
  ): Promise<{ currentVersion: number; rows: AttachmentRow[] }> {
    const s = this.#statements;
    const through = Math.min(query.through, Number.MAX_SAFE_INTEGER);
    return this.#whenIdle(() =>
      this.#db
        .transaction(() => ({
          currentVersion: (s.counter.get() as { value: number }).value,
          rows: (s.attachmentsSince.all(query.after, through, query.limit) as AttachmentDbRow[]).map(
            toAttachment,
          ),
        }))
        .deferred(),
    );
  }
}

const OLD_TOMBSTONES = 'deleted = 1 and synced_at <= ?';

function prepare(db: Database.Database) {
  return {
    counter: db.prepare('select value from sync_counter where id = 1'),
    bumpCounter: db.prepare('update sync_counter set value = value + ? where id = 1 returning value'),
    purge: db.prepare('delete from sync_transmissions where expires_at <= ?'),
    generation: db.prepare('select generation, purged_through from sync_counter where id = 1').raw(),
    // `deleted = 1` as the partial index observations_tombstone_synced_at_index states it.
    oldTombstones: db
      .prepare(`select count(*), max(version) from observations where ${OLD_TOMBSTONES}`)
      .raw(),
    deleteTombstones: db
      .prepare(
        `delete from observations where observation_id in (select observation_id from observations where ${OLD_TOMBSTONES} limit ?) returning version`,
      )
      .pluck(),
    setGeneration: db.prepare('update sync_counter set generation = ?, purged_through = ? where id = 1'),
    conflicts: db.prepare('select * from sync_conflicts where id > ? order by id limit ?'),
    mergeActivity: db.prepare(MERGE_ACTIVITY_SQL),
    syncClients: db.prepare('select * from sync_clients where client_id > ? order by client_id limit ?'),
    attachment: db.prepare('select * from attachments where attachment_id = ?'),
    upsertAttachment: db.prepare(
      'insert into attachments (attachment_id, hash, size, content_type, deleted, version, created_at, updated_at) values (?, ?, ?, ?, 0, ?, ?, ?) on conflict (attachment_id) do update set hash = excluded.hash, size = excluded.size, content_type = excluded.content_type, deleted = 0, version = excluded.version, created_at = excluded.created_at, updated_at = excluded.updated_at',
    ),
    tombstoneAttachment: db.prepare(
      'update attachments set deleted = 1, version = ?, updated_at = ? where attachment_id = ?',
    ),
    liveBlobUsers: db.prepare('select count(*) as n from attachments where hash = ? and deleted = 0'),
    attachmentsSince: db.prepare(
      'select * from attachments where version > ? and version <= ? order by version limit ?',
    ),
  };
}

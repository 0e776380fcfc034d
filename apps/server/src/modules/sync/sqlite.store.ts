import type { MikroORM } from '@mikro-orm/core';
import type { SqliteConnection } from '@mikro-orm/sqlite';
import { parseJson } from '@synk/json';
import type Database from 'better-sqlite3';
import DatabaseConstructor from 'better-sqlite3';
import {
  ACTIVITY_COLUMNS,
  activityMergeSql,
  activityValues,
  type ClientActivity,
  pushActivity,
  type SyncClientRow,
} from './client-activity.ts';
import { SqliteExportReader } from './sqlite-export.ts';
import { SqlitePageReader } from './sqlite-page.ts';
import {
  type AttachmentChangesQuery,
  type AttachmentPutOutcome,
  type AttachmentRow,
  CONFLICT_COLUMNS,
  conflictValues,
  type ExportReader,
  type PullPage,
  type PullQuery,
  type PushOutcome,
  type PushRequest,
  RECORD_COLUMNS,
  type StoredConflict,
  type StoredRecord,
  type SyncStore,
  type TombstonePurge,
  type TombstonePurgeRequest,
  UPSERT_ASSIGNMENTS,
} from './sync.store.ts';
import { dryRunOutcome, highest, purgeBatches, purgeOutcome } from './tombstone-purge.ts';

type Row = Omit<StoredRecord, 'deleted'> & { deleted: number };
type AttachmentDbRow = Omit<AttachmentRow, 'deleted'> & { deleted: number };
const toAttachment = (row: AttachmentDbRow): AttachmentRow => ({ ...row, deleted: row.deleted === 1 });

const toRecord = (row: Row): StoredRecord => ({ ...row, deleted: row.deleted === 1 });
const ID_CHUNK = 500;

/**
 * The sync hot path on SQLite, with prepared statements on the ORM's own better-sqlite3
 * connection. Each push or pull runs as one synchronous transaction: nothing else in this process
 * can interleave with it, and it starts only when the ORM has no transaction open on the
 * connection, so it never nests inside another request's transaction. `BEGIN IMMEDIATE` takes the
 * write lock up front in case another process shares the file.
 */
export class SqliteSyncStore implements SyncStore {
  readonly #db: Database.Database;
  readonly #statements: ReturnType<typeof prepare>;
  readonly #pages: SqlitePageReader;

  private constructor(db: Database.Database) {
    this.#db = db;
    this.#statements = prepare(db);
    this.#pages = new SqlitePageReader(db);
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

  async push<Response>(request: PushRequest<Response>): Promise<PushOutcome<Response>> {
    const s = this.#statements;
    const run = this.#db.transaction((): PushOutcome<Response> => {
      const seen = s.transmission.get(request.clientId, request.transmissionId) as
        | { body_hash: string; response: string; expires_at: number }
        | undefined;
      if (seen && seen.expires_at > request.nowMs) {
        return seen.body_hash === request.bodyHash
          ? { kind: 'replay', response: parseJson(seen.response) as Response }
          : { kind: 'mismatch' };
      }
      if (seen) s.forgetTransmission.run(request.clientId, request.transmissionId);

      const existing = new Map<string, StoredRecord>();
      for (let i = 0; i < request.observationIds.length; i += ID_CHUNK) {
        const ids = request.observationIds.slice(i, i + ID_CHUNK);
        for (const row of this.#selectByIds(ids.length).all(...ids) as Row[])
          existing.set(row.observation_id, toRecord(row));
      }
      const decision = request.decide(existing);
      let current = (s.counter.get() as { value: number }).value;
      const versions: number[] = [];
      if (decision.writes.length > 0) {
        current = (s.bumpCounter.get(decision.writes.length) as { value: number }).value;
        let version = current - decision.writes.length;
        for (const w of decision.writes) {
          version += 1;
          versions.push(version);
          s.upsert.run(
            w.observation_id,
            w.form_type,
            w.form_version,
            w.data,
            w.created_at,
            w.updated_at,
            w.synced_at,
            w.deleted ? 1 : 0,
            version,
            w.geolocation,
            w.hash,
            w.last_modified_by,
            w.origin_client_id,
          );
        }
      }
      for (const c of decision.conflicts) s.conflict.run(...conflictValues(c));
      s.mergeActivity.run(
        ...activityValues(
          pushActivity(
            request.clientId,
            request.username,
            request.nowMs,
            versions.at(-1) ?? null,
            decision.accepted,
          ),
        ),
      );
      const response = decision.respond(current, versions);
      s.remember.run(
        request.clientId,
        request.transmissionId,
        request.bodyHash,
        JSON.stringify(response),
        request.nowMs,
        request.expiresAtMs,
      );
      return { kind: 'done', response };
    });
    return this.#whenIdle(() => run.immediate());
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
    // The connection belongs to the ORM, which closes it.
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

  readonly #byIds = new Map<number, Database.Statement>();
  #selectByIds(n: number): Database.Statement {
    let statement = this.#byIds.get(n);
    if (!statement) {
      statement = this.#db.prepare(
        `select ${RECORD_COLUMNS.join(', ')} from observations where observation_id in (${placeholders(n)})`,
      );
      this.#byIds.set(n, statement);
    }
    return statement;
  }
}

const OLD_TOMBSTONES = 'deleted = 1 and synced_at <= ?';
const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

function prepare(db: Database.Database) {
  return {
    counter: db.prepare('select value from sync_counter where id = 1'),
    bumpCounter: db.prepare('update sync_counter set value = value + ? where id = 1 returning value'),
    upsert: db.prepare(
      `insert into observations (${RECORD_COLUMNS.join(', ')}) values (${placeholders(RECORD_COLUMNS.length)}) on conflict (observation_id) do update set ${UPSERT_ASSIGNMENTS}`,
    ),
    transmission: db.prepare(
      'select body_hash, response, expires_at from sync_transmissions where client_id = ? and transmission_id = ?',
    ),
    forgetTransmission: db.prepare(
      'delete from sync_transmissions where client_id = ? and transmission_id = ?',
    ),
    remember: db.prepare(
      'insert into sync_transmissions (client_id, transmission_id, body_hash, response, created_at, expires_at) values (?, ?, ?, ?, ?, ?)',
    ),
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
    conflict: db.prepare(`insert into sync_conflicts (${CONFLICT_COLUMNS}) values (${placeholders(11)})`),
    conflicts: db.prepare('select * from sync_conflicts where id > ? order by id limit ?'),
    mergeActivity: db.prepare(
      `insert into sync_clients (${ACTIVITY_COLUMNS.join(', ')}) values (${placeholders(ACTIVITY_COLUMNS.length)}) on conflict (client_id) do update set ${activityMergeSql('sqlite')}`,
    ),
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

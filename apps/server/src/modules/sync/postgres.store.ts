import { parseJson } from '@synk/json';
import pg from 'pg';
import { type PostgresTarget, pgConnectionOptions } from '../../db/pg-connection.ts';
import {
  ACTIVITY_COLUMNS,
  activityMergeSql,
  activityValues,
  type ClientActivity,
  pushActivity,
  type SyncClientRow,
} from './client-activity.ts';
import { PULL_PAGE_MAX_BYTES, RECORD_ENVELOPE_BYTES } from './page-bytes.ts';
import { PostgresExportReader } from './postgres-export.ts';
import { decidePush, type PushResponse, pushedIds } from './push-decision.ts';
import {
  type AttachmentChangesQuery,
  type AttachmentPutOutcome,
  type AttachmentRow,
  CONFLICT_COLUMNS,
  conflictValues,
  type ExportReader,
  observationJson,
  type PullPage,
  type PullQuery,
  type PushOutcome,
  type PushRequest,
  RECORD_COLUMNS,
  REMEMBER_COLUMNS,
  rememberValues,
  type StoredConflict,
  type StoredRecord,
  type SyncStore,
  type TombstonePurge,
  type TombstonePurgeRequest,
  UPSERT_ASSIGNMENTS,
} from './sync.store.ts';
import { dryRunOutcome, highest, purgeBatches, purgeOutcome } from './tombstone-purge.ts';
import { Utf8Builder } from './utf8-builder.ts';

type Row = Omit<StoredRecord, 'version'> & { version: string };
type AttachmentDbRow = Omit<AttachmentRow, 'version' | 'size'> & { version: string; size: string };
const toAttachment = (row: AttachmentDbRow): AttachmentRow => ({
  ...row,
  version: Number(row.version),
  size: Number(row.size),
});
const toRecord = (row: Row): StoredRecord => ({ ...row, version: Number(row.version) });

const COLUMN_TYPES: Record<(typeof RECORD_COLUMNS)[number], string> = {
  observation_id: 'text',
  form_type: 'text',
  form_version: 'text',
  data: 'text',
  created_at: 'text',
  updated_at: 'text',
  synced_at: 'text',
  deleted: 'bool',
  version: 'int8',
  geolocation: 'text',
  hash: 'text',
  last_modified_by: 'text',
  origin_client_id: 'text',
};

/** All records of a push in one statement: one array parameter per column. */
const UPSERT = `insert into observations (${RECORD_COLUMNS.join(', ')})
  select * from unnest(${RECORD_COLUMNS.map((c, i) => `$${i + 1}::${COLUMN_TYPES[c]}[]`).join(', ')})
  on conflict (observation_id) do update set ${UPSERT_ASSIGNMENTS}`;

/** Each device status column's type, for its array parameter (as COLUMN_TYPES for records). */
const ACTIVITY_TYPES: Record<(typeof ACTIVITY_COLUMNS)[number], string> = {
  client_id: 'text',
  username: 'text',
  first_seen_at: 'int8',
  last_seen_at: 'int8',
  last_push_at: 'int8',
  last_pull_at: 'int8',
  highest_pushed_version: 'int8',
  change_cutoff: 'int8',
  push_count: 'int8',
  records_accepted: 'int8',
};

/** Tombstones last synced at or before $1, as the partial index observations_tombstone_synced_at_index states them. */
const OLD_TOMBSTONES = 'deleted and synced_at <= $1';

/** Device status merges, any number in one statement (one array parameter per column). */
const MERGE_ACTIVITY = `insert into sync_clients (${ACTIVITY_COLUMNS.join(', ')})
  select * from unnest(${ACTIVITY_COLUMNS.map((c, i) => `$${i + 1}::${ACTIVITY_TYPES[c]}[]`).join(', ')})
  on conflict (client_id) do update set ${activityMergeSql('postgresql')}`;

function mergeParameters(activities: readonly ClientActivity[]): unknown[][] {
  const rows = activities.map(activityValues);
  return ACTIVITY_COLUMNS.map((_, column) => rows.map((row) => row[column]));
}

/** int8 columns arrive as strings. */
type SyncClientDbRow = Record<keyof SyncClientRow, string | null>;
const nullableNumber = (value: string | null) => (value === null ? null : Number(value));
const toSyncClient = (row: SyncClientDbRow): SyncClientRow => ({
  client_id: row.client_id!,
  username: row.username!,
  first_seen_at: Number(row.first_seen_at),
  last_seen_at: Number(row.last_seen_at),
  last_push_at: nullableNumber(row.last_push_at),
  last_pull_at: nullableNumber(row.last_pull_at),
  highest_pushed_version: nullableNumber(row.highest_pushed_version),
  change_cutoff: nullableNumber(row.change_cutoff),
  push_count: Number(row.push_count),
  records_accepted: Number(row.records_accepted),
});

/**
 * The sync hot path on PostgreSQL, on a pool of its own. A push first locks the counter row
 * (`select … for update`) and holds it to commit: pushes commit one at a time, in version order,
 * across every server process sharing the database, and each push decides conflicts on rows no
 * other push can change under it. Pulls read in a REPEATABLE READ snapshot.
 */
export class PostgresSyncStore implements SyncStore {
  readonly #pool: pg.Pool;

  constructor(database: PostgresTarget, onConnectionError: (err: Error) => void = () => {}) {
    this.#pool = new pg.Pool({ ...pgConnectionOptions(database), max: 10 });
    // A connection PostgreSQL drops (a restart, a failover, pg_terminate_backend, the network) makes
    // its client emit 'error': the pool's when it is idle, the client's own while checked out (a
    // push between statements, an export between pages). Unheard, either killed the process. The
    // query in flight, if any, fails by itself; the pool replaces the connection on the next use.
    this.#pool.on('connect', (client) => client.on('error', onConnectionError));
    // An idle client's error reaches the pool too, once its own listener (above) has reported it.
    this.#pool.on('error', () => {});
  }

  push(request: PushRequest): Promise<PushOutcome> {
    const ids = pushedIds(request);
    return this.#counted(async (client, counter): Promise<PushOutcome> => {
      let current = counter;
      const seen = await client.query<{ body_hash: string; response: string; expires_at: string }>(
        'select body_hash, response, expires_at from sync_transmissions where client_id = $1 and transmission_id = $2',
        [request.clientId, request.transmissionId],
      );
      const previous = seen.rows[0];
      if (previous && Number(previous.expires_at) > request.nowMs) {
        // Nothing was written: committing only lets go of the counter lock.
        return previous.body_hash === request.bodyHash
          ? { kind: 'replay', response: parseJson(previous.response) as PushResponse }
          : { kind: 'mismatch' };
      }
      if (previous) {
        await client.query('delete from sync_transmissions where client_id = $1 and transmission_id = $2', [
          request.clientId,
          request.transmissionId,
        ]);
      }
      const existing = new Map<string, StoredRecord>();
      if (ids.length > 0) {
        const found = await client.query<Row>(
          `select ${RECORD_COLUMNS.join(', ')} from observations where observation_id = any($1::text[])`,
          [ids],
        );
        for (const row of found.rows) existing.set(row.observation_id, toRecord(row));
      }
      const decision = decidePush(request, existing);
      const versions: number[] = [];
      if (decision.writes.length > 0) {
        const bumped = await client.query<{ value: string }>(
          'update sync_counter set value = value + $1 where id = 1 returning value',
          [decision.writes.length],
        );
        current = Number(bumped.rows[0]!.value);
        for (let i = 0; i < decision.writes.length; i++)
          versions.push(current - decision.writes.length + i + 1);
        const columns = RECORD_COLUMNS.map((c) =>
          c === 'version' ? versions : decision.writes.map((w) => w[c as keyof typeof w]),
        );
        await client.query(UPSERT, columns);
      }
      for (const c of decision.conflicts) {
        await client.query(
          `insert into sync_conflicts (${CONFLICT_COLUMNS}) values (${conflictValues(c)
            .map((_, i) => `$${i + 1}`)
            .join(', ')})`,
          conflictValues(c),
        );
      }
      await client.query(
        MERGE_ACTIVITY,
        mergeParameters([
          pushActivity(
            request.clientId,
            request.username,
            request.nowMs,
            versions.at(-1) ?? null,
            decision.accepted,
          ),
        ]),
      );
      const response = decision.respond(current);
      await client.query(
        `insert into sync_transmissions (${REMEMBER_COLUMNS}) values ($1, $2, $3, $4, $5, $6)`,
        rememberValues(request, response),
      );
      return { kind: 'done', response };
    });
  }

  async pull(query: PullQuery): Promise<PullPage> {
    const filter = query.formTypes && query.formTypes.length > 0 ? query.formTypes : null;
    const columns = RECORD_COLUMNS.join(', ');
    // The next limit + 1 records, kept while their running size is within the byte budget (at
    // least one; page-bytes.ts), each row with the number of candidates: fewer rows than candidates
    // means more follow. octet_length reads a stored value's size without fetching it.
    const { counter, rows } = await this.#snapshot(async (client) => ({
      counter: await client.query<{ value: string; generation: string; purged_through: string }>(
        'select value, generation, purged_through from sync_counter where id = 1',
      ),
      rows: await client.query<Row & { candidates: string }>(
        `select ${columns}, candidates from (select ${columns}, row_number() over w as n, sum(octet_length(data) + ${RECORD_ENVELOPE_BYTES}) over w as running, count(*) over () as candidates from (select ${columns} from observations where version > $1${filter ? ' and form_type = any($4::text[])' : ''} order by version limit $2) candidate window w as (order by version)) sized where n = 1 or running <= $3 order by version`,
        [query.afterVersion, query.limit + 1, PULL_PAGE_MAX_BYTES, ...(filter ? [filter] : [])],
      ),
    }));
    const kept = rows.rows.slice(0, query.limit);
    const hasMore = kept.length > 0 && Number(kept[0]!.candidates) > kept.length;
    const page = kept.map(({ candidates: _, ...row }) => toRecord(row));
    const json = new Utf8Builder(page.reduce((n, r) => n + r.data.length + 400, 0));
    page.forEach((record, i) => {
      if (i > 0) json.add(',');
      json.add(observationJson(record));
    });
    return {
      recordsJson: json.bytes(),
      count: page.length,
      lastVersion: page.at(-1)?.version,
      currentVersion: Number(counter.rows[0]!.value),
      hasMore,
      generation: Number(counter.rows[0]!.generation),
      purgedThrough: Number(counter.rows[0]!.purged_through),
    };
  }

  async conflicts(afterId: number, limit: number): Promise<StoredConflict[]> {
    const result = await this.#pool.query('select * from sync_conflicts where id > $1 order by id limit $2', [
      afterId,
      limit,
    ]);
    return result.rows.map((r) => ({
      ...r,
      id: Number(r.id),
      base_version: Number(r.base_version),
      server_version: Number(r.server_version),
    })) as StoredConflict[];
  }

  async recordActivity(activity: readonly ClientActivity[]): Promise<void> {
    await this.#pool.query(MERGE_ACTIVITY, mergeParameters(activity));
  }

  syncClients(
    afterClientId: string,
    limit: number,
  ): Promise<{ currentVersion: number; clients: SyncClientRow[] }> {
    return this.#snapshot(async (client) => {
      const counter = await client.query<{ value: string }>('select value from sync_counter where id = 1');
      const rows = await client.query<SyncClientDbRow>(
        'select * from sync_clients where client_id > $1 order by client_id limit $2',
        [afterClientId, limit],
      );
      return { currentVersion: Number(counter.rows[0]!.value), clients: rows.rows.map(toSyncClient) };
    });
  }

  async purgeTransmissions(nowMs: number): Promise<number> {
    const result = await this.#pool.query('delete from sync_transmissions where expires_at <= $1', [nowMs]);
    return result.rowCount ?? 0;
  }

  async currentVersion(): Promise<number> {
    const counter = await this.#pool.query<{ value: string }>('select value from sync_counter where id = 1');
    return Number(counter.rows[0]!.value);
  }

  /** Holds the counter's row lock, as a push does: no push commits while tombstones go. */
  async purgeTombstones(request: TombstonePurgeRequest): Promise<TombstonePurge> {
    const repository = async (client: pg.PoolClient) => {
      const { rows } = await client.query<{ generation: string; purged_through: string }>(
        'select generation, purged_through from sync_counter where id = 1',
      );
      return { generation: Number(rows[0]!.generation), purgedThrough: Number(rows[0]!.purged_through) };
    };
    if (request.dryRun) {
      return this.#snapshot(async (client) => {
        const found = await client.query<{ count: string; last: string | null }>(
          `select count(*) as count, max(version) as last from observations where ${OLD_TOMBSTONES}`,
          [request.syncedBefore],
        );
        const { count, last } = found.rows[0]!;
        const lastVersion = last === null ? null : Number(last);
        return dryRunOutcome(
          { count: Number(count), lastVersion },
          await repository(client),
          request.batchSize,
        );
      });
    }
    return purgeBatches(request, (batchSize) =>
      this.#counted(async (client) => {
        const deleted = await client.query<{ version: string }>(
          `delete from observations where observation_id in (select observation_id from observations where ${OLD_TOMBSTONES} limit $2) returning version`,
          [request.syncedBefore, batchSize],
        );
        const versions = deleted.rows.map((row) => Number(row.version));
        const outcome = purgeOutcome(
          { count: versions.length, lastVersion: highest(versions) },
          await repository(client),
        );
        if (outcome.purged > 0) {
          await client.query('update sync_counter set generation = $1, purged_through = $2 where id = 1', [
            outcome.generation,
            outcome.purgedThrough,
          ]);
        }
        return outcome;
      }),
    );
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }

  /** Runs `work` in a transaction: committed when it returns, rolled back when it throws. */
  async #transaction<T>(begin: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    try {
      await client.query(begin);
      const result = await work(client);
      await client.query('commit');
      return result;
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** A transaction holding the counter row lock (the global change order); `work` gets its value. */
  #counted<T>(work: (client: pg.PoolClient, counter: number) => Promise<T>): Promise<T> {
    return this.#transaction('begin', async (client) => {
      const counter = await client.query<{ value: string }>(
        'select value from sync_counter where id = 1 for update',
      );
      return work(client, Number(counter.rows[0]!.value));
    });
  }

  /** One consistent snapshot for reads that must agree with each other and with the counter. */
  #snapshot<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.#transaction('begin isolation level repeatable read read only', work);
  }

  async putAttachment(a: {
    id: string;
    hash: string;
    size: number;
    contentType: string;
    now: string;
  }): Promise<AttachmentPutOutcome> {
    return this.#counted(async (client) => {
      const found = await client.query<AttachmentDbRow>(
        'select * from attachments where attachment_id = $1',
        [a.id],
      );
      const existing = found.rows[0];
      if (existing && !existing.deleted) {
        return existing.hash === a.hash
          ? { kind: 'same', version: Number(existing.version) }
          : { kind: 'conflict', hash: existing.hash };
      }
      const bumped = await client.query<{ value: string }>(
        'update sync_counter set value = value + 1 where id = 1 returning value',
      );
      const version = Number(bumped.rows[0]!.value);
      await client.query(
        'insert into attachments (attachment_id, hash, size, content_type, deleted, version, created_at, updated_at) values ($1, $2, $3, $4, false, $5, $6, $7) on conflict (attachment_id) do update set hash = excluded.hash, size = excluded.size, content_type = excluded.content_type, deleted = false, version = excluded.version, created_at = excluded.created_at, updated_at = excluded.updated_at',
        [a.id, a.hash, a.size, a.contentType, version, existing?.created_at ?? a.now, a.now],
      );
      return { kind: 'created', version };
    });
  }

  async deleteAttachment(
    id: string,
    now: string,
  ): Promise<{ version: number; hash: string; orphaned: boolean } | undefined> {
    return this.#counted(async (client) => {
      const found = await client.query<AttachmentDbRow>(
        'select * from attachments where attachment_id = $1',
        [id],
      );
      const existing = found.rows[0];
      if (!existing || existing.deleted) return undefined;
      const bumped = await client.query<{ value: string }>(
        'update sync_counter set value = value + 1 where id = 1 returning value',
      );
      const version = Number(bumped.rows[0]!.value);
      await client.query(
        'update attachments set deleted = true, version = $1, updated_at = $2 where attachment_id = $3',
        [version, now, id],
      );
      const users = await client.query<{ n: string }>(
        'select count(*) as n from attachments where hash = $1 and not deleted',
        [existing.hash],
      );
      return { version, hash: existing.hash, orphaned: Number(users.rows[0]!.n) === 0 };
    });
  }

  /**
   * An export's reads share one connection in a read-only repeatable-read transaction: every page
   * sees the records as they were when the reader was opened.
   */
  async openExportReader(): Promise<ExportReader> {
    const client = await this.#pool.connect();
    try {
      await client.query('begin isolation level repeatable read read only');
      // The snapshot is taken by the transaction's first query, not by `begin`.
      await client.query('select value from sync_counter where id = 1');
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      client.release();
      throw err;
    }
    return new PostgresExportReader(client);
  }

  async getAttachment(id: string): Promise<AttachmentRow | undefined> {
    const found = await this.#pool.query<AttachmentDbRow>(
      'select * from attachments where attachment_id = $1 and not deleted',
      [id],
    );
    return found.rows[0] ? toAttachment(found.rows[0]) : undefined;
  }

  attachmentChanges(
    query: AttachmentChangesQuery,
  ): Promise<{ currentVersion: number; rows: AttachmentRow[] }> {
    return this.#snapshot(async (client) => {
      const counter = await client.query<{ value: string }>('select value from sync_counter where id = 1');
      const rows = await client.query<AttachmentDbRow>(
        'select * from attachments where version > $1 and version <= $2 order by version limit $3',
        [query.after, Math.min(query.through, Number.MAX_SAFE_INTEGER), query.limit],
      );
      return { currentVersion: Number(counter.rows[0]!.value), rows: rows.rows.map(toAttachment) };
    });
  }
}

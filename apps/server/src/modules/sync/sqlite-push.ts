import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { parseJson } from '@synk/json';
import type Database from 'better-sqlite3';
import { ACTIVITY_COLUMNS, activityMergeSql, activityValues, pushActivity } from './client-activity.ts';
import { decidePush, type PushResponse, pushedIds } from './push-decision.ts';
import {
  CONFLICT_COLUMNS,
  conflictValues,
  type PushOutcome,
  type PushRequest,
  RECORD_COLUMNS,
  REMEMBER_COLUMNS,
  rememberValues,
  type StoredRecord,
  UPSERT_ASSIGNMENTS,
} from './sync.store.ts';

type Row = Omit<StoredRecord, 'deleted'> & { deleted: number };
const ID_CHUNK = 500;
export const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

/** Merges a device's activity into its status row (pushes here, pulls in SqliteSyncStore.recordActivity). */
export const MERGE_ACTIVITY_SQL = `insert into sync_clients (${ACTIVITY_COLUMNS.join(', ')}) values (${placeholders(ACTIVITY_COLUMNS.length)}) on conflict (client_id) do update set ${activityMergeSql('sqlite')}`;

/**
 * Writes pushes to SQLite: each as one `BEGIN IMMEDIATE` transaction on the connection it is given,
 * which takes the write lock up front, so the versions it allocates from the counter commit in
 * their order (spec §4.2; no other writer can commit in between).
 */
export class SqlitePushWriter {
  readonly #db: Database.Database;
  readonly #s: ReturnType<typeof prepare>;
  readonly #byIds = new Map<number, Database.Statement>();

  constructor(db: Database.Database) {
    this.#db = db;
    this.#s = prepare(db);
  }

  write(request: PushRequest): PushOutcome {
    return this.#db.transaction(() => this.#write(request)).immediate();
  }

  #write(request: PushRequest): PushOutcome {
    const s = this.#s;
    const seen = s.transmission.get(request.clientId, request.transmissionId) as
      | { body_hash: string; response: string; expires_at: number }
      | undefined;
    if (seen && seen.expires_at > request.nowMs) {
      return seen.body_hash === request.bodyHash
        ? { kind: 'replay', response: parseJson(seen.response) as PushResponse }
        : { kind: 'mismatch' };
    }
    if (seen) s.forgetTransmission.run(request.clientId, request.transmissionId);

    const existing = new Map<string, StoredRecord>();
    const ids = pushedIds(request);
    for (let i = 0; i < ids.length; i += ID_CHUNK) {
      const chunk = ids.slice(i, i + ID_CHUNK);
      for (const row of this.#selectByIds(chunk.length).all(...chunk) as Row[])
        existing.set(row.observation_id, { ...row, deleted: row.deleted === 1 });
    }
    const decision = decidePush(request, existing);
    let current = (s.counter.get() as { value: number }).value;
    let lastVersion: number | null = null;
    if (decision.writes.length > 0) {
      current = (s.bumpCounter.get(decision.writes.length) as { value: number }).value;
      let version = current - decision.writes.length;
      for (const w of decision.writes) {
        version += 1;
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
      lastVersion = version;
    }
    for (const c of decision.conflicts) s.conflict.run(...conflictValues(c));
    s.mergeActivity.run(
      ...activityValues(
        pushActivity(request.clientId, request.username, request.nowMs, lastVersion, decision.accepted),
      ),
    );
    const response = decision.respond(current);
    s.remember.run(...rememberValues(request, response));
    return { kind: 'done', response };
  }

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
    remember: db.prepare(`insert into sync_transmissions (${REMEMBER_COLUMNS}) values (${placeholders(6)})`),
    conflict: db.prepare(`insert into sync_conflicts (${CONFLICT_COLUMNS}) values (${placeholders(11)})`),
    mergeActivity: db.prepare(MERGE_ACTIVITY_SQL),
  };
}

/** What the push thread is started with. */
export interface PushThreadData {
  file: string;
  busyTimeoutMs: number;
}

/** A message to the push thread, and its answers. */
export type PushThreadRequest = { id: number; request: PushRequest } | { close: true };
export type PushThreadAnswer =
  | { id: number; outcome: PushOutcome }
  | { id: number; error: { name: string; message: string; code?: string; stack?: string } };

/**
 * How long a push waits for the write lock while another transaction holds it (an administrator's
 * bundle upload, an attachment, a login): then it fails with SQLITE_BUSY, answered 503 with
 * Retry-After (db/unavailable.ts).
 */
export const PUSH_BUSY_TIMEOUT_MS = 30_000;

/**
 * Pushes to a SQLite file, written on a worker thread with a connection of its own
 * (sqlite-push.worker.ts). The main thread parses and checks the next push while this one's
 * transaction writes, so on a machine with two or more cores a push costs the main thread only
 * its HTTP and checks. SQLite keeps the two connections consistent: one writer at a time, and a
 * reader (a pull page, an export) reads one committed snapshot. The ORM begins its transactions
 * IMMEDIATE for this (db/sqlite-driver.ts).
 *
 * If the thread dies, the pushes it was writing fail (a transaction not committed is rolled back
 * by SQLite) and the next push starts a new one.
 */
type Waiting = Map<number, { resolve(o: PushOutcome): void; reject(e: Error): void }>;

export class SqlitePushThread {
  readonly #data: PushThreadData;
  /** The thread running now, with the pushes it was sent and has not answered. */
  #thread: { worker: Worker; waiting: Waiting } | undefined;
  #next = 0;
  #closed = false;

  constructor(file: string, busyTimeoutMs = PUSH_BUSY_TIMEOUT_MS) {
    this.#data = { file, busyTimeoutMs };
  }

  write(request: PushRequest): Promise<PushOutcome> {
    if (this.#closed) return Promise.reject(new Error('The SQLite push thread is closed'));
    const { worker, waiting } = this.#started();
    const id = ++this.#next;
    return new Promise((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      worker.postMessage({ id, request } satisfies PushThreadRequest);
    });
  }

  /** Lets the pushes in flight finish, then ends the thread and its connection. */
  async close(): Promise<void> {
    this.#closed = true;
    const worker = this.#thread?.worker;
    if (!worker) return;
    await new Promise<void>((resolve) => {
      worker.once('exit', () => resolve());
      // Messages are handled in order: the pushes sent before this one are written first.
      worker.postMessage({ close: true } satisfies PushThreadRequest);
    });
  }

  #started(): { worker: Worker; waiting: Waiting } {
    if (this.#thread) return this.#thread;
    const here = fileURLToPath(import.meta.url);
    const worker = new Worker(new URL(`./sqlite-push.worker${extname(here)}`, import.meta.url), {
      workerData: this.#data,
    });
    const waiting: Waiting = new Map();
    worker.on('message', (answer: PushThreadAnswer) => {
      const push = waiting.get(answer.id);
      if (!push) return;
      waiting.delete(answer.id);
      if ('outcome' in answer) push.resolve(answer.outcome);
      else push.reject(Object.assign(new Error(answer.error.message), answer.error));
    });
    // The thread failed ('error', then 'exit') or ended: its unanswered pushes fail with the first
    // reason heard, and the next push starts a new thread.
    const stopped = (err: Error) => {
      if (this.#thread?.worker === worker) this.#thread = undefined;
      for (const push of waiting.values()) push.reject(err);
      waiting.clear();
    };
    worker.on('error', stopped);
    worker.on('exit', (code) => stopped(new Error(`The SQLite push thread stopped (exit code ${code})`)));
    // A push waiting for its answer is a request in flight, which keeps the process alive by itself.
    worker.unref();
    this.#thread = { worker, waiting };
    return this.#thread;
  }
}

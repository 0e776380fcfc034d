import type { EntityManager, MikroORM } from '@mikro-orm/core';
import type { DatabaseKind } from '../../db/orm.ts';

/** Names the per-blob advisory locks: `pg_advisory_xact_lock(BLOB_LOCK_CLASS, <32 bits of the hash>)`. */
const BLOB_LOCK_CLASS = 7_201_003;

/** What may be done with a blob while its lock is held. */
export interface LockedBlob {
  /** How many live attachments use the blob, read under the lock. */
  liveUsers(): Promise<number>;
}

/**
 * The lock that orders everything making a blob used or unused: an upload publishes its blob and
 * commits the row that uses it while holding it, and a delete checks that no live row uses the blob
 * and removes the file while holding it. So a blob is never removed between an upload's publish and
 * its commit, nor after its commit.
 *
 * Within a process it is a queue per hash. On PostgreSQL it is also a transaction-scoped advisory
 * lock, which holds across server processes sharing the database (and `DATA_DIR`). SQLite has one
 * process (see README), so the queue is the whole lock there.
 */
export class BlobLocks {
  readonly #orm: MikroORM;
  readonly #kind: DatabaseKind;
  readonly #queues = new Map<string, Promise<unknown>>();

  constructor(orm: MikroORM, kind: DatabaseKind) {
    this.#orm = orm;
    this.#kind = kind;
  }

  async withBlob<T>(hash: string, work: (blob: LockedBlob) => Promise<T>): Promise<T> {
    const before = this.#queues.get(hash) ?? Promise.resolve();
    const run = before.then(() => this.#locked(hash, work));
    const tail = run.catch(() => undefined);
    this.#queues.set(hash, tail);
    try {
      return await run;
    } finally {
      if (this.#queues.get(hash) === tail) this.#queues.delete(hash);
    }
  }

  #locked<T>(hash: string, work: (blob: LockedBlob) => Promise<T>): Promise<T> {
    if (this.#kind !== 'postgresql') {
      const em = this.#orm.em.fork();
      return work({ liveUsers: () => liveUsers(em, hash) });
    }
    return this.#orm.em.fork().transactional(async (em) => {
      await em
        .getConnection()
        .execute(
          'select pg_advisory_xact_lock(?, ?)',
          [BLOB_LOCK_CLASS, Number.parseInt(hash.slice(0, 8), 16) | 0],
          'all',
          em.getTransactionContext(),
        );
      return work({ liveUsers: () => liveUsers(em, hash) });
    });
  }
}

async function liveUsers(em: EntityManager, hash: string): Promise<number> {
  const [row] = await em
    .getConnection()
    .execute<{ n: number | string }[]>(
      'select count(*) as n from attachments where hash = ? and not deleted',
      [hash],
      'all',
      em.getTransactionContext(),
    );
  return Number(row?.n ?? 0);
}

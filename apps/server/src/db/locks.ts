import { type EntityManager, LockMode } from '@mikro-orm/core';
import type { DatabaseConfig } from '../config.ts';

/** Arbitrary constants naming PostgreSQL advisory locks. */
const LOCK_KEYS = { admins: 7_201_001, bundles: 7_201_002, logins: 7_201_004 } as const;

/**
 * Runs `work` in a transaction that holds a named lock: "admins", so that two concurrent requests
 * cannot both remove one of the last two admins; "bundles", so app bundle versions are allocated
 * and activated one push at a time; "logins", so that concurrent login attempts are counted one at a
 * time against the throttle. PostgreSQL: a transaction-scoped advisory lock, which also
 * holds across server processes. SQLite: the embedded database has one connection per process,
 * and its transactions already run one at a time.
 */
export async function withLock<T>(
  lock: keyof typeof LOCK_KEYS,
  em: EntityManager,
  kind: DatabaseConfig['kind'],
  work: (em: EntityManager) => Promise<T>,
): Promise<T> {
  return em.transactional(async (tem) => {
    if (kind === 'postgresql') {
      await tem
        .getConnection()
        .execute('select pg_advisory_xact_lock(?)', [LOCK_KEYS[lock]], 'all', tem.getTransactionContext());
    }
    return work(tem);
  });
}

/**
 * A row lock (`for share` / `for update`) for a read on PostgreSQL, where transactions of other
 * requests and processes run alongside; none on SQLite, whose transactions already run one at a
 * time (and which has no such clause).
 */
export function rowLock(kind: DatabaseConfig['kind'], mode: 'share' | 'update'): LockMode | undefined {
  if (kind !== 'postgresql') return undefined;
  return mode === 'share' ? LockMode.PESSIMISTIC_READ : LockMode.PESSIMISTIC_WRITE;
}

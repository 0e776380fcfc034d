import type { EntityManager } from '@mikro-orm/core';
import type { DatabaseConfig } from '../config.ts';

/** Arbitrary constants naming PostgreSQL advisory locks. */
const ADMIN_LOCK_KEY = 7_201_001;

/**
 * Runs `work` in a transaction that holds the "administrators" lock, so that two concurrent
 * requests cannot both remove one of the last two admins. PostgreSQL: a transaction-scoped
 * advisory lock, which also holds across server processes. SQLite: the embedded database has one
 * connection per process, and its transactions already run one at a time.
 */
export async function withAdminLock<T>(
  em: EntityManager,
  kind: DatabaseConfig['kind'],
  work: (em: EntityManager) => Promise<T>,
): Promise<T> {
  return em.transactional(async (tem) => {
    if (kind === 'postgresql') {
      await tem
        .getConnection()
        .execute('select pg_advisory_xact_lock(?)', [ADMIN_LOCK_KEY], 'all', tem.getTransactionContext());
    }
    return work(tem);
  });
}

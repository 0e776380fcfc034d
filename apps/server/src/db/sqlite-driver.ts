import type { Configuration, Dictionary } from '@mikro-orm/core';
import { AbstractSqlDriver, SqlitePlatform } from '@mikro-orm/sql';
import { SqliteConnection, MikroORM as SqliteMikroORM } from '@mikro-orm/sqlite';
import { CompiledQuery, type DatabaseConnection, type Dialect, type Driver } from 'kysely';

/**
 * MikroORM's SQLite driver, with every transaction begun `IMMEDIATE` (holding the write lock from
 * its first statement) instead of SQLite's default `DEFERRED`.
 *
 * Pushes to a SQLite file are written by a connection of their own, on a worker thread
 * (sqlite-push.ts). A deferred transaction that reads and then writes while that connection
 * commits in between cannot write at all (SQLITE_BUSY_SNAPSHOT: its snapshot is stale, and SQLite
 * does not wait for that); one begun immediate waits for the lock (the connection's busy timeout)
 * and then sees the latest data. SQLite runs one writer at a time either way.
 */
export class ImmediateSqliteDriver extends AbstractSqlDriver<ImmediateSqliteConnection> {
  constructor(config: Configuration) {
    super(config, new SqlitePlatform(), ImmediateSqliteConnection, ['kysely', 'better-sqlite3']);
  }

  override getORMClass() {
    return SqliteMikroORM;
  }
}

class ImmediateSqliteConnection extends SqliteConnection {
  override createKyselyDialect(options: Dictionary): Dialect {
    const dialect = super.createKyselyDialect(options);
    const createDriver = () => beginningImmediate(dialect.createDriver());
    return new Proxy(dialect, {
      get: (target, key) => (key === 'createDriver' ? createDriver : bound(target, key)),
    });
  }
}

/** `driver`, with its transactions begun IMMEDIATE. */
function beginningImmediate(driver: Driver): Driver {
  const beginTransaction = async (connection: DatabaseConnection) => {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  };
  return new Proxy(driver, {
    get: (target, key) => (key === 'beginTransaction' ? beginTransaction : bound(target, key)),
  });
}

/** A property of `target`, methods bound to it (they may use its private fields). */
function bound(target: object, key: string | symbol): unknown {
  const value: unknown = Reflect.get(target, key);
  return typeof value === 'function' ? value.bind(target) : value;
}

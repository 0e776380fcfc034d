import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { MikroORM, type Options } from '@mikro-orm/core';
import { Migrator } from '@mikro-orm/migrations';
import type { components } from '@synk/contract';
import type { Logger } from 'pino';
import type { DatabaseConfig } from '../config.ts';
import { AuthSession, LoginThrottle, RefreshToken } from '../modules/auth/session.entity.ts';
import { AppBundleState, AppBundleVersion } from '../modules/bundles/bundle.entity.ts';
import { User } from '../modules/users/user.entity.ts';
import { postgresqlMigrations, sqliteMigrations } from './migrations/index.ts';
import { type PostgresTarget, pgConnectionOptions } from './pg-connection.ts';
import { ServerMeta } from './server-meta.entity.ts';
import { claimSqliteFile } from './sqlite-owner.ts';

export const entities = [
  ServerMeta,
  User,
  AuthSession,
  RefreshToken,
  LoginThrottle,
  AppBundleVersion,
  AppBundleState,
];

export type DatabaseKind = DatabaseConfig['kind'];

/** Opens the database and brings its schema up to date (SQLite always; PostgreSQL unless disabled). */
export async function openDatabase(database: DatabaseConfig, logger: Logger): Promise<MikroORM> {
  const common = {
    entities,
    extensions: [Migrator],
    allowGlobalContext: false,
    debug: false,
    logger: (message: string) => logger.debug({ orm: true }, message),
  } satisfies Partial<Options>;

  // Each driver is loaded only when used: an embedded server never loads the PostgreSQL client.
  if (database.kind === 'sqlite') {
    const { ImmediateSqliteDriver } = await import('./sqlite-driver.ts');
    let release = () => {};
    if (database.file !== ':memory:') {
      mkdirSync(path.dirname(database.file), { recursive: true });
      release = claimSqliteFile(database.file);
    }
    try {
      const orm = await MikroORM.init({
        ...common,
        driver: ImmediateSqliteDriver,
        dbName: database.file,
        migrations: { migrationsList: sqliteMigrations, snapshot: false, silent: true },
      });
      // The claim on the file lasts as long as the ORM's connection.
      const close = orm.close.bind(orm);
      orm.close = async (...args: Parameters<MikroORM['close']>) => {
        try {
          await close(...args);
        } finally {
          release();
        }
      };
      try {
        // WAL lets readers (pulls, health) proceed while a push transaction writes.
        await orm.em.getConnection().execute('pragma journal_mode = wal');
        // Every commit reaches the disk before it is answered: an acknowledged push survives a power
        // cut (clients may then drop their copy). better-sqlite3 builds SQLite to open existing WAL
        // databases with `synchronous = NORMAL`, which may lose the last commits then.
        await orm.em.getConnection().execute('pragma synchronous = full');
        await orm.migrator.up();
      } catch (err) {
        await orm.close();
        throw err;
      }
      return orm;
    } catch (err) {
      release();
      throw err;
    }
  }

  const { PostgreSqlDriver } = await import('@mikro-orm/postgresql');
  const orm = await MikroORM.init({
    ...common,
    driver: PostgreSqlDriver,
    clientUrl: database.url,
    driverOptions: pgConnectionOptions(database),
    migrations: { migrationsList: postgresqlMigrations, snapshot: false, silent: true },
  });
  if (database.migrateOnStart) {
    await withMigrationLock(database, () => orm.migrator.up());
  } else {
    const pending = await orm.migrator.getPending();
    if (pending.length > 0) {
      await orm.close();
      throw new Error(
        `The database schema is not up to date and MIGRATE_ON_START=false: pending migrations ${pending.map((m) => m.name).join(', ')}`,
      );
    }
  }
  return orm;
}

/**
 * Several server processes may start at once against one PostgreSQL database; a session-level
 * advisory lock, held on a connection of its own, lets exactly one of them migrate at a time (the
 * others then find nothing pending).
 */
async function withMigrationLock<T>(database: PostgresTarget, work: () => Promise<T>): Promise<T> {
  const { default: pg } = await import('pg');
  const client = new pg.Client(pgConnectionOptions(database));
  await client.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    return await work();
  } finally {
    await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await client.end();
  }
}

const MIGRATION_LOCK_KEY = 7_201_000;

export type DatabaseInfo = components['schemas']['VersionResponse']['database'];

/** Real facts about the connected database, for `GET /version`. */
export async function describeDatabase(orm: MikroORM, database: DatabaseConfig): Promise<DatabaseInfo> {
  const connection = orm.em.getConnection();
  if (database.kind === 'sqlite') {
    const [row] = await connection.execute<{ v: string }[]>('select sqlite_version() as v');
    return {
      type: 'sqlite',
      version: row?.v ?? 'unknown',
      database_name: database.file === ':memory:' ? ':memory:' : path.basename(database.file),
    };
  }
  const [row] = await connection.execute<{ v: string; db: string }[]>(
    "select current_setting('server_version') as v, current_database() as db",
  );
  return { type: 'postgresql', version: row?.v ?? 'unknown', database_name: row?.db ?? 'unknown' };
}

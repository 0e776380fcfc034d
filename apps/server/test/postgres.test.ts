import { usePostgres } from '@synk/test-support/hooks';
import { postgresAvailable, startPostgres } from '@synk/test-support/postgres';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { postgresqlMigrations } from '../src/db/migrations/index.ts';
import { createLogger } from '../src/lib/logger.ts';
import { startServer } from '../src/server.ts';
import { tempDir } from './helpers.ts';

async function query<T>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

describe.skipIf(!postgresAvailable())('PostgreSQL', () => {
  const postgres = usePostgres();

  it('is selected by a postgres:// DB_CONNECTION, migrated on start, and reported by /health and /version', async () => {
    const url = await postgres.server.createDatabase();
    const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: tempDir(), DB_CONNECTION: url });
    const server = await startServer(config, createLogger('silent'));
    try {
      const health = await fetch(`${server.url.replace('localhost', '127.0.0.1')}/health`);
      expect(health.status).toBe(200);
      expect(
        ((await health.json()) as { checks: { database: { status: string } } }).checks.database.status,
      ).toBe('ok');
      const version = (await (await fetch(`http://127.0.0.1:${server.port}/version`)).json()) as {
        database: unknown;
      };
      expect(version.database).toEqual({
        type: 'postgresql',
        version: expect.stringMatching(/^\d+\.\d+/),
        database_name: new URL(url).pathname.slice(1),
      });
    } finally {
      await server.close();
    }
    const [meta] = await query<{ value: string }>(
      url,
      "select value from server_meta where key = 'installation_id'",
    );
    expect(meta?.value).toMatch(/^[0-9a-f-]{36}$/);

    // A restart finds the schema current: nothing re-runs, nothing changes.
    const again = await startServer(config, createLogger('silent'));
    await again.close();
    const migrations = await query<{ name: string }>(url, 'select name from mikro_orm_migrations');
    expect(migrations.map((m) => m.name)).toEqual(postgresqlMigrations.map((m) => m.name));
    const [sameMeta] = await query<{ value: string }>(
      url,
      "select value from server_meta where key = 'installation_id'",
    );
    expect(sameMeta?.value).toBe(meta?.value);
  });

  it('with MIGRATE_ON_START=false, refuses to start on an outdated schema and changes nothing', async () => {
    const url = await postgres.server.createDatabase();
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: tempDir(),
      DB_CONNECTION: url,
      MIGRATE_ON_START: 'false',
    });
    await expect(startServer(config, createLogger('silent'))).rejects.toThrow(
      /MIGRATE_ON_START=false: pending migrations Migration/,
    );
    const tables = await query<{ table_name: string }>(
      url,
      "select table_name from information_schema.tables where table_schema = 'public' and table_name <> 'mikro_orm_migrations'",
    );
    expect(tables).toEqual([]);
  });
});

describe.skipIf(!postgresAvailable())('PostgreSQL: several processes starting at once', () => {
  it('migrate exactly once and all start', async () => {
    const postgres = await startPostgres();
    try {
      const url = await postgres.createDatabase();
      const dataDir = tempDir();
      const config = loadConfig({
        PORT: '0',
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        DB_CONNECTION: url,
        ADMIN_PASSWORD: 'admin-password-1',
      });
      const servers = await Promise.all([1, 2, 3].map(() => startServer(config, createLogger('silent'))));
      await Promise.all(servers.map((s) => s.close()));
      const migrations = await query<{ name: string }>(url, 'select name from mikro_orm_migrations');
      expect(migrations.map((m) => m.name)).toEqual(postgresqlMigrations.map((m) => m.name));
      const admins = await query<{ n: string }>(url, "select count(*) as n from users where role = 'admin'");
      expect(Number(admins[0]!.n)).toBe(1);
    } finally {
      await postgres.stop();
    }
  }, 60_000);
});

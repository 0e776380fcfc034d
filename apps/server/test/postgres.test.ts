import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { usePostgres } from '@synk/test-support/hooks';
import { postgresAvailable, startPostgres } from '@synk/test-support/postgres';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { postgresqlMigrations } from '../src/db/migrations/index.ts';
import { createLogger } from '../src/lib/logger.ts';
import { startServer } from '../src/server.ts';
import { postgresServerConfig } from './helpers.ts';

async function query<T>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

/** A server on the database at `url`, with its administrator logged in. */
async function serverWithAdmin(url: string, env: Record<string, string> = {}) {
  const config = postgresServerConfig(url, { ADMIN_PASSWORD: 'admin-password-1', ...env });
  const server = await startServer(config, createLogger('silent'));
  const base = `http://127.0.0.1:${server.port}`;
  const login = await fetch(`${base}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: 'admin-password-1' }),
  });
  const { token } = (await login.json()) as { token: string };
  /** A pull of everything as the administrator (each one takes a connection from the sync pool). */
  const pull = (init: RequestInit = {}) =>
    fetch(`${base}/sync/pull`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ client_id: 'c1' }),
      ...init,
    });
  return { server, base, token, pull };
}

describe.skipIf(!postgresAvailable())('PostgreSQL', () => {
  const postgres = usePostgres();

  it('is selected by a postgres:// DB_CONNECTION, migrated on start, and reported by /health and /version', async () => {
    const url = await postgres.server.createDatabase();
    const config = postgresServerConfig(url);
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
    const config = postgresServerConfig(url, { MIGRATE_ON_START: 'false' });
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
      const config = postgresServerConfig(url, { ADMIN_PASSWORD: 'admin-password-1' });
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

describe.skipIf(!postgresAvailable())('PostgreSQL connections dropped by the server', () => {
  const postgres = usePostgres();

  /** Ends every other session of the database, as a PostgreSQL restart or failover does. */
  async function dropConnections(url: string): Promise<void> {
    await query(
      url,
      'select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
    );
  }

  /** Runs `body`, failing if the process would have died of an uncaught exception meanwhile. */
  async function withoutUncaught(body: () => Promise<void>): Promise<void> {
    const uncaught: unknown[] = [];
    const listener = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', listener);
    try {
      await body();
      // The dropped connections' errors arrive as the sockets close.
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      process.off('uncaughtException', listener);
    }
    expect(uncaught).toEqual([]);
  }

  it('neither kill the server (idle or checked out, as by an export) nor keep it from serving after', async () => {
    const url = await postgres.server.createDatabase();
    const { server, base, token, pull } = await serverWithAdmin(url);
    try {
      expect((await pull()).status).toBe(200); // leaves an idle connection in the sync pool

      await withoutUncaught(() => dropConnections(url));
      expect((await pull()).status).toBe(200);

      // A connection checked out between queries: an export holds one for as long as it runs,
      // here waiting on a client that reads nothing.
      for (let batch = 0; batch < 4; batch++) {
        const records = Array.from({ length: 10 }, (_, i) => ({
          observation_id: `big-${batch}-${i}`,
          form_type: 'big',
          data: { text: randomBytes(300_000).toString('hex') },
        }));
        const pushed = await fetch(`${base}/sync/push`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ transmission_id: randomUUID(), client_id: 'c1', records }),
        });
        expect(((await pushed.json()) as { success_count: number }).success_count).toBe(10);
      }
      const stalled = http.get(`${base}/dataexport/parquet`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const response = await new Promise<http.IncomingMessage>((resolve) => stalled.on('response', resolve));
      response.pause();
      await new Promise((resolve) => setTimeout(resolve, 500));
      await withoutUncaught(() => dropConnections(url));
      stalled.destroy();
      expect((await pull()).status).toBe(200);
      const again = await fetch(`${base}/dataexport/csv`, { headers: { authorization: `Bearer ${token}` } });
      expect(again.status).toBe(200);
      expect((await again.arrayBuffer()).byteLength).toBeGreaterThan(10_000_000); // 24 MB of hex, deflated
      expect((await fetch(`${base}/health`)).status).toBe(200);
    } finally {
      await server.close();
    }
  }, 60_000);
});

describe.skipIf(!postgresAvailable())('PostgreSQL down', () => {
  it('is a 503 database_unavailable with Retry-After, not an unexpected error', async () => {
    const postgres = await startPostgres();
    const { server, base, token } = await serverWithAdmin(await postgres.createDatabase());
    try {
      const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
      const requests: [string, string, unknown?][] = [
        ['POST', '/sync/pull', { client_id: 'c1' }],
        ['POST', '/sync/push', { client_id: 'c1', transmission_id: randomUUID(), records: [] }],
        ['GET', '/dataexport/parquet'],
        ['GET', '/users'],
        ['GET', '/version'],
      ];
      const send = ([method, path, body]: (typeof requests)[number]) =>
        fetch(`${base}${path}`, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      // Connections in both pools (the ORM's and the sync store's), idle when the database goes.
      for (const request of requests) {
        const res = await send(request);
        expect(res.status, request[1]).toBe(200);
        await res.arrayBuffer();
      }
      await postgres.stop();
      for (const request of requests) {
        const res = await send(request);
        const path = request[1];
        expect(res.status, path).toBe(503);
        expect(res.headers.get('retry-after'), path).toMatch(/^\d+$/);
        expect(await res.json(), path).toMatchObject({ status: 503, code: 'database_unavailable' });
      }
    } finally {
      await server.close().catch(() => undefined);
      await postgres.stop().catch(() => undefined);
    }
  }, 60_000);
});

/**
 * A TCP relay to PostgreSQL that can start swallowing connections: accepted, then never answered,
 * as from a database host that froze or a failover address that leads nowhere.
 */
async function relayTo(url: string) {
  const target = new URL(url);
  const sockets = new Set<net.Socket>();
  let swallowing = false;
  const relay = net.createServer((inbound) => {
    sockets.add(inbound);
    inbound.on('close', () => sockets.delete(inbound));
    inbound.on('error', () => undefined);
    if (swallowing) return; // read, never answered
    const outbound = net.connect(Number(target.port), target.hostname);
    sockets.add(outbound);
    outbound.on('error', () => inbound.destroy());
    inbound.on('error', () => outbound.destroy());
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const relayed = new URL(url);
  relayed.hostname = '127.0.0.1';
  relayed.port = String((relay.address() as net.AddressInfo).port);
  return {
    url: relayed.toString(),
    /** From now on every connection hangs; the open ones are cut, so the pools must connect anew. */
    swallow() {
      swallowing = true;
      for (const socket of sockets) socket.destroy();
    },
    close() {
      for (const socket of sockets) socket.destroy();
      relay.close();
    },
  };
}

describe.skipIf(!postgresAvailable())('PostgreSQL not answering connections', () => {
  const postgres = usePostgres();

  it('is a 503 after DB_CONNECT_TIMEOUT, not a request that hangs', async () => {
    const relay = await relayTo(await postgres.server.createDatabase());
    const {
      server,
      base,
      token,
      pull: serverPull,
    } = await serverWithAdmin(relay.url, {
      DB_CONNECT_TIMEOUT: '1s',
      REVOCATION_CACHE_MS: '0',
    });
    try {
      const pull = () => serverPull({ signal: AbortSignal.timeout(20_000) });
      expect((await pull()).status).toBe(200);
      relay.swallow();
      for (const res of [
        await pull(),
        await fetch(`${base}/users`, {
          headers: { authorization: `Bearer ${token}` },
          signal: AbortSignal.timeout(20_000),
        }),
      ]) {
        expect(res.status).toBe(503);
        expect(await res.json()).toMatchObject({ code: 'database_unavailable' });
      }
    } finally {
      relay.close();
      await server.close().catch(() => undefined);
    }
  }, 60_000);
});

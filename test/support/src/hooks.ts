import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll } from 'vitest';
import { startPostgres, type TestPostgres } from './postgres.ts';

/**
 * A throwaway PostgreSQL server for the tests of the describe block that calls this (started
 * before them, stopped after them): `postgres.server` once started. Call it inside a
 * `describe.skipIf(!postgresAvailable())`.
 */
export function usePostgres(): { readonly server: TestPostgres } {
  let server: TestPostgres | undefined;
  beforeAll(async () => {
    server = await startPostgres();
  }, 120_000);
  afterAll(() => server?.stop());
  return {
    get server() {
      if (!server) throw new Error('PostgreSQL is not started yet (use it inside a test)');
      return server;
    },
  };
}

/**
 * A node:http server on loopback for the tests of the describe block that calls this (started
 * before them, closed with its connections after them); `base` is its URL.
 */
export function loopbackServer(handler: http.RequestListener): { readonly base: string } {
  const server = http.createServer(handler);
  let base = '';
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return {
    get base() {
      return base;
    },
  };
}

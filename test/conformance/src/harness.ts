import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger, loadConfig, type RunningServer, startServer } from '@synk/server';
import { databaseFactory } from '@synk/test-support/postgres';
import { afterAll, beforeAll, inject } from 'vitest';

const createDatabase = (url: string) => databaseFactory(url)('synk_conformance');

/**
 * The server under test. By default each test file gets its own real server, in-process on a random
 * loopback port, with a fresh data directory and SQLite file (so every file starts from an empty
 * database). Set TEST_BASE_URL to run the same cases against a server you started yourself; then
 * the database is whatever that server has, and cases must not assume it is empty.
 */
export interface Target {
  baseUrl: string;
  /** The administrator the server was bootstrapped with. */
  admin: { username: string; password: string };
  /** True when the harness owns the server (and so the database is fresh for this file). */
  owned: boolean;
  url(pathAndQuery: string): string;
}

export async function startTarget(
  env: Record<string, string> = {},
): Promise<Target & { close(): Promise<void> }> {
  const external = process.env.TEST_BASE_URL;
  if (external) {
    const baseUrl = external.replace(/\/+$/, '');
    const password = process.env.TEST_ADMIN_PASSWORD;
    // Said at once, rather than as every case's failed login (400 for an empty password).
    if (!password)
      throw new Error('TEST_BASE_URL needs TEST_ADMIN_PASSWORD: the password of that server’s administrator');
    const admin = { username: process.env.TEST_ADMIN_USERNAME ?? 'admin', password };
    return { baseUrl, admin, owned: false, url: (p) => `${baseUrl}${p}`, close: async () => {} };
  }
  const admin = { username: 'admin', password: 'conformance-admin-password' };
  const dataDir = mkdtempSync(path.join(tmpdir(), 'synk-conformance-'));
  const pgUrl = inject('pgUrl');
  const database = pgUrl ? await createDatabase(pgUrl) : process.env.DB_CONNECTION;
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'error',
    ADMIN_USERNAME: admin.username,
    ADMIN_PASSWORD: admin.password,
    ...(database ? { DB_CONNECTION: database } : {}),
    ...env,
  });
  const server: RunningServer = await startServer(config, createLogger('silent'));
  const baseUrl = `http://127.0.0.1:${server.port}`;
  return {
    baseUrl,
    admin,
    owned: true,
    url: (p) => `${baseUrl}${p}`,
    async close() {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Starts a target for the current test file and stops it after the file's last test. */
export function useTarget(env: Record<string, string> = {}): Target {
  let target: Awaited<ReturnType<typeof startTarget>> | undefined;
  const proxy: Target = {
    get baseUrl() {
      return current().baseUrl;
    },
    get owned() {
      return current().owned;
    },
    get admin() {
      return current().admin;
    },
    url: (p) => current().url(p),
  };
  const current = () => {
    if (!target) throw new Error('useTarget(): the server is not started yet (use it inside tests)');
    return target;
  };
  beforeAll(async () => {
    target = await startTarget(env);
  });
  afterAll(async () => {
    await target?.close();
  });
  return proxy;
}

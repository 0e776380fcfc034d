import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { MikroORM } from '@mikro-orm/core';
import { createApp } from '../src/app.ts';
import type { AppContext } from '../src/app-context.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/lib/logger.ts';
import { validateRecord } from '../src/modules/sync/records.ts';
import type { PushRequest } from '../src/modules/sync/sync.store.ts';
import type { Role } from '../src/modules/users/user.entity.ts';
import { closeContext, createContext } from '../src/server.ts';

export interface TestApp {
  app: ReturnType<typeof createApp>;
  ctx: AppContext;
  dataDir: string;
  /** An access token for a user of the role (created on first use; admin is the bootstrap admin). */
  tokenFor(role: Role): Promise<string>;
  close(): Promise<void>;
}

export const ADMIN_PASSWORD = 'admin-password-1';

export function tempDir(prefix = 'synk-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** A clock tests can move forward instead of sleeping. */
export function manualClock(start = Date.now()) {
  let now = start;
  return {
    now: () => new Date(now),
    advance(ms: number) {
      now += ms;
    },
  };
}

/** A fresh app on in-memory SQLite and a temporary data directory; one per test file. */
export async function createTestApp(
  env: Record<string, string> = {},
  clock: () => Date = () => new Date(),
): Promise<TestApp> {
  const dataDir = tempDir();
  const config = loadConfig({ DATA_DIR: dataDir, DB_CONNECTION: ':memory:', ADMIN_PASSWORD, ...env });
  const ctx = await createContext(config, createLogger('silent'), clock);
  const tokens = new Map<Role, Promise<string>>();
  const tokenFor = (role: Role) => {
    let token = tokens.get(role);
    if (!token) {
      token = (async () => {
        const username = role === 'admin' ? config.adminUsername : `${role}-user`;
        const password = role === 'admin' ? ADMIN_PASSWORD : 'password-of-user';
        if (role !== 'admin') await ctx.services.users.create(username, password, role);
        return (await ctx.services.auth.login(username, password, '127.0.0.1')).token;
      })();
      tokens.set(role, token);
    }
    return token;
  };
  return {
    app: createApp(ctx),
    ctx,
    dataDir,
    tokenFor,
    async close() {
      await closeContext(ctx);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The configuration of a server process on the PostgreSQL database `url`, listening on a free
 * loopback port with a data directory of its own (`env` adds or overrides settings).
 */
export function postgresServerConfig(url: string, env: Record<string, string> = {}) {
  return loadConfig({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: tempDir(), DB_CONNECTION: url, ...env });
}

/** A push of one record with id `observationId` as the sync service hands it to a store. */
export function onePush(observationId: string, clientId = 'test-store'): PushRequest {
  const checked = validateRecord({ observation_id: observationId, form_type: 'f', data: { at: Date.now() } });
  if ('errors' in checked) throw new Error('a valid record was refused');
  return {
    clientId,
    username: 'admin',
    transmissionId: crypto.randomUUID(),
    bodyHash: 'h',
    nowMs: Date.now(),
    expiresAtMs: Date.now() + 60_000,
    policy: 'last-write-wins',
    winners: [{ index: 0, record: checked.record }],
    checkedCount: 1,
    failed: [],
    warnings: [],
  };
}

/**
 * Opens an ORM transaction that writes at once (so it holds the write lock however it began), runs
 * `then` once `release` is called, and commits (or rolls back if `then` throws).
 */
export function holdWriteLock(orm: MikroORM, then: () => Promise<void> = async () => {}) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let opened!: () => void;
  const open = new Promise<void>((resolve) => {
    opened = resolve;
  });
  const done = orm.em.fork().transactional(async (em) => {
    await em
      .getConnection()
      .execute('update sync_counter set value = value where id = 1', [], 'run', em.getTransactionContext());
    opened();
    await released;
    await then();
  });
  return { open, release, done };
}

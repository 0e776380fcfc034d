import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { usePostgres } from '@synk/test-support/hooks';
import { postgresAvailable } from '@synk/test-support/postgres';
import Database from 'better-sqlite3';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/lib/logger.ts';
import { pullActivity, pushActivity } from '../src/modules/sync/client-activity.ts';
import { SqliteSyncStore } from '../src/modules/sync/sqlite.store.ts';
import { closeContext, createContext, startServer } from '../src/server.ts';
import {
  ADMIN_PASSWORD,
  createTestApp,
  manualClock,
  postgresServerConfig,
  type TestApp,
  tempDir,
} from './helpers.ts';

/** The timer never fires during a test: flushes happen only where a test (or the endpoint) asks. */
const NO_TIMER = { SYNC_CLIENT_STATUS_FLUSH_MS: '600000' };

let t: TestApp;
const clock = manualClock(Date.parse('2026-03-01T08:00:00.000Z'));
beforeAll(async () => {
  t = await createTestApp(NO_TIMER, clock.now);
});
afterAll(() => t.close());

const bearer = async (role: 'read-only' | 'read-write' | 'admin') => `Bearer ${await t.tokenFor(role)}`;

async function push(clientId: string, records: unknown[], transmissionId = randomUUID()) {
  return request(t.app)
    .post('/sync/push')
    .set('authorization', await bearer('read-write'))
    .send({ transmission_id: transmissionId, client_id: clientId, records });
}

async function pull(clientId: string, since = 0, limit = 50) {
  const res = await request(t.app)
    .post(`/sync/pull?limit=${limit}`)
    .set('authorization', await bearer('read-only'))
    .send({ client_id: clientId, since: { version: since } });
  expect(res.status).toBe(200);
  return res.body as { change_cutoff: number; current_version: number; has_more: boolean };
}

async function device(clientId: string) {
  const res = await request(t.app)
    .get('/sync/clients?limit=500')
    .set('authorization', await bearer('admin'));
  expect(res.status).toBe(200);
  return {
    list: res.body as { current_version: number },
    client: (res.body.clients as { client_id: string }[]).find((c) => c.client_id === clientId) as
      | Record<string, unknown>
      | undefined,
  };
}

/** The stored row, read past the service (which would flush first). */
function storedRow(clientId: string) {
  return t.ctx.orm.em
    .getConnection()
    .execute('select * from sync_clients where client_id = ?', [clientId])
    .then((rows) => rows[0]);
}

const record = (id: string, v = 1) => ({ observation_id: id, form_type: 'f', data: { v } });

describe('device status of a push', () => {
  it('is written by the push itself: user, time, highest version written, counts', async () => {
    const invalid = { observation_id: 'bad', form_type: 'f', data: 'not an object' };
    const first = await push('phone-1', [record('p1-a'), record('p1-b'), invalid]);
    expect(first.body.success_count).toBe(2);
    const pushedAt = clock.now().toISOString();
    expect(await storedRow('phone-1')).toMatchObject({ push_count: 1, records_accepted: 2 });

    clock.advance(60_000);
    // An identical record is accepted without a new version: counted, and the highest version stays.
    const again = await push('phone-1', [record('p1-a')]);
    expect(again.body.success_count).toBe(1);
    const { client, list } = await device('phone-1');
    expect(client).toEqual({
      client_id: 'phone-1',
      username: 'read-write-user',
      first_seen_at: pushedAt,
      last_seen_at: clock.now().toISOString(),
      last_push_at: clock.now().toISOString(),
      last_pull_at: null,
      highest_pushed_version: first.body.current_version,
      change_cutoff: null,
      behind_by: list.current_version,
      push_count: 2,
      records_accepted: 3,
    });
  });

  it('is not touched by an idempotent replay, nor by a transmission id reused for another body', async () => {
    const id = randomUUID();
    await push('phone-2', [record('p2-a')], id);
    const before = await storedRow('phone-2');
    clock.advance(5_000);
    const replay = await push('phone-2', [record('p2-a')], id);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    const reused = await push('phone-2', [record('p2-a', 2)], id);
    expect(reused.status).toBe(409);
    expect(await storedRow('phone-2')).toEqual(before);
  });
});

describe('device status of a pull', () => {
  it('is held in memory until flushed, then shows the latest pull and how far behind it is', async () => {
    await push('phone-3', [record('p3-a'), record('p3-b'), record('p3-c')]);
    clock.advance(1_000);
    const page = await pull('phone-3', 0, 1);
    expect(page.has_more).toBe(true);
    // No write per pull: nothing reaches the table until a flush.
    expect(await storedRow('phone-3')).toMatchObject({ last_pull_at: null, change_cutoff: null });

    await t.ctx.services.sync.flushPulls();
    expect(await storedRow('phone-3')).toMatchObject({
      last_pull_at: clock.now().getTime(),
      change_cutoff: page.change_cutoff,
      username: 'read-only-user',
    });
    const { client, list } = await device('phone-3');
    expect(client).toMatchObject({
      change_cutoff: page.change_cutoff,
      behind_by: list.current_version - page.change_cutoff,
      last_pull_at: clock.now().toISOString(),
      username: 'read-only-user', // the latest user of the device
    });
  });

  it('is written by the listing itself for this process, and records the latest page only', async () => {
    clock.advance(1_000);
    await pull('phone-4', 0, 1);
    clock.advance(1_000);
    const last = await pull('phone-4', 0, 500);
    expect(last.has_more).toBe(false);
    const { client } = await device('phone-4');
    expect(client).toMatchObject({
      change_cutoff: last.change_cutoff,
      behind_by: 0,
      last_pull_at: clock.now().toISOString(),
      push_count: 0,
      last_push_at: null,
    });
  });

  it('a failed flush keeps the pulls for the next one', async () => {
    clock.advance(1_000);
    const page = await pull('phone-5');
    const connection = t.ctx.orm.em.getConnection();
    await connection.execute('alter table sync_clients rename to sync_clients_away');
    try {
      await expect(t.ctx.services.sync.flushPulls()).rejects.toThrow();
    } finally {
      await connection.execute('alter table sync_clients_away rename to sync_clients');
    }
    await t.ctx.services.sync.flushPulls();
    expect(await storedRow('phone-5')).toMatchObject({ change_cutoff: page.change_cutoff });
  });
});

describe('many devices pulling between two timed flushes', () => {
  it('are written at once when a thousand are held, not only when the timer fires', async () => {
    await t.ctx.services.sync.flushPulls();
    const principal = { userId: 'u', username: 'crowd-user', role: 'read-only' as const, sessionId: 's' };
    const pullAs = (clientId: string) =>
      t.ctx.services.sync.pull(principal, { client_id: clientId, since: { version: 0 } }, { limit: 1 });
    for (let i = 0; i < 999; i++) await pullAs(`crowd-${i}`);
    // 999 held: none written (the timer never fires here).
    expect(await storedRow('crowd-0')).toBeUndefined();
    await pullAs('crowd-999');
    await vi.waitFor(async () => expect(await storedRow('crowd-999')).toBeDefined(), { timeout: 10_000 });
    const written = await t.ctx.orm.em
      .getConnection()
      .execute("select count(*) as n from sync_clients where username = 'crowd-user'");
    expect(Number(written[0].n)).toBe(1000);
  });
});

describe('merging a status written late (another process, a flush after a push)', () => {
  it('never moves a time backwards, and keeps the user and cutoff of the latest activity', async () => {
    const store = await SqliteSyncStore.open(t.ctx.orm);
    const at = Date.parse('2026-03-02T10:00:00.000Z');
    await store.recordActivity([pullActivity('tablet-9', 'newer-user', at, 40)]);
    // A pull an hour older, flushed later by a process that held it.
    await store.recordActivity([pullActivity('tablet-9', 'older-user', at - 3_600_000, 10)]);
    expect(await storedRow('tablet-9')).toMatchObject({
      username: 'newer-user',
      first_seen_at: at - 3_600_000,
      last_seen_at: at,
      last_pull_at: at,
      change_cutoff: 40,
    });
    // A newer pull from an older cursor (the device started over) does move the cutoff back.
    await store.recordActivity([pullActivity('tablet-9', 'newer-user', at + 1, 5)]);
    expect(await storedRow('tablet-9')).toMatchObject({ last_pull_at: at + 1, change_cutoff: 5 });

    // An older push: counted, but neither its time nor its user replace newer ones.
    await store.recordActivity([pushActivity('tablet-9', 'older-user', at - 1_000, 7, 3)]);
    expect(await storedRow('tablet-9')).toMatchObject({
      username: 'newer-user',
      last_seen_at: at + 1,
      last_push_at: at - 1_000,
      last_pull_at: at + 1,
      highest_pushed_version: 7,
      change_cutoff: 5,
      push_count: 1,
      records_accepted: 3,
    });
  });
});

describe('GET /sync/clients', () => {
  it('pages by client_id with limit and after', async () => {
    const admin = await bearer('admin');
    for (const id of ['page-c', 'page-a', 'page-b']) await push(id, []);
    const all = await request(t.app).get('/sync/clients?limit=500').set('authorization', admin);
    const ids = (all.body.clients as { client_id: string }[]).map((c) => c.client_id);
    expect(ids).toEqual([...ids].sort());
    const first = await request(t.app).get('/sync/clients?limit=2&after=page-').set('authorization', admin);
    expect(first.body.clients.map((c: { client_id: string }) => c.client_id)).toEqual(['page-a', 'page-b']);
    expect(first.body).toMatchObject({ has_more: true, next_after: 'page-b' });
    const rest = await request(t.app)
      .get(`/sync/clients?limit=500&after=${first.body.next_after}`)
      .set('authorization', admin);
    expect(rest.body.clients[0].client_id).toBe('page-c');
    expect(rest.body.has_more).toBe(false);
    expect(rest.body).not.toHaveProperty('next_after');
  });

  it('is for administrators only, and checks its query', async () => {
    expect((await request(t.app).get('/sync/clients')).status).toBe(401);
    for (const role of ['read-only', 'read-write'] as const) {
      const res = await request(t.app)
        .get('/sync/clients')
        .set('authorization', await bearer(role));
      expect(res.status).toBe(403);
    }
    const admin = await bearer('admin');
    for (const query of ['limit=0', 'limit=501', 'after='])
      expect((await request(t.app).get(`/sync/clients?${query}`).set('authorization', admin)).status).toBe(
        400,
      );
  });
});

describe('graceful shutdown', () => {
  it('writes the pulls held in memory', async () => {
    const dataDir = tempDir();
    const file = path.join(dataDir, 'synk.db');
    const config = loadConfig({ DATA_DIR: dataDir, DB_CONNECTION: file, ADMIN_PASSWORD, ...NO_TIMER });
    const ctx = await createContext(config, createLogger('silent'));
    try {
      const { token } = await ctx.services.auth.login('admin', ADMIN_PASSWORD, '127.0.0.1');
      const res = await request(createApp(ctx))
        .post('/sync/pull')
        .set('authorization', `Bearer ${token}`)
        .send({ client_id: 'closing-phone' });
      expect(res.status).toBe(200);
    } finally {
      await closeContext(ctx);
    }
    const db = new Database(file, { readonly: true });
    try {
      expect(db.prepare('select username, change_cutoff from sync_clients').all()).toEqual([
        { username: 'admin', change_cutoff: 0 },
      ]);
    } finally {
      db.close();
    }
  });
});

describe.skipIf(!postgresAvailable())('PostgreSQL: processes sharing the database', () => {
  const postgres = usePostgres();

  it('merge pushes and late-flushed pulls without moving times backwards', async () => {
    const url = await postgres.server.createDatabase();
    const config = postgresServerConfig(url, { ADMIN_PASSWORD, ...NO_TIMER });
    const now = Date.parse('2026-03-03T12:00:00.000Z');
    // Process B's clock is a minute behind A's, and B flushes its pull after A's push.
    const a = await startServer(config, createLogger('silent'), () => new Date(now));
    const b = await startServer(config, createLogger('silent'), () => new Date(now - 60_000));
    try {
      const token = (await a.context.services.auth.login('admin', ADMIN_PASSWORD, '127.0.0.1')).token;
      const send = (server: typeof a, method: string, route: string, body?: unknown) =>
        fetch(`http://127.0.0.1:${server.port}${route}`, {
          method,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
      expect((await send(a, 'POST', '/sync/pull', { client_id: 'shared' })).status).toBe(200);
      const pushed = await send(a, 'POST', '/sync/push', {
        transmission_id: randomUUID(),
        client_id: 'shared',
        records: [record('pg-a'), record('pg-b')],
      });
      const { current_version } = (await pushed.json()) as { current_version: number };
      await a.context.services.sync.flushPulls();
      expect((await send(b, 'POST', '/sync/pull', { client_id: 'shared' })).status).toBe(200);
      await b.context.services.sync.flushPulls();

      const listed = (await (await send(b, 'GET', '/sync/clients')).json()) as {
        clients: Record<string, unknown>[];
      };
      expect(listed.clients).toEqual([
        {
          client_id: 'shared',
          username: 'admin',
          first_seen_at: new Date(now - 60_000).toISOString(),
          last_seen_at: new Date(now).toISOString(),
          last_push_at: new Date(now).toISOString(),
          last_pull_at: new Date(now).toISOString(),
          highest_pushed_version: current_version,
          change_cutoff: 0, // A's pull, the latest by time; B's older one does not replace it
          behind_by: current_version,
          push_count: 1,
          records_accepted: 2,
        },
      ]);
    } finally {
      await b.close();
      await a.close();
    }
  });
});

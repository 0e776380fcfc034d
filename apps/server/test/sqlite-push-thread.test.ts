import { once } from 'node:events';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDatabaseUnavailable } from '../src/db/unavailable.ts';
import { SqlitePushThread } from '../src/modules/sync/sqlite-push.ts';
import { createTestApp, holdWriteLock, onePush, type TestApp, tempDir } from './helpers.ts';

// Pushes to a SQLite file are written by a worker thread on a connection of its own, next to the
// ORM's connection in the main thread (in-memory databases, which most tests use, have only one).
let t: TestApp;
let file: string;
beforeAll(async () => {
  file = path.join(tempDir(), 'synk.db');
  t = await createTestApp({ DB_CONNECTION: file });
}, 30_000);
afterAll(async () => {
  await t?.close();
  rmSync(path.dirname(file), { recursive: true, force: true });
});

const stored = async (id: string) =>
  (await t.ctx.orm.em
    .fork()
    .getConnection()
    .execute('select version from observations where observation_id = ?', [id])) as { version: number }[];

async function pushOne(id: string) {
  const res = await request(t.app)
    .post('/sync/push')
    .set('authorization', `Bearer ${await t.tokenFor('admin')}`)
    .send({
      transmission_id: crypto.randomUUID(),
      client_id: 'thread',
      records: [{ observation_id: id, form_type: 'f', data: { a: 1 } }],
    });
  return { status: res.status, body: res.body as { success_count: number; current_version: number } };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

describe('pushes to a SQLite file', () => {
  it('are written by the push thread, on the file', async () => {
    expect(t.ctx.config.database).toEqual({ kind: 'sqlite', file });
    const res = await pushOne('over-http');
    expect(res.status).toBe(200);
    expect(res.body.success_count).toBe(1);
    expect(await stored('over-http')).toEqual([{ version: res.body.current_version }]);
  });

  it('wait for an ORM transaction holding the write lock, and are not part of it (its rollback keeps the push)', async () => {
    const lock = holdWriteLock(t.ctx.orm, async () => {
      throw new Error('rolled back');
    });
    await lock.open;
    let answered = false;
    const pushing = pushOne('after-rollback').then((res) => {
      answered = true;
      return res;
    });
    await settle();
    expect(answered).toBe(false);
    lock.release();
    await expect(lock.done).rejects.toThrow('rolled back');
    expect((await pushing).status).toBe(200);
    expect(await stored('after-rollback')).toHaveLength(1);
  });

  it('do not break an ORM transaction that reads and then writes (the ORM begins IMMEDIATE)', async () => {
    // Begun deferred, the ORM transaction would read a snapshot, the push would commit on its own
    // connection meanwhile, and the ORM's write would then fail at once with SQLITE_BUSY_SNAPSHOT.
    let answered = false;
    let pushing: Promise<{ status: number }> | undefined;
    await t.ctx.orm.em.fork().transactional(async (em) => {
      const conn = em.getConnection();
      const ctx = em.getTransactionContext();
      const [before] = (await conn.execute(
        'select value from sync_counter where id = 1',
        [],
        'all',
        ctx,
      )) as {
        value: number;
      }[];
      pushing = pushOne('during-orm').then((res) => {
        answered = true;
        return res;
      });
      await settle();
      expect(answered).toBe(false); // waiting for the write lock this transaction holds
      await conn.execute('update sync_counter set value = ? where id = 1', [before!.value], 'run', ctx);
    });
    expect((await pushing!).status).toBe(200);
    expect(await stored('during-orm')).toHaveLength(1);
  });

  it("hold up a write on the ORM's connection only until they commit (it waits, it does not fail)", async () => {
    // A connection on another thread holds the write lock as the push thread does mid-push, for
    // 150 ms, and then commits. The ORM's connection, asking for the lock meanwhile (a user
    // created over HTTP), waits for it (its busy timeout, 5 s) instead of failing with SQLITE_BUSY.
    const holder = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const db = new (require('better-sqlite3'))(workerData);
       db.exec('begin immediate');
       db.prepare("update sync_counter set value = value + 1 where id = 1").run();
       parentPort.postMessage('locked');
       setTimeout(() => { db.exec('commit'); db.close(); }, 150);`,
      { eval: true, workerData: file },
    );
    const ended = once(holder, 'exit');
    await once(holder, 'message');
    const before = await t.ctx.services.sync.clients('', 1);
    const res = await request(t.app)
      .post('/users')
      .set('authorization', `Bearer ${await t.tokenFor('admin')}`)
      .send({ username: 'made-while-locked', password: 'password-while-locked', role: 'read-only' });
    expect(await ended).toEqual([0]);
    expect(res.status).toBe(201);
    expect((await t.ctx.services.sync.clients('', 1)).current_version).toBe(before.current_version + 1);
  });

  it('that wait longer than the busy timeout fail with SQLITE_BUSY, answered 503 (retry), not 500', async () => {
    const thread = new SqlitePushThread(file, 50);
    const lock = holdWriteLock(t.ctx.orm);
    await lock.open;
    try {
      const err = await thread.write(onePush('too-late')).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'SQLITE_BUSY' });
      expect(isDatabaseUnavailable(err)).toBe(true);
    } finally {
      lock.release();
      await lock.done;
      await thread.close();
    }
    expect(await stored('too-late')).toEqual([]);
  });

  it('fail with the reason when the thread cannot open the database, and the next push starts a new thread', async () => {
    const thread = new SqlitePushThread(path.join(t.dataDir, 'no-such-dir', 'missing.db'));
    for (let attempt = 0; attempt < 2; attempt++) {
      await expect(thread.write(onePush('nowhere'))).rejects.toThrow(
        /unable to open database|directory does not exist/i,
      );
    }
    await thread.close();
    await expect(thread.write(onePush('nowhere'))).rejects.toThrow('closed');
  });

  it('in flight when the thread is closed are written first', async () => {
    const thread = new SqlitePushThread(file);
    const writes = ['closing-1', 'closing-2', 'closing-3'].map((id) => thread.write(onePush(id)));
    await thread.close();
    const outcomes = await Promise.all(writes);
    expect(outcomes.map((o) => o.kind)).toEqual(['done', 'done', 'done']);
    const versions = await Promise.all(['closing-1', 'closing-2', 'closing-3'].map(stored));
    expect(versions.map((v) => v.length)).toEqual([1, 1, 1]);
    // In the order sent: versions ascend.
    const flat = versions.map((v) => v[0]!.version);
    expect(flat).toEqual(flat.toSorted((a, b) => a - b));
  });
});

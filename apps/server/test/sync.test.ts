import type { SqliteConnection } from '@mikro-orm/sqlite';
import fc from 'fast-check';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LARGE_DATA_BYTES,
  lastVersionWithin,
  PULL_PAGE_MAX_BYTES,
  RECORD_ENVELOPE_BYTES,
  smallRecordsFit,
} from '../src/modules/sync/page-bytes.ts';
import { SqliteSyncStore } from '../src/modules/sync/sqlite.store.ts';
import { ascending, nextLargeSql, SqlitePageReader } from '../src/modules/sync/sqlite-page.ts';
import { observationJson, type StoredRecord } from '../src/modules/sync/sync.store.ts';
import { Utf8Builder } from '../src/modules/sync/utf8-builder.ts';
import { createTestApp, holdWriteLock, manualClock, onePush, type TestApp } from './helpers.ts';

let t: TestApp;
const clock = manualClock();
beforeAll(async () => {
  t = await createTestApp({ IDEMPOTENCY_TTL: '60' }, clock.now);
});
afterAll(() => t.close());

async function push(transmissionId: string, records: unknown[]) {
  return request(t.app)
    .post('/sync/push')
    .set('authorization', `Bearer ${await t.tokenFor('admin')}`)
    .send({ transmission_id: transmissionId, client_id: 'ttl-client', records });
}

describe('idempotency window (IDEMPOTENCY_TTL)', () => {
  it('remembers a transmission for the window, then treats its id as new', async () => {
    const id = crypto.randomUUID();
    expect((await push(id, [{ observation_id: 'a', form_type: 'f', data: { v: 1 } }])).status).toBe(200);
    clock.advance(59_000);
    expect((await push(id, [{ observation_id: 'a', form_type: 'f', data: { v: 2 } }])).status).toBe(409);
    clock.advance(2_000);
    const reused = await push(id, [{ observation_id: 'a', form_type: 'f', data: { v: 2 } }]);
    expect(reused.status).toBe(200);
    expect(reused.headers['idempotent-replayed']).toBeUndefined();
    expect(reused.body.success_count).toBe(1);
  });
});

describe('GET /sync/conflicts paging', () => {
  it('pages with limit and after, reporting has_more and next_after', async () => {
    for (let i = 0; i < 3; i++) {
      const id = `c-${i}`;
      const first = await push(crypto.randomUUID(), [{ observation_id: id, form_type: 'f', data: { v: 0 } }]);
      await push(crypto.randomUUID(), [
        { observation_id: id, form_type: 'f', data: { v: 1 }, base_version: first.body.current_version - 1 },
      ]);
    }
    const admin = `Bearer ${await t.tokenFor('admin')}`;
    const page1 = await request(t.app).get('/sync/conflicts?limit=2').set('authorization', admin);
    expect(page1.body.conflicts).toHaveLength(2);
    expect(page1.body.has_more).toBe(true);
    const page2 = await request(t.app)
      .get(`/sync/conflicts?limit=2&after=${page1.body.next_after}`)
      .set('authorization', admin);
    expect(page2.body.conflicts).toHaveLength(1);
    expect(page2.body.has_more).toBe(false);
    expect(page2.body).not.toHaveProperty('next_after');
    expect(
      [...page1.body.conflicts, ...page2.body.conflicts].map(
        (c: { observation_id: string }) => c.observation_id,
      ),
    ).toEqual(['c-0', 'c-1', 'c-2']);
  });
});

describe('pull pages written by the database', () => {
  it('are byte for byte the JSON observationJson writes, whatever the strings hold', async () => {
    const tricky = 'q"uote \\ back \u0001\u001f\u007f / é 😀 \u2028 tab\t nl\n';
    const records = [
      {
        observation_id: `t-1 ${tricky}`,
        form_type: `bytes ${tricky}`,
        form_version: tricky,
        created_at: '2025-01-01T00:00:00Z',
        updated_at: '2025-01-02T00:00:00+02:00',
        deleted: true,
        geolocation: { latitude: 1.5, longitude: -2, accuracy: 3, altitude: 4 },
        data: { [tricky]: [tricky, 1.25, null, { nested: true }] },
      },
      { observation_id: 't-2', form_type: `bytes ${tricky}`, data: {} },
    ];
    const pushed = await push(crypto.randomUUID(), records);
    expect(pushed.body.success_count).toBe(2);
    const after = pushed.body.current_version - 2;

    const store = await SqliteSyncStore.open(t.ctx.orm);
    const page = await store.pull({ afterVersion: after, formTypes: [`bytes ${tricky}`], limit: 10 });
    const rows = (await t.ctx.orm.em
      .getConnection()
      .execute('select * from observations where version > ? order by version', [after])) as (Omit<
      StoredRecord,
      'deleted'
    > & { deleted: number })[];
    expect(rows).toHaveLength(2);
    const expected = rows.map((r) => observationJson({ ...r, deleted: r.deleted === 1 })).join(',');
    expect(page.recordsJson.toString()).toBe(expected);
    expect(page).toMatchObject({ count: 2, lastVersion: after + 2, hasMore: false });
    expect(JSON.parse(`[${expected}]`)[0]).toMatchObject({ ...records[0], data: records[0]!.data });
  });
});

describe('pull pages read as one aggregate', () => {
  it('end exactly at the limit, filter by type, and are empty past the end, each with the counter', async () => {
    const records = Array.from({ length: 5 }, (_, i) => ({
      observation_id: `agg-${i}`,
      form_type: i % 2 === 0 ? 'agg-even' : 'agg-odd',
      data: { i },
    }));
    const pushed = await push(crypto.randomUUID(), records);
    const current = pushed.body.current_version as number;
    const after = current - 5;
    const store = await SqliteSyncStore.open(t.ctx.orm);
    const ids = (page: { recordsJson: Buffer }) =>
      (JSON.parse(`[${page.recordsJson.toString()}]`) as { observation_id: string }[]).map(
        (r) => r.observation_id,
      );

    const full = await store.pull({ afterVersion: after, formTypes: null, limit: 5 });
    expect(ids(full)).toEqual(records.map((r) => r.observation_id));
    expect(full).toMatchObject({ count: 5, lastVersion: current, currentVersion: current, hasMore: false });

    const first = await store.pull({ afterVersion: after, formTypes: null, limit: 4 });
    expect(first).toMatchObject({ count: 4, lastVersion: after + 4, hasMore: true });

    const even = await store.pull({ afterVersion: after, formTypes: ['agg-even'], limit: 2 });
    expect(ids(even)).toEqual(['agg-0', 'agg-2']);
    expect(even).toMatchObject({ count: 2, lastVersion: after + 3, hasMore: true });
    const rest = await store.pull({ afterVersion: after + 3, formTypes: ['agg-even', 'none'], limit: 2 });
    expect(ids(rest)).toEqual(['agg-4']);
    expect(rest.hasMore).toBe(false);

    const past = await store.pull({ afterVersion: current, formTypes: null, limit: 10 });
    expect(past).toMatchObject({ count: 0, lastVersion: undefined, currentVersion: current, hasMore: false });
    expect(past.recordsJson.length).toBe(0);

    // A page whose aggregate came out of order is read again, ordered inside the aggregate.
    const db = await (t.ctx.orm.em.getConnection() as unknown as SqliteConnection).getNativeClient();
    const checked: string[] = [];
    const distrustful = new SqlitePageReader(db, {
      inOrder: (versions) => {
        checked.push(versions);
        return false;
      },
    });
    for (const query of [
      { afterVersion: after, formTypes: null, limit: 4 },
      { afterVersion: after, formTypes: ['agg-even'], limit: 2 },
      { afterVersion: current, formTypes: null, limit: 10 },
    ]) {
      const reread = distrustful.read(query);
      const page = await store.pull(query);
      expect({ ...reread, recordsJson: reread.recordsJson.toString() }).toEqual({
        ...page,
        recordsJson: page.recordsJson.toString(),
      });
    }
    expect(checked).toEqual([
      `${after + 1},${after + 2},${after + 3},${after + 4}`,
      `${after + 1},${after + 3}`,
    ]);
  });
});

describe('pull pages bounded in bytes', () => {
  it('lastVersionWithin keeps records while the budget holds, and always the first', () => {
    const e = RECORD_ENVELOPE_BYTES;
    expect(lastVersionWithin([[4, 10_000]], 100)).toBe(4);
    expect(
      lastVersionWithin(
        [
          [4, 10],
          [7, 10],
          [9, 10],
        ],
        3 * (10 + e),
      ),
    ).toBe(9);
    expect(
      lastVersionWithin(
        [
          [4, 10],
          [7, 10],
          [9, 10],
        ],
        3 * (10 + e) - 1,
      ),
    ).toBe(7);
    expect(
      lastVersionWithin([
        [4, 10],
        [7, PULL_PAGE_MAX_BYTES],
      ]),
    ).toBe(4);
    expect(smallRecordsFit(500)).toBe(true);
    expect(smallRecordsFit(2, 2 * (LARGE_DATA_BYTES + e) - 1)).toBe(false);
  });

  it('finds the next large record through its partial index (the migration and LARGE_DATA_BYTES agree)', async () => {
    const db = await (t.ctx.orm.em.getConnection() as unknown as SqliteConnection).getNativeClient();
    for (const byType of [false, true]) {
      const plan = db
        .prepare(`explain query plan ${nextLargeSql(byType)}`)
        .all(...(byType ? [0, '["a"]'] : [0])) as { detail: string }[];
      expect(plan.map((step) => step.detail).join('; ')).toMatch(
        /SEARCH observations USING INDEX observations_large_data_index \(version>\?\)/,
      );
    }
  });

  /**
   * Random record sizes around the large-record threshold, limits, budgets and filters: looping on
   * the pages returns each matching record once and in order; a page of several records keeps to
   * the budget; a page is cut before its limit only where the next record would break the budget
   * or, when the page was read without measuring, where a large record begins.
   */
  it('loops over every record once, within the budget, cut short only at the budget or a large record', async () => {
    const db = await (t.ctx.orm.em.getConnection() as unknown as SqliteConnection).getNativeClient();
    const insert = db.prepare(
      "insert into observations (observation_id, form_type, data, synced_at, deleted, version, hash, last_modified_by, origin_client_id) values (?, ?, ?, '2026-01-01T00:00:00Z', 0, ?, 'h', 'u', 'c')",
    );
    const setCounter = db.prepare('update sync_counter set value = ? where id = 1');
    const sizes = [10, 900, LARGE_DATA_BYTES - 1, LARGE_DATA_BYTES, LARGE_DATA_BYTES + 1, 40_000, 90_000];
    let run = 0;
    fc.assert(
      fc.property(
        fc.array(fc.record({ size: fc.constantFrom(...sizes), type: fc.constantFrom('a', 'b') }), {
          maxLength: 40,
        }),
        fc.integer({ min: 1, max: 8 }),
        fc.constantFrom(3_000, 20_000, 60_000, 150_000, PULL_PAGE_MAX_BYTES),
        fc.boolean(),
        (records, limit, maxBytes, filtered) => {
          run += 1;
          const base = (db.prepare('select value from sync_counter').pluck().get() as number) + 10;
          const rows = records.map((r, i) => ({
            id: `bytes-${run}-${i}`,
            ...r,
            version: base + 2 * i, // gaps, as updates leave
            data: `{"s":"${'x'.repeat(r.size - 8)}"}`,
          }));
          db.transaction(() => {
            for (const r of rows) insert.run(r.id, r.type, r.data, r.version);
            setCounter.run(base + 2 * rows.length);
          })();
          const matching = rows.filter((r) => !filtered || r.type === 'a');
          const reader = new SqlitePageReader(db, { maxBytes });
          const seen: string[] = [];
          let cursor = base - 1;
          for (let more = true; more; ) {
            const page = reader.read({ afterVersion: cursor, formTypes: filtered ? ['a'] : null, limit });
            const ids = (JSON.parse(`[${page.recordsJson.toString()}]`) as { observation_id: string }[]).map(
              (r) => r.observation_id,
            );
            expect(ids.length).toBe(page.count);
            expect(page.count).toBeLessThanOrEqual(limit);
            const inPage = matching.slice(seen.length, seen.length + ids.length);
            expect(ids).toEqual(inPage.map((r) => r.id));
            const used = inPage.reduce((n, r) => n + r.size + RECORD_ENVELOPE_BYTES, 0);
            if (ids.length > 1) expect(used).toBeLessThanOrEqual(maxBytes);
            seen.push(...ids);
            const next = matching[seen.length];
            expect(page.hasMore).toBe(next !== undefined);
            if (next && ids.length < limit) {
              const overBudget = used + next.size + RECORD_ENVELOPE_BYTES > maxBytes;
              const atLarge = next.size > LARGE_DATA_BYTES && smallRecordsFit(limit, maxBytes);
              expect(overBudget || atLarge).toBe(true);
            }
            if (page.hasMore) expect(page.count).toBeGreaterThan(0);
            cursor = page.lastVersion ?? cursor;
            more = page.hasMore;
          }
          expect(seen).toEqual(matching.map((r) => r.id));
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('ascending (the order check of an aggregated page)', () => {
  it('accepts strictly ascending versions only', () => {
    expect(ascending('7')).toBe(true);
    expect(ascending('1,2,10,11,100')).toBe(true);
    expect(ascending('9007199254740990,9007199254740991')).toBe(true);
    expect(ascending('0')).toBe(true);
    expect(ascending('2,1')).toBe(false);
    expect(ascending('1,10,9')).toBe(false);
    expect(ascending('3,3')).toBe(false);
    expect(ascending('1,2,100,20')).toBe(false);
  });
});

describe('pull responses without response validation (production)', () => {
  it('send the page as written, with its byte length', async () => {
    const prod = await createTestApp({ VALIDATE_RESPONSES: 'false' });
    try {
      const auth = `Bearer ${await prod.tokenFor('admin')}`;
      const records = [
        { observation_id: 'p-1', form_type: 'f', data: { text: 'ünïcode 😀' } },
        { observation_id: 'p-2', form_type: 'f', data: { n: 2 }, deleted: true },
      ];
      await request(prod.app)
        .post('/sync/push')
        .set('authorization', auth)
        .send({ transmission_id: crypto.randomUUID(), client_id: 'c', records })
        .expect(200);
      const first = await request(prod.app)
        .post('/sync/pull?limit=1')
        .set('authorization', auth)
        .send({ client_id: 'c' })
        .expect(200)
        .expect('content-type', 'application/json; charset=utf-8');
      expect(Number(first.headers['content-length'])).toBe(Buffer.byteLength(first.text));
      expect(first.body).toMatchObject({
        current_version: 2,
        records: [{ observation_id: 'p-1', data: { text: 'ünïcode 😀' }, version: 1 }],
        change_cutoff: 1,
        has_more: true,
        sync_format_version: '1.0',
        next_page_token: expect.any(String),
      });
      const second = await request(prod.app)
        .post(`/sync/pull?limit=5&page_token=${first.body.next_page_token}`)
        .set('authorization', auth)
        .send({ client_id: 'c' })
        .expect(200);
      expect(second.body).toMatchObject({
        records: [{ observation_id: 'p-2', deleted: true, version: 2 }],
        change_cutoff: 2,
        has_more: false,
      });
      expect(second.body).not.toHaveProperty('next_page_token');
    } finally {
      await prod.close();
    }
  });
});

describe('Utf8Builder', () => {
  it('grows past its expected size and writes exactly what Buffer.from would', () => {
    const pieces = [
      '{"a":',
      '"ü😀\u2028"',
      ',',
      'x'.repeat(100),
      '"ǅ€"',
      ...Array.from({ length: 50 }, (_, i) => `é${i}😀`),
    ];
    const builder = new Utf8Builder(4);
    for (const piece of pieces) builder.add(piece);
    const expected = Buffer.from(pieces.join(''));
    expect(builder.length).toBe(expected.length);
    expect(builder.bytes().equals(expected)).toBe(true);
  });
});

describe('the SQLite store and the ORM on one connection', () => {
  it('a push waits for an ORM transaction to end and is not part of it (a rollback there keeps the push)', async () => {
    const store = await SqliteSyncStore.open(t.ctx.orm);
    const lock = holdWriteLock(t.ctx.orm, async () => {
      throw new Error('rolled back');
    });
    const request = onePush('nested-push');
    await lock.open;
    let pushed = false;
    const pushing = store.push(request).then((outcome) => {
      pushed = true;
      return outcome;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(pushed).toBe(false); // waiting (a millisecond at a time) for the ORM's transaction
    lock.release();
    await expect(lock.done).rejects.toThrow('rolled back');
    expect((await pushing).kind).toBe('done');
    const stored = await t.ctx.orm.em
      .getConnection()
      .execute("select observation_id from observations where observation_id = 'nested-push'");
    expect(stored).toHaveLength(1);
  });
});

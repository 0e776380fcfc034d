import { randomUUID } from 'node:crypto';
import { usePostgres } from '@synk/test-support/hooks';
import { postgresAvailable } from '@synk/test-support/postgres';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/lib/logger.ts';
import { startServer } from '../src/server.ts';
import { ADMIN_PASSWORD, createTestApp, manualClock, postgresServerConfig, type TestApp } from './helpers.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

interface PullBody {
  current_version: number;
  change_cutoff: number;
  has_more: boolean;
  next_page_token?: string;
  generation: number;
  resync_required: boolean;
  records: { observation_id: string; deleted: boolean; version: number }[];
}

const record = (id: string, deleted = false, data: Record<string, unknown> = { id }) => ({
  observation_id: id,
  form_type: 'purge',
  data,
  deleted,
});

/** One app per describe: each starts with an empty repository (generation 0). */
function useApp(env: () => Promise<Record<string, string>> | Record<string, string> = () => ({})) {
  const state = {
    t: undefined as unknown as TestApp,
    clock: manualClock(Date.parse('2026-01-01T00:00:00.000Z')),
  };
  beforeAll(async () => {
    state.t = await createTestApp(await env(), state.clock.now);
  });
  afterAll(() => state.t.close());
  // Tests move the clock by days, past an access token's lifetime: log in again when it has moved.
  let session: { token: Promise<string>; at: number } | undefined;
  const admin = async () => {
    const now = state.clock.now().getTime();
    if (!session || now - session.at > 60 * 60 * 1000) {
      const login = state.t.ctx.services.auth.login('admin', ADMIN_PASSWORD, '127.0.0.1');
      session = { token: login.then((tokens) => tokens.token), at: now };
    }
    return `Bearer ${await session.token}`;
  };
  return {
    clock: state.clock,
    admin,
    get t() {
      return state.t;
    },
    async push(records: unknown[]) {
      const res = await request(state.t.app)
        .post('/sync/push')
        .set('authorization', await admin())
        .send({ transmission_id: randomUUID(), client_id: 'purge-test', records });
      expect(res.status).toBe(200);
      expect(res.body.failed_records).toEqual([]);
      return res.body.current_version as number;
    },
    async pull(body: Record<string, unknown> = {}, query = '') {
      const res = await request(state.t.app)
        .post(`/sync/pull${query}`)
        .set('authorization', await admin())
        .send({ client_id: 'purge-test', ...body });
      expect(res.status).toBe(200);
      return res.body as PullBody;
    },
    async purge(body: Record<string, unknown>) {
      const res = await request(state.t.app)
        .post('/sync/tombstones/purge')
        .set('authorization', await admin())
        .send(body);
      expect(res.status).toBe(200);
      return res.body as {
        purged_count: number;
        generation: number;
        purged_through: number;
        dry_run: boolean;
      };
    },
  };
}

/** Every record the server holds now, by id (a pull from 0). */
async function everything(app: ReturnType<typeof useApp>) {
  const page = await app.pull({}, '?limit=500');
  expect(page.has_more).toBe(false);
  return new Map(page.records.map((r) => [r.observation_id, r]));
}

describe('POST /sync/tombstones/purge', () => {
  const app = useApp();

  it('starts at generation 0 with nothing purged; a purge finding nothing changes nothing', async () => {
    expect(await app.pull()).toMatchObject({ generation: 0, resync_required: false });
    expect(await app.purge({ older_than_days: 0 })).toEqual({
      purged_count: 0,
      generation: 0,
      purged_through: 0,
      dry_run: false,
    });
  });

  it('deletes only the tombstones synced older_than_days ago or earlier, by the injected clock', async () => {
    // Day 0: an old tombstone, a live record, and one that is deleted later (on day 20).
    await app.push([record('old-gone', true), record('old-live'), record('deleted-late')]);
    const conflictBase = await app.push([record('conflicted', false, { v: 1 })]);
    await app.push([{ ...record('conflicted', true), base_version: conflictBase - 1 }]); // a logged conflict
    app.clock.advance(20 * DAY_MS);
    const lateTombstone = await app.push([record('deleted-late', true)]);
    app.clock.advance(DAY_MS); // now: day 21

    const dry = await app.purge({ older_than_days: 10, dry_run: true });
    expect(dry).toEqual({ purged_count: 2, generation: 1, purged_through: conflictBase + 1, dry_run: true });
    expect([...(await everything(app)).keys()].sort()).toEqual([
      'conflicted',
      'deleted-late',
      'old-gone',
      'old-live',
    ]);
    expect((await app.pull()).generation).toBe(0);

    const done = await app.purge({ older_than_days: 10 });
    expect(done).toEqual({ ...dry, dry_run: false });
    const left = await everything(app);
    expect([...left.keys()].sort()).toEqual(['deleted-late', 'old-live']);
    expect(left.get('deleted-late')).toMatchObject({ deleted: true, version: lateTombstone });
    expect((await app.pull()).generation).toBe(1);

    // The conflicts log keeps its entry for the purged record.
    const conflicts = await request(app.t.app)
      .get('/sync/conflicts')
      .set('authorization', await app.admin());
    expect(conflicts.body.conflicts.map((c: { observation_id: string }) => c.observation_id)).toContain(
      'conflicted',
    );

    // Nothing more is old enough: the generation stays; purged_through never moves back.
    expect(await app.purge({ older_than_days: 10 })).toEqual({ ...done, purged_count: 0 });
    const again = await app.purge({ older_than_days: 0 });
    expect(again).toEqual({ purged_count: 1, generation: 2, purged_through: lateTombstone, dry_run: false });
    expect([...(await everything(app)).keys()]).toEqual(['old-live']);
  });

  it('lets a record whose tombstone was purged be pushed again, as a new record', async () => {
    const version = await app.push([record('old-gone', false, { back: true })]);
    expect((await everything(app)).get('old-gone')).toMatchObject({ deleted: false, version });
  });
});

describe('resync_required on POST /sync/pull', () => {
  const app = useApp();
  let purgedThrough = 0;

  beforeAll(async () => {
    for (let i = 0; i < 4; i++) await app.push([record(`r-${i}`)]);
    await app.push([record('r-1', true)]); // version 5
    await app.push([record('r-4')]); // version 6
    // The clock has not moved: 0 days takes the tombstones synced in the purge's own millisecond too.
    purgedThrough = (await app.purge({ older_than_days: 0 })).purged_through;
    expect(purgedThrough).toBe(5);
  });

  it('is true only for a starting version above 0 and below purged_through', async () => {
    const at = async (version: number) => (await app.pull({ since: { version } })).resync_required;
    expect(await at(0)).toBe(false);
    expect(await at(1)).toBe(true);
    expect(await at(purgedThrough - 1)).toBe(true);
    expect(await at(purgedThrough)).toBe(false);
    expect(await at(purgedThrough + 1)).toBe(false);
    expect(await app.pull()).toMatchObject({ generation: 1, resync_required: false });
  });

  it('reads the starting version from after_change_id and page_token too', async () => {
    expect((await app.pull({ after_change_id: 2 })).resync_required).toBe(true);
    expect((await app.pull({ after_change_id: purgedThrough })).resync_required).toBe(false);
    // A page token issued at version 1 (a loop that began before the purge) still starts below it.
    const first = await app.pull({}, '?limit=1');
    expect(first).toMatchObject({ change_cutoff: 1, has_more: true, resync_required: false });
    const next = await app.pull({}, `?limit=1&page_token=${first.next_page_token}`);
    expect(next).toMatchObject({ resync_required: true, generation: 1 });
  });

  it('still serves the page as before', async () => {
    const page = await app.pull({ since: { version: 2 } });
    expect(page.records.map((r) => r.observation_id)).toEqual(['r-2', 'r-3', 'r-4']);
    expect(page).toMatchObject({
      current_version: 6,
      change_cutoff: 6,
      has_more: false,
      resync_required: true,
    });
  });
});

/**
 * A purge removes at most TOMBSTONE_PURGE_BATCH tombstones per transaction, so pushes wait for one
 * batch, never for a purge of millions; each batch that removes something is a generation.
 */
function purgeInBatches(app: ReturnType<typeof useApp>) {
  it('removes every old tombstone, one generation per batch, and a dry run says so beforehand', async () => {
    for (let i = 0; i < 10; i++) await app.push([record(`batch-${i}`, true)]);
    const live = await app.push([record('batch-live')]);
    const dry = await app.purge({ older_than_days: 0, dry_run: true });
    expect(dry).toEqual({ purged_count: 10, generation: 3, purged_through: live - 1, dry_run: true });
    expect(await app.purge({ older_than_days: 0 })).toEqual({ ...dry, dry_run: false });
    expect([...(await everything(app)).keys()]).toEqual(['batch-live']);
    expect((await app.pull()).generation).toBe(3);
  });

  it('ends on a batch that finds nothing without a generation for it (a multiple of the batch size)', async () => {
    for (let i = 0; i < 8; i++) await app.push([record(`batch-again-${i}`, true)]);
    const purge = await app.purge({ older_than_days: 0 });
    expect(purge).toMatchObject({ purged_count: 8, generation: 5 });
    expect([...(await everything(app)).keys()]).toEqual(['batch-live']);
  });
}

describe('a purge in batches', () => {
  purgeInBatches(useApp(() => ({ TOMBSTONE_PURGE_BATCH: '4' })));
});

describe('a purge racing pushes', () => {
  const app = useApp();

  it('removes whole pushes, and every tombstone it removed is at or below purged_through', async () => {
    const pushed: number[] = [];
    const purges: Promise<{ purged_count: number; purged_through: number }>[] = [];
    const pushes: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      pushes.push(app.push([record(`race-${i}`, true)]).then((v) => void pushed.push(v)));
      if (i % 10 === 5) {
        app.clock.advance(1);
        purges.push(app.purge({ older_than_days: 0 }));
      }
    }
    await Promise.all(pushes);
    const results = await Promise.all(purges);
    const left = new Set([...(await everything(app)).values()].map((r) => r.version));
    const purged = pushed.filter((v) => !left.has(v));
    expect(results.reduce((n, r) => n + r.purged_count, 0)).toBe(purged.length);
    // purged_through never moves back: the highest any purge answered is the repository's now.
    const purgedThrough = Math.max(...results.map((r) => r.purged_through));
    expect((await app.pull()).generation).toBe(results.filter((r) => r.purged_count > 0).length);
    for (const v of purged) expect(v).toBeLessThanOrEqual(purgedThrough);
  });
});

describe.skipIf(!postgresAvailable())('PostgreSQL: a purge in batches', () => {
  const postgres = usePostgres();
  purgeInBatches(
    useApp(async () => ({
      DB_CONNECTION: await postgres.server.createDatabase(),
      TOMBSTONE_PURGE_BATCH: '4',
    })),
  );
});

describe.skipIf(!postgresAvailable())('PostgreSQL: purges and pushes from two processes', () => {
  const postgres = usePostgres();

  it('removes exactly what each purge counted, every removed tombstone at or below purged_through', async () => {
    const url = await postgres.server.createDatabase();
    const config = postgresServerConfig(url, { ADMIN_PASSWORD });
    // Each request sees a later millisecond: a tombstone pushed before a purge is older than it.
    let now = Date.parse('2026-02-01T00:00:00.000Z');
    const clock = () => new Date(now++);
    const a = await startServer(config, createLogger('silent'), clock);
    const b = await startServer(config, createLogger('silent'), clock);
    try {
      const token = (await a.context.services.auth.login('admin', ADMIN_PASSWORD, '127.0.0.1')).token;
      const send = async (server: typeof a, route: string, body: unknown) => {
        const res = await fetch(`http://127.0.0.1:${server.port}${route}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        expect(res.status).toBe(200);
        return (await res.json()) as Record<string, number>;
      };
      const pushed: number[] = [];
      const purged: { purged_count: number; purged_through: number }[] = [];
      const work: Promise<void>[] = [];
      for (let i = 0; i < 60; i++) {
        const server = i % 2 === 0 ? a : b;
        work.push(
          send(server, '/sync/push', {
            transmission_id: randomUUID(),
            client_id: 'pg-race',
            records: [record(`pg-race-${i}`, true)],
          }).then((r) => void pushed.push(r.current_version!)),
        );
        if (i % 6 === 3) {
          work.push(
            send(i % 4 === 3 ? b : a, '/sync/tombstones/purge', { older_than_days: 0 }).then(
              (r) => void purged.push(r as { purged_count: number; purged_through: number }),
            ),
          );
        }
      }
      await Promise.all(work);
      const all = await send(a, '/sync/pull?limit=500', { client_id: 'pg-race' });
      const left = new Set((all.records as unknown as { version: number }[]).map((r) => r.version));
      const gone = pushed.filter((v) => !left.has(v));
      expect(purged.reduce((n, r) => n + r.purged_count, 0)).toBe(gone.length);
      const purgedThrough = Math.max(...purged.map((r) => r.purged_through));
      for (const v of gone) expect(v).toBeLessThanOrEqual(purgedThrough);
      expect(all.generation).toBe(purged.filter((r) => r.purged_count > 0).length);
    } finally {
      await b.close();
      await a.close();
    }
  });
});

import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { usePostgres } from '@synk/test-support/hooks';
import { postgresAvailable } from '@synk/test-support/postgres';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/lib/logger.ts';
import { SqliteSyncStore } from '../src/modules/sync/sqlite.store.ts';
import type { ExportFilter, ExportReader, SyncStore } from '../src/modules/sync/sync.store.ts';
import { closeContext, createContext } from '../src/server.ts';
import { ADMIN_PASSWORD, tempDir } from './helpers.ts';

const ALL: ExportFilter = { formTypes: null, sinceVersion: 0, includeDeleted: false };

type OpenStore = (ctx: Awaited<ReturnType<typeof createContext>>) => Promise<SyncStore>;

/**
 * A server context on `dbConnection` with its store, and `push` (as the bootstrap admin, every
 * record accepted); the context and store are closed after `body`.
 */
async function withStore(
  dbConnection: string,
  openStore: OpenStore,
  body: (store: SyncStore, push: (records: unknown[]) => Promise<void>) => Promise<void>,
) {
  const ctx = await createContext(
    loadConfig({ DATA_DIR: tempDir(), DB_CONNECTION: dbConnection, ADMIN_PASSWORD, SYNC_VALIDATION: 'off' }),
    createLogger('silent'),
  );
  const store = await openStore(ctx);
  try {
    const app = createApp(ctx);
    const token = (await ctx.services.auth.login(ctx.config.adminUsername, ADMIN_PASSWORD, '127.0.0.1'))
      .token;
    const push = async (records: unknown[]) => {
      const res = await request(app)
        .post('/sync/push')
        .set('authorization', `Bearer ${token}`)
        .send({ transmission_id: randomUUID(), client_id: 'export-reader', records });
      expect(res.status).toBe(200);
      expect(res.body.failed_records).toEqual([]);
    };
    await body(store, push);
  } finally {
    if (!(store instanceof SqliteSyncStore)) await store.close();
    await closeContext(ctx);
  }
}

async function dataSeen(reader: ExportReader): Promise<[string, string][]> {
  const seen: [string, string][] = [];
  await reader.visitExportData(ALL, 0, 100, ([, , data]) => seen.push(['data', data]));
  await reader.visitExportRows(['snap'], ALL, 0, 100, (row) => seen.push([row[0], row[3]]));
  return seen;
}

function checkSnapshot(dbConnection: string, openStore: OpenStore) {
  return withStore(dbConnection, openStore, async (store, push) => {
    await push([{ observation_id: 'a', form_type: 'snap', data: { x: 1 } }]);
    const reader = await store.openExportReader();
    try {
      // Written while the export reads: neither the change nor the new record may show.
      await push([
        { observation_id: 'a', form_type: 'snap', data: { x: 1, added: 'later' } },
        { observation_id: 'b', form_type: 'snap', data: { y: 2 } },
      ]);
      expect(await dataSeen(reader)).toEqual([
        ['data', '{"x":1}'],
        ['a', '{"x":1}'],
      ]);
    } finally {
      await reader.close();
    }
    // A reader opened now sees them, and its snapshot held no lock on writers.
    const next = await store.openExportReader();
    try {
      expect(await dataSeen(next)).toEqual([
        ['data', '{"added":"later","x":1}'],
        ['data', '{"y":2}'],
        ['a', '{"added":"later","x":1}'],
        ['b', '{"y":2}'],
      ]);
      await push([{ observation_id: 'c', form_type: 'snap', data: {} }]);
    } finally {
      await next.close();
    }
  });
}

/**
 * 20 records of ~1 MB: each read of an export stops at about 16 MiB of data (PostgreSQL before the
 * record that would pass it, SQLite after the one that reaches it), and reads in a loop until one
 * visits nothing return every record once, in order.
 */
function checkReadBytes(dbConnection: string, openStore: OpenStore) {
  return withStore(dbConnection, openStore, async (store, push) => {
    const ids = Array.from({ length: 20 }, (_, i) => `big-${String(i).padStart(2, '0')}`);
    for (const half of [ids.slice(0, 10), ids.slice(10)]) {
      await push(
        half.map((id) => ({ observation_id: id, form_type: 'big', data: { text: 'x'.repeat(1_000_000) } })),
      );
    }
    const reader = await store.openExportReader();
    try {
      // Each pass reads in a loop, recording each read's count and every record's version.
      type Read = (after: number, visit: (version: number) => void) => Promise<number>;
      const rowIds: string[] = [];
      const passes: Read[] = [
        (after, visit) => reader.visitExportData(ALL, after, 500, ([version]) => visit(version)),
        (after, visit) =>
          reader.visitExportRows(['big'], ALL, after, 500, (row) => {
            rowIds.push(row[0]);
            visit(row[8]);
          }),
      ];
      for (const read of passes) {
        const counts: number[] = [];
        const versions: number[] = [];
        for (;;) {
          const count = await read(versions.at(-1) ?? 0, (version) => versions.push(version));
          if (count === 0) break;
          counts.push(count);
        }
        expect(versions).toHaveLength(20);
        expect(versions.every((v, i) => i === 0 || v > versions[i - 1]!)).toBe(true);
        // ~1 MB each: 16 or 17 records reach 16 MiB, so the first read stops there.
        expect(counts[0]).toBeGreaterThanOrEqual(15);
        expect(counts[0]).toBeLessThanOrEqual(17);
      }
      expect(rowIds).toEqual(ids);
    } finally {
      await reader.close();
    }
  });
}

/** `check` on a SQLite file, and on PostgreSQL where it is available. */
function onSqliteAndPostgres(check: (dbConnection: string, openStore: OpenStore) => Promise<void>) {
  it('on a SQLite file', async () => {
    await check(path.join(tempDir(), 'export.db'), (ctx) => SqliteSyncStore.open(ctx.orm));
  });

  describe.skipIf(!postgresAvailable())('on PostgreSQL', () => {
    const postgres = usePostgres();
    it('too', async () => {
      const url = await postgres.server.createDatabase();
      const { PostgresSyncStore } = await import('../src/modules/sync/postgres.store.ts');
      await check(url, async () => new PostgresSyncStore({ url, connectTimeoutMs: 10_000 }));
    });
  });
}

describe('an export read is bounded in bytes', () => {
  onSqliteAndPostgres(checkReadBytes);
});

describe('an export reads one snapshot: changes made while it reads do not show, and nothing waits for it', () => {
  onSqliteAndPostgres(checkSnapshot);
});

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient, MemoryStorage, type Observation, type SyncStorage } from '@synk/sdk';
import { FileStorage } from '@synk/sdk/node';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTarget } from '../src/harness.ts';
import { adminToken, call, userWithRole } from '../src/http.ts';
import { pullAll, push } from '../src/sync.ts';

/**
 * A device that pulled before a tombstone purge ends, through the SDK's resync pass, with exactly
 * the server's live records (and its own unpushed ones), also when the app restarts mid-pass.
 * Each case has its own form type and filters on it, and purges only on a server the harness owns.
 */
const target = useTarget();
const shared = Boolean(process.env.TEST_BASE_URL);

let admin: string;
let writer: { username: string; password: string; token: string };
let device: { username: string; password: string };
beforeAll(async () => {
  admin = await adminToken(target);
  writer = await userWithRole(target, 'read-write');
  device = await userWithRole(target, 'read-write');
});

const rec = (type: string, id: string, deleted = false) => ({
  observation_id: `${type}-${id}`,
  form_type: type,
  data: { id },
  deleted,
});

/** The app's local database: what `apply` wrote and `removeMissing` left. */
function localCopy() {
  const rows = new Map<string, Observation>();
  return {
    rows,
    apply(records: Observation[]) {
      for (const r of records) r.deleted ? rows.delete(r.observation_id) : rows.set(r.observation_id, r);
    },
    removeMissing(keep: ReadonlySet<string>) {
      for (const id of rows.keys()) if (!keep.has(id)) rows.delete(id);
    },
  };
}

/** The server's live records of the type, as a sorted id list. */
async function serverLive(type: string): Promise<string[]> {
  const { records } = await pullAll(target, admin, 0, { schema_types: [type] });
  return records
    .filter((r) => !r.deleted)
    .map((r) => r.observation_id)
    .sort();
}

async function purgeAll() {
  const res = await call(target, 'POST', '/sync/tombstones/purge', {
    token: admin,
    body: { older_than_days: 0 },
  });
  expect(res.status).toBe(200);
  expect(res.body.purged_count).toBeGreaterThan(0);
}

function deviceClient(storage: SyncStorage) {
  return createClient({ baseUrl: target.baseUrl, storage, credentials: device, clientId: 'resync-device' });
}

describe.skipIf(shared)('SDK resync after a tombstone purge', () => {
  it('a device that pulled before the purge ends with exactly the server’s live records and its own', async () => {
    const type = `resync-${crypto.randomUUID()}`;
    const schemaTypes = [type];
    await push(
      target,
      writer.token,
      ['a', 'b', 'c'].map((id) => rec(type, id)),
    );
    const local = localCopy();
    const client = deviceClient(new MemoryStorage());
    const handlers = {
      schemaTypes,
      apply: (records: Observation[]) => local.apply(records),
      removeMissing: (keep: ReadonlySet<string>) => local.removeMissing(keep),
    };
    expect(await client.sync(handlers)).toMatchObject({ pulled: 3, resynced: false });

    // While the device is away: b is deleted and its tombstone purged, d is added.
    await push(target, writer.token, [rec(type, 'b', true), rec(type, 'd')]);
    await purgeAll();
    // The device saved a record it has not pushed yet, and its database has one the server never had.
    await client.records.save(rec(type, 'mine'));
    local.rows.set(`${type}-mine`, { ...rec(type, 'mine') } as unknown as Observation);
    local.rows.set(`${type}-stray`, { ...rec(type, 'stray') } as unknown as Observation);

    const report = await client.sync(handlers);
    expect(report).toMatchObject({ resynced: true, pushed: 1 });
    expect([...local.rows.keys()].sort()).toEqual([`${type}-a`, `${type}-c`, `${type}-d`, `${type}-mine`]);
    // Its own record reached the server; the copies agree.
    expect(await serverLive(type)).toEqual([...local.rows.keys()].sort());
    // The next sync is an ordinary one (its own record came back in the pass: it was pushed first).
    expect(await client.sync(handlers)).toMatchObject({ resynced: false, pulled: 0 });
  });

  it('an app restarted in the middle of the resync pass resumes it and still cleans up', async () => {
    const type = `restart-${crypto.randomUUID()}`;
    const schemaTypes = [type];
    const ids = ['a', 'b', 'c', 'd', 'e'];
    await push(
      target,
      writer.token,
      ids.map((id) => rec(type, id)),
    );
    const storage = new FileStorage(mkdtempSync(path.join(tmpdir(), 'synk-resync-')));
    const local = localCopy();
    const first = deviceClient(storage);
    for await (const page of first.pullPages({ schemaTypes })) local.apply(page.records);

    // a is deleted and purged while the device is away; f is added.
    await push(target, writer.token, [rec(type, 'a', true), rec(type, 'f')]);
    await purgeAll();

    // The app applies the pass's first page, then the second, and stops before asking for more.
    const passes: string[] = [];
    let pages = 0;
    for await (const page of first.pullPages({ schemaTypes, limit: 2 })) {
      expect(page.resync).toMatchObject({ done: false, schemaTypes });
      passes.push(page.resync!.pass);
      local.apply(page.records);
      if (++pages === 2) break;
    }
    expect(pages).toBe(2);

    // Restarted: a new client on the same storage goes on from the third page of the same pass.
    const restarted = deviceClient(storage);
    const report = await restarted.sync({
      schemaTypes,
      apply: (_records, page) => {
        local.apply(page.records);
        if (page.resync) passes.push(page.resync.pass);
      },
      removeMissing: (keep) => local.removeMissing(keep),
    });
    // The page it stopped in comes again (d, e), with f: b and c were recorded as applied.
    expect(report).toMatchObject({ resynced: true, pulled: 3 });
    expect(new Set(passes).size).toBe(1);
    expect([...local.rows.keys()].sort()).toEqual(await serverLive(type));
    expect(await serverLive(type)).toEqual(['b', 'c', 'd', 'e', 'f'].map((id) => `${type}-${id}`));
    // The pass is over: nothing of it is left in the storage, and the next sync is ordinary.
    expect(await storage.get(`resync:cursor:${type}`)).toBeUndefined();
    expect(await storage.get(`resync:cursor:${type}:page:0`)).toBeUndefined();
    expect(await restarted.sync({ schemaTypes })).toMatchObject({ resynced: false, pulled: 0 });
  });

  it('a purge during the pass starts it over, so a record it returned and that went meanwhile goes', async () => {
    const type = `again-${crypto.randomUUID()}`;
    const schemaTypes = [type];
    await push(
      target,
      writer.token,
      ['a', 'b', 'c', 'd'].map((id) => rec(type, id)),
    );
    const local = localCopy();
    const client = deviceClient(new MemoryStorage());
    for await (const page of client.pullPages({ schemaTypes })) local.apply(page.records);
    await push(target, writer.token, [rec(type, 'a', true)]);
    await purgeAll();

    const passes: string[] = [];
    for await (const page of client.pullPages({ schemaTypes, limit: 2 })) {
      local.apply(page.records);
      passes.push(page.resync!.pass);
      if (passes.length === 1) {
        // b came in this page; now it is deleted and purged too, before the pass is over.
        expect(page.records.map((r) => r.observation_id)).toContain(`${type}-b`);
        await push(target, writer.token, [rec(type, 'b', true)]);
        await purgeAll();
      }
      if (page.resync?.done) local.removeMissing(page.resync.keep);
    }
    expect(new Set(passes).size).toBe(2);
    expect([...local.rows.keys()].sort()).toEqual([`${type}-c`, `${type}-d`]);
    expect(await serverLive(type)).toEqual([...local.rows.keys()].sort());
  });

  it('a one-off read (since) only reports resync_required and starts no pass', async () => {
    const type = `oneoff-${crypto.randomUUID()}`;
    const first = await push(target, writer.token, [rec(type, 'a')]);
    await push(target, writer.token, [rec(type, 'a', true)]);
    await purgeAll();
    const storage = new MemoryStorage();
    const client = deviceClient(storage);
    const pages = [];
    for await (const page of client.pullPages({ schemaTypes: [type], since: first.body.current_version }))
      pages.push(page);
    expect(pages).toHaveLength(1);
    expect(pages[0]).toMatchObject({ resync_required: true });
    expect(pages[0]!.resync).toBeUndefined();
    expect(await storage.get(`resync:cursor:${type}`)).toBeUndefined();
  });
});

import type { components } from '@synk/contract';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTarget } from '../src/harness.ts';
import { adminToken, call, userWithRole } from '../src/http.ts';
import { pull, pullAll, push, record } from '../src/sync.ts';

/**
 * POST /sync/tombstones/purge and the pull's `generation` / `resync_required` (spec §4.4). A purge
 * of every tombstone would take other users' tombstones from a shared server (TEST_BASE_URL): the
 * cases that purge run only on a server the harness owns; the others (dry runs, refusals) anywhere.
 */
const target = useTarget();
const shared = Boolean(process.env.TEST_BASE_URL);

type Purge = components['schemas']['TombstonePurgeResponse'];
type Problem = components['schemas']['Problem'];

let admin: string;
let writer: { username: string; token: string };
let reader: { username: string; token: string };
beforeAll(async () => {
  admin = await adminToken(target);
  writer = await userWithRole(target, 'read-write');
  reader = await userWithRole(target, 'read-only');
});

const purge = (body: unknown, token = admin) =>
  call<Purge & Partial<Problem>>(target, 'POST', '/sync/tombstones/purge', { token, body });

describe('POST /sync/tombstones/purge', () => {
  it.skipIf(shared)(
    'removes tombstones only; a device whose cursor is from before the purge is told to resync',
    async () => {
      const live = record();
      const doomed = record();
      const first = await push(target, writer.token, [live, doomed]);
      expect(first.status).toBe(200);
      // A device pulls everything there is now, then the record is deleted and the tombstone purged.
      const device = await pullAll(target, reader.token);
      expect(device.cursor).toBe(first.body.current_version);
      const deleted = await push(target, writer.token, [{ ...doomed, deleted: true }]);
      const tombstoneVersion = deleted.body.current_version as number;
      const before = await pull(target, reader.token);
      expect(before.body).toMatchObject({ generation: 0, resync_required: false });

      const dry = await purge({ older_than_days: 0, dry_run: true });
      expect(dry.status).toBe(200);
      expect(dry.body).toEqual({
        purged_count: 1,
        generation: 1,
        purged_through: tombstoneVersion,
        dry_run: true,
      });
      expect((await pullAll(target, reader.token)).records.map((r) => r.observation_id)).toContain(
        doomed.observation_id,
      );

      const done = await purge({ older_than_days: 0 });
      expect(done.status).toBe(200);
      expect(done.body).toEqual({ ...dry.body, dry_run: false });

      // The device's next pull: served as usual, but flagged; pulls from 0 or from now are not.
      const stale = await pull(target, reader.token, { since: { version: device.cursor } });
      expect(stale.status).toBe(200);
      expect(stale.body).toMatchObject({ generation: 1, resync_required: true, records: [] });
      const viaAlias = await pull(target, reader.token, { after_change_id: device.cursor });
      expect(viaAlias.body.resync_required).toBe(true);
      const fresh = await pullAll(target, reader.token);
      expect(fresh.records.map((r) => r.observation_id)).toEqual([live.observation_id]);
      const current = await pull(target, reader.token, { since: { version: fresh.cursor } });
      expect(current.body).toMatchObject({ generation: 1, resync_required: false });

      // Nothing left to purge: the generation stays.
      expect((await purge({ older_than_days: 0 })).body).toEqual({ ...done.body, purged_count: 0 });
      // A record pushed again after its tombstone went is a new record.
      const back = await push(target, writer.token, [{ ...doomed, data: { back: true } }]);
      expect(back.body).toMatchObject({ success_count: 1, failed_records: [] });
      expect((await pullAll(target, reader.token)).records.map((r) => r.observation_id)).toEqual([
        live.observation_id,
        doomed.observation_id,
      ]);
    },
  );

  it.skipIf(shared)(
    'keeps tombstones younger than older_than_days, and a dry run changes nothing',
    async () => {
      const young = record({ deleted: true });
      expect((await push(target, writer.token, [young])).status).toBe(200);
      const res = await purge({ older_than_days: 1 });
      expect(res.status).toBe(200);
      expect(res.body.dry_run).toBe(false);
      const dry = await purge({ older_than_days: 0, dry_run: true });
      expect(dry.body.purged_count).toBeGreaterThanOrEqual(1);
      const left = await pullAll(target, reader.token);
      expect(left.records.find((r) => r.observation_id === young.observation_id)).toMatchObject({
        deleted: true,
      });
    },
  );

  it('is for administrators: 401 without a token, 403 below admin, as problem+json', async () => {
    const anonymous = await call(target, 'POST', '/sync/tombstones/purge', { body: { older_than_days: 30 } });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('content-type')).toMatch(/application\/problem\+json/);
    for (const token of [reader.token, writer.token]) {
      const res = await purge({ older_than_days: 30 }, token);
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('forbidden');
    }
  });

  it('refuses a bad body with 400', async () => {
    for (const body of [
      {},
      { older_than_days: -1 },
      { older_than_days: 1.5 },
      { older_than_days: '30' },
      { older_than_days: 36501 },
      { older_than_days: 30, dry_run: 'yes' },
      [],
    ]) {
      const res = await purge(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(res.body.code).toBe('validation_failed');
    }
  });
});

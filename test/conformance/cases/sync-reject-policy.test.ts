import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useTarget } from '../src/harness.ts';
import { adminToken, call, userWithRole } from '../src/http.ts';
import { pull, push, record } from '../src/sync.ts';

const target = useTarget({ CONFLICT_POLICY: 'reject' });

describe('conflict policy "reject"', () => {
  it('fails the stale record with code conflict and the server copy, keeps the server copy, commits the rest', async () => {
    const writer = await userWithRole(target, 'read-write');
    const id = `reject-${randomUUID()}`;
    const v1 = (await push(target, writer.token, [record({ observation_id: id, data: { who: 'first' } })]))
      .body.current_version;
    const v2 = (
      await push(target, writer.token, [
        record({ observation_id: id, data: { who: 'second' }, base_version: v1 }),
      ])
    ).body.current_version;
    const other = record();
    const stale = await push(target, writer.token, [
      other,
      record({ observation_id: id, data: { who: 'stale' }, base_version: v1 }),
    ]);
    expect(stale.status).toBe(200);
    expect(stale.body.success_count).toBe(1);
    expect(stale.body.failed_records).toEqual([
      {
        index: 1,
        observation_id: id,
        code: 'conflict',
        error: expect.any(String),
        server_version: v2,
        server_record: expect.objectContaining({ observation_id: id, version: v2, data: { who: 'second' } }),
      },
    ]);
    const after = await pull(target, writer.token, { since: { version: v2 } });
    expect(after.body.records.map((r: { observation_id: string }) => r.observation_id)).toEqual([
      other.observation_id,
    ]);

    const log = await call(target, 'GET', '/sync/conflicts', { token: await adminToken(target) });
    expect(log.body.conflicts).toEqual([
      expect.objectContaining({ observation_id: id, policy: 'reject', base_version: v1, server_version: v2 }),
    ]);
    expect(log.body.has_more).toBe(false);
  });
});

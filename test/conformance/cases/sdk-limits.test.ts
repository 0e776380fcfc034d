import { createClient, MemoryStorage } from '@synk/sdk';
import { describe, expect, it } from 'vitest';
import { useTarget } from '../src/harness.ts';
import { userWithRole } from '../src/http.ts';

// A server with limits far below the SDK's batch size: at most 3 records and 20 KB per push.
const target = useTarget({ SYNC_MAX_RECORDS: '3', MAX_JSON_BODY_BYTES: '20000' });

describe('SDK against a server with small push limits', () => {
  it('sends a batch the server refuses as too large (413) in halves, and sets aside only a record too large alone', async () => {
    const writer = await userWithRole(target, 'read-write');
    const storage = new MemoryStorage();
    const client = createClient({ baseUrl: target.baseUrl, credentials: writer, storage, batchSize: 10 });
    const ids = Array.from({ length: 11 }, (_, i) => `limit-${i}`);
    for (const [i, id] of ids.entries()) {
      // Record 5 alone is bigger than the server's body limit.
      const data = { i, text: i === 5 ? 'x'.repeat(30_000) : `small ${i}` };
      await client.records.save({ observation_id: id, form_type: 'limits', data, deleted: false });
    }
    const result = await client.push();
    expect(result).toMatchObject({ pushed: 10, failed: 1 });
    expect((await client.records.deadLetters()).map((d) => [d.record.observation_id, d.code])).toEqual([
      ['limit-5', 'payload_too_large'],
    ]);
    expect(await client.records.pending()).toEqual([]);
    const pulled = await client.pullAll({ schemaTypes: ['limits'] });
    expect(pulled.map((r) => r.observation_id).sort()).toEqual(ids.filter((id) => id !== 'limit-5').sort());
  });

  it('after a record too large alone took the batch size to 1, it doubles back after each accepted batch', async () => {
    const writer = await userWithRole(target, 'read-write');
    /** Each push as [records sent, status]. */
    const pushes: [number, number][] = [];
    const client = createClient({
      baseUrl: target.baseUrl,
      credentials: writer,
      batchSize: 8,
      fetch: async (request) => {
        if (!request.url.endsWith('/sync/push')) return fetch(request);
        const sent = ((await request.clone().json()) as { records: unknown[] }).records.length;
        const response = await fetch(request);
        pushes.push([sent, response.status]);
        return response;
      },
    });
    await client.auth.login();
    const save = (id: string, text: string) =>
      client.records.save({ observation_id: id, form_type: 'regrowth', data: { text } });
    await save('regrowth-big', 'x'.repeat(30_000)); // over the server's body limit alone
    for (let i = 0; i < 9; i++) await save(`regrowth-${i}`, `small ${i}`);
    expect(await client.push()).toMatchObject({ pushed: 9, failed: 1 });
    expect(pushes).toEqual([
      // Halved down to the record that is too large alone, which is set aside.
      [8, 413],
      [4, 413],
      [2, 413],
      [1, 413],
      // From 1, doubled after each accepted batch, halved again whenever the server's limit (3) refuses it.
      [1, 200],
      [2, 200],
      [4, 413],
      [2, 200],
      [4, 413],
      [2, 200],
      [2, 200],
    ]);
  });
});

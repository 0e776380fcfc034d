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
});

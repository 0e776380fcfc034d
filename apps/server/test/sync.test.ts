import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, manualClock, type TestApp } from './helpers.ts';

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

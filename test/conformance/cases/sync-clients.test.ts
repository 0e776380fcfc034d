import { randomUUID } from 'node:crypto';
import type { components } from '@synk/contract';
import { createClient } from '@synk/sdk';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTarget } from '../src/harness.ts';
import { adminToken, call, userWithRole } from '../src/http.ts';
import { pull, push, record } from '../src/sync.ts';

/**
 * GET /sync/clients (spec §4.4, per-device sync status). Device ids are unique per run, so the
 * cases also hold against a shared server (TEST_BASE_URL) that already knows other devices.
 */
const target = useTarget();

/** A device's status as the contract describes it. */
type Device = components['schemas']['SyncClient'];

let admin: string;
let writer: { username: string; token: string };
let reader: { username: string; token: string };
beforeAll(async () => {
  admin = await adminToken(target);
  writer = await userWithRole(target, 'read-write');
  reader = await userWithRole(target, 'read-only');
});

/** The devices whose id starts with `prefix`, and the current_version of the page they came in. */
async function devices(prefix: string): Promise<{ list: Device[]; currentVersion: number }> {
  const res = await call(target, 'GET', `/sync/clients?limit=500&after=${encodeURIComponent(prefix)}`, {
    token: admin,
  });
  expect(res.status).toBe(200);
  return {
    list: (res.body.clients as Device[]).filter((d) => d.client_id.startsWith(prefix)),
    currentVersion: res.body.current_version,
  };
}

describe('GET /sync/clients', () => {
  it('reports each device: last user, pushes and pulls, and how far behind its latest pull is', async () => {
    const prefix = `dev-${randomUUID()}-`;
    const phone = `${prefix}phone`;
    const tablet = `${prefix}tablet`;
    const before = Date.now();
    const first = await push(target, writer.token, [record(), record(), { observation_id: 'x' }], {
      clientId: phone,
    });
    expect(first.body.success_count).toBe(2);
    const pulled = await pull(target, reader.token, { client_id: phone, since: { version: 0 } }, '?limit=1');
    expect(pulled.status).toBe(200);
    await push(target, writer.token, [record()], { clientId: tablet });

    const { list, currentVersion } = await devices(prefix);
    expect(list.map((d) => d.client_id)).toEqual([phone, tablet]);
    const [phoneStatus, tabletStatus] = list as [Device, Device];
    expect(phoneStatus).toEqual({
      client_id: phone,
      username: reader.username, // the pull came after the push
      first_seen_at: expect.any(String),
      last_seen_at: expect.any(String),
      last_push_at: expect.any(String),
      last_pull_at: expect.any(String),
      highest_pushed_version: first.body.current_version,
      change_cutoff: pulled.body.change_cutoff,
      behind_by: currentVersion - pulled.body.change_cutoff,
      push_count: 1,
      records_accepted: 2,
    });
    expect(Date.parse(phoneStatus.first_seen_at)).toBeGreaterThanOrEqual(before - 5_000);
    expect(Date.parse(phoneStatus.last_pull_at!)).toBeGreaterThanOrEqual(
      Date.parse(phoneStatus.last_push_at!),
    );
    expect(phoneStatus.last_seen_at).toBe(phoneStatus.last_pull_at);
    expect(tabletStatus).toMatchObject({
      username: writer.username,
      last_pull_at: null,
      change_cutoff: null,
      behind_by: currentVersion, // never pulled: every change is still to pull
      push_count: 1,
      records_accepted: 1,
    });
  });

  it('does not count an idempotent replay', async () => {
    const prefix = `replay-${randomUUID()}-`;
    const clientId = `${prefix}phone`;
    const transmissionId = randomUUID();
    const records = [record()];
    await push(target, writer.token, records, { clientId, transmissionId });
    const { list: before } = await devices(prefix);
    const replay = await push(target, writer.token, records, { clientId, transmissionId });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    const { list: after } = await devices(prefix);
    expect(after).toEqual(before);
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ push_count: 1, records_accepted: 1 });
  });

  it('pages in client_id order with limit and after, next_after while has_more', async () => {
    const prefix = `paged-${randomUUID()}-`;
    const ids = ['c', 'a', 'd', 'b', 'e'].map((s) => `${prefix}${s}`);
    for (const clientId of ids) await pull(target, reader.token, { client_id: clientId });
    const seen: string[] = [];
    let after = prefix;
    for (let pages = 1; ; pages++) {
      const res = await call(target, 'GET', `/sync/clients?limit=2&after=${encodeURIComponent(after)}`, {
        token: admin,
      });
      expect(res.status).toBe(200);
      const page = (res.body.clients as Device[]).filter((d) => d.client_id.startsWith(prefix));
      seen.push(...page.map((d) => d.client_id));
      if (page.length < 2 || !res.body.has_more) break;
      expect(res.body.next_after).toBe(page.at(-1)!.client_id);
      after = res.body.next_after;
      expect(pages).toBeLessThan(5);
    }
    expect(seen).toEqual([...ids].sort());
  });

  it('is for administrators: 401 without a token, 403 below admin; 400 for a bad limit or after', async () => {
    expect((await call(target, 'GET', '/sync/clients')).status).toBe(401);
    for (const token of [reader.token, writer.token]) {
      const res = await call(target, 'GET', '/sync/clients', { token });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('forbidden');
    }
    for (const query of ['limit=0', 'limit=501', 'limit=x', 'after=']) {
      const res = await call(target, 'GET', `/sync/clients?${query}`, { token: admin });
      expect(res.status, query).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    }
  });

  it('is paged through by the SDK’s syncClientPages', async () => {
    const prefix = `sdk-${randomUUID()}-`;
    for (const s of ['b', 'a', 'c']) await pull(target, reader.token, { client_id: `${prefix}${s}` });
    const client = createClient({
      baseUrl: target.baseUrl,
      credentials: { username: target.admin.username, password: target.admin.password },
    });
    await client.auth.login();
    const seen: string[] = [];
    let pages = 0;
    for await (const page of client.syncClientPages({ limit: 1, after: prefix })) {
      pages += 1;
      seen.push(...page.clients.map((d) => d.client_id).filter((id) => id.startsWith(prefix)));
      if (seen.length === 3) break;
    }
    expect(seen).toEqual([`${prefix}a`, `${prefix}b`, `${prefix}c`]);
    expect(pages).toBe(3);
  });
});

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ApiError, createClient, MemoryStorage, NetworkError, type Observation } from '@synk/sdk';
import { FileStorage } from '@synk/sdk/node';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTarget } from '../src/harness.ts';
import { adminToken, call, login, userWithRole } from '../src/http.ts';

const target = useTarget();
let writer: { username: string; password: string };
beforeAll(async () => {
  writer = await userWithRole(target, 'read-write');
});

/** A real fetch that counts requests per path and can be told to fail. */
function instrumentedFetch() {
  const counts = new Map<string, number>();
  let failNext = 0;
  let loseResponses = 0;
  const fetcher = async (request: Request) => {
    const p = new URL(request.url).pathname;
    counts.set(p, (counts.get(p) ?? 0) + 1);
    if (failNext > 0) {
      failNext -= 1;
      throw new TypeError('fetch failed (network down)');
    }
    const response = await fetch(request);
    if (loseResponses > 0) {
      loseResponses -= 1;
      throw new TypeError('fetch failed (connection reset after the request was sent)');
    }
    return response;
  };
  return {
    fetch: fetcher,
    count: (p: string) => counts.get(p) ?? 0,
    failNext: (n: number) => {
      failNext = n;
    },
    loseResponses: (n: number) => {
      loseResponses = n;
    },
  };
}

/** Memory storage that lists the keys it holds. */
class ListedStorage extends MemoryStorage {
  readonly keys = new Set<string>();
  override async set(key: string, value: unknown): Promise<void> {
    this.keys.add(key);
    await super.set(key, value);
  }
  override async delete(key: string): Promise<void> {
    this.keys.delete(key);
    await super.delete(key);
  }
}

const record = (id: string, data: Record<string, unknown> = {}) => ({
  observation_id: id,
  form_type: 'sdk',
  data: { ...data, id },
});

describe('SDK against the real server', () => {
  it('logs in, stores tokens, and calls typed operations', async () => {
    const client = createClient({ baseUrl: target.baseUrl, credentials: writer });
    const tokens = await client.auth.login();
    expect(tokens.token).toEqual(expect.any(String));
    const health = await client.api.GET('/health');
    expect(health.data?.status).toBe('ok');
    const forbidden = await client.api.GET('/users');
    expect(forbidden.response.status).toBe(403);
    expect(forbidden.error).toMatchObject({ code: 'forbidden' });
  });

  it('starts from tokens obtained elsewhere, without credentials, and refreshes them when the access token is rejected', async () => {
    const tokens = await login(target, writer.username, writer.password);
    const storage = new MemoryStorage();
    const client = createClient({ baseUrl: target.baseUrl, tokens, storage });
    const pulled = await client.api.POST('/sync/pull', { body: { client_id: 'handed-over' } });
    expect(pulled.response.status).toBe(200);
    expect((await storage.get<{ token: string }>('auth:tokens'))?.token).toBe(tokens.token);
    const rejected = { ...tokens, token: `${tokens.token.slice(0, -2)}xx` }; // a broken access token
    const second = createClient({ baseUrl: target.baseUrl, tokens: rejected });
    const again = await second.api.POST('/sync/pull', { body: { client_id: 'handed-over' } });
    expect(again.response.status).toBe(200); // refreshed with the refresh token, then retried
    expect((await second.auth.tokens())?.token).not.toBe(rejected.token);
  });

  it('two pushes started together send each record once and lose none', async () => {
    const client = createClient({ baseUrl: target.baseUrl, credentials: writer, batchSize: 2 });
    const ids = Array.from({ length: 6 }, (_, i) => `together-${i}`);
    for (const id of ids) await client.records.save(record(id));
    const [first, second] = await Promise.all([client.push(), client.push()]);
    expect(first.pushed + second.pushed).toBe(ids.length);
    expect(await client.records.pending()).toEqual([]);
    const pulled = await client.pullAll({ since: 0, schemaTypes: ['sdk'] });
    expect(ids.every((id) => pulled.some((r) => r.observation_id === id))).toBe(true);
  });

  it('one refresh for 50 parallel calls that all hit 401', async () => {
    const net = instrumentedFetch();
    const storage = new MemoryStorage();
    const client = createClient({ baseUrl: target.baseUrl, credentials: writer, storage, fetch: net.fetch });
    const tokens = await client.auth.login();
    // The stored access token goes stale (e.g. the app was offline past its expiry).
    await storage.set('auth:tokens', { ...tokens, token: `${tokens.token}x` });
    const results = await Promise.all(
      Array.from({ length: 50 }, () =>
        client.api.POST('/sync/pull', { body: { client_id: 'sdk' }, params: { query: { limit: 1 } } }),
      ),
    );
    expect(results.every((r) => r.response.status === 200)).toBe(true);
    expect(net.count('/auth/refresh')).toBe(1);
    expect((await client.auth.tokens())?.refreshToken).not.toBe(tokens.refreshToken);
  });

  it('clients on one file storage (tabs, processes) refresh a rejected session once and keep it', async () => {
    const net = instrumentedFetch();
    const dir = mkdtempSync(path.join(tmpdir(), 'synk-shared-session-'));
    const tokens = await login(target, writer.username, writer.password);
    await new FileStorage(dir).set('auth:tokens', { ...tokens, token: `${tokens.token}x` });
    // Each client has a storage object of its own on the directory, as separate processes would.
    const clients = Array.from({ length: 3 }, () =>
      createClient({ baseUrl: target.baseUrl, storage: new FileStorage(dir), fetch: net.fetch }),
    );
    const results = await Promise.all(
      clients.map((client) => client.api.POST('/sync/pull', { body: { client_id: 'tabs' } })),
    );
    expect(results.map((r) => r.response.status)).toEqual([200, 200, 200]);
    expect(net.count('/auth/refresh')).toBe(1);
    // The session is still alive: its current refresh token works.
    const stored = await new FileStorage(dir).get<{ refreshToken: string }>('auth:tokens');
    const again = await call(target, 'POST', '/auth/refresh', {
      body: { refreshToken: stored!.refreshToken },
    });
    expect(again.status).toBe(200);
  });

  it('a refresh whose answer was lost is sent again as the same exchange: the session lives on, also after a restart', async () => {
    const net = instrumentedFetch();
    const dir = mkdtempSync(path.join(tmpdir(), 'synk-lost-refresh-'));
    const tokens = await login(target, writer.username, writer.password);
    await new FileStorage(dir).set('auth:tokens', tokens);
    // No credentials: a session the server revoked could not be replaced by a new login.
    const first = createClient({ baseUrl: target.baseUrl, storage: new FileStorage(dir), fetch: net.fetch });
    net.loseResponses(1); // the server rotates the token; the answer never arrives
    await expect(first.auth.refresh()).rejects.toThrow(NetworkError);
    // The app is restarted and tries again with what it has stored: the spent refresh token.
    const second = createClient({ baseUrl: target.baseUrl, storage: new FileStorage(dir), fetch: net.fetch });
    const access = await second.auth.refresh();
    expect(access).toEqual(expect.any(String));
    expect(net.count('/auth/refresh')).toBe(2);
    const pulled = await second.api.POST('/sync/pull', { body: { client_id: 'lost-refresh' } });
    expect(pulled.response.status).toBe(200);
    // The next refresh starts a new exchange and works too: nothing was revoked on the way.
    expect(await second.auth.refresh()).toEqual(expect.any(String));
    const stored = await new FileStorage(dir).get<{ refreshToken: string }>('auth:tokens');
    expect(
      (await call(target, 'POST', '/auth/refresh', { body: { refreshToken: stored!.refreshToken } })).status,
    ).toBe(200);
  });

  it('a refresh the server cannot answer fails the push with that answer, not a 401; a revoked session with its 401', async () => {
    const tokens = await login(target, writer.username, writer.password);
    let refreshUnavailable = true;
    const client = createClient({
      baseUrl: target.baseUrl,
      tokens: { ...tokens, token: `${tokens.token}x` }, // rejected: the push needs a refresh
      retry: { retries: 0 },
      fetch: async (request) => {
        if (refreshUnavailable && request.url.endsWith('/auth/refresh'))
          return Response.json(
            { status: 503, title: 'Service Unavailable', code: 'unavailable' },
            { status: 503, headers: { 'content-type': 'application/problem+json', 'retry-after': '7' } },
          );
        return fetch(request);
      },
    });
    await client.records.save(record('refresh-unavailable'));
    // The session may well be fine: the app must not take this for a logout.
    const error = await client.push().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 503, retryAfterMs: 7000 });
    expect((await client.records.pending()).map((r) => r.observation_id)).toEqual(['refresh-unavailable']);
    // The typed client returns that answer, as any other (it throws for none).
    const pulled = await client.api.POST('/sync/pull', { body: { client_id: 'refresh-unavailable' } });
    expect(pulled.response.status).toBe(503);
    expect(pulled.error).toMatchObject({ code: 'unavailable' });
    refreshUnavailable = false;
    expect(await client.push()).toMatchObject({ pushed: 1 });

    // With retries, a refresh the server could not answer is retried as a 503 to the request would be.
    let refreshes = 0;
    const retrying = createClient({
      baseUrl: target.baseUrl,
      tokens: { ...(await login(target, writer.username, writer.password)), token: 'rejected' },
      retry: { retries: 2, baseDelayMs: 5 },
      fetch: async (request) => {
        if (request.url.endsWith('/auth/refresh') && refreshes++ === 0)
          return new Response(null, { status: 503 });
        return fetch(request);
      },
    });
    await retrying.records.save(record('refresh-retried'));
    expect(await retrying.push()).toMatchObject({ pushed: 1 });
    expect(refreshes).toBe(2);

    // Revoked meanwhile (logged out elsewhere): a 401 saying so, the outbox kept for the next session.
    await client.records.save(record('refresh-revoked'));
    await call(target, 'POST', '/auth/logout', { token: (await client.auth.tokens())!.token, body: {} });
    const revoked = await client.push().catch((err: unknown) => err);
    expect(revoked).toMatchObject({ status: 401, problem: { code: 'token_revoked' } });
    expect((await client.records.pending()).map((r) => r.observation_id)).toEqual(['refresh-revoked']);
  });

  it('retries through a flaky network without pushing anything twice', async () => {
    const net = instrumentedFetch();
    const client = createClient({
      baseUrl: target.baseUrl,
      credentials: writer,
      fetch: net.fetch,
      retry: { baseDelayMs: 5 },
    });
    await client.auth.login();
    await client.records.save(record('flaky-1'));
    await client.records.save(record('flaky-2'));
    net.failNext(3);
    const report = await client.push();
    expect(report.pushed).toBe(2);
    expect(net.count('/sync/push')).toBe(4);
    // A lost response: the server committed, the client never heard; the retry is replayed, not re-applied.
    const before = (await client.api.POST('/sync/pull', { body: { client_id: 'x' } })).data!.current_version;
    await client.records.save(record('flaky-3'));
    net.loseResponses(1);
    expect((await client.push()).pushed).toBe(1);
    const after = (await client.api.POST('/sync/pull', { body: { client_id: 'x' } })).data!.current_version;
    expect(after).toBe(before + 1);
    expect(await client.records.pending()).toEqual([]);
  });

  it('survives a restart mid-push from its file storage: the batch is re-sent with the same id, once', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'synk-sdk-'));
    const net = instrumentedFetch();
    const first = createClient({
      baseUrl: target.baseUrl,
      credentials: writer,
      storage: new FileStorage(dir),
      fetch: net.fetch,
      retry: { retries: 0 },
    });
    await first.auth.login();
    for (let i = 0; i < 5; i++) await first.records.save(record(`restart-${i}`, { n: i }));
    const before = (await first.api.POST('/sync/pull', { body: { client_id: 'x' } })).data!.current_version;
    net.loseResponses(1); // the process "dies" right after sending
    await expect(first.push()).rejects.toBeInstanceOf(NetworkError);

    const second = createClient({
      baseUrl: target.baseUrl,
      credentials: writer,
      storage: new FileStorage(dir),
    });
    expect((await second.records.pending()).map((r) => r.observation_id)).toEqual([
      'restart-0',
      'restart-1',
      'restart-2',
      'restart-3',
      'restart-4',
    ]);
    const report = await second.sync();
    expect(report.pushed).toBe(5);
    expect(await second.records.pending()).toEqual([]);
    const pulled = await second.pullAll({ since: before });
    expect(
      pulled
        .filter((r) => r.observation_id.startsWith('restart-'))
        .map((r) => r.observation_id)
        .sort(),
    ).toEqual(['restart-0', 'restart-1', 'restart-2', 'restart-3', 'restart-4']);
    const after = (await second.api.POST('/sync/pull', { body: { client_id: 'x' } })).data!.current_version;
    expect(after).toBe(before + 5);
  });

  it('re-sends a batch after a restart as the client that first sent it, even when its client id was not kept', async () => {
    // The sync state is kept (the app's database) but the session storage is memory, so the next
    // process gets another client id; a transmission is (client_id, transmission_id).
    const state = new MemoryStorage();
    const net = instrumentedFetch();
    const first = createClient({
      baseUrl: target.baseUrl,
      credentials: writer,
      stateStorage: state,
      fetch: net.fetch,
      retry: { retries: 0 },
    });
    await first.auth.login();
    const id = `resent-${Date.now()}`;
    await first.records.save(record(id, { by: 'this device' }));
    net.loseResponses(1); // the server commits, the process dies before hearing it
    await expect(first.push()).rejects.toBeInstanceOf(NetworkError);

    // Meanwhile another device changes the record.
    const other = (await login(target, writer.username, writer.password)).token;
    const changed = await call(target, 'POST', '/sync/push', {
      token: other,
      body: {
        transmission_id: crypto.randomUUID(),
        client_id: 'other-device',
        records: [record(id, { by: 'other' })],
      },
    });
    expect(changed.body.failed_records).toEqual([]);

    const second = createClient({ baseUrl: target.baseUrl, credentials: writer, stateStorage: state });
    expect(await second.push()).toMatchObject({ pushed: 1, failed: 0, conflicts: [] });
    // The re-sent batch was answered as the replay it is, not applied again over the newer change.
    const [kept] = (await second.pullAll({ since: changed.body.current_version - 1 })).filter(
      (r) => r.observation_id === id,
    );
    expect(kept).toMatchObject({ data: { by: 'other' }, origin_client_id: 'other-device' });
  });

  it('sync() pushes before it pulls: a record edited again between syncs keeps its newer copy, and the next edit is based on the version it got', async () => {
    const client = createClient({ baseUrl: target.baseUrl, credentials: writer });
    /** The app's database: each record's data and the version it last pulled. */
    const local = new Map<string, { data: unknown; version?: number }>();
    const handlers = {
      apply: (records: Observation[]) => {
        for (const r of records) local.set(r.observation_id, { data: r.data, version: r.version });
      },
      removeMissing: () => {},
    };
    const id = `edited-${Date.now()}`;
    /** An edit in the app: its database, and the outbox with the version it was based on. */
    const edit = async (n: number) => {
      const base = local.get(id)?.version;
      local.set(id, { data: { n }, ...(base !== undefined ? { version: base } : {}) });
      await client.records.save({
        observation_id: id,
        form_type: 'visit',
        data: { n },
        ...(base !== undefined ? { base_version: base } : {}),
      });
    };
    const conflicts: unknown[] = [];
    for (const n of [1, 2, 3]) {
      await edit(n);
      const report = await client.sync({ ...handlers, onConflict: (c) => conflicts.push(c) });
      expect(report).toMatchObject({ pushed: 1, failed: 0, conflicts: [] });
      // Not the copy of the sync before, written over the edit made since.
      expect(local.get(id)).toEqual({ data: { n }, version: expect.any(Number) });
    }
    // Each edit was based on the version of the one before: no conflict with the device's own changes.
    expect(conflicts).toEqual([]);
  });

  it('pullPages moves the stored cursor only after a page is applied', async () => {
    const client = createClient({ baseUrl: target.baseUrl, credentials: writer });
    await client.auth.login();
    for (let i = 0; i < 6; i++) await client.records.save(record(`page-${i}`));
    await client.push();
    const seen: string[] = [];
    for await (const page of client.pullPages({ limit: 2, schemaTypes: ['sdk'] })) {
      seen.push(...page.records.map((r) => r.observation_id));
      break; // "crash" while applying the first page
    }
    const again = await client.pullAll({ schemaTypes: ['sdk'], limit: 2 });
    expect(again.slice(0, seen.length).map((r) => r.observation_id)).toEqual(seen);
    expect(await client.pullAll({ schemaTypes: ['sdk'] })).toEqual([]);
  });

  it('conflictPages pages through the conflict log from `after`, each entry once, in id order', async () => {
    const device = createClient({ baseUrl: target.baseUrl, credentials: writer });
    const ids = ['conflict-page-0', 'conflict-page-1', 'conflict-page-2'];
    for (const id of ids) await device.records.save(record(id));
    await device.push();
    // The same records again from a device that never saw them: each push is a logged conflict.
    for (const id of ids) await device.records.save({ ...record(id, { again: true }), base_version: 0 });
    expect((await device.push()).conflicts).toHaveLength(ids.length);

    const admin = createClient({ baseUrl: target.baseUrl, credentials: target.admin });
    const entries = [];
    const sizes = [];
    for await (const page of admin.conflictPages({ limit: 2 })) {
      entries.push(...page.conflicts);
      sizes.push(page.conflicts.length);
    }
    expect(sizes.slice(0, -1).every((size) => size === 2)).toBe(true);
    const entryIds = entries.map((c) => c.id);
    expect(entryIds).toEqual([...new Set(entryIds)].sort((a, b) => a - b));
    const ours = entries.filter((c) => ids.includes(c.observation_id));
    expect(ours.map((c) => c.observation_id)).toEqual(ids);
    expect(ours[0]).toMatchObject({ base_version: 0, incoming: { data: { again: true } } });

    // From `after` on: what follows that entry, and nothing before it.
    const after = ours[0]!.id;
    const rest = [];
    for await (const page of admin.conflictPages({ after, limit: 2 })) rest.push(...page.conflicts);
    expect(rest.map((c) => c.id)).toEqual(entryIds.filter((id) => id > after));
    // Another role is refused with the server's problem, not handed an empty log.
    await expect(device.conflictPages().next()).rejects.toMatchObject({ status: 403 });
  });

  it('a pull from an explicit `since` is a one-off read: the stored cursor does not move', async () => {
    const storage = new MemoryStorage();
    const client = createClient({ baseUrl: target.baseUrl, credentials: writer, storage });
    await client.auth.login();
    const ids = ['one-off-0', 'one-off-1', 'one-off-2'];
    for (const id of ids) await client.records.save({ ...record(id), form_type: 'one-off' });
    await client.push();
    const schemaTypes = ['one-off'];
    expect((await client.pullAll({ since: 0, schemaTypes, limit: 1 })).map((r) => r.observation_id)).toEqual(
      ids,
    );
    let pages = 0;
    for await (const _ of client.pullPages({ since: 0, schemaTypes, limit: 1 })) pages += 1;
    expect(pages).toBe(ids.length);
    expect(await storage.get('cursor:one-off')).toBeUndefined();
    // The syncing loop still gets every record, then stores its cursor.
    const applied: string[] = [];
    await client.sync({
      schemaTypes,
      apply: (records) => void applied.push(...records.map((r) => r.observation_id)),
      removeMissing: (keep) => void applied.splice(0, Infinity, ...applied.filter((id) => keep.has(id))),
    });
    expect(applied).toEqual(ids);
    expect(await storage.get('cursor:one-off')).toEqual(expect.any(Number));
  });

  it('a sync given an already aborted AbortSignal keeps the outbox and the cursor, and the next sync completes', async () => {
    const client = createClient({ baseUrl: target.baseUrl, credentials: writer });
    await client.auth.login();
    await client.records.save(record('cancelled-1'));
    const failed: unknown[] = [];
    client.on('sync:failed', ({ error }) => failed.push(error));
    const controller = new AbortController();
    controller.abort();
    await expect(client.sync({ signal: controller.signal, schemaTypes: ['nothing-here'] })).rejects.toThrow(
      /abort/i,
    );
    expect(failed).toHaveLength(1);
    expect((await client.records.pending()).map((r) => r.observation_id)).toEqual(['cancelled-1']);
    const report = await client.sync({ schemaTypes: ['nothing-here'] });
    expect(report).toMatchObject({ pushed: 1, failed: 0 });
  });

  it('round-trips data keys written with escapes through its storage, the server and a pull (nodejs/node#63785)', async () => {
    const storage = new FileStorage(mkdtempSync(path.join(tmpdir(), 'synk-sdk-keys-')));
    const client = createClient({ baseUrl: target.baseUrl, credentials: writer, storage });
    await client.auth.login();
    // `!` sorts before the escaped keys, so the trigger's shape survives the server's key order.
    const sent = [
      { '!': [], '\\': 0 },
      { '!': 1, '"': 2 },
    ];
    for (const [i, data] of sent.entries()) {
      await client.records.save({ observation_id: `sdk-escaped-${i}`, form_type: 'sdk-escaped', data });
      expect((await client.records.pending()).at(-1)?.data).toEqual(data); // read back from the file
      expect(await client.push()).toMatchObject({ pushed: 1, failed: 0 });
    }
    // One record per page: each page is a separate parse, as the trigger needs.
    const pulled = await client.pullAll({ schemaTypes: ['sdk-escaped'], since: 0, limit: 1 });
    expect(pulled.map((r) => r.data)).toEqual(sent);
  });

  it('dead-letters records the server refuses, reports conflicts, and emits events', async () => {
    const client = createClient({ baseUrl: target.baseUrl, credentials: writer });
    await client.auth.login();
    const events: string[] = [];
    client.on('sync:started', () => events.push('started'));
    client.on('sync:completed', () => events.push('completed'));
    await client.records.save(record('conflicting'));
    await client.push();
    await client.records.save({ ...record('conflicting', { v: 2 }), base_version: 1 });
    await client.records.save({ observation_id: 'broken', form_type: '', data: {} } as never);
    const conflicts: string[] = [];
    const report = await client.sync({ onConflict: (c) => conflicts.push(c.id) });
    expect(report.failed).toBe(1);
    expect(conflicts).toEqual(['conflicting']);
    expect(await client.records.deadLetters()).toMatchObject([
      { record: { observation_id: 'broken' }, code: 'invalid_record', errors: [{ path: '/form_type' }] },
    ]);
    expect(events).toEqual(['started', 'completed']);
  });

  it('a batch refused whole sets its records aside with the problem in their message, not as field errors of each record', async () => {
    // The server's contract allows client ids of up to 255 characters: every push is refused (400).
    const client = createClient({ baseUrl: target.baseUrl, credentials: writer, clientId: 'c'.repeat(256) });
    await client.auth.login();
    await client.records.saveMany([record('envelope-1'), record('envelope-2')]);
    const report = await client.push();
    expect(report).toMatchObject({ pushed: 0, failed: 2 });
    expect(report.refused).toEqual([
      {
        transmissionId: expect.any(String),
        status: 400,
        code: 'validation_failed',
        detail: expect.stringContaining('/body/client_id: '),
        ids: ['envelope-1', 'envelope-2'],
      },
    ]);
    const dead = await client.records.deadLetters();
    expect(dead.map((d) => d.record.observation_id)).toEqual(['envelope-1', 'envelope-2']);
    for (const letter of dead) {
      expect(letter).toMatchObject({
        code: 'validation_failed',
        error: expect.stringContaining('/body/client_id: '),
      });
      expect(letter.errors).toBeUndefined();
    }
  });

  it('a read-only user cannot push: the batch is dead-lettered, not retried forever', async () => {
    const reader = await userWithRole(target, 'read-only');
    const client = createClient({ baseUrl: target.baseUrl, credentials: reader });
    await client.auth.login();
    await client.records.save(record('not-allowed'));
    const report = await client.push();
    expect(report.failed).toBe(1);
    // Said as such: the batch was refused whole, for the user's role, not the record.
    expect(report.refused).toEqual([
      {
        transmissionId: expect.any(String),
        status: 403,
        code: 'forbidden',
        detail: expect.any(String),
        ids: ['not-allowed'],
      },
    ]);
    expect((await client.records.deadLetters())[0]).toMatchObject({
      code: 'forbidden',
      transmissionId: report.refused[0]!.transmissionId,
    });
    expect((await call(target, 'GET', '/health')).status).toBe(200);
  });

  it('dead letters are queued again once the server would take them, or cleared', async () => {
    const user = await userWithRole(target, 'read-only');
    const client = createClient({ baseUrl: target.baseUrl, credentials: user });
    await client.auth.login();
    await client.records.save(record('retried-later'));
    await client.records.save(record('given-up'));
    expect(await client.push()).toMatchObject({ pushed: 0, failed: 2 });
    expect(await client.records.clearDeadLetters(['given-up'])).toBe(1);
    const promoted = await call(target, 'PATCH', `/users/${user.username}`, {
      token: await adminToken(target),
      body: { role: 'read-write' },
    });
    expect(promoted.status).toBe(200);
    expect(await client.records.retryDeadLetters()).toBe(1);
    expect(await client.push()).toMatchObject({ pushed: 1, failed: 0 });
    expect(await client.records.deadLetters()).toEqual([]);
    const pulled = await client.pullAll({ since: 0, schemaTypes: ['sdk'] });
    expect(pulled.some((r) => r.observation_id === 'retried-later')).toBe(true);
    expect(pulled.some((r) => r.observation_id === 'given-up')).toBe(false);
  });

  it('a dead letter is never queued again over a newer copy of its record that the server took', async () => {
    const user = await userWithRole(target, 'read-only');
    const client = createClient({ baseUrl: target.baseUrl, credentials: user });
    await client.auth.login();
    await client.records.save(record('superseded', { v: 1 }));
    expect(await client.push()).toMatchObject({ pushed: 0, failed: 1 });
    const promoted = await call(target, 'PATCH', `/users/${user.username}`, {
      token: await adminToken(target),
      body: { role: 'read-write' },
    });
    expect(promoted.status).toBe(200);
    await client.records.save(record('superseded', { v: 2 }));
    expect(await client.push()).toMatchObject({ pushed: 1, failed: 0 });
    expect(await client.records.deadLetters()).toEqual([]);
    expect(await client.records.retryDeadLetters()).toBe(0);
    expect(await client.push()).toMatchObject({ pushed: 0 });
    const pulled = await client.pullAll({ since: 0, schemaTypes: ['sdk'] });
    expect(pulled.find((r) => r.observation_id === 'superseded')?.data).toMatchObject({ v: 2 });
  });

  it('a retry of the dead letters while a push records its answer queues the refused record again, never loses it', async () => {
    const reader = await userWithRole(target, 'read-only');
    let retried: Promise<number> | undefined;
    /** The user taps "retry" just as the push starts setting the refused record aside. */
    class TappedStorage extends MemoryStorage {
      override async set(key: string, value: unknown): Promise<void> {
        if (key === 'outbox:dead') retried ??= client.records.retryDeadLetters();
        await super.set(key, value);
      }
    }
    const client = createClient({
      baseUrl: target.baseUrl,
      credentials: reader,
      storage: new TappedStorage(),
    });
    await client.auth.login();
    await client.records.save(record('retried-mid-push'));
    // Queued again, the record is sent again by the same push, and refused again.
    expect(await client.push()).toMatchObject({ pushed: 0, failed: 2 });
    expect(await retried).toBe(1);
    expect(await client.records.pending()).toEqual([]);
    expect((await client.records.deadLetters()).map((d) => [d.record.observation_id, d.code])).toEqual([
      ['retried-mid-push', 'forbidden'],
    ]);
  });

  it('keeps the outbox and the pull cursors in stateStorage, apart from the session and client id', async () => {
    const session = new ListedStorage();
    const state = new ListedStorage();
    const client = createClient({
      baseUrl: target.baseUrl,
      credentials: writer,
      storage: session,
      stateStorage: state,
    });
    await client.auth.login();
    await client.records.save(record('kept-apart'));
    await client.records.save({ observation_id: 'refused-apart', form_type: '', data: {} } as never);
    expect(await client.sync({ schemaTypes: ['sdk'] })).toMatchObject({ pushed: 1, failed: 1 });
    expect([...session.keys].sort()).toEqual(['auth:tokens', 'client:id']);
    // (A finished batch leaves `outbox:inflight` written as null: a delete is not durable in file storage.)
    expect([...state.keys].sort()).toEqual(['cursor:sdk', 'outbox:dead', 'outbox:ids', 'outbox:inflight']);

    // The same session with a state of its own: signed in, but nothing queued or set aside, and
    // its cursor at the start.
    const other = createClient({
      baseUrl: target.baseUrl,
      storage: session,
      stateStorage: new MemoryStorage(),
    });
    expect(await other.records.deadLetters()).toEqual([]);
    const pulled = await other.sync({ schemaTypes: ['sdk'] });
    expect(pulled.pulled).toBeGreaterThanOrEqual(1);
  });

  it('an app given a stateStorage later takes over, when asked, the outbox and the pull cursors it kept in storage', async () => {
    const session = new ListedStorage();
    const net = instrumentedFetch();
    const before = createClient({
      baseUrl: target.baseUrl,
      credentials: writer,
      storage: session,
      fetch: net.fetch,
      retry: { retries: 0 },
    });
    await before.auth.login();
    const schemaTypes = ['moved'];
    const moved = (id: string) => ({ ...record(id), form_type: 'moved' });
    await before.records.save(moved('moved-pulled'));
    await before.push();
    expect((await before.pullAll({ schemaTypes })).map((r) => r.observation_id)).toEqual(['moved-pulled']);
    await before.records.save({ observation_id: 'moved-refused', form_type: '', data: {} } as never);
    expect(await before.push()).toMatchObject({ failed: 1 });
    await before.records.save(moved('moved-in-flight'));
    net.loseResponses(1); // committed by the server, never heard of: the batch stays in flight
    await expect(before.push()).rejects.toBeInstanceOf(NetworkError);
    await before.records.save(moved('moved-queued'));
    const version = (await before.api.POST('/sync/pull', { body: { client_id: 'x' } })).data!.current_version;

    // A one-off process borrowing the app's session with a state of its own leaves the app's alone.
    const borrower = createClient({
      baseUrl: target.baseUrl,
      storage: session,
      stateStorage: new MemoryStorage(),
    });
    expect(await borrower.records.pending()).toEqual([]);
    expect(await borrower.records.deadLetters()).toEqual([]);
    expect(await borrower.pullAll({ schemaTypes })).toHaveLength(2); // from the start: not the app's cursor
    expect((await before.records.pending()).map((r) => r.observation_id)).toEqual([
      'moved-in-flight',
      'moved-queued',
    ]);

    const after = createClient({
      baseUrl: target.baseUrl,
      storage: session,
      stateStorage: new MemoryStorage(),
      takeOverState: true,
    });
    expect((await after.records.pending()).map((r) => r.observation_id)).toEqual([
      'moved-in-flight',
      'moved-queued',
    ]);
    expect((await after.records.deadLetters()).map((d) => d.record.observation_id)).toEqual([
      'moved-refused',
    ]);
    const applied: string[] = [];
    const report = await after.sync({
      schemaTypes,
      apply: (records) => void applied.push(...records.map((r) => r.observation_id)),
      removeMissing: (keep) => void applied.splice(0, Infinity, ...applied.filter((id) => keep.has(id))),
    });
    // The stored cursor: only what was committed since the last pull (the queued record is pushed
    // first, so it comes back in the same sync).
    expect(applied).toEqual(['moved-in-flight', 'moved-queued']);
    // The batch in flight re-sent with its transmission id (replayed), the queued record committed.
    expect(report).toMatchObject({ pushed: 2, failed: 0 });
    const now = (await after.api.POST('/sync/pull', { body: { client_id: 'x' } })).data!.current_version;
    expect(now).toBe(version + 1);
    expect([...session.keys].sort()).toEqual(['auth:tokens', 'client:id']);
  });

  it('a crash after recording dead letters but before finishing the batch does not record them twice', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'synk-sdk-dead-'));
    /** File storage in a process that dies just before the answered batch leaves flight. */
    class DyingStorage extends FileStorage {
      override async set(key: string, value: unknown): Promise<void> {
        if (key === 'outbox:inflight' && value === null) throw new Error('the process died');
        await super.set(key, value);
      }
    }
    const first = createClient({
      baseUrl: target.baseUrl,
      credentials: writer,
      storage: new DyingStorage(dir),
    });
    await first.auth.login();
    await first.records.save(record('crash-kept'));
    await first.records.save({ observation_id: 'crash-refused', form_type: '', data: {} } as never);
    await expect(first.push()).rejects.toThrow('the process died');
    expect((await first.records.deadLetters()).map((d) => d.record.observation_id)).toEqual([
      'crash-refused',
    ]);

    // After the restart the batch is re-sent with its transmission id and the server replays its answer.
    const second = createClient({
      baseUrl: target.baseUrl,
      credentials: writer,
      storage: new FileStorage(dir),
    });
    expect(await second.push()).toMatchObject({ pushed: 1, failed: 1 });
    expect(await second.records.pending()).toEqual([]);
    expect((await second.records.deadLetters()).map((d) => [d.record.observation_id, d.code])).toEqual([
      ['crash-refused', 'invalid_record'],
    ]);
  });
});

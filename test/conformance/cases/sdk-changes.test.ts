import { ApiError, createClient } from '@synk/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTarget, useTarget } from '../src/harness.ts';
import { login, userWithRole } from '../src/http.ts';
import { startRecordingProxy } from '../src/recording-proxy.ts';
import { push, record } from '../src/sync.ts';

/**
 * `client.changes()`, the SDK's reading of GET /sync/events: what an app's sync loop sees,
 * including reconnecting after a dropped stream and refreshing an expired token on the way.
 */
const FAST = { SYNC_EVENTS_HEARTBEAT_MS: '200', SYNC_EVENTS_POLL_MS: '100' };
const RECONNECT = { baseDelayMs: 20, maxDelayMs: 200 };
const target = useTarget(FAST);

let writer: { username: string; password: string; token: string; refreshToken: string; expiresAt: number };
beforeAll(async () => {
  writer = await userWithRole(target, 'read-write');
});

/** Pulls versions from `changes` into `seen` until one reaches `version`. */
async function until(changes: AsyncIterator<{ current_version: number }>, version: number, seen: number[]) {
  for (;;) {
    const next = await changes.next();
    if (next.done) throw new Error(`the changes ended before version ${version} (saw ${seen.join(', ')})`);
    seen.push(next.value.current_version);
    if (next.value.current_version >= version) return;
  }
}

describe('client.changes()', () => {
  it('yields the current version, then each version pushes reach; an abort ends the loop without an error', async () => {
    const client = createClient({ baseUrl: target.baseUrl, tokens: writer });
    const stop = new AbortController();
    const changes = client.changes({ signal: stop.signal, reconnect: RECONNECT })[Symbol.asyncIterator]();
    const first = await changes.next();
    expect(first.value).toEqual({ current_version: expect.any(Number) });
    const pushed = await push(target, writer.token, [record(), record(), record()]);
    const seen: number[] = [];
    await until(changes, pushed.body.current_version, seen);
    expect(seen).toEqual([pushed.body.current_version]);
    const ended = changes.next();
    stop.abort();
    expect(await ended).toEqual({ done: true, value: undefined });
  });

  it('yields nothing at or below `since`', async () => {
    const client = createClient({ baseUrl: target.baseUrl, tokens: writer });
    const before = await push(target, writer.token, [record()]);
    const changes = client
      .changes({ since: before.body.current_version, reconnect: RECONNECT })
      [Symbol.asyncIterator]();
    const pushed = await push(target, writer.token, [record()]);
    expect((await changes.next()).value).toEqual({ current_version: pushed.body.current_version });
    await changes.return?.(undefined);
  });

  it('reconnects after the stream is dropped, sending Last-Event-ID, and goes on yielding', async () => {
    let streams = 0;
    const proxy = await startRecordingProxy(target.baseUrl, {
      // The first stream is cut after its first bytes (the first event), as a network drop would.
      intercept: (r) => (r.url === '/sync/events' && streams++ === 0 ? 'cut' : undefined),
    });
    try {
      const client = createClient({ baseUrl: proxy.url, tokens: writer });
      const changes = client.changes({ reconnect: RECONNECT })[Symbol.asyncIterator]();
      const first = (await changes.next()).value!.current_version;
      const pushed = await push(target, writer.token, [record()]);
      const seen: number[] = [];
      await until(changes, pushed.body.current_version, seen);
      expect(seen).toEqual([pushed.body.current_version]); // the first version is not yielded again
      const opened = proxy.requests.filter((r) => r.url === '/sync/events');
      expect(opened.length).toBeGreaterThanOrEqual(2);
      expect(opened[0]!.headers['last-event-id']).toBeUndefined();
      expect(opened[1]!.headers['last-event-id']).toBe(String(first));
      await changes.return?.(undefined);
    } finally {
      await proxy.close();
    }
  });

  it('throws an ApiError 401 when there is no session to refresh', async () => {
    const client = createClient({ baseUrl: target.baseUrl });
    const changes = client.changes({ reconnect: RECONNECT })[Symbol.asyncIterator]();
    const error = await changes.next().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 401 });
  });
});

describe('client.changes() with short-lived tokens', () => {
  let shortLived: Awaited<ReturnType<typeof startTarget>>;
  beforeAll(async () => {
    shortLived = await startTarget({ ...FAST, ACCESS_TOKEN_TTL: '2' });
  });
  afterAll(async () => {
    await shortLived?.close();
  });

  it('refreshes the token once the server ends the stream at its expiry, and goes on yielding', async () => {
    const { username, password } = shortLived.admin;
    const tokens = await login(shortLived, username, password);
    const client = createClient({ baseUrl: shortLived.baseUrl, tokens });
    const changes = client.changes({ reconnect: RECONNECT })[Symbol.asyncIterator]();
    await changes.next();
    // The next change is asked for at once, so that the stream is read (and reconnected) meanwhile.
    const nextChange = changes.next();
    // Wait for the stream to outlive the token: the client then holds a refreshed one.
    for (let i = 0; i < 200 && (await client.auth.tokens())?.token === tokens.token; i++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await client.auth.tokens())?.token).not.toBe(tokens.token);
    const pushed = await push(shortLived, (await login(shortLived, username, password)).token, [record()]);
    expect((await nextChange).value).toEqual({ current_version: pushed.body.current_version });
    await changes.return?.(undefined);
  });

  it('goes on after a refresh the server could not answer (a 503), reconnecting as after a dropped stream', async () => {
    const { username, password } = shortLived.admin;
    const tokens = await login(shortLived, username, password);
    let refreshes = 0;
    const client = createClient({
      baseUrl: shortLived.baseUrl,
      tokens,
      fetch: async (request) => {
        // The first refresh, when the token expires, finds the server restarting.
        if (request.url.endsWith('/auth/refresh') && refreshes++ === 0)
          return new Response(null, { status: 503 });
        return fetch(request);
      },
    });
    const changes = client.changes({ reconnect: RECONNECT })[Symbol.asyncIterator]();
    await changes.next();
    const nextChange = changes.next();
    for (let i = 0; i < 200 && (await client.auth.tokens())?.token === tokens.token; i++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect(refreshes).toBe(2);
    const pushed = await push(shortLived, (await login(shortLived, username, password)).token, [record()]);
    expect((await nextChange).value).toEqual({ current_version: pushed.body.current_version });
    await changes.return?.(undefined);
  });
});

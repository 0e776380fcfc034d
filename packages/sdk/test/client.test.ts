import { loopbackServer } from '@synk/test-support/hooks';
import { describe, expect, it, vi } from 'vitest';
import { createClient } from '../src/client.ts';
import { ApiError } from '../src/errors.ts';

const session = { token: 'access', refreshToken: 'refresh', expiresAt: 4_000_000_000 };

describe('auth.logout reports whether the server ended the session', () => {
  /** The status each logout is answered with, in turn; what each logout sent. */
  const statuses: number[] = [];
  const received: unknown[] = [];
  const server = loopbackServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    if (req.url === '/auth/refresh') {
      // The session is unknown here too (a 401 to the logout is first answered by a refresh).
      res.writeHead(401, { 'content-type': 'application/problem+json' }).end('{"status":401}');
      return;
    }
    received.push({ url: req.url, body: JSON.parse(body || 'null') });
    const status = statuses.shift() ?? 200;
    if (status === 502)
      res.writeHead(502, { 'content-type': 'text/html' }).end('<html><body>502 Bad Gateway</body></html>');
    else
      res
        .writeHead(status, { 'content-type': 'application/json' })
        .end(JSON.stringify(status === 200 ? { message: 'Logged out successfully' } : { status }));
  });
  const client = () => createClient({ baseUrl: server.base, tokens: session, retry: { retries: 0 } });

  it.each([
    [200, true],
    [401, true],
    [502, false],
    [500, false],
    [403, false],
  ])('answered %i: confirmed %s, and the session is deleted here either way', async (status, confirmed) => {
    statuses.push(status);
    received.length = 0;
    const c = client();
    expect(await c.auth.logout()).toEqual({ confirmed, status });
    expect(received).toEqual([{ url: '/auth/logout', body: { refreshToken: 'refresh' } }]);
    expect(await c.auth.tokens()).toBeUndefined();
  });

  it('without a session sends nothing and has nothing left to end', async () => {
    received.length = 0;
    expect(await createClient({ baseUrl: server.base }).auth.logout()).toEqual({ confirmed: true });
    expect(received).toEqual([]);
  });
});

describe('auth.logout with a rejected access token whose refresh the server cannot answer', () => {
  const server = loopbackServer(async (req, res) => {
    for await (const _ of req);
    const status = req.url === '/auth/refresh' ? 503 : 401;
    res.writeHead(status, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ status }));
  });

  it('is not confirmed (the session may live on: its refresh token was never spent), and deleted here', async () => {
    const client = createClient({ baseUrl: server.base, tokens: session, retry: { retries: 0 } });
    expect(await client.auth.logout()).toEqual({ confirmed: false, status: 503 });
    expect(await client.auth.tokens()).toBeUndefined();
  });
});

describe('auth.logout during a refresh', () => {
  /** Refreshes are answered only when released, so a logout can start while one is on the wire. */
  let releaseRefresh: (() => void) | undefined;
  const logouts: unknown[] = [];
  const server = loopbackServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    if (req.url === '/auth/refresh') {
      await new Promise<void>((resolve) => {
        releaseRefresh = resolve;
      });
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ token: 'access-2', refreshToken: 'refresh-2', expiresAt: 4_000_000_000 }));
      return;
    }
    logouts.push(JSON.parse(body));
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"message":"Logged out successfully"}');
  });

  it('waits for it, ends the rotated session and leaves no session behind', async () => {
    const c = createClient({ baseUrl: server.base, tokens: session, retry: { retries: 0 } });
    const refreshed = c.auth.refresh();
    await vi.waitUntil(() => releaseRefresh !== undefined, { timeout: 5000 });
    const loggedOut = c.auth.logout();
    // Let the logout go as far as it would on its own before the refresh is answered.
    await new Promise((resolve) => setTimeout(resolve, 50));
    releaseRefresh?.();
    await refreshed;
    expect(await loggedOut).toEqual({ confirmed: true, status: 200 });
    // The token the refresh just received is the live one: ending the spent one would leave it live.
    expect(logouts).toEqual([{ refreshToken: 'refresh-2' }]);
    expect(await c.auth.tokens()).toBeUndefined();
  });
});

describe('auth.login during a refresh', () => {
  /** Refreshes are answered only when released, so a login can be answered while one is on the wire. */
  let releaseRefresh: (() => void) | undefined;
  const server = loopbackServer(async (req, res) => {
    for await (const _ of req);
    const json = (value: unknown) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    if (req.url === '/auth/refresh') {
      await new Promise<void>((resolve) => {
        releaseRefresh = resolve;
      });
      json({ token: 'user-1-access-2', refreshToken: 'user-1-refresh-2', expiresAt: 4_000_000_000 });
    } else json({ token: 'user-2-access', refreshToken: 'user-2-refresh', expiresAt: 4_000_000_000 });
  });

  it('keeps the session it logged in to, not the one the refresh brings afterwards', async () => {
    // A shared device: user 1's session is refreshed by a background sync while user 2 logs in.
    const c = createClient({ baseUrl: server.base, tokens: session, retry: { retries: 0 } });
    const refreshed = c.auth.refresh();
    await vi.waitUntil(() => releaseRefresh !== undefined, { timeout: 5000 });
    const loggedIn = c.auth.login('user-2', 'secret');
    // Let the login go as far as it would on its own before the refresh is answered.
    await new Promise((resolve) => setTimeout(resolve, 50));
    releaseRefresh?.();
    await refreshed;
    expect((await loggedIn).token).toBe('user-2-access');
    // Every later request would otherwise be sent as user 1.
    expect((await c.auth.tokens())?.token).toBe('user-2-access');
  });
});

describe('push reports every warning of the server', () => {
  /** Each push is answered with a warning of each kind about its first record. */
  const server = loopbackServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const { records } = JSON.parse(body) as { records: { observation_id: string }[] };
    const id = records[0]!.observation_id;
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        current_version: 9,
        success_count: records.length,
        failed_records: [],
        warnings: [
          {
            id,
            code: 'SCHEMA_VALIDATION',
            message: 'does not match the schema',
            errors: [{ path: '/data/n', message: 'must be >= 0' }],
          },
          { id, code: 'UNKNOWN_FORM_TYPE', message: 'no such form' },
          { id, code: 'CONFLICT', message: 'replaced a newer copy', server_version: 4 },
        ],
        server_time: new Date().toISOString(),
      }),
    );
  });

  it('in `warnings`, across batches, keeping `conflicts` and onConflict as they were', async () => {
    const client = createClient({ baseUrl: server.base, tokens: session, batchSize: 2 });
    await client.records.saveMany(
      ['a', 'b', 'c'].map((id) => ({ observation_id: id, form_type: 'f', data: { n: -1 } })),
    );
    const seen: string[] = [];
    const result = await client.push({ onConflict: (c) => seen.push(c.id) });
    expect(result.pushed).toBe(3);
    expect(result.warnings.map((w) => `${w.id} ${w.code}`)).toEqual([
      'a SCHEMA_VALIDATION',
      'a UNKNOWN_FORM_TYPE',
      'a CONFLICT',
      'c SCHEMA_VALIDATION',
      'c UNKNOWN_FORM_TYPE',
      'c CONFLICT',
    ]);
    expect(result.warnings[0]).toEqual({
      id: 'a',
      code: 'SCHEMA_VALIDATION',
      message: 'does not match the schema',
      errors: [{ path: '/data/n', message: 'must be >= 0' }],
    });
    expect(result.conflicts).toEqual([
      { id: 'a', message: 'replaced a newer copy', serverVersion: 4 },
      { id: 'c', message: 'replaced a newer copy', serverVersion: 4 },
    ]);
    expect(seen).toEqual(['a', 'c']);
  });
});

describe('an answer asking for a longer wait than the client makes on its own', () => {
  const server = loopbackServer((_req, res) => {
    res
      .writeHead(429, { 'content-type': 'application/problem+json', 'retry-after': '120' })
      .end('{"status":429,"code":"too_many_requests","detail":"Slow down"}');
  });

  it('is thrown with the wait the server asked for, so the app can schedule the next sync', async () => {
    const c = createClient({
      baseUrl: server.base,
      tokens: session,
      retry: { retries: 3, baseDelayMs: 1, maxDelayMs: 50 },
    });
    const error = await c.pullAll().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 429, retryAfterMs: 120_000, message: 'Slow down' });
  });
});

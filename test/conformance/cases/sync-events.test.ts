import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { databaseFactory } from '@synk/test-support/postgres';
import { startServerProcess } from '@synk/test-support/server-process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openEvents, versionOf } from '../src/event-stream.ts';
import { startTarget, type Target, useTarget } from '../src/harness.ts';
import { adminToken, call, login, send, userWithRole } from '../src/http.ts';
import { expectProblem } from '../src/problem.ts';
import { pull, push, record } from '../src/sync.ts';

/**
 * GET /sync/events (spec §4.4, the "changes available" poke): a Server-Sent Events stream of the
 * global change counter. Read here as raw bytes (and, with SYNK_TEST_VIA=sdk, through the SDK's
 * typed client); sdk-changes.test.ts reads it through `client.changes()`. Short heartbeats and
 * counter reads keep the cases quick; every wait is for an event, with a generous timeout.
 */
const FAST = { SYNC_EVENTS_HEARTBEAT_MS: '200', SYNC_EVENTS_POLL_MS: '100' };
const target = useTarget(FAST);

let writer: { username: string; password: string; token: string };
let reader: { username: string; token: string };
beforeAll(async () => {
  writer = await userWithRole(target, 'read-write');
  reader = await userWithRole(target, 'read-only');
});

async function currentVersion(token: string): Promise<number> {
  const res = await pull(target, token, { since: { version: 0 } }, '?limit=1');
  return res.body.current_version;
}

describe('GET /sync/events', () => {
  it('answers 401 problem+json without a token or with a bad one', async () => {
    await expectProblem((await openEvents(target, undefined)).response, 401, 'unauthorized');
    await expectProblem((await openEvents(target, 'not-a-token')).response, 401, 'invalid_token');
  });

  it('sends the current version at once, to any role, as an event whose id is the version', async () => {
    await push(target, writer.token, [record()]);
    const before = await currentVersion(reader.token);
    const stream = await openEvents(target, reader.token);
    try {
      expect(stream.response.status).toBe(200);
      expect(stream.response.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(stream.response.headers.get('cache-control')).toMatch(/no-store/);
      const first = await stream.next();
      expect(first).toMatchObject({ event: 'version', id: String(versionOf(first)) });
      expect(JSON.parse(first!.data)).toEqual({ current_version: versionOf(first) });
      expect(versionOf(first)).toBeGreaterThanOrEqual(before);
    } finally {
      await stream.close();
    }
  });

  it('sends the version a push reached, once for the whole push (not once per record)', async () => {
    const stream = await openEvents(target, reader.token);
    try {
      const start = versionOf(await stream.next());
      const pushed = await push(
        target,
        writer.token,
        Array.from({ length: 25 }, () => record()),
      );
      expect(pushed.status).toBe(200);
      const seen = await stream.untilVersion(pushed.body.current_version);
      // Nothing else writes to this server meanwhile: one event, straight to the push's version.
      expect(seen).toEqual([pushed.body.current_version]);
      expect(pushed.body.current_version).toBe(start + 25);
    } finally {
      await stream.close();
    }
  });

  it('sends the versions of attachment uploads and deletes', async () => {
    const stream = await openEvents(target, reader.token);
    try {
      await stream.next();
      const id = `poke-${randomUUID()}.bin`;
      const form = new FormData();
      form.append('file', new Blob([Buffer.from('poke')]), 'poke.bin');
      const uploaded = await send(target, `/attachments/${id}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${writer.token}` },
        body: form,
      });
      expect(uploaded.status).toBe(200);
      const { version } = (await uploaded.json()) as { version: number };
      expect(await stream.untilVersion(version)).toContain(version);
      const deleted = await call(target, 'DELETE', `/attachments/${id}`, { token: await adminToken(target) });
      expect(deleted.status).toBe(200);
      expect(await stream.untilVersion(deleted.body.version)).toContain(deleted.body.version);
    } finally {
      await stream.close();
    }
  });

  it('sends heartbeats, and ends the stream with reason token_revoked once the user’s tokens are revoked', async () => {
    const user = await userWithRole(target, 'read-only');
    const stream = await openEvents(target, user.token);
    await stream.next();
    // A heartbeat comes (and the token is checked) every 200 ms: the stream is still open.
    await push(target, writer.token, [record()]);
    await stream.next();
    const reset = await call(target, 'POST', '/users/reset-password', {
      token: await adminToken(target),
      body: { username: user.username, newPassword: 'another-password-5678' },
    });
    expect(reset.status).toBe(200);
    const rest = await stream.toEnd();
    expect(rest.at(-1)).toMatchObject({ event: 'end', data: JSON.stringify({ reason: 'token_revoked' }) });
    expect(stream.comments).toBeGreaterThan(0);
    await expectProblem((await openEvents(target, user.token)).response, 401, 'token_revoked');
  });

  it('ends the stream with reason token_revoked when its session is logged out', async () => {
    const user = await userWithRole(target, 'read-only');
    const stream = await openEvents(target, user.token);
    await stream.next();
    const out = await call(target, 'POST', '/auth/logout', {
      token: user.token,
      body: { refreshToken: user.refreshToken },
    });
    expect(out.status).toBeLessThan(300);
    const rest = await stream.toEnd();
    expect(rest.at(-1)).toMatchObject({ event: 'end', data: JSON.stringify({ reason: 'token_revoked' }) });
  });
});

describe('GET /sync/events with short-lived tokens', () => {
  let shortLived: Awaited<ReturnType<typeof startTarget>>;
  beforeAll(async () => {
    shortLived = await startTarget({ ...FAST, ACCESS_TOKEN_TTL: '2' });
  });
  afterAll(async () => {
    await shortLived?.close();
  });

  it('ends the stream when its access token expires (reason token_expired)', async () => {
    const { token } = await login(shortLived, shortLived.admin.username, shortLived.admin.password);
    const stream = await openEvents(shortLived, token);
    const events = await stream.toEnd(20_000);
    expect(events[0]!.event).toBe('version');
    expect(events.at(-1)).toMatchObject({ event: 'end', data: JSON.stringify({ reason: 'token_expired' }) });
  });
});

describe('GET /sync/events with few streams allowed', () => {
  let small: Awaited<ReturnType<typeof startTarget>>;
  beforeAll(async () => {
    small = await startTarget({ ...FAST, SYNC_EVENTS_MAX_STREAMS: '2' });
  });
  afterAll(async () => {
    await small?.close();
  });

  it('refuses a stream beyond SYNC_EVENTS_MAX_STREAMS with 503 and Retry-After, and takes one once a stream closes', async () => {
    const { token } = await login(small, small.admin.username, small.admin.password);
    const a = await openEvents(small, token);
    const b = await openEvents(small, token);
    await a.next();
    await b.next();
    const refused = await openEvents(small, token);
    expect(Number(refused.response.headers.get('retry-after'))).toBeGreaterThan(0);
    await expectProblem(refused.response, 503, 'too_many_streams');
    await a.close();
    // The server notices the client has gone (a moment later): a new stream is then taken.
    let admitted: Awaited<ReturnType<typeof openEvents>> | undefined;
    for (let attempt = 0; attempt < 100 && !admitted; attempt++) {
      const next = await openEvents(small, token);
      if (next.response.status === 200) admitted = next;
      else {
        await next.close();
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    expect(admitted).toBeDefined();
    expect((await admitted!.next())?.event).toBe('version');
    await admitted!.close();
    await b.close();
  });
});

describe('GET /sync/events and shutdown', () => {
  it('a graceful shutdown ends every stream (reason shutdown) instead of waiting for them', async () => {
    // A shutdown that waited for open streams would take SHUTDOWN_TIMEOUT_MS: longer than the case may.
    const own = await startTarget({ ...FAST, SHUTDOWN_TIMEOUT_MS: '600000' });
    if (!own.owned) return; // an external server is not ours to stop
    const { token } = await login(own, own.admin.username, own.admin.password);
    const stream = await openEvents(own, token);
    await stream.next();
    const closed = own.close();
    const events = await stream.toEnd();
    expect(events.at(-1)).toMatchObject({ event: 'end', data: JSON.stringify({ reason: 'shutdown' }) });
    await closed;
  });
});

const pgUrl = inject('pgUrl');

describe.skipIf(!pgUrl)('GET /sync/events with two server processes on one PostgreSQL database', () => {
  it('a push to one process reaches a stream held by the other', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'synk-events-'));
    const env = {
      NODE_ENV: 'test',
      DB_CONNECTION: await databaseFactory(pgUrl!)('synk_events'),
      DATA_DIR: dataDir,
      ADMIN_PASSWORD: 'events-admin-password',
      ...FAST,
    };
    const [a, b] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
    try {
      const as = (url: string): Target => ({
        baseUrl: url,
        url: (p) => `${url}${p}`,
        admin: { username: 'admin', password: env.ADMIN_PASSWORD },
        owned: true,
      });
      const [onA, onB] = [as(a.url), as(b.url)];
      const stream = await openEvents(onA, (await login(onA, 'admin', env.ADMIN_PASSWORD)).token);
      try {
        await stream.next();
        const pushed = await push(onB, (await login(onB, 'admin', env.ADMIN_PASSWORD)).token, [record()]);
        expect(pushed.status).toBe(200);
        expect(await stream.untilVersion(pushed.body.current_version)).toContain(pushed.body.current_version);
      } finally {
        await stream.close();
      }
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});

import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useTarget } from '../src/harness.ts';
import { call, login } from '../src/http.ts';

// With a grace period configured (off by default: spec §3's strict rotation), a refresh sent again
// without an Idempotency-Key shortly after the first is the same exchange, not a reuse.
const target = useTarget({ REFRESH_REUSE_GRACE: '30s' });

const refresh = (refreshToken: string, key?: string) =>
  call(target, 'POST', '/auth/refresh', {
    body: { refreshToken },
    headers: key === undefined ? {} : { 'idempotency-key': key },
  });
const whoAmI = (token: string) => call(target, 'GET', '/users', { token });

describe('a refresh sent again without a key, within the grace period', () => {
  it('concurrent refreshes of one token (two tabs, a retry racing its original) all get the same new refresh token, and the session lives on', async () => {
    const pair = await login(target, target.admin.username, target.admin.password);
    const results = await Promise.all([1, 2, 3].map(() => refresh(pair.refreshToken)));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(new Set(results.map((r) => r.body.refreshToken)).size).toBe(1);
    expect(results[0]!.body.refreshToken).not.toBe(pair.refreshToken);
    for (const r of results) expect((await whoAmI(r.body.token)).status).toBe(200);
    // Whichever answer the client kept, the session goes on from it.
    const next = await refresh(results[2]!.body.refreshToken);
    expect(next.status).toBe(200);
    expect((await whoAmI(next.body.token)).status).toBe(200);
  });

  it('a retry whose answer was lost gets the same new refresh token again', async () => {
    const pair = await login(target, target.admin.username, target.admin.password);
    const lost = await refresh(pair.refreshToken);
    const again = await refresh(pair.refreshToken);
    expect(again.status).toBe(200);
    expect(again.body.refreshToken).toBe(lost.body.refreshToken);
    expect((await whoAmI(again.body.token)).status).toBe(200);
  });

  it('once the new refresh token has been used, the old one sent again is reuse: the session ends', async () => {
    const pair = await login(target, target.admin.username, target.admin.password);
    const rotated = await refresh(pair.refreshToken);
    const next = await refresh(rotated.body.refreshToken);
    expect(next.status).toBe(200);
    const replay = await refresh(pair.refreshToken);
    expect(replay.status).toBe(401);
    expect(replay.body.code).toBe('invalid_refresh_token');
    expect((await refresh(next.body.refreshToken)).status).toBe(401);
    expect((await whoAmI(next.body.token)).status).toBe(401);
    expect((await whoAmI(rotated.body.token)).status).toBe(401);
  });

  it('the token of a keyed exchange sent again with no key, or another key, is reuse', async () => {
    for (const otherKey of [undefined, randomUUID()]) {
      const pair = await login(target, target.admin.username, target.admin.password);
      const keyed = await refresh(pair.refreshToken, randomUUID());
      expect(keyed.status).toBe(200);
      expect((await refresh(pair.refreshToken, otherKey)).status).toBe(401);
      expect((await refresh(keyed.body.refreshToken)).status).toBe(401);
    }
  });

  it('an unkeyed exchange sent again with a key is reuse', async () => {
    const pair = await login(target, target.admin.username, target.admin.password);
    const unkeyed = await refresh(pair.refreshToken);
    expect((await refresh(pair.refreshToken, randomUUID())).status).toBe(401);
    expect((await refresh(unkeyed.body.refreshToken)).status).toBe(401);
  });
});

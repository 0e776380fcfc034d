import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { useTarget } from '../src/harness.ts';
import { adminToken, call, login, userWithRole } from '../src/http.ts';

// A server whose signing key the test knows, so it can mint tokens the server would sign itself
// except for one deliberate defect each (expired, wrong type). Attackers cannot do this; the test
// does it to prove each check exists independently of the signature.
const KNOWN_SECRET = 'conformance-known-secret-0123456789abcdef';
const target = useTarget({
  JWT_SECRET: KNOWN_SECRET,
  LOGIN_MAX_FAILURES_PER_USER: '3',
  LOGIN_MAX_FAILURES_PER_ADDRESS: '1000',
  // Strict rotation (the default, stated here as these cases depend on it): a rotated token sent
  // again without a key is reuse at once. The opt-in grace period is in auth-refresh-grace.test.ts.
  REFRESH_REUSE_GRACE: '0',
});

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const claimsOf = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
const whoAmI = (token: string) => call(target, 'GET', '/users', { token });

async function signWith(secret: Uint8Array, claims: Record<string, unknown>) {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(secret);
}

describe('POST /auth/login', () => {
  it('returns a token pair whose access token carries the documented claims', async () => {
    const res = await call(target, 'POST', '/auth/login', { body: target.admin });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      token: expect.any(String),
      refreshToken: expect.any(String),
      expiresAt: expect.any(Number),
    });
    const claims = claimsOf(res.body.token);
    expect(claims).toMatchObject({ typ: 'access', username: target.admin.username, role: 'admin' });
    for (const claim of ['sub', 'jti', 'iat', 'exp']) expect(claims[claim]).toBeDefined();
    expect(claims.exp).toBe(res.body.expiresAt);
    // The default lifetime is 24 h (mobile clients of 1.0.3 never refresh).
    expect((claims.exp as number) - (claims.iat as number)).toBe(24 * 3600);
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('400 for missing fields', async () => {
    for (const body of [{ username: 'admin' }, { password: 'x' }, {}]) {
      const res = await call(target, 'POST', '/auth/login', { body });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('validation_failed');
    }
  });

  it('unknown user and wrong password are indistinguishable', async () => {
    const unknown = await call(target, 'POST', '/auth/login', {
      body: { username: 'nobody-at-all', password: 'whatever-123' },
    });
    const { username } = await userWithRole(target, 'read-only');
    const wrong = await call(target, 'POST', '/auth/login', {
      body: { username, password: 'wrong-password' },
    });
    expect(unknown.status).toBe(401);
    expect(wrong.status).toBe(401);
    const strip = (b: Record<string, unknown>) => ({ ...b, request_id: undefined });
    expect(strip(unknown.body)).toEqual(strip(wrong.body));
    expect(unknown.body.code).toBe('invalid_credentials');
  });

  it('usernames are case-sensitive', async () => {
    const { username, password } = await userWithRole(target, 'read-only');
    const res = await call(target, 'POST', '/auth/login', {
      body: { username: username.toUpperCase(), password },
    });
    expect(res.status).toBe(401);
  });

  it('throttles repeated failures for a username with 429 and Retry-After, even for the right password', async () => {
    const { username, password } = await userWithRole(target, 'read-only');
    for (let i = 0; i < 3; i++) {
      expect(
        (await call(target, 'POST', '/auth/login', { body: { username, password: 'nope-nope' } })).status,
      ).toBe(401);
    }
    const blocked = await call(target, 'POST', '/auth/login', { body: { username, password } });
    expect(blocked.status).toBe(429);
    expect(blocked.body.code).toBe('too_many_requests');
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    // Other users are not affected.
    expect((await call(target, 'POST', '/auth/login', { body: target.admin })).status).toBe(200);
  });
});

describe('POST /auth/login under a burst', () => {
  it('checks no more passwords than the limit when the attempts arrive together', async () => {
    const { username, password } = await userWithRole(target, 'read-only');
    const statuses = await Promise.all(
      Array.from({ length: 30 }, () =>
        call(target, 'POST', '/auth/login', { body: { username, password: 'nope-nope' } }).then(
          (r) => r.status,
        ),
      ),
    );
    expect(statuses.filter((s) => s === 401)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(27);
    expect((await call(target, 'POST', '/auth/login', { body: { username, password } })).status).toBe(429);
  });

  it('counts guesses of the current password in a password change as failed logins', async () => {
    const { username, password, token } = await userWithRole(target, 'read-only');
    const change = (currentPassword: string) =>
      call(target, 'POST', '/users/change-password', {
        token,
        body: { currentPassword, newPassword: 'a-new-password-123' },
      });
    for (let i = 0; i < 3; i++) expect((await change(`guess-${i}-wrong`)).status).toBe(403);
    expect((await change(password)).status).toBe(429);
    expect((await call(target, 'POST', '/auth/login', { body: { username, password } })).status).toBe(429);
  });
});

describe('token forgery and misuse', () => {
  it('rejects alg:none, a wrong key, an empty key, garbage and a tampered payload', async () => {
    const real = (await login(target, target.admin.username, target.admin.password)).token;
    const claims = claimsOf(real);
    const [header, payload, signature] = real.split('.') as [string, string, string];
    const forged = [
      `${b64url({ alg: 'none', typ: 'JWT' })}.${payload}.`,
      `${b64url({ alg: 'none', typ: 'JWT' })}.${payload}`,
      await signWith(randomBytes(32), claims),
      (() => {
        const body = `${header}.${payload}`;
        return `${body}.${createHmac('sha256', Buffer.alloc(0)).update(body).digest('base64url')}`;
      })(),
      `${header}.${b64url({ ...claims, role: 'admin', username: 'mallory' })}.${signature}`,
      'not-a-jwt',
      `${header}.${payload}.${signature}x`,
    ];
    for (const token of forged) {
      const res = await whoAmI(token);
      expect(res.status, token).toBe(401);
    }
    expect((await whoAmI(real)).status).toBe(200);
  });

  it('rejects an expired token with token_expired', async () => {
    const claims = claimsOf(await adminToken(target));
    const now = Math.floor(Date.now() / 1000);
    const expired = await signWith(new TextEncoder().encode(KNOWN_SECRET), {
      ...claims,
      iat: now - 7200,
      exp: now - 3600,
    });
    const res = await whoAmI(expired);
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('token_expired');
  });

  it('never accepts a refresh token as an access token, nor the reverse', async () => {
    const pair = await login(target, target.admin.username, target.admin.password);
    expect((await whoAmI(pair.refreshToken)).status).toBe(401);
    const asRefresh = await call(target, 'POST', '/auth/refresh', { body: { refreshToken: pair.token } });
    expect(asRefresh.status).toBe(401);
    // A correctly signed token whose typ is not "access" is refused too.
    const claims = claimsOf(pair.token);
    const typed = await signWith(new TextEncoder().encode(KNOWN_SECRET), { ...claims, typ: 'refresh' });
    expect((await whoAmI(typed)).status).toBe(401);
  });
});

describe('refresh rotation', () => {
  it('rotates on every use; reusing a rotated token revokes the whole session', async () => {
    const first = await login(target, target.admin.username, target.admin.password);
    const second = await call(target, 'POST', '/auth/refresh', {
      body: { refreshToken: first.refreshToken },
    });
    expect(second.status).toBe(200);
    expect(second.body.refreshToken).not.toBe(first.refreshToken);
    expect((await whoAmI(second.body.token)).status).toBe(200);

    const reuse = await call(target, 'POST', '/auth/refresh', { body: { refreshToken: first.refreshToken } });
    expect(reuse.status).toBe(401);
    expect(reuse.body.code).toBe('invalid_refresh_token');
    // The thief's copy and the legitimate successor are both dead now, and so are their access tokens.
    expect(
      (await call(target, 'POST', '/auth/refresh', { body: { refreshToken: second.body.refreshToken } }))
        .status,
    ).toBe(401);
    expect((await whoAmI(second.body.token)).status).toBe(401);
    expect((await whoAmI(first.token)).status).toBe(401);
    // Other sessions are unaffected.
    expect((await whoAmI(await adminToken(target))).status).toBe(200);
  });

  it('400 for a missing refresh token, 401 for garbage', async () => {
    expect((await call(target, 'POST', '/auth/refresh', { body: {} })).status).toBe(400);
    const garbage = await call(target, 'POST', '/auth/refresh', { body: { refreshToken: 'rt_garbage' } });
    expect(garbage.status).toBe(401);
  });

  it('only one of two concurrent refreshes with the same token wins', async () => {
    const pair = await login(target, target.admin.username, target.admin.password);
    const results = await Promise.all(
      [1, 2, 3].map(() =>
        call(target, 'POST', '/auth/refresh', { body: { refreshToken: pair.refreshToken } }),
      ),
    );
    expect(results.filter((r) => r.status === 200).length).toBe(1);
  });
});

describe('a refresh retried with its Idempotency-Key (its answer was lost)', () => {
  const refresh = (refreshToken: string, key?: string) =>
    call(target, 'POST', '/auth/refresh', {
      body: { refreshToken },
      headers: key === undefined ? {} : { 'idempotency-key': key },
    });

  it('answers with the same new refresh token until that one is used; then it is reuse', async () => {
    const first = await login(target, target.admin.username, target.admin.password);
    const key = randomUUID();
    const lost = await refresh(first.refreshToken, key);
    expect(lost.status).toBe(200);
    // The client never saw `lost`: it sends the same request again (the key in another case, too).
    const again = await refresh(first.refreshToken, key.toUpperCase());
    expect(again.status).toBe(200);
    expect(again.body.refreshToken).toBe(lost.body.refreshToken);
    // ...or in its URN form, which is the same UUID (format: uuid takes both).
    const urn = await refresh(first.refreshToken, `urn:uuid:${key}`);
    expect(urn.status).toBe(200);
    expect(urn.body.refreshToken).toBe(lost.body.refreshToken);
    expect(again.body.refreshToken).not.toBe(first.refreshToken);
    expect((await whoAmI(again.body.token)).status).toBe(200);
    expect((await whoAmI(lost.body.token)).status).toBe(200);
    // The session goes on from there as usual...
    const next = await refresh(again.body.refreshToken);
    expect(next.status).toBe(200);
    // ...and once the successor was used, the same retry is a reuse: the session ends.
    const late = await refresh(first.refreshToken, key);
    expect(late.status).toBe(401);
    expect(late.body.code).toBe('invalid_refresh_token');
    expect((await refresh(next.body.refreshToken)).status).toBe(401);
    expect((await whoAmI(next.body.token)).status).toBe(401);
  });

  it('a used token with another key, or with none, is reuse and revokes the session', async () => {
    for (const otherKey of [randomUUID(), undefined]) {
      const first = await login(target, target.admin.username, target.admin.password);
      const rotated = await refresh(first.refreshToken, randomUUID());
      expect(rotated.status).toBe(200);
      const stolen = await refresh(first.refreshToken, otherKey);
      expect(stolen.status).toBe(401);
      expect((await refresh(rotated.body.refreshToken)).status).toBe(401);
      expect((await whoAmI(rotated.body.token)).status).toBe(401);
    }
  });

  it('concurrent sends of the same exchange all get the same new refresh token', async () => {
    const pair = await login(target, target.admin.username, target.admin.password);
    const key = randomUUID();
    const results = await Promise.all([1, 2, 3].map(() => refresh(pair.refreshToken, key)));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(new Set(results.map((r) => r.body.refreshToken)).size).toBe(1);
    expect((await refresh(results[0]!.body.refreshToken)).status).toBe(200);
  });

  it('a key that is not a UUID is a 400', async () => {
    const pair = await login(target, target.admin.username, target.admin.password);
    const res = await refresh(pair.refreshToken, 'not-a-uuid');
    expect(res.status).toBe(400);
    expect((await refresh(pair.refreshToken)).status).toBe(200);
  });
});

describe('POST /auth/logout', () => {
  it('with a refresh token ends that session only', async () => {
    const { username, password } = await userWithRole(target, 'read-write');
    const a = await login(target, username, password);
    const b = await login(target, username, password);
    const res = await call(target, 'POST', '/auth/logout', {
      token: a.token,
      body: { refreshToken: a.refreshToken },
    });
    expect(res.status).toBe(200);
    expect((await call(target, 'POST', '/sync/pull', { token: a.token, body: {} })).status).toBe(401);
    expect(
      (await call(target, 'POST', '/auth/refresh', { body: { refreshToken: a.refreshToken } })).status,
    ).toBe(401);
    expect((await call(target, 'POST', '/sync/pull', { token: b.token, body: {} })).status).not.toBe(401);
  });

  it('without a refresh token ends all of the caller’s sessions', async () => {
    const { username, password } = await userWithRole(target, 'read-only');
    const a = await login(target, username, password);
    const b = await login(target, username, password);
    expect((await call(target, 'POST', '/auth/logout', { token: a.token, body: {} })).status).toBe(200);
    for (const t of [a, b]) {
      expect((await call(target, 'POST', '/sync/pull', { token: t.token, body: {} })).status).toBe(401);
      expect(
        (await call(target, 'POST', '/auth/refresh', { body: { refreshToken: t.refreshToken } })).status,
      ).toBe(401);
    }
    expect((await login(target, username, password)).token).toEqual(expect.any(String));
  });

  it("cannot end another user's session", async () => {
    const victim = await userWithRole(target, 'read-only');
    const attacker = await userWithRole(target, 'read-only');
    const res = await call(target, 'POST', '/auth/logout', {
      token: attacker.token,
      body: { refreshToken: victim.refreshToken },
    });
    expect(res.status).toBe(404);
    expect(
      (await call(target, 'POST', '/auth/refresh', { body: { refreshToken: victim.refreshToken } })).status,
    ).toBe(200);
  });
});

import { describe, expect, it } from 'vitest';
import { useTarget } from '../src/harness.ts';
import { adminToken, call, login, uniqueName, userWithRole } from '../src/http.ts';

const target = useTarget({ PASSWORD_MIN_LENGTH: '8', PASSWORD_MAX_LENGTH: '1024' });

const create = async (body: Record<string, unknown>) =>
  call(target, 'POST', '/users/create', { token: await adminToken(target), body });

describe('POST /users/create', () => {
  it('creates a user: 201 {username, role, createdAt}, who can then log in', async () => {
    const username = uniqueName('field');
    const res = await create({ username, password: 'correct-horse', role: 'read-write' });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ username, role: 'read-write', createdAt: expect.any(String) });
    expect(Number.isNaN(Date.parse(res.body.createdAt))).toBe(false);
    const session = await login(target, username, 'correct-horse');
    expect(session.token).toEqual(expect.any(String));
  });

  it('is also POST /users, where the Synkronus Go CLI sends it (that was a 405)', async () => {
    const username = uniqueName('gocli');
    const token = await adminToken(target);
    const res = await call(target, 'POST', '/users', {
      token,
      body: { username, password: 'pa$$word', role: 'read-only' },
    });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ username, role: 'read-only', createdAt: expect.any(String) });
    expect((await login(target, username, 'pa$$word')).token).toEqual(expect.any(String));
    const again = await call(target, 'POST', '/users', {
      token,
      body: { username, password: 'pa$$word', role: 'admin' },
    });
    expect(again.status).toBe(409);
    const reader = await userWithRole(target, 'read-only');
    const refused = await call(target, 'POST', '/users', {
      token: reader.token,
      body: { username: uniqueName('x'), password: 'pa$$word', role: 'admin' },
    });
    expect(refused.status).toBe(403);
  });

  it('409 for a duplicate username; usernames differing only in case are different users', async () => {
    const username = uniqueName('Dup');
    expect((await create({ username, password: 'password-1', role: 'read-only' })).status).toBe(201);
    const again = await create({ username, password: 'password-2', role: 'admin' });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('user_exists');
    expect(
      (await create({ username: username.toLowerCase(), password: 'password-3', role: 'read-only' })).status,
    ).toBe(201);
  });

  it('exactly one of many concurrent creations of the same username succeeds', async () => {
    const username = uniqueName('race');
    const token = await adminToken(target);
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        call(target, 'POST', '/users/create', {
          token,
          body: { username, password: 'password-1', role: 'read-only' },
        }),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409, 409, 409, 409]);
  });

  it.each([
    ['7 characters', 'a'.repeat(7), 400],
    ['8 characters', 'a'.repeat(8), 201],
    ['1024 characters', 'b'.repeat(1024), 201],
    ['1025 characters', 'c'.repeat(1025), 400],
    ['8 astral characters (16 UTF-16 units)', '🔑'.repeat(8), 201],
    ['7 astral characters (14 UTF-16 units)', '🔑'.repeat(7), 400],
    ['empty', '', 400],
    // It would be stored as U+FFFD (UTF-8 has no lone surrogates): any other would log in too.
    ['an unpaired surrogate', `\ud83d${'a'.repeat(8)}`, 400],
  ])('password policy: %s → %i', async (_label, password, status) => {
    const res = await create({ username: uniqueName('policy'), password, role: 'read-only' });
    expect(res.status).toBe(status);
    if (status === 400) expect(res.body.code).toBe('validation_failed');
  });

  it('an unpaired surrogate is refused in a reset or changed password too', async () => {
    const user = await userWithRole(target, 'read-write');
    const token = await adminToken(target);
    const broken = `password-\udc00`;
    const reset = await call(target, 'POST', '/users/reset-password', {
      token,
      body: { username: user.username, newPassword: broken },
    });
    expect(reset.status).toBe(400);
    expect(reset.body.errors[0]).toMatchObject({ path: '/body/newPassword', code: 'password_policy' });
    const change = await call(target, 'POST', '/users/change-password', {
      token: user.token,
      body: { currentPassword: user.password, newPassword: broken },
    });
    expect(change.status).toBe(400);
    // Nothing changed: U+FFFD, what the broken password would have been stored as, does not log in.
    expect(
      (
        await call(target, 'POST', '/auth/login', {
          body: { username: user.username, password: 'password-\ufffd' },
        })
      ).status,
    ).toBe(401);
    expect((await login(target, user.username, user.password)).token).toEqual(expect.any(String));
  });

  it('a long password round-trips through login', async () => {
    const username = uniqueName('long');
    const password = 'ü'.repeat(1024);
    expect((await create({ username, password, role: 'read-only' })).status).toBe(201);
    expect((await login(target, username, password)).token).toEqual(expect.any(String));
  });

  it.each([
    ['empty', ''],
    ['too long', 'u'.repeat(65)],
    ['a space', 'a b'],
    ['a slash', 'a/b'],
    ['a quote', "o'neil"],
    ['non-ASCII', 'jürgen'],
    // Dot segments: clients resolve them out of a URL (`/users/..` is `/`), so the user could
    // never be deleted or given another role.
    ['only a dot', '.'],
    ['two dots', '..'],
  ])('username with %s → 400', async (_label, username) => {
    const res = await create({ username, password: 'password-1', role: 'read-only' });
    expect(res.status).toBe(400);
  });

  it('names of dots that are no dot segment, and ones needing URL encoding, can be managed through their paths', async () => {
    const token = await adminToken(target);
    for (const username of ['...', '.a', 'a.', 'a.b@c']) {
      expect((await create({ username, password: 'password-1', role: 'read-only' })).status, username).toBe(
        201,
      );
      const path = `/users/${encodeURIComponent(username)}`;
      const patched = await call(target, 'PATCH', path, { token, body: { role: 'read-write' } });
      expect(patched.status, username).toBe(200);
      expect(patched.body.username).toBe(username);
      // Compared case-sensitively in paths too.
      if (username.toUpperCase() !== username) {
        const other = `/users/${encodeURIComponent(username.toUpperCase())}`;
        expect((await call(target, 'PATCH', other, { token, body: { role: 'admin' } })).status).toBe(404);
      }
      expect(
        (await call(target, 'DELETE', `/users/delete/${encodeURIComponent(username)}`, { token })).status,
      ).toBe(200);
      expect((await call(target, 'DELETE', path, { token })).status).toBe(404);
    }
  });

  it('accepts every allowed username character and 64 characters', async () => {
    for (const username of ['A.b_c-d@e.org', 'x'.repeat(64)]) {
      expect(
        (await create({ username: `${username}`, password: 'password-1', role: 'read-only' })).status,
      ).toBe(201);
      await call(target, 'DELETE', `/users/${encodeURIComponent(username)}`, {
        token: await adminToken(target),
      });
    }
  });

  it('400 for an unknown role or missing fields', async () => {
    expect((await create({ username: uniqueName(), password: 'password-1', role: 'superuser' })).status).toBe(
      400,
    );
    expect((await create({ username: uniqueName(), password: 'password-1' })).status).toBe(400);
    expect((await create({ password: 'password-1', role: 'admin' })).status).toBe(400);
  });
});

describe('GET /users', () => {
  it('lists users sorted by username with role and timestamps, never password hashes', async () => {
    const res = await call(target, 'GET', '/users', { token: await adminToken(target) });
    expect(res.status).toBe(200);
    const names = res.body.map((u: { username: string }) => u.username);
    expect(names).toEqual([...names].sort((a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)));
    for (const user of res.body) {
      expect(Object.keys(user).sort()).toEqual(['createdAt', 'role', 'updatedAt', 'username']);
    }
    expect(JSON.stringify(res.body)).not.toMatch(/argon2/);
  });
});

describe('DELETE /users/{username}', () => {
  it('deletes a user (also via the legacy path) and their tokens stop working', async () => {
    for (const path of ['/users/', '/users/delete/']) {
      const victim = await userWithRole(target, 'read-write');
      const res = await call(target, 'DELETE', `${path}${victim.username}`, {
        token: await adminToken(target),
      });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ message: 'User deleted successfully' });
      expect((await call(target, 'POST', '/sync/pull', { token: victim.token, body: {} })).status).toBe(401);
      expect(
        (await call(target, 'POST', '/auth/refresh', { body: { refreshToken: victim.refreshToken } })).status,
      ).toBe(401);
      expect((await call(target, 'POST', '/auth/login', { body: victim })).status).toBe(401);
    }
  });

  it('404 for an unknown user', async () => {
    const res = await call(target, 'DELETE', '/users/nobody-here', { token: await adminToken(target) });
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('not_found');
  });
});

describe('roles and the last administrator', () => {
  it('PATCH /users/{username} changes the role; the old tokens stop working', async () => {
    const user = await userWithRole(target, 'read-only');
    const res = await call(target, 'PATCH', `/users/${user.username}`, {
      token: await adminToken(target),
      body: { role: 'read-write' },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ username: user.username, role: 'read-write' });
    expect((await call(target, 'POST', '/sync/pull', { token: user.token, body: {} })).status).toBe(401);
    const fresh = await login(target, user.username, user.password);
    // The new token carries the new role: read-write may push (400 here: empty body, past 403).
    expect((await call(target, 'POST', '/sync/push', { token: fresh.token, body: {} })).status).toBe(400);
  });

  it('the last admin can be neither deleted nor demoted (409); with two admins one can go', async () => {
    const token = await adminToken(target);
    const users = (await call(target, 'GET', '/users', { token })).body as {
      username: string;
      role: string;
    }[];
    const admins = users.filter((u) => u.role === 'admin');
    if (target.owned) expect(admins.map((a) => a.username)).toEqual([target.admin.username]);
    if (admins.length === 1) {
      const del = await call(target, 'DELETE', `/users/${target.admin.username}`, { token });
      expect(del.status).toBe(409);
      expect(del.body.code).toBe('last_admin');
      const demote = await call(target, 'PATCH', `/users/${target.admin.username}`, {
        token,
        body: { role: 'read-only' },
      });
      expect(demote.status).toBe(409);
    }
    const second = await userWithRole(target, 'admin');
    expect((await call(target, 'DELETE', `/users/${second.username}`, { token })).status).toBe(200);
  });

  it('two admins deleting each other at once leave one admin standing', async () => {
    if (!target.owned) return;
    const a = await userWithRole(target, 'admin');
    const b = await userWithRole(target, 'admin');
    const root = await adminToken(target);
    // Demote the bootstrap admin's peers race: first make a and b the only admins.
    await call(target, 'PATCH', `/users/${target.admin.username}`, {
      token: root,
      body: { role: 'read-write' },
    });
    const [x, y] = await Promise.all([
      call(target, 'DELETE', `/users/${b.username}`, { token: a.token }),
      call(target, 'DELETE', `/users/${a.username}`, { token: b.token }),
    ]);
    const statuses = [x.status, y.status].sort();
    // One deletion wins; the other is refused as the last admin (409) or finds its caller deleted (401).
    expect(statuses[0]).toBe(200);
    expect([401, 409]).toContain(statuses[1]);
    const survivor = x.status === 200 ? a : b;
    const fresh = await login(target, survivor.username, survivor.password);
    const admins = (
      (await call(target, 'GET', '/users', { token: fresh.token })).body as { role: string }[]
    ).filter((u) => u.role === 'admin');
    expect(admins).toHaveLength(1);
    // Restore the bootstrap admin for the other cases of this file.
    await call(target, 'PATCH', `/users/${target.admin.username}`, {
      token: fresh.token,
      body: { role: 'admin' },
    });
  });
});

describe('passwords', () => {
  it('reset-password: 200, old password and tokens dead, new password works; 404 unknown; policy 400', async () => {
    const user = await userWithRole(target, 'read-write');
    const token = await adminToken(target);
    const res = await call(target, 'POST', '/users/reset-password', {
      token,
      body: { username: user.username, newPassword: 'brand-new-pass' },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ message: 'Password reset successfully' });
    expect((await call(target, 'POST', '/sync/pull', { token: user.token, body: {} })).status).toBe(401);
    expect((await call(target, 'POST', '/auth/login', { body: user })).status).toBe(401);
    expect((await login(target, user.username, 'brand-new-pass')).token).toEqual(expect.any(String));
    expect(
      (
        await call(target, 'POST', '/users/reset-password', {
          token,
          body: { username: 'nobody-x', newPassword: 'whatever-1' },
        })
      ).status,
    ).toBe(404);
    expect(
      (
        await call(target, 'POST', '/users/reset-password', {
          token,
          body: { username: user.username, newPassword: 'short' },
        })
      ).status,
    ).toBe(400);
  });

  it('change-password: works for any role with currentPassword or oldPassword; tokens from before stop working', async () => {
    for (const field of ['currentPassword', 'oldPassword']) {
      const user = await userWithRole(target, 'read-only');
      const res = await call(target, 'POST', '/users/change-password', {
        token: user.token,
        body: { [field]: user.password, newPassword: 'changed-pass-1' },
      });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ message: 'Password changed successfully' });
      expect((await call(target, 'POST', '/sync/pull', { token: user.token, body: {} })).status).toBe(401);
      expect(
        (await call(target, 'POST', '/auth/refresh', { body: { refreshToken: user.refreshToken } })).status,
      ).toBe(401);
      expect((await login(target, user.username, 'changed-pass-1')).token).toEqual(expect.any(String));
    }
  });

  it('change-password: wrong current password → 403 invalid_current_password (not 401); missing → 400; policy → 400', async () => {
    const user = await userWithRole(target, 'read-write');
    const wrong = await call(target, 'POST', '/users/change-password', {
      token: user.token,
      body: { currentPassword: 'not-my-password', newPassword: 'changed-pass-1' },
    });
    expect(wrong.status).toBe(403);
    expect(wrong.body.code).toBe('invalid_current_password');
    const missing = await call(target, 'POST', '/users/change-password', {
      token: user.token,
      body: { newPassword: 'changed-pass-1' },
    });
    expect(missing.status).toBe(400);
    const weak = await call(target, 'POST', '/users/change-password', {
      token: user.token,
      body: { currentPassword: user.password, newPassword: 'short' },
    });
    expect(weak.status).toBe(400);
    // None of that changed anything.
    expect((await call(target, 'POST', '/sync/pull', { token: user.token, body: {} })).status).toBe(400);
  });
});

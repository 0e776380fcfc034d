import { statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { usePostgres } from '@synk/test-support/hooks';
import { postgresAvailable } from '@synk/test-support/postgres';
import { decodeJwt } from 'jose';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/lib/logger.ts';
import { loadSigningSecret } from '../src/lib/secret.ts';
import { TtlCache } from '../src/modules/auth/revocation-cache.ts';
import { createContext } from '../src/server.ts';
import { ADMIN_PASSWORD, createTestApp, manualClock, type TestApp, tempDir } from './helpers.ts';

describe('signing secret', () => {
  it('is generated once per data directory, kept with mode 0600, and reused', async () => {
    const dir = tempDir();
    const first = await loadSigningSecret(undefined, dir);
    expect(first.byteLength).toBe(64);
    expect(statSync(path.join(dir, 'jwt-secret')).mode & 0o777).toBe(0o600);
    expect(Buffer.from(await loadSigningSecret(undefined, dir)).equals(Buffer.from(first))).toBe(true);
  });

  it('is the same for processes racing to create it', async () => {
    const dir = tempDir();
    const secrets = await Promise.all(Array.from({ length: 8 }, () => loadSigningSecret(undefined, dir)));
    for (const s of secrets) expect(Buffer.from(s).equals(Buffer.from(secrets[0]!))).toBe(true);
  });

  it('uses JWT_SECRET when configured', async () => {
    const secret = await loadSigningSecret('x'.repeat(40), tempDir());
    expect(Buffer.from(secret).toString()).toBe('x'.repeat(40));
  });

  it('tokens survive a restart on the same data directory', async () => {
    const dataDir = tempDir();
    const env = { DATA_DIR: dataDir, DB_CONNECTION: path.join(dataDir, 'db.sqlite'), ADMIN_PASSWORD };
    const first = await createContext(loadConfig(env), createLogger('silent'));
    const { token } = await first.services.auth.login('admin', ADMIN_PASSWORD, '127.0.0.1');
    await first.orm.close();
    const second = await createContext(loadConfig(env), createLogger('silent'));
    expect(
      (await request(createApp(second)).get('/users').set('authorization', `Bearer ${token}`)).status,
    ).toBe(200);
    await second.orm.close();
  });
});

describe('admin bootstrap', () => {
  it('refuses to start when ADMIN_PASSWORD breaks the password policy, naming it', async () => {
    await expect(
      createContext(
        loadConfig({ DATA_DIR: tempDir(), DB_CONNECTION: ':memory:', ADMIN_PASSWORD: 'short' }),
        createLogger('silent'),
      ),
    ).rejects.toThrow(/^ADMIN_PASSWORD: must be at least 8 characters/);
  });

  it('refuses to start with the ADMIN_PASSWORD published in the example deployment', async () => {
    await expect(
      createContext(
        loadConfig({ DATA_DIR: tempDir(), DB_CONNECTION: ':memory:', ADMIN_PASSWORD: 'change-me-please' }),
        createLogger('silent'),
      ),
    ).rejects.toThrow(/^ADMIN_PASSWORD: is the example value published with this project/);
  });

  it('creates ADMIN_USERNAME with a generated password, logged once, when none is configured', async () => {
    const lines: string[] = [];
    const logger = createLogger('info');
    const capture = logger.child({});
    capture.warn = ((obj: unknown, msg?: string) => {
      lines.push(`${JSON.stringify(obj)} ${msg}`);
    }) as typeof capture.warn;
    const dataDir = tempDir();
    const env = {
      DATA_DIR: dataDir,
      DB_CONNECTION: path.join(dataDir, 'db.sqlite'),
      ADMIN_USERNAME: 'chief',
    };
    const ctx = await createContext(loadConfig(env), capture);
    expect(lines).toHaveLength(1);
    const password = /"generatedPassword":"([^"]+)"/.exec(lines[0]!)?.[1];
    expect(password?.length).toBeGreaterThanOrEqual(20);
    expect((await ctx.services.auth.login('chief', password!, '127.0.0.1')).token).toEqual(
      expect.any(String),
    );
    await ctx.orm.close();
    const again = await createContext(loadConfig(env), capture);
    expect(lines).toHaveLength(1);
    await again.orm.close();
  });
});

describe('admin bootstrap at LOG_LEVEL=error', () => {
  it('still shows the generated password, the only way to log in', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => lines.push(line) });
    const dataDir = tempDir();
    const env = { DATA_DIR: dataDir, DB_CONNECTION: path.join(dataDir, 'db.sqlite'), LOG_LEVEL: 'error' };
    const ctx = await createContext(loadConfig(env), logger);
    try {
      const shown = lines.map((line) => JSON.parse(line) as { generatedPassword?: string });
      const password = shown.find((entry) => entry.generatedPassword)?.generatedPassword;
      expect(password).toEqual(expect.any(String));
      expect((await ctx.services.auth.login('admin', password!, '127.0.0.1')).token).toEqual(
        expect.any(String),
      );
    } finally {
      await ctx.orm.close();
    }
  });
});

describe('revocation cache', () => {
  let t: TestApp;
  const clock = manualClock();
  beforeAll(async () => {
    t = await createTestApp({ REVOCATION_CACHE_MS: '400' }, clock.now);
  });
  afterAll(() => t.close());

  it('sees a change made by another process at most REVOCATION_CACHE_MS later', async () => {
    const token = await t.tokenFor('read-only');
    const pull = () => request(t.app).post('/sync/pull').set('authorization', `Bearer ${token}`).send({});
    expect((await pull()).status).not.toBe(401);
    // Another process bumps the user's token generation: this process has it cached.
    await t.ctx.orm.em
      .fork()
      .getConnection()
      .execute("update users set token_generation = token_generation + 1 where username = 'read-only-user'");
    expect((await pull()).status).not.toBe(401);
    clock.advance(399);
    expect((await pull()).status).not.toBe(401);
    clock.advance(2);
    expect((await pull()).status).toBe(401);
  });

  it('sees a change made through this process at once', async () => {
    const token = await t.tokenFor('read-write');
    const pull = () => request(t.app).post('/sync/pull').set('authorization', `Bearer ${token}`).send({});
    expect((await pull()).status).not.toBe(401);
    await t.ctx.services.users.setRole('read-write-user', 'read-only');
    expect((await pull()).status).toBe(401);
  });
});

describe('session lifetime', () => {
  let t: TestApp;
  const clock = manualClock();
  const DAY = 24 * 3600 * 1000;
  beforeAll(async () => {
    t = await createTestApp({ REFRESH_TOKEN_TTL: '2d', SESSION_MAX_LIFETIME: '5d' }, clock.now);
  });
  afterAll(() => t.close());

  it('is extended by each refresh, up to SESSION_MAX_LIFETIME', async () => {
    const auth = t.ctx.services.auth;
    let pair = await auth.login('admin', ADMIN_PASSWORD, '10.1.0.1');
    const sessionEnd = Math.floor((clock.now().getTime() + 5 * DAY) / 1000);
    // Refreshed every 1.5 days: each refresh gives the session another two days...
    for (let i = 0; i < 3; i++) {
      clock.advance(1.5 * DAY);
      pair = await auth.refresh(pair.refreshToken);
      expect((await auth.authenticate(pair.token)).username).toBe('admin');
    }
    // The last access token (4.5 days in) expires with the session, not a day later: it would stop
    // working then anyway, and the client plans its refresh by `expiresAt`.
    expect(pair.expiresAt).toBe(sessionEnd);
    expect(decodeJwt(pair.token).exp).toBe(sessionEnd);
    // ...but never more than five days from the login (4.5 days in, it ends at 5, not 6.5).
    clock.advance(0.5 * DAY + 60_000);
    await expect(auth.refresh(pair.refreshToken)).rejects.toThrow(/invalid, expired or revoked/);
    // Its access token expired with it (before, it outlived the session by a day, refused as such).
    await expect(auth.authenticate(pair.token)).rejects.toThrow(/access token has expired/);
  });

  it('ends when it is not refreshed within the refresh token lifetime', async () => {
    const auth = t.ctx.services.auth;
    let pair = await auth.login('admin', ADMIN_PASSWORD, '10.1.0.2');
    clock.advance(1.9 * DAY);
    pair = await auth.refresh(pair.refreshToken);
    clock.advance(2 * DAY + 60_000);
    await expect(auth.refresh(pair.refreshToken)).rejects.toThrow(/invalid, expired or revoked/);
  });
});

describe('a refresh token sent again', () => {
  let t: TestApp;
  const clock = manualClock();
  beforeAll(async () => {
    t = await createTestApp({ REFRESH_REUSE_GRACE: '30s' }, clock.now);
  });
  afterAll(() => t.close());

  it('without a key is the same exchange within REFRESH_REUSE_GRACE of the first, and reuse after it', async () => {
    const auth = t.ctx.services.auth;
    const pair = await auth.login('admin', ADMIN_PASSWORD, '10.2.0.1');
    const first = await auth.refresh(pair.refreshToken);
    clock.advance(29_000);
    const again = await auth.refresh(pair.refreshToken);
    expect(again.refreshToken).toBe(first.refreshToken);
    expect((await auth.authenticate(again.token)).username).toBe('admin');
    clock.advance(1_000);
    // 30 s after the exchange: a thief's copy, not a retry. The session ends.
    await expect(auth.refresh(pair.refreshToken)).rejects.toThrow(/already used/);
    await expect(auth.refresh(first.refreshToken)).rejects.toThrow(/invalid, expired or revoked/);
    await expect(auth.authenticate(again.token)).rejects.toThrow(/session has ended/);
  });

  it('with the key of its exchange is answered again past the grace period, while the successor is unused', async () => {
    const auth = t.ctx.services.auth;
    const pair = await auth.login('admin', ADMIN_PASSWORD, '10.2.0.2');
    const key = '7d1b3a5e-9c1f-4e2b-8a6d-2f4c6e8a0b1c';
    const first = await auth.refresh(pair.refreshToken, key);
    clock.advance(3600_000);
    expect((await auth.refresh(pair.refreshToken, key)).refreshToken).toBe(first.refreshToken);
  });
});

describe('purging what no request can use any more', () => {
  let t: TestApp;
  const clock = manualClock();
  const DAY = 24 * 3600 * 1000;
  beforeAll(async () => {
    t = await createTestApp({ REFRESH_TOKEN_TTL: '2d', LOGIN_THROTTLE_WINDOW: '15m' }, clock.now);
  });
  afterAll(() => t.close());
  const count = async (table: string) =>
    Number(
      (
        (await t.ctx.orm.em.fork().getConnection().execute(`select count(*) as n from ${table}`)) as {
          n: number;
        }[]
      )[0]!.n,
    );

  it('drops ended sessions with their tokens and closed login counters, and keeps everything live', async () => {
    const auth = t.ctx.services.auth;
    const old = await auth.login('admin', ADMIN_PASSWORD, '10.0.0.1');
    const rotated = await auth.refresh(old.refreshToken); // the first token stays, used, for reuse detection
    await expect(auth.login('admin', 'wrong-password', '10.0.0.2')).rejects.toThrow();
    const revoked = await auth.login('admin', ADMIN_PASSWORD, '10.0.0.1');
    await auth.logout(await auth.authenticate(revoked.token), revoked.refreshToken);
    clock.advance(DAY + 60_000);
    expect([
      await count('auth_sessions'),
      await count('refresh_tokens'),
      await count('login_throttle'),
    ]).toEqual([2, 3, 3]); // the failure's counters: admin from 10.0.0.2, admin in all, 10.0.0.2
    // A day on (a login also purges, in the background, at most every ten minutes): the revoked
    // session goes with its token; the first has not ended; the failed attempt's window has closed.
    const live = await auth.login('admin', ADMIN_PASSWORD, '10.0.0.3');
    await auth.purgeExpired();
    expect([
      await count('auth_sessions'),
      await count('refresh_tokens'),
      await count('login_throttle'),
    ]).toEqual([2, 3, 0]);
    // The used token of the live first session is still known: presenting it again revokes the family.
    await expect(auth.refresh(old.refreshToken)).rejects.toThrow(/already used/);
    await expect(auth.refresh(rotated.refreshToken)).rejects.toThrow();
    clock.advance(DAY);
    // Two days after the first login its session has ended (the reuse revoked it anyway); the third login's has not.
    expect((await auth.purgeExpired()).sessions).toBe(1);
    expect([await count('auth_sessions'), await count('refresh_tokens')]).toEqual([1, 1]);
    expect((await auth.refresh(live.refreshToken)).token).toEqual(expect.any(String));
    clock.advance(3 * DAY);
    await auth.purgeExpired();
    expect([
      await count('auth_sessions'),
      await count('refresh_tokens'),
      await count('login_throttle'),
    ]).toEqual([0, 0, 0]);
  });

  it('purges in batches until nothing ended is left (2,401 sessions and 3,603 counters: five and eight batches)', async () => {
    const auth = t.ctx.services.auth;
    await auth.login('admin', ADMIN_PASSWORD, '10.0.0.9');
    await expect(auth.login('admin', 'wrong-password', '10.0.0.9')).rejects.toThrow();
    // Copies of those rows, as a long-running server would accumulate them.
    const connection = t.ctx.orm.em.fork().getConnection();
    const copies = 'with recursive n(i) as (select 1 union all select i + 1 from n where i < 1200)';
    await connection.execute(
      `${copies} insert into auth_sessions (id, user_id, created_at, expires_at, revoked_at, revoked_reason) select s.id || '-' || n.i, s.user_id, s.created_at, s.expires_at, s.revoked_at, s.revoked_reason from auth_sessions s, n`,
    );
    await connection.execute(
      `${copies} insert into login_throttle (key, failures, window_started_at) select t.key || '-' || n.i, t.failures, t.window_started_at from login_throttle t, n`,
    );
    expect([await count('auth_sessions'), await count('login_throttle')]).toEqual([1201, 3603]);
    await connection.execute(
      `${copies} insert into auth_sessions (id, user_id, created_at, expires_at, revoked_at, revoked_reason) select s.id || '-b' || n.i, s.user_id, s.created_at, s.expires_at, s.revoked_at, s.revoked_reason from auth_sessions s, n where length(s.id) = 36`,
    );
    expect(await count('auth_sessions')).toBe(2401);
    clock.advance(4 * DAY);
    const purged = await auth.purgeExpired();
    expect(purged).toMatchObject({ sessions: 2401, loginCounters: 3603 });
    expect([
      await count('auth_sessions'),
      await count('refresh_tokens'),
      await count('login_throttle'),
    ]).toEqual([0, 0, 0]);
  });
});

describe('TtlCache', () => {
  it('expires entries after the TTL and evicts the oldest beyond the cap', () => {
    let now = 0;
    const cache = new TtlCache<number>(100, 2, () => now);
    cache.set('a', 1);
    cache.set('b', 2);
    now = 50;
    expect(cache.get('a')).toBe(1);
    cache.set('c', 3);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBe(2);
    now = 120;
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('c')).toBe(3);
  });

  it('does not keep a value whose load overlapped a delete (a change committed meanwhile)', async () => {
    const cache = new TtlCache<number>(1000, 10, () => 0);
    let read!: (value: number) => void;
    const loading = cache.through('user', () => new Promise<number>((resolve) => (read = resolve)));
    // The change commits and drops the entry while the value from before it is on its way.
    cache.delete('user');
    read(1);
    expect(await loading).toBe(1);
    expect(cache.get('user')).toBeUndefined();
    // A load that overlapped no change is kept as before.
    expect(await cache.through('user', async () => 2)).toBe(2);
    expect(cache.get('user')).toBe(2);
  });

  it('caches nothing with a TTL of 0', () => {
    const cache = new TtlCache<number>(0);
    cache.set('a', 1);
    expect(cache.get('a')).toBeUndefined();
  });
});

describe('the login throttle', () => {
  it('locks a username out from the guessing address only, until guesses from many addresses reach its total', async () => {
    const t = await createTestApp({
      LOGIN_MAX_FAILURES_PER_USER: '3',
      LOGIN_MAX_FAILURES_PER_USER_TOTAL: '7',
      LOGIN_MAX_FAILURES_PER_ADDRESS: '1000',
    });
    try {
      await t.ctx.services.users.create('field-worker', 'right-password', 'read-write');
      const status = (password: string, address: string) =>
        t.ctx.services.auth.login('field-worker', password, address).then(
          () => 200,
          (err: { status: number }) => err.status,
        );
      for (let i = 0; i < 3; i++) expect(await status('wrong-password', '192.0.2.66')).toBe(401);
      expect(await status('right-password', '192.0.2.66')).toBe(429);
      // The user's own phone, elsewhere, still logs in (it was refused too: one address locked the
      // account everywhere), and its success does not forgive the guesser's failures.
      expect(await status('right-password', '198.51.100.7')).toBe(200);
      expect(await status('wrong-password', '192.0.2.66')).toBe(429);
      // Guesses spread over addresses meet the username's total: 3 + 4 = 7 failures.
      for (let i = 1; i <= 4; i++) expect(await status('wrong-password', `203.0.113.${i}`)).toBe(401);
      expect(await status('wrong-password', '203.0.113.99')).toBe(429);
      expect(await status('right-password', '198.51.100.7')).toBe(429);
    } finally {
      await t.close();
    }
  });

  it('writes nothing for an attempt it refuses: an address over its limit cannot grow the counters', async () => {
    const t = await createTestApp({ LOGIN_MAX_FAILURES_PER_ADDRESS: '1' });
    try {
      const counters = async () =>
        Number(
          (
            (await t.ctx.orm.em
              .fork()
              .getConnection()
              .execute('select count(*) as n from login_throttle')) as { n: number }[]
          )[0]!.n,
        );
      const status = (username: string) =>
        t.ctx.services.auth.login(username, 'wrong-password', '192.0.2.9').then(
          () => 200,
          (err: { status: number }) => err.status,
        );
      expect(await status('first-guess')).toBe(401);
      expect(await counters()).toBe(3); // the name from the address, the name, the address
      // Refused attempts, each naming a username new here, as cheap as a 429 (no password check).
      for (let i = 0; i < 50; i++) expect(await status(`guess-${i}`)).toBe(429);
      expect(await counters()).toBe(3);
    } finally {
      await t.close();
    }
  });

  it('counts an IPv6 client’s failures against its /64, so moving within it does not reset them', async () => {
    const t = await createTestApp({ LOGIN_MAX_FAILURES_PER_ADDRESS: '3' });
    try {
      const status = (username: string, address: string) =>
        t.ctx.services.auth.login(username, 'wrong-password', address).then(
          () => 200,
          (err: { status: number }) => err.status,
        );
      for (let i = 1; i <= 3; i++) expect(await status(`nobody-${i}`, `2001:db8:0:1::${i}`)).toBe(401);
      expect(await status('nobody-4', '2001:db8:0:1:ffff::99')).toBe(429);
      // Another /64, and IPv4 clients, have counters of their own.
      expect(await status('nobody-5', '2001:db8:0:2::1')).toBe(401);
      expect(await status('nobody-6', '::ffff:192.0.2.1')).toBe(401);
    } finally {
      await t.close();
    }
  });
});

describe('behind a proxy the server does not trust', () => {
  it('warns once that the login throttle takes every client for the proxy', async () => {
    for (const [env, expected] of [
      [{}, 1],
      [{ TRUST_PROXY: 'loopback' }, 0],
    ] as const) {
      const t = await createTestApp(env);
      try {
        const warnings: string[] = [];
        t.ctx.logger.warn = ((_fields: unknown, message?: string) => {
          warnings.push(String(message));
        }) as typeof t.ctx.logger.warn;
        await request(t.app).get('/health');
        for (let i = 0; i < 3; i++)
          await request(t.app).post('/auth/login').set('x-forwarded-for', `198.51.100.${i}`).send({});
        expect(
          warnings.filter((w) => w.includes('TRUST_PROXY is off')),
          JSON.stringify(env),
        ).toHaveLength(expected);
      } finally {
        await t.close();
      }
    }
  });
});

/**
 * Logins whose user is deleted, or whose password is reset, while their password is being checked
 * (argon2 takes ~20 ms), password changes racing a reset, refreshes racing a deletion: nothing may
 * come of them that outlives the change, and the change goes through.
 */
async function checkLoginsRacingChanges(env: Record<string, string>): Promise<void> {
  const t = await createTestApp(env);
  const { auth, users } = t.ctx.services;
  const outcome = <T>(promise: Promise<T>) =>
    promise.then(
      (value) => ({ status: 200, value }),
      (err: { status?: number }) => ({ status: err.status ?? 500, value: undefined }),
    );
  try {
    for (let round = 0; round < 10; round++) {
      const username = `leaving-${round}`;
      await users.create(username, 'password-of-user', 'read-write');
      const login = outcome(auth.login(username, 'password-of-user', `10.0.1.${round}`));
      await delay(round % 3);
      await users.delete(username);
      // 401, or (had it finished first) a session the deletion ended. It was a 500 (a session
      // inserted for a user no longer there).
      const { status, value } = await login;
      expect(status === 401 || status === 200).toBe(true);
      if (value) expect((await outcome(auth.refresh(value.refreshToken))).status).toBe(401);
    }
    await users.create('resetting', 'old-password-1', 'read-write');
    for (let round = 0; round < 20; round++) {
      await users.resetPassword('resetting', 'old-password-1');
      const login = outcome(auth.login('resetting', 'old-password-1', `10.0.2.${round}`));
      await delay(round % 5);
      await users.resetPassword('resetting', `new-password-${round}`);
      // The reset ends every session, including one the old password was still opening (it
      // survived the reset in about a quarter of the rounds).
      const { value } = await login;
      if (value) expect((await outcome(auth.refresh(value.refreshToken))).status).toBe(401);
    }
    // A password change in flight (checking the current password, hashing the new one: ~40 ms)
    // when an administrator resets the password: the reset stands. The change overwrote it in
    // nearly every round.
    for (let round = 0; round < 10; round++) {
      await users.resetPassword('resetting', 'old-password-1');
      const { token } = await auth.login('resetting', 'old-password-1', `10.0.3.${round}`);
      const principal = await auth.authenticate(token);
      const change = outcome(
        users.changePassword(principal, 'old-password-1', `chosen-password-${round}`, `10.0.4.${round}`),
      );
      await delay(round % 5);
      await users.resetPassword('resetting', `reset-password-${round}`);
      expect([200, 403]).toContain((await change).status);
      const reset = outcome(auth.login('resetting', `reset-password-${round}`, `10.0.5.${round}`));
      expect((await reset).status).toBe(200);
    }
    // A refresh in flight when its user is deleted: the deletion goes through (on PostgreSQL the
    // two deadlocked in about one round in four, and the deletion failed with a 500).
    for (let round = 0; round < 20; round++) {
      const username = `refreshing-${round}`;
      await users.create(username, 'password-of-user', 'read-write');
      const { refreshToken } = await auth.login(username, 'password-of-user', `10.0.6.${round}`);
      const refreshed = outcome(auth.refresh(refreshToken));
      await delay(round % 3);
      expect((await outcome(users.delete(username))).status).toBe(200);
      const { status, value } = await refreshed;
      expect([200, 401]).toContain(status);
      if (value) expect((await outcome(auth.refresh(value.refreshToken))).status).toBe(401);
    }
  } finally {
    await t.close();
  }
}

describe('a login, password change or refresh racing a change to its user', () => {
  it('on SQLite', async () => {
    await checkLoginsRacingChanges({});
  }, 30_000);

  describe.skipIf(!postgresAvailable())('on PostgreSQL', () => {
    const postgres = usePostgres();
    it('too', async () => {
      await checkLoginsRacingChanges({ DB_CONNECTION: await postgres.server.createDatabase() });
    }, 60_000);
  });
});

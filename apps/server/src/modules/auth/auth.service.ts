import { createHash, randomUUID } from 'node:crypto';
import { type EntityManager, type MikroORM, raw } from '@mikro-orm/core';
import type { components } from '@synk/contract';
import type { Config } from '../../config.ts';
import { rowLock, withLock } from '../../db/locks.ts';
import { HttpProblem, Unauthorized } from '../../http/errors.ts';
import { verifyAgainstDummy, verifyPassword } from '../../lib/password.ts';
import {
  AccessTokenVerifier,
  hashRefreshToken,
  InvalidToken,
  newRefreshToken,
  signAccessToken,
  successorToken,
  type VerifiedAccessToken,
} from '../../lib/tokens.ts';
import { USERNAME_PATTERN } from '../../lib/username.ts';
import { canonicalUuid } from '../../lib/uuid.ts';
import { type Role, User, type UserEntity } from '../users/user.entity.ts';
import { TtlCache } from './revocation-cache.ts';
import { AuthSession, LoginThrottle, type LoginThrottleEntity, RefreshToken } from './session.entity.ts';
import { throttleAddress } from './throttle-address.ts';

/** Who is calling, established from a verified, unrevoked access token. */
export interface Principal {
  userId: string;
  username: string;
  role: Role;
  sessionId: string;
  /** When the access token expires (unix seconds): what a long-lived request (an event stream) ends at. */
  expiresAt?: number;
}

export type TokenPair = components['schemas']['AuthResponse'];

interface UserState {
  generation: number;
  role: Role;
  username: string;
}

export interface AuthServiceDeps {
  orm: MikroORM;
  config: Config;
  secret: Uint8Array;
  clock: () => Date;
}

const invalidCredentials = () => Unauthorized('Invalid username or password', 'invalid_credentials');
const invalidRefresh = (detail = 'The refresh token is invalid, expired or revoked') =>
  Unauthorized(detail, 'invalid_refresh_token');

/** How often logins and refreshes also delete what can no longer matter (see `purgeExpired`). */
const PURGE_EVERY_MS = 10 * 60 * 1000;
/** Rows a purge deletes per transaction. */
const PURGE_BATCH = 500;
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

export class AuthService {
  readonly #deps: AuthServiceDeps;
  #lastPurge = 0;
  /** The purge started by a login or refresh, while it runs. */
  #purging: Promise<unknown> = Promise.resolve();
  readonly #users: TtlCache<UserState | null>;
  readonly #sessions: TtlCache<boolean>;
  readonly #tokens: AccessTokenVerifier;

  constructor(deps: AuthServiceDeps) {
    this.#deps = deps;
    this.#tokens = new AccessTokenVerifier(deps.secret);
    // Cache ages come from the same clock as token lifetimes, so tests can move time instead of sleeping.
    const now = () => deps.clock().getTime();
    this.#users = new TtlCache(deps.config.auth.revocationCacheMs, 10_000, now);
    this.#sessions = new TtlCache(deps.config.auth.revocationCacheMs, 10_000, now);
  }

  get #em(): EntityManager {
    return this.#deps.orm.em;
  }

  get #now(): Date {
    return this.#deps.clock();
  }

  /** Throttled, timing-safe login; opens a new session. */
  async login(username: string, password: string, address: string): Promise<TokenPair> {
    this.#purgeNowAndThen();
    let user: UserEntity | null = null;
    const ok = await this.throttledCheck(username, address, async () => {
      // A name no user can have is not looked up (a NUL in it cut SQLite's statement short: 500).
      user = USERNAME_PATTERN.test(username) ? await this.#em.fork().findOne(User, { username }) : null;
      // The same work for an unknown user as for a known one: a real argon2 verification.
      return user ? verifyPassword(user.passwordHash, password) : verifyAgainstDummy(password);
    });
    const checked = user as UserEntity | null; // set in the callback, which TypeScript cannot see
    if (!checked || !ok) throw invalidCredentials();
    return this.#em.fork().transactional(async (em) => {
      // The user as they are now, held until the session exists: a password change or deletion
      // committed while the password was being checked (~20 ms) left a session that survived it
      // (the old password still logged in), or a foreign-key failure (500).
      const current = await em.findOne(
        User,
        { id: checked.id },
        { lockMode: rowLock(this.#deps.config.database.kind, 'share') },
      );
      if (!current || current.passwordHash !== checked.passwordHash) throw invalidCredentials();
      return this.#openSession(em, current);
    });
  }

  /**
   * Runs `check`, a password check of `username` from `address` (a login, or a signed-in user's
   * current password before a change), under the login throttle: counted before it runs (429 over
   * a limit, without running it) and taken back when it succeeds.
   */
  async throttledCheck(username: string, address: string, check: () => Promise<boolean>): Promise<boolean> {
    const keys = throttleKeys(username, address);
    await this.#claimAttempt(keys);
    const ok = await check();
    if (ok) await this.#succeeded(keys);
    return ok;
  }

  /**
   * Exchanges a refresh token for a new pair; the presented token can never be exchanged for
   * another. The same exchange sent again is answered again with the same successor while that is
   * unused (see `#answerAgain`): with the request's Idempotency-Key, whenever; without one, within
   * REFRESH_REUSE_GRACE of the first (a retry, or two requests racing). Anything else presenting a
   * used token is reuse, and ends the session.
   */
  async refresh(presented: string, idempotencyKey?: string): Promise<TokenPair> {
    // A UUID (the contract checks it), the same key whatever the case or form it is sent in.
    const exchangeKey = idempotencyKey === undefined ? undefined : canonicalUuid(idempotencyKey);
    this.#purgeNowAndThen();
    const now = this.#now;
    const outcome = await this.#em.fork().transactional(async (em) => {
      const row = await em.findOne(RefreshToken, { tokenHash: hashRefreshToken(presented) });
      if (!row) return { error: invalidRefresh() };
      // The session first, locked: a deletion of its user locks it too before its refresh tokens (on
      // delete cascade), so claiming the token first and inserting the next one (which waits for
      // the session) deadlocked with it on PostgreSQL (500 for the deletion).
      const session = await em.findOne(
        AuthSession,
        { id: row.sessionId },
        { lockMode: rowLock(this.#deps.config.database.kind, 'update') },
      );
      if (!session || session.revokedAt || session.expiresAt <= now || row.expiresAt <= now) {
        return { error: invalidRefresh() };
      }
      // Claim the token atomically: of two concurrent exchanges, exactly one wins.
      const claimed = row.usedAt
        ? 0
        : await em.nativeUpdate(RefreshToken, { tokenHash: row.tokenHash, usedAt: null }, { usedAt: now });
      if (claimed === 0) {
        // Unset when a concurrent exchange claimed the token after it was read here: just now.
        const usedAt = row.usedAt ?? now;
        const again = await this.#answerAgain(em, presented, exchangeKey, session, usedAt);
        if (again) return { pair: again };
        // A rotated token came back: it may have been stolen. End the whole family.
        await em.nativeUpdate(
          AuthSession,
          { id: session.id },
          { revokedAt: now, revokedReason: 'refresh_token_reuse' },
        );
        return {
          error: invalidRefresh('The refresh token was already used; the session has been revoked'),
          revoked: session.id,
        };
      }
      const user = await em.findOne(User, { id: session.userId });
      if (!user) return { error: invalidRefresh() };
      // A session in use lives on: each refresh extends it by the refresh token lifetime, up to
      // the session's maximum lifetime (a fixed end made daily users log in again every month,
      // possibly while offline in the field).
      session.expiresAt = this.#sessionEnd(session.createdAt, now);
      const successor = successorToken(presented, exchangeKey, this.#deps.secret);
      return { pair: await this.#issue(em, user, session.id, session.expiresAt, successor) };
    });
    if (outcome.revoked) this.#sessions.delete(outcome.revoked);
    if (outcome.error) throw outcome.error;
    return outcome.pair!;
  }

  /**
   * The answer to an exchange made before (at `usedAt`) with the same token and key, or the same
   * token without a key, whose answer the client did not get or did not keep (a dropped connection,
   * a timeout, two tabs refreshing at once): its successor again, with a fresh access token, as
   * long as nobody has used that successor (then this is reuse after all). Someone holding only an
   * old token cannot get a keyed exchange's successor (it needs the key); an unkeyed one's it gets
   * only within the grace period after the exchange, and then holds the very token the client
   * holds, so whichever of the two uses it second still ends the session.
   */
  async #answerAgain(
    em: EntityManager,
    presented: string,
    exchangeKey: string | undefined,
    session: { id: string; userId: string; expiresAt: Date },
    usedAt: Date,
  ): Promise<TokenPair | undefined> {
    const graceMs = this.#deps.config.auth.refreshReuseGraceSeconds * 1000;
    if (exchangeKey === undefined && usedAt.getTime() + graceMs <= this.#now.getTime()) return undefined;
    const successor = successorToken(presented, exchangeKey, this.#deps.secret);
    const row = await em.findOne(RefreshToken, { tokenHash: successor.hash });
    if (!row || row.sessionId !== session.id || row.usedAt) return undefined;
    const user = await em.findOne(User, { id: session.userId });
    if (!user) return undefined;
    const access = await this.#signAccess(user, session.id, session.expiresAt);
    return { token: access.token, refreshToken: successor.token, expiresAt: access.expiresAt };
  }

  /** Revokes the session of the given refresh token, or all of the caller's sessions. */
  async logout(principal: Principal, refreshToken: string | undefined): Promise<void> {
    const em = this.#em.fork();
    const now = this.#now;
    if (refreshToken === undefined) {
      await em.nativeUpdate(
        AuthSession,
        { userId: principal.userId, revokedAt: null },
        { revokedAt: now, revokedReason: 'logout' },
      );
      await em.nativeUpdate(User, { id: principal.userId }, { tokenGeneration: nextGeneration() });
      this.forgetUser(principal.userId);
      return;
    }
    const row = await em.findOne(RefreshToken, { tokenHash: hashRefreshToken(refreshToken) });
    const session = row ? await em.findOne(AuthSession, { id: row.sessionId }) : null;
    if (!session || session.userId !== principal.userId) {
      throw new HttpProblem(404, 'not_found', 'No such session for this user');
    }
    await em.nativeUpdate(AuthSession, { id: session.id }, { revokedAt: now, revokedReason: 'logout' });
    this.#sessions.delete(session.id);
  }

  /** Verifies an access token and checks it has not been revoked since it was issued. */
  async authenticate(token: string): Promise<Principal> {
    let claims: Readonly<VerifiedAccessToken>;
    try {
      claims = await this.#tokens.verify(token, this.#now);
    } catch (err) {
      if (err instanceof InvalidToken && err.reason === 'expired')
        throw Unauthorized('The access token has expired', 'token_expired');
      throw Unauthorized('The access token is invalid', 'invalid_token');
    }
    const user = await this.#users.through(claims.sub, () => this.#loadUserState(claims.sub));
    if (!user || user.generation !== claims.gen)
      throw Unauthorized('The access token has been revoked', 'token_revoked');
    const live = await this.#sessions.through(claims.sid, () => this.#loadSessionLive(claims.sid));
    if (!live) throw Unauthorized('The session has ended', 'token_revoked');
    return {
      userId: claims.sub,
      username: user.username,
      role: user.role,
      sessionId: claims.sid,
      expiresAt: claims.exp,
    };
  }

  /**
   * Makes every token of the user stop working: refresh tokens at once, access tokens on their
   * next request. Called inside the transaction that changes the user.
   */
  async revokeAllTokens(em: EntityManager, userId: string, reason: string): Promise<void> {
    await em.nativeUpdate(
      AuthSession,
      { userId, revokedAt: null },
      { revokedAt: this.#now, revokedReason: reason },
    );
    await em.nativeUpdate(User, { id: userId }, { tokenGeneration: nextGeneration() });
  }

  /** Drops this process's cached view of a user (call after the changing transaction commits). */
  forgetUser(userId: string): void {
    this.#users.delete(userId);
  }

  async #loadUserState(userId: string): Promise<UserState | null> {
    const user = await this.#em.fork().findOne(User, { id: userId });
    return user
      ? { generation: user.tokenGeneration, role: user.role as Role, username: user.username }
      : null;
  }

  async #loadSessionLive(sessionId: string): Promise<boolean> {
    const session = await this.#em.fork().findOne(AuthSession, { id: sessionId });
    return !!session && !session.revokedAt && session.expiresAt > this.#now;
  }

  async #openSession(em: EntityManager, user: UserEntity): Promise<TokenPair> {
    const now = this.#now;
    const sessionId = randomUUID();
    const expiresAt = this.#sessionEnd(now, now);
    em.create(AuthSession, {
      id: sessionId,
      userId: user.id,
      createdAt: now,
      expiresAt,
      revokedAt: null,
      revokedReason: null,
    });
    await em.flush();
    return this.#issue(em, user, sessionId, expiresAt);
  }

  /** When a session opened at `createdAt` ends if it is not refreshed again after `now`. */
  #sessionEnd(createdAt: Date, now: Date): Date {
    const { refreshTokenTtlSeconds, sessionMaxLifetimeSeconds } = this.#deps.config.auth;
    return new Date(
      Math.min(
        now.getTime() + refreshTokenTtlSeconds * 1000,
        createdAt.getTime() + sessionMaxLifetimeSeconds * 1000,
      ),
    );
  }

  async #issue(
    em: EntityManager,
    user: UserEntity,
    sessionId: string,
    sessionExpiresAt: Date,
    refresh: { token: string; hash: string } = newRefreshToken(),
  ): Promise<TokenPair> {
    const now = this.#now;
    em.create(RefreshToken, {
      tokenHash: refresh.hash,
      sessionId,
      createdAt: now,
      expiresAt: sessionExpiresAt,
      usedAt: null,
    });
    await em.flush();
    const access = await this.#signAccess(user, sessionId, sessionExpiresAt);
    return { token: access.token, refreshToken: refresh.token, expiresAt: access.expiresAt };
  }

  /**
   * An access token of the session, expiring with it at the latest: a token stops working when its
   * session ends, so an `exp` (and the `expiresAt` answered with it) past that end would tell the
   * client it had more time than it has (a REFRESH_TOKEN_TTL below ACCESS_TOKEN_TTL, or a session
   * near its SESSION_MAX_LIFETIME).
   */
  #signAccess(
    user: UserEntity,
    sessionId: string,
    sessionEnd: Date,
  ): Promise<{ token: string; expiresAt: number }> {
    const now = this.#now;
    const untilSessionEnd = Math.floor(sessionEnd.getTime() / 1000) - Math.floor(now.getTime() / 1000);
    return signAccessToken(
      { sub: user.id, username: user.username, role: user.role, sid: sessionId, gen: user.tokenGeneration },
      this.#deps.secret,
      now,
      Math.max(0, Math.min(this.#deps.config.auth.accessTokenTtlSeconds, untilSessionEnd)),
    );
  }

  /**
   * Counts this attempt as a failure for its username from its address, for its username from
   * anywhere and for its address, before the password is checked, one attempt at a time (the
   * `logins` lock, across processes on PostgreSQL): each of many concurrent attempts sees those
   * before it, so at most the limit are ever checked in a window (counting after the ~20 ms check
   * let a burst of 60 try 53 passwords against a limit of 10). Over a limit, nothing is counted and
   * the attempt is refused with 429. A login that succeeds takes its count back (`#succeeded`).
   */
  async #claimAttempt(keys: ThrottleKeys): Promise<void> {
    const { auth, database } = this.#deps.config;
    const now = this.#now;
    const windowMs = auth.loginThrottleWindowSeconds * 1000;
    const limits: [string, number][] = [
      [keys.userAtAddress, auth.loginMaxFailuresPerUser],
      [keys.user, auth.loginMaxFailuresPerUserTotal],
      [keys.address, auth.loginMaxFailuresPerAddress],
    ];
    const retryAfter = await withLock('logins', this.#em.fork(), database.kind, async (em) => {
      // Every limit is checked before anything is written: a refused attempt leaves no trace. (The
      // counters it created on the way, for a username new here, were written by the transaction's
      // flush: two rows per refused attempt, each as cheap as a 429, so an address over its limit
      // could grow the table by millions of rows per window.)
      const counters: { key: string; row: LoginThrottleEntity | null; open: boolean }[] = [];
      for (const [key, limit] of limits) {
        const row = await em.findOne(LoginThrottle, { key });
        const windowEnd = row ? row.windowStartedAt.getTime() + windowMs : 0;
        const open = windowEnd > now.getTime();
        if (open && row!.failures >= limit) return Math.max(1, Math.ceil((windowEnd - now.getTime()) / 1000));
        counters.push({ key, row, open });
      }
      for (const { key, row, open } of counters) {
        if (!row) em.create(LoginThrottle, { key, failures: 1, windowStartedAt: now });
        else if (!open) {
          row.failures = 1;
          row.windowStartedAt = now;
        } else row.failures += 1;
      }
      await em.flush();
      return 0;
    });
    if (retryAfter > 0) {
      throw new HttpProblem(429, 'too_many_requests', 'Too many failed logins; try again later', {
        headers: { 'Retry-After': String(retryAfter) },
        extensions: { retry_after: retryAfter },
      });
    }
  }

  /**
   * Deletes what no request can use any more, so the tables do not grow for ever: sessions past
   * their end or revoked over a day ago, with their refresh tokens (a token of a deleted session is
   * refused like an expired one, and the session's access tokens stop working: a missing session is
   * not live), refresh tokens past their expiry (refused before any reuse check), and login
   * counters whose window has closed (they would start again from zero). Returns the counts.
   */
  async purgeExpired(
    now = this.#now,
  ): Promise<{ sessions: number; refreshTokens: number; loginCounters: number }> {
    await this.#purging; // one purge at a time
    const { auth } = this.#deps.config;
    const dayAgo = new Date(now.getTime() - 24 * 3600 * 1000);
    const windowStart = new Date(now.getTime() - auth.loginThrottleWindowSeconds * 1000);
    const kind = this.#deps.config.database.kind;
    const counts = { sessions: 0, refreshTokens: 0, loginCounters: 0 };
    // In batches, each its own short transaction, with a turn of the event loop between them: a
    // first purge after a long time may find hundreds of thousands of rows (on SQLite, one
    // transaction over all of them held the event loop for seconds).
    await inBatches(() =>
      withLock('logins', this.#em.fork(), kind, async (em) => {
        const rows = await em.find(
          LoginThrottle,
          { windowStartedAt: { $lte: windowStart } },
          { fields: ['key'], limit: PURGE_BATCH },
        );
        if (rows.length > 0) await em.nativeDelete(LoginThrottle, { key: { $in: rows.map((r) => r.key) } });
        counts.loginCounters += rows.length;
        return rows.length;
      }),
    );
    await inBatches(() =>
      this.#em.fork().transactional(async (em) => {
        const ended = await em.find(
          AuthSession,
          { $or: [{ expiresAt: { $lte: now } }, { revokedAt: { $lte: dayAgo } }] },
          { fields: ['id'], limit: PURGE_BATCH },
        );
        const ids = ended.map((session) => session.id);
        if (ids.length > 0) {
          counts.refreshTokens += await em.nativeDelete(RefreshToken, { sessionId: { $in: ids } });
          await em.nativeDelete(AuthSession, { id: { $in: ids } });
        }
        counts.sessions += ids.length;
        return ids.length;
      }),
    );
    await inBatches(() =>
      this.#em.fork().transactional(async (em) => {
        const expired = await em.find(
          RefreshToken,
          { expiresAt: { $lte: now } },
          { fields: ['tokenHash'], limit: PURGE_BATCH },
        );
        if (expired.length > 0)
          await em.nativeDelete(RefreshToken, { tokenHash: { $in: expired.map((t) => t.tokenHash) } });
        counts.refreshTokens += expired.length;
        return expired.length;
      }),
    );
    return counts;
  }

  #purgeNowAndThen(): void {
    const now = this.#now.getTime();
    if (now - this.#lastPurge < PURGE_EVERY_MS) return;
    this.#lastPurge = now;
    this.#purging = this.purgeExpired().catch(() => {
      this.#lastPurge = 0; // tried again on the next login or refresh
    });
  }

  /**
   * A login succeeded: its username's failures from its address are forgotten (typing mistakes),
   * and its count is taken back from its username's and its address's totals (others' failures
   * there still count: a distributed guess is not reset by the user's own login).
   */
  async #succeeded(keys: ThrottleKeys): Promise<void> {
    const { database } = this.#deps.config;
    await withLock('logins', this.#em.fork(), database.kind, async (em) => {
      await em.nativeDelete(LoginThrottle, { key: keys.userAtAddress });
      for (const row of await em.find(LoginThrottle, { key: { $in: [keys.user, keys.address] } })) {
        if (row.failures > 1) row.failures -= 1;
        else em.remove(row);
      }
      await em.flush();
    });
  }
}

/** `token_generation + 1`, computed by the database so concurrent bumps never collapse into one. */
const nextGeneration = () => raw('token_generation + 1') as unknown as number;

interface ThrottleKeys {
  /** The username from this address: the limit a mistyping user or a single guesser meets. */
  userAtAddress: string;
  /** The username from every address: a guess spread over many addresses. */
  user: string;
  /** Every username from this address: one address guessing many accounts. */
  address: string;
}

/**
 * Runs `batch` (one short transaction deleting up to PURGE_BATCH rows, returning how many it
 * found) until a batch finds fewer, with a turn of the event loop after each.
 */
async function inBatches(batch: () => Promise<number>): Promise<void> {
  for (;;) {
    const found = await batch();
    await nextTurn();
    if (found < PURGE_BATCH) return;
  }
}

function throttleKeys(username: string, address: string): ThrottleKeys {
  // Hashed so that any username (any length, any text) makes a fixed-size key.
  const user = createHash('sha256').update(username).digest('hex');
  const from = throttleAddress(address);
  return { userAtAddress: `user:${user}@${from}`, user: `user:${user}`, address: `addr:${from}` };
}

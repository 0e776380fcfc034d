import { defineEntity, type InferEntity, p } from '@mikro-orm/core';

/**
 * A login session: one refresh-token family. Every refresh rotates the token inside the family;
 * revoking the session ends the family and the access tokens issued from it (they carry its id).
 */
export const AuthSession = defineEntity({
  name: 'AuthSession',
  tableName: 'auth_sessions',
  properties: {
    id: p.string().length(36).primary(),
    userId: p.string().length(36).index(),
    createdAt: p.datetime(),
    expiresAt: p.datetime(),
    revokedAt: p.datetime().nullable(),
    revokedReason: p.string().length(32).nullable(),
  },
});
export type AuthSessionEntity = InferEntity<typeof AuthSession>;

/** One refresh token of a session, stored only as its SHA-256. */
export const RefreshToken = defineEntity({
  name: 'RefreshToken',
  tableName: 'refresh_tokens',
  properties: {
    tokenHash: p.string().length(64).primary(),
    sessionId: p.string().length(36).index(),
    createdAt: p.datetime(),
    expiresAt: p.datetime(),
    /** Set when the token is exchanged; presenting it again is reuse and revokes the session. */
    usedAt: p.datetime().nullable(),
  },
});
export type RefreshTokenEntity = InferEntity<typeof RefreshToken>;

/** Failed-login counters per username and per client address, in fixed windows. */
export const LoginThrottle = defineEntity({
  name: 'LoginThrottle',
  tableName: 'login_throttle',
  properties: {
    key: p.string().length(200).primary(),
    failures: p.integer(),
    windowStartedAt: p.datetime(),
  },
});
export type LoginThrottleEntity = InferEntity<typeof LoginThrottle>;

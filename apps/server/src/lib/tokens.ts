import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import { sha256Hex } from './canonical-json.ts';

/** What an access token says about its bearer. */
export interface AccessClaims {
  sub: string;
  username: string;
  role: string;
  /** The session (refresh-token family) the token was issued from. */
  sid: string;
  /** The user's token generation when the token was issued. */
  gen: number;
}

export interface VerifiedAccessToken extends AccessClaims {
  jti: string;
  iat: number;
  exp: number;
}

const ALGORITHM = 'HS256';

export async function signAccessToken(
  claims: AccessClaims,
  secret: Uint8Array,
  now: Date,
  ttlSeconds: number,
): Promise<{ token: string; expiresAt: number }> {
  const iat = Math.floor(now.getTime() / 1000);
  const expiresAt = iat + ttlSeconds;
  const token = await new SignJWT({ ...claims, typ: 'access' })
    .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
    .setJti(randomUUID())
    .setIssuedAt(iat)
    .setExpirationTime(expiresAt)
    .sign(secret);
  return { token, expiresAt };
}

export class InvalidToken extends Error {
  readonly reason: 'expired' | 'invalid';
  constructor(reason: 'expired' | 'invalid') {
    super(reason === 'expired' ? 'The token has expired' : 'The token is invalid');
    this.reason = reason;
  }
}

/** Verifies signature, algorithm (HS256 only: never `none`), expiry and `typ: access`. */
export async function verifyAccessToken(
  token: string,
  secret: Uint8Array,
  now: Date,
): Promise<VerifiedAccessToken> {
  try {
    const { payload } = await jwtVerify(token, secret, {
      algorithms: [ALGORITHM],
      currentDate: now,
      requiredClaims: ['sub', 'jti', 'iat', 'exp'],
    });
    const { sub, username, role, sid, gen, typ, jti, iat, exp } = payload as Record<string, unknown>;
    if (
      typ !== 'access' ||
      typeof sub !== 'string' ||
      typeof username !== 'string' ||
      typeof role !== 'string' ||
      typeof sid !== 'string' ||
      typeof gen !== 'number' ||
      typeof jti !== 'string'
    ) {
      throw new InvalidToken('invalid');
    }
    return { sub, username, role, sid, gen, jti, iat: iat as number, exp: exp as number };
  } catch (err) {
    if (err instanceof InvalidToken) throw err;
    throw new InvalidToken(err instanceof errors.JWTExpired ? 'expired' : 'invalid');
  }
}

/**
 * Verifies access tokens, remembering those whose signature and claims have checked out: a given
 * token string can never become validly signed or unsigned later, so a token seen before costs a
 * map lookup and an expiry check instead of an HMAC. (Revocation is the caller's check, made on
 * every request.) At most `maxEntries` tokens are remembered; the oldest go first.
 */
export class AccessTokenVerifier {
  readonly #secret: Uint8Array;
  readonly #maxEntries: number;
  readonly #verified = new Map<string, Readonly<VerifiedAccessToken>>();

  constructor(secret: Uint8Array, maxEntries = 10_000) {
    this.#secret = secret;
    this.#maxEntries = maxEntries;
  }

  async verify(token: string, now: Date): Promise<Readonly<VerifiedAccessToken>> {
    const known = this.#verified.get(token);
    if (known) {
      // The same rule as jwtVerify: expired once `exp` is not after the current second.
      if (known.exp <= Math.floor(now.getTime() / 1000)) {
        this.#verified.delete(token);
        throw new InvalidToken('expired');
      }
      return known;
    }
    const claims = Object.freeze(await verifyAccessToken(token, this.#secret, now));
    if (this.#verified.size >= this.#maxEntries) {
      const oldest = this.#verified.keys().next().value;
      if (oldest !== undefined) this.#verified.delete(oldest);
    }
    this.#verified.set(token, claims);
    return claims;
  }
}

/**
 * Refresh tokens are opaque random strings (never JWTs, so they can never pass as access tokens);
 * the server keeps only their SHA-256.
 */
export function newRefreshToken(): { token: string; hash: string } {
  const token = `rt_${randomBytes(32).toString('base64url')}`;
  return { token, hash: hashRefreshToken(token) };
}

/**
 * The token a refresh exchanges `presented` for, with the exchange's key when the client named it
 * (an Idempotency-Key): the same presented token and key, or the same token without a key, always
 * give the same successor, so an exchange sent again (its answer was lost, or two were sent at
 * once) can be answered again without keeping any token in clear. A keyed and an unkeyed exchange
 * of one token give different successors. Without the server's secret the successor cannot be
 * derived from what the client sent.
 */
export function successorToken(
  presented: string,
  exchangeKey: string | undefined,
  secret: Uint8Array,
): { token: string; hash: string } {
  // A key is a canonical UUID, never empty: the unkeyed exchange cannot meet a keyed one.
  const mac = createHmac('sha256', secret)
    .update(`synk refresh rotation\0${presented}\0${exchangeKey ?? ''}`)
    .digest('base64url');
  const token = `rt_${mac}`;
  return { token, hash: hashRefreshToken(token) };
}

export function hashRefreshToken(token: string): string {
  return sha256Hex(token);
}

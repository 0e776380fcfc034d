import { describe, expect, it } from 'vitest';
import { AccessTokenVerifier, InvalidToken, signAccessToken } from '../src/lib/tokens.ts';

const secret = new TextEncoder().encode('a-test-secret-of-enough-length-1234');
const claims = { sub: 'u1', username: 'ann', role: 'admin', sid: 's1', gen: 1 };

async function reason(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'accepted';
  } catch (err) {
    return err instanceof InvalidToken ? err.reason : String(err);
  }
}

describe('AccessTokenVerifier', () => {
  it('accepts a token again from memory until it expires, then reports it expired', async () => {
    const issued = new Date('2026-01-01T00:00:00Z');
    const { token, expiresAt } = await signAccessToken(claims, secret, issued, 60);
    const verifier = new AccessTokenVerifier(secret);
    expect(await verifier.verify(token, issued)).toMatchObject({ ...claims, exp: expiresAt });
    expect(await verifier.verify(token, new Date(issued.getTime() + 59_999))).toMatchObject(claims);
    expect(await reason(verifier.verify(token, new Date(issued.getTime() + 60_000)))).toBe('expired');
    expect(await reason(verifier.verify(token, new Date(issued.getTime() + 60_000)))).toBe('expired');
  });

  it('never remembers a token that failed, and keeps checking signatures of new ones', async () => {
    const now = new Date();
    const { token } = await signAccessToken(claims, secret, now, 60);
    const other = new AccessTokenVerifier(new TextEncoder().encode('another-secret-of-enough-length-99'));
    expect(await reason(other.verify(token, now))).toBe('invalid');
    expect(await reason(other.verify(token, now))).toBe('invalid');
    const verifier = new AccessTokenVerifier(secret, 1);
    const tampered = `${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`;
    expect(await reason(verifier.verify(tampered, now))).toBe('invalid');
    expect(await reason(verifier.verify(token, now))).toBe('accepted');
    const { token: second } = await signAccessToken({ ...claims, sid: 's2' }, secret, now, 60);
    expect(await verifier.verify(second, now)).toMatchObject({ sid: 's2' });
    expect(await verifier.verify(token, now)).toMatchObject({ sid: 's1' });
  });
});

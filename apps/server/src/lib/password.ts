import argon2 from 'argon2';

/**
 * argon2id with OWASP's recommended minimum cost (19 MiB, 2 passes, 1 lane): about 20 ms per
 * hash here, so login stays fast while offline guessing stays expensive.
 */
const OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, OPTIONS);
}

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false;
  }
}

let dummyHash: Promise<string> | undefined;

/**
 * Spends the same time as a real verification, for logins of unknown users, so a response's
 * timing does not tell which usernames exist.
 */
export async function verifyAgainstDummy(password: string): Promise<false> {
  dummyHash ??= hashPassword('dummy password that never matches anything');
  await verifyPassword(await dummyHash, password);
  return false;
}

export interface PasswordPolicy {
  minLength: number;
  maxLength: number;
}

/**
 * Length in characters (code points), not bytes or UTF-16 units. Returns a problem, or undefined.
 * A password must be well-formed text: an unpaired surrogate (half of an emoji, cut by a client)
 * is hashed as U+FFFD, so every lone surrogate, and U+FFFD itself, would log in in its place, and
 * typing the whole character later would not.
 */
export function checkPasswordPolicy(password: string, policy: PasswordPolicy): string | undefined {
  if (!password.isWellFormed()) return 'must be valid Unicode text (it has an unpaired surrogate)';
  const length = [...password].length;
  if (length < policy.minLength) return `must be at least ${policy.minLength} characters long`;
  if (length > policy.maxLength) return `must be at most ${policy.maxLength} characters long`;
  return undefined;
}

/**
 * Secrets this project has printed in its own examples (deploy/compose.yaml shipped these): anyone
 * can read them, so a server started with one signs its tokens with a key that is no secret, or
 * has an administrator whose password is no secret. Refused at start.
 */
export const PUBLISHED_JWT_SECRETS: ReadonlySet<string> = new Set([
  'change-me-to-a-long-random-secret-of-32-bytes-or-more',
]);

export const PUBLISHED_ADMIN_PASSWORDS: ReadonlySet<string> = new Set(['change-me-please']);

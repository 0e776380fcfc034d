/**
 * The characters and length of every username (1–64 of A-Z a-z 0-9 . _ @ -), also of those created
 * before the rule below: a name outside it is no user's, and is not looked up.
 */
export const USERNAME_PATTERN = /^[A-Za-z0-9._@-]{1,64}$/;

/**
 * What a new username (a created user's, the bootstrap admin's) may be: the pattern above, but not
 * `.` or `..`. Clients resolve those as dot segments of a URL (WHATWG URLs, so fetch, browsers and
 * the SDK; `%2e%2e` too): `DELETE /users/..` went out as `DELETE /`, so such a user could be created
 * but never deleted or given another role.
 */
export function isNewUsername(name: string): boolean {
  return USERNAME_PATTERN.test(name) && name !== '.' && name !== '..';
}

export const USERNAME_RULE = 'must be 1-64 characters of A-Z a-z 0-9 . _ @ -, and not . or ..';

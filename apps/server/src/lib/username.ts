/** What a username may be: 1–64 of A-Z a-z 0-9 . _ @ - (the bootstrap admin's and every created user's). */
export const USERNAME_PATTERN = /^[A-Za-z0-9._@-]{1,64}$/;
export const USERNAME_RULE = 'must be 1-64 characters of A-Z a-z 0-9 . _ @ -';

/**
 * `If-None-Match` against the current entity tag: `*`, a comma-separated list, and weak tags
 * (`W/"…"`, compared weakly as RFC 9110 §13.1.2 asks for GET/HEAD) all match.
 */
export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  const bare = etag.replace(/^W\//, '');
  return header
    .split(',')
    .map((tag) => tag.trim().replace(/^W\//, ''))
    .some((tag) => tag === bare);
}

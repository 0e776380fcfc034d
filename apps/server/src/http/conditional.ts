import type { Request, Response } from 'express';

/**
 * Sets the entity tag and answers 304 when the client already has this entity. Returns true when
 * the response is finished (nothing more to send).
 */
export function answerIfNotModified(req: Request, res: Response, etag: string): boolean {
  res.setHeader('ETag', etag);
  if (!ifNoneMatchHits(req.header('if-none-match'), etag)) return false;
  res.status(304).end();
  return true;
}

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

import type { Request, Response } from 'express';
import { type ByteRange, rangeToServe } from '../lib/byte-range.ts';
import { HttpProblem } from './errors.ts';

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

/**
 * The one range of a GET to answer with 206 (see `rangeToServe`), `undefined` for the whole
 * `size`-byte entity; a 416 problem, its Content-Range naming the size, when none of it is in range.
 * `what` names the entity in the problem's detail.
 */
export function rangeOrUnsatisfiable(
  req: Request,
  etag: string,
  size: number,
  what: string,
): ByteRange | undefined {
  const range = rangeToServe({ range: req.header('range'), ifRange: req.header('if-range') }, etag, size);
  if (range !== 'unsatisfiable') return range;
  throw new HttpProblem(416, 'range_not_satisfiable', `The range is outside the ${size}-byte ${what}`, {
    headers: { 'Content-Range': `bytes */${size}` },
  });
}

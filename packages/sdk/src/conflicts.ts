import type { Client } from 'openapi-fetch';
import { cursorPages } from './cursor-pages.ts';
import type { components, paths } from './generated/schema.ts';

/** A page of the server's conflict log (admin): `conflicts`, `has_more` and `next_after`. */
export type ConflictPage = components['schemas']['ConflictList'];
/** One conflict the server logged: the incoming record and the server's copy it conflicted with. */
export type ConflictEntry = components['schemas']['ConflictEntry'];

/** Options of `conflictPages`. */
export interface ConflictPageOptions {
  /** Start after this conflict log id (default 0: from the first entry). */
  after?: number;
  /** Entries per request (1–500; the server's default, 50, when absent). */
  limit?: number;
  signal?: AbortSignal;
}

/**
 * Pages of the conflict log in ascending id order, from `after` on, until the server says there
 * are no more. A read for administrators, so nothing is stored: the caller keeps the last page's
 * `next_after` if it wants to resume later.
 */
export function conflictPages(
  api: Client<paths>,
  options: ConflictPageOptions = {},
): AsyncGenerator<ConflictPage> {
  return cursorPages('GET /sync/conflicts', options.after ?? 0, (after) =>
    api.GET('/sync/conflicts', {
      params: { query: { after, ...(options.limit !== undefined ? { limit: options.limit } : {}) } },
      ...(options.signal ? { signal: options.signal } : {}),
    }),
  );
}

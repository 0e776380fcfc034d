import { ApiError, type Problem } from './errors.ts';
import type { components, paths } from './generated/schema.ts';

type Api = ReturnType<typeof import('openapi-fetch').default<paths>>;

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
export async function* conflictPages(
  api: Api,
  options: ConflictPageOptions = {},
): AsyncGenerator<ConflictPage> {
  let after = options.after ?? 0;
  for (;;) {
    const { data, error, response } = await api.GET('/sync/conflicts', {
      params: { query: { after, ...(options.limit !== undefined ? { limit: options.limit } : {}) } },
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (!data) throw ApiError.of(response, error as Problem | undefined);
    yield data;
    if (!data.has_more) return;
    const next = data.next_after ?? data.conflicts.at(-1)?.id;
    // A cursor that does not move would read the same page forever.
    if (next === undefined || next <= after)
      throw new Error(
        `GET /sync/conflicts said there are more entries after ${after} but not where they start`,
      );
    after = next;
  }
}

import { ApiError, type Problem } from './errors.ts';

/** What openapi-fetch answers a request with. */
interface Answer<Page> {
  data?: Page;
  error?: unknown;
  response: Response;
}

/**
 * Pages of a listing that goes on after a cursor (`GET /sync/conflicts`, `GET /sync/clients`):
 * each request starts after the last page's `next_after`, until `has_more` is false. A refusal is
 * thrown as an ApiError. A page that says there is more but gives no cursor, or the same one again,
 * is an error: following it would read the same page forever, and stopping would look complete.
 */
export async function* cursorPages<
  Cursor extends string | number,
  Page extends { has_more: boolean; next_after?: Cursor },
>(
  listing: string,
  after: Cursor | undefined,
  fetchPage: (after: Cursor | undefined) => Promise<Answer<Page>>,
): AsyncGenerator<Page> {
  for (;;) {
    const { data, error, response } = await fetchPage(after);
    if (!data) throw ApiError.of(response, error as Problem | undefined);
    yield data;
    if (!data.has_more) return;
    const next = data.next_after;
    if (next === undefined || next === after)
      throw new Error(`${listing} said there is more after ${after ?? 'the start'} but not where it starts`);
    after = next;
  }
}

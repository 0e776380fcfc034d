import { loopbackServer } from '@synk/test-support/hooks';
import { describe, expect, it } from 'vitest';
import { createClient } from '../src/client.ts';
import { ApiError } from '../src/errors.ts';

const session = { token: 'access', refreshToken: 'refresh', expiresAt: 4_000_000_000 };

/** A conflict log entry with this id (the fields the contract requires). */
function entry(id: number) {
  return {
    id,
    observation_id: `o${id}`,
    form_type: 'household',
    policy: 'last-write-wins',
    base_version: 1,
    server_version: 2,
    client_id: 'tablet',
    username: 'field-1',
    transmission_id: '00000000-0000-4000-8000-000000000000',
    detected_at: '2025-01-01T00:00:00.000Z',
    incoming: { observation_id: `o${id}`, form_type: 'household', data: {}, deleted: false },
    server: { observation_id: `o${id}`, form_type: 'household', data: {}, deleted: false, version: 2 },
  };
}

describe('conflictPages', () => {
  /** A log of entries 1–5; the query of every request, in order. */
  const LOG = [1, 2, 3, 4, 5].map(entry);
  const queries: string[] = [];
  /** When set, the next answer is this status (a problem) instead of a page. */
  let refuse: number | undefined;
  /** When set, pages say `has_more` but leave out `next_after` and the entries (a broken server). */
  let lost = false;
  const server = loopbackServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    queries.push(url.search);
    if (refuse !== undefined) {
      res
        .writeHead(refuse, { 'content-type': 'application/problem+json' })
        .end(JSON.stringify({ status: refuse, code: 'forbidden', detail: 'admin only' }));
      return;
    }
    if (lost) {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"conflicts":[],"has_more":true}');
      return;
    }
    const after = Number(url.searchParams.get('after') ?? 0);
    const limit = Number(url.searchParams.get('limit') ?? 50);
    const rest = LOG.filter((c) => c.id > after);
    const page = rest.slice(0, limit);
    const hasMore = rest.length > limit;
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        conflicts: page,
        has_more: hasMore,
        ...(hasMore ? { next_after: page.at(-1)!.id } : {}),
      }),
    );
  });
  const client = () => createClient({ baseUrl: server.base, tokens: session, retry: { retries: 0 } });

  it('pages through the whole log from `after`, each request starting where the last page ended', async () => {
    queries.length = 0;
    const pages = [];
    for await (const page of client().conflictPages({ after: 1, limit: 2 })) pages.push(page);
    expect(pages.map((p) => p.conflicts.map((c) => c.id))).toEqual([
      [2, 3],
      [4, 5],
    ]);
    expect(pages.map((p) => p.has_more)).toEqual([true, false]);
    expect(queries).toEqual(['?after=1&limit=2', '?after=3&limit=2']);
  });

  it('starts from the beginning with the server’s page size when not told otherwise', async () => {
    queries.length = 0;
    const ids = [];
    for await (const page of client().conflictPages()) ids.push(...page.conflicts.map((c) => c.id));
    expect(ids).toEqual([1, 2, 3, 4, 5]);
    expect(queries).toEqual(['?after=0']);
  });

  it('throws the server’s refusal as an ApiError with its problem details', async () => {
    refuse = 403;
    try {
      const error = await client()
        .conflictPages()
        .next()
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(error).toBeInstanceOf(ApiError);
      expect(error).toMatchObject({ status: 403, problem: { code: 'forbidden' } });
    } finally {
      refuse = undefined;
    }
  });

  it('stops with an error when the server says there is more but not where it starts, instead of looping', async () => {
    lost = true;
    queries.length = 0;
    try {
      const pages = client().conflictPages();
      expect((await pages.next()).value).toMatchObject({ has_more: true });
      await expect(pages.next()).rejects.toThrow(/more after 0 but not where it starts/);
      expect(queries).toHaveLength(1);
    } finally {
      lost = false;
    }
  });
});

import { loopbackServer } from '@synk/test-support/hooks';
import { describe, expect, it } from 'vitest';
import { createClient } from '../src/client.ts';
import { ApiError } from '../src/errors.ts';

const session = { token: 'access', refreshToken: 'refresh', expiresAt: 4_000_000_000 };
const device = (client_id: string) => ({
  client_id,
  username: 'field-user',
  first_seen_at: '2026-03-01T08:00:00.000Z',
  last_seen_at: '2026-03-01T08:00:00.000Z',
  last_push_at: null,
  last_pull_at: '2026-03-01T08:00:00.000Z',
  highest_pushed_version: null,
  change_cutoff: 3,
  behind_by: 4,
  push_count: 0,
  records_accepted: 0,
});

describe('syncClientPages', () => {
  const ids = ['a', 'b', 'c', 'd', 'e'];
  const requested: string[] = [];
  const server = loopbackServer((req, res) => {
    requested.push(req.url ?? '');
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.searchParams.get('after') === 'forbidden') {
      res
        .writeHead(403, { 'content-type': 'application/problem+json' })
        .end('{"status":403,"code":"forbidden"}');
      return;
    }
    const limit = Number(url.searchParams.get('limit') ?? 50);
    const after = url.searchParams.get('after');
    const rest = ids.filter((id) => after === null || id > after);
    const page = rest.slice(0, limit);
    const hasMore = rest.length > limit;
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        clients: page.map(device),
        has_more: hasMore,
        ...(hasMore ? { next_after: page.at(-1) } : {}),
        current_version: 7,
      }),
    );
  });
  const client = () => createClient({ baseUrl: server.base, tokens: session, retry: { retries: 0 } });

  it('follows next_after until has_more is false, from `after` when given', async () => {
    requested.length = 0;
    const pages = [];
    for await (const page of client().syncClientPages({ limit: 2 })) pages.push(page);
    expect(pages.map((p) => p.clients.map((c) => c.client_id))).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    expect(requested).toEqual([
      '/sync/clients?limit=2',
      '/sync/clients?limit=2&after=b',
      '/sync/clients?limit=2&after=d',
    ]);

    const resumed = [];
    for await (const page of client().syncClientPages({ after: 'c' })) resumed.push(...page.clients);
    expect(resumed.map((c) => c.client_id)).toEqual(['d', 'e']);
  });

  it('throws the server’s refusal as an ApiError', async () => {
    const pages = client().syncClientPages({ after: 'forbidden' });
    await expect(pages.next()).rejects.toSatisfy(
      (err) => err instanceof ApiError && err.status === 403 && err.problem?.code === 'forbidden',
    );
  });
});

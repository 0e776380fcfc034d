import { loopbackServer } from '@synk/test-support/hooks';
import { describe, expect, it } from 'vitest';
import { createClient } from '../src/client.ts';

const session = { token: 'access', refreshToken: 'refresh', expiresAt: 4_000_000_000 };

describe('auth.logout reports whether the server ended the session', () => {
  /** The status each logout is answered with, in turn; what each logout sent. */
  const statuses: number[] = [];
  const received: unknown[] = [];
  const server = loopbackServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    if (req.url === '/auth/refresh') {
      // The session is unknown here too (a 401 to the logout is first answered by a refresh).
      res.writeHead(401, { 'content-type': 'application/problem+json' }).end('{"status":401}');
      return;
    }
    received.push({ url: req.url, body: JSON.parse(body || 'null') });
    const status = statuses.shift() ?? 200;
    if (status === 502)
      res.writeHead(502, { 'content-type': 'text/html' }).end('<html><body>502 Bad Gateway</body></html>');
    else
      res
        .writeHead(status, { 'content-type': 'application/json' })
        .end(JSON.stringify(status === 200 ? { message: 'Logged out successfully' } : { status }));
  });
  const client = () => createClient({ baseUrl: server.base, tokens: session, retry: { retries: 0 } });

  it.each([
    [200, true],
    [401, true],
    [502, false],
    [500, false],
    [403, false],
  ])('answered %i: confirmed %s, and the session is deleted here either way', async (status, confirmed) => {
    statuses.push(status);
    received.length = 0;
    const c = client();
    expect(await c.auth.logout()).toEqual({ confirmed, status });
    expect(received).toEqual([{ url: '/auth/logout', body: { refreshToken: 'refresh' } }]);
    expect(await c.auth.tokens()).toBeUndefined();
  });

  it('without a session sends nothing and has nothing left to end', async () => {
    received.length = 0;
    expect(await createClient({ baseUrl: server.base }).auth.logout()).toEqual({ confirmed: true });
    expect(received).toEqual([]);
  });
});

import { randomUUID } from 'node:crypto';
import { usePostgres } from '@synk/test-support/hooks';
import { postgresAvailable } from '@synk/test-support/postgres';
import fc from 'fast-check';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './helpers.ts';

/**
 * Random, malformed and hostile input on every kind of route: a client's mistake is a 4xx, never
 * a 500 (spec §0.5). fast-check prints the input that failed, the assertion the server's answer.
 */
const RUNS = 400;

/** Text for paths and query values: plain, with NULs, traversal. */
const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('a\u0000b', '\u0000', '..', '%2e%2e', 'admin', '0001'),
);

/** Mostly text (plain, binary, with NULs, near-valid), then any JSON value. */
const weird = fc.oneof(
  { arbitrary: fc.string({ unit: 'binary', maxLength: 300 }), weight: 3 },
  {
    arbitrary: fc.constantFrom(
      '',
      '\u0000',
      'a\u0000b',
      'admin',
      'read-only',
      '../../etc/passwd',
      "'; drop table users; --",
      '2026-02-30T00:00:00Z',
      '9999-12-31T23:59:60Z',
      'x'.repeat(5000),
    ),
    weight: 3,
  },
  { arbitrary: fc.constantFrom(null, 1e308, -0, -1, 2 ** 53, 0.5, true, [], {}), weight: 2 },
  { arbitrary: fc.anything(), weight: 2 },
);

const record = fc.record(
  {
    observation_id: weird,
    form_type: weird,
    form_version: weird,
    data: fc.oneof(fc.object(), weird),
    created_at: weird,
    updated_at: weird,
    deleted: weird,
    geolocation: fc.oneof(
      fc.record({ latitude: weird, longitude: weird, accuracy: weird, altitude: weird }),
      weird,
    ),
    base_version: weird,
    version: weird,
    hash: weird,
  },
  { requiredKeys: [] },
);

const posts = [
  '/auth/login',
  '/auth/refresh',
  '/auth/logout',
  '/users/create',
  '/users',
  '/users/reset-password',
  '/users/change-password',
  '/attachments/manifest',
  '/app-bundle/switch/0001',
];

const gets = [
  '/users/',
  '/app-bundle/changes',
  '/app-bundle/manifest',
  '/app-bundle/download/',
  '/app-bundle/download-zip',
  '/app-bundle/versions',
  '/dataexport/csv',
  '/attachments/',
  '/sync/conflicts',
  '/health',
  '/version',
  '/api/versions',
];

/** The same checks against a server on the database `connection` gives. */
function neverServerErrors(connection: () => Promise<string>) {
  let t: TestApp;
  let token: string;
  beforeAll(async () => {
    t = await createTestApp({ SYNC_VALIDATION: 'warn', DB_CONNECTION: await connection() });
    token = await t.tokenFor('admin');
  });
  afterAll(() => t?.close());

  /** A property: whatever `input` gives, the request `send` makes is answered below 500. */
  const neverFails = <T>(
    name: string,
    input: fc.Arbitrary<T>,
    send: (value: T) => PromiseLike<{ status: number; body: unknown }>,
  ) =>
    it(name, async () => {
      await fc.assert(
        fc.asyncProperty(input, async (value) => {
          const res = await send(value);
          expect(res.status, JSON.stringify(res.body)).toBeLessThan(500);
        }),
        { numRuns: RUNS },
      );
    }, 300_000);

  neverFails(
    'push never 500s',
    fc.tuple(fc.array(record, { maxLength: 5 }), fc.oneof(fc.constant(undefined), weird)),
    ([records, clientId]) =>
      request(t.app)
        .post('/sync/push')
        .set('authorization', `Bearer ${token}`)
        .send({ transmission_id: randomUUID(), client_id: clientId ?? 'fuzz', records }),
  );

  neverFails(
    'pull never 500s',
    fc.tuple(
      fc.record(
        {
          client_id: weird,
          since: fc.oneof(fc.record({ version: weird, id: weird }), weird),
          schema_types: fc.oneof(weird, fc.array(weird, { maxLength: 3 })),
          after_change_id: weird,
        },
        { requiredKeys: [] },
      ),
      fc.oneof(
        fc.constant(''),
        fc.string(),
        text.map((value) => `schemaType=${encodeURIComponent(value)}`),
        fc.constant('?limit=0'),
        fc.constant('?page_token=%00'),
        fc.webQueryParameters(),
      ),
    ),
    ([body, query]) =>
      request(t.app)
        .post(`/sync/pull${query.startsWith('?') || query === '' ? query : `?${query}`}`)
        .set('authorization', `Bearer ${token}`)
        .send(body),
  );

  neverFails(
    'JSON posts never 500',
    fc.tuple(
      fc.constantFrom(...posts),
      fc.record(
        {
          username: weird,
          password: weird,
          role: weird,
          refreshToken: weird,
          newPassword: weird,
          currentPassword: weird,
          oldPassword: weird,
          client_id: weird,
          since_version: weird,
        },
        { requiredKeys: [] },
      ),
      fc.boolean(),
    ),
    ([p, body, auth]) => {
      const r = request(t.app).post(p);
      return (auth ? r.set('authorization', `Bearer ${token}`) : r).send(body);
    },
  );

  neverFails(
    'GETs with odd paths and queries never 500',
    fc.tuple(
      fc.constantFrom(...gets),
      text,
      fc.oneof(
        fc.webQueryParameters(),
        fc
          .tuple(
            fc.constantFrom(
              'form_type',
              'since_version',
              'include_deleted',
              'current',
              'target',
              'version',
              'preview',
              'limit',
              'after',
            ),
            text,
          )
          .map(([name, value]) => `${name}=${encodeURIComponent(value)}`),
      ),
      fc.constantFrom('GET', 'HEAD', 'DELETE', 'PATCH'),
    ),
    ([p, tail, q, method]) => {
      // Header values cannot carry control characters: the client itself refuses them.
      const header = tail.replace(/[^\x20-\x7e]/g, '');
      const url = `${p}${p.endsWith('/') ? encodeURIComponent(tail) : ''}${q ? `?${q}` : ''}`;
      return request(t.app)
        [method.toLowerCase() as 'get'](url)
        .set('authorization', `Bearer ${token}`)
        .set('if-none-match', header)
        .set('range', `bytes=${header}`);
    },
  );
}

describe('on SQLite', () => {
  neverServerErrors(async () => ':memory:');
});

describe.skipIf(!postgresAvailable())('on PostgreSQL', () => {
  const postgres = usePostgres();
  neverServerErrors(() => postgres.server.createDatabase());
});

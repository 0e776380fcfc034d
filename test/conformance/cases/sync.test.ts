import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTarget } from '../src/harness.ts';
import { adminToken, call, send, userWithRole } from '../src/http.ts';
import { pull, pullAll, push, record } from '../src/sync.ts';

const target = useTarget({ SYNC_MAX_RECORDS: '1000' });

let writer: { token: string; username: string };
let reader: { token: string };
beforeAll(async () => {
  writer = await userWithRole(target, 'read-write');
  reader = await userWithRole(target, 'read-only');
});

describe('push then pull', () => {
  it('stores every field of the record model and hands out versions from the global counter', async () => {
    const before = (await pull(target, reader.token)).body.current_version as number;
    const geo = { latitude: -33.9, longitude: 18.4, accuracy: 4.5, altitude: 12, altitude_accuracy: 3 };
    const records = [record({ geolocation: geo }), record(), record({ deleted: true })];
    const res = await push(target, writer.token, records, { clientId: 'tablet-7' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      current_version: before + 3,
      success_count: 3,
      failed_records: [],
      warnings: [],
      server_time: expect.any(String),
    });

    const { records: pulled } = await pullAll(target, reader.token, before);
    expect(pulled.map((r) => r.observation_id)).toEqual(records.map((r) => r.observation_id));
    expect(pulled.map((r) => r.version)).toEqual([before + 1, before + 2, before + 3]);
    const [first, , third] = pulled;
    expect(first).toEqual({
      observation_id: records[0]!.observation_id,
      form_type: 'household',
      form_version: '1.0',
      data: records[0]!.data,
      created_at: '2026-01-02T03:04:05Z',
      updated_at: '2026-01-02T03:04:05.123+02:00',
      synced_at: expect.any(String),
      deleted: false,
      version: before + 1,
      geolocation: geo,
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      last_modified_by: writer.username,
      origin_client_id: 'tablet-7',
    });
    expect(pulled[1]).not.toHaveProperty('geolocation');
    expect(third).toMatchObject({ deleted: true });
  });

  it('an identical re-push succeeds without consuming versions or being re-broadcast', async () => {
    const records = [record(), record()];
    await push(target, writer.token, records);
    const { currentVersion } = await pullAll(target, reader.token, 0);
    // Same content, different key order and a fresh transmission: still identical.
    const reordered = records.map((r) => Object.fromEntries(Object.entries(r).reverse()));
    const again = await push(target, writer.token, reordered);
    expect(again.status).toBe(200);
    expect(again.body.success_count).toBe(2);
    expect(again.body.current_version).toBe(currentVersion);
    expect((await pull(target, reader.token, { since: { version: currentVersion } })).body.records).toEqual(
      [],
    );
  });

  it('keeps created_at from the first write and the client’s updated_at from the latest', async () => {
    const first = record({ created_at: '2025-05-05T05:05:05Z', updated_at: '2025-05-05T05:05:05Z' });
    await push(target, writer.token, [first]);
    const second = {
      ...first,
      data: { changed: true },
      created_at: '2030-01-01T00:00:00Z',
      updated_at: '2025-06-06T06:06:06Z',
    };
    await push(target, writer.token, [second]);
    const { records } = await pullAll(target, reader.token, 0);
    const stored = records.filter((r) => r.observation_id === first.observation_id);
    expect(stored.at(-1)).toMatchObject({
      data: { changed: true },
      created_at: '2025-05-05T05:05:05Z',
      updated_at: '2025-06-06T06:06:06Z',
    });
  });

  it('keeps data keys written with escapes exactly, also after a key that trips V8 (nodejs/node#63785)', async () => {
    // The first record's `\\` key puts V8's key cache into the state where, in a later parse, the
    // key `"\""` of an object shaped like it would decode as `\`. Separate requests, separate parses.
    const victims = [
      { h: 1, '"': 2 },
      { h: 1, '"': 2, 'line\nbreak': 3, 'tab\there': 4, 'back\\slash': 5, '\u0000': 6, é: 7 },
    ];
    const sent = [{ h: [], '\\': 0 }, ...victims];
    for (const [i, data] of sent.entries()) {
      const res = await push(target, writer.token, [
        record({ observation_id: `escaped-keys-${i}`, form_type: 'escaped', data }),
      ]);
      expect(res.body).toMatchObject({ success_count: 1, failed_records: [] });
    }
    const pulled = await pullAll(target, reader.token, 0, { schema_types: ['escaped'] });
    expect(pulled.records.map((r) => r.data)).toEqual(sent);
  });

  it('`records: []` is fine', async () => {
    const res = await push(target, writer.token, []);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ success_count: 0, failed_records: [], warnings: [] });
  });
});

/** `levels` objects and arrays nested in one another, inside a record's `data` object. */
function nested(levels: number): Record<string, unknown> {
  let value: unknown = 'leaf';
  for (let i = 0; i < levels; i++) value = i % 2 ? { k: value } : [value];
  return { k: value };
}

describe('per-record outcomes', () => {
  const bad: [string, unknown][] = [
    ['a null record', null],
    ['a string record', 'obs'],
    ['an array record', [1, 2]],
    ['missing observation_id', { form_type: 'f', data: {} }],
    ['empty observation_id', { observation_id: '', form_type: 'f', data: {} }],
    ['numeric observation_id', { observation_id: 42, form_type: 'f', data: {} }],
    ['256-character observation_id', { observation_id: 'x'.repeat(256), form_type: 'f', data: {} }],
    ['missing form_type', { observation_id: 'a', data: {} }],
    ['empty form_type', { observation_id: 'a', form_type: '', data: {} }],
    ['256-character form_type', { observation_id: 'a', form_type: 'f'.repeat(256), data: {} }],
    [
      '51-character form_version',
      { observation_id: 'a', form_type: 'f', form_version: 'v'.repeat(51), data: {} },
    ],
    ['numeric form_version', { observation_id: 'a', form_type: 'f', form_version: 2, data: {} }],
    ['missing data', { observation_id: 'a', form_type: 'f' }],
    ['array data', { observation_id: 'a', form_type: 'f', data: [] }],
    ['string data', { observation_id: 'a', form_type: 'f', data: '{}' }],
    ['null data', { observation_id: 'a', form_type: 'f', data: null }],
    [
      'a date that is not a timestamp',
      { observation_id: 'a', form_type: 'f', data: {}, created_at: 'yesterday' },
    ],
    ['month 13', { observation_id: 'a', form_type: 'f', data: {}, updated_at: '2025-13-01T00:00:00Z' }],
    ['a numeric timestamp', { observation_id: 'a', form_type: 'f', data: {}, created_at: 1700000000 }],
    [
      'a timestamp without zone',
      { observation_id: 'a', form_type: 'f', data: {}, created_at: '2025-01-01T00:00:00' },
    ],
    [
      'latitude 91',
      {
        observation_id: 'a',
        form_type: 'f',
        data: {},
        geolocation: { latitude: 91, longitude: 0, accuracy: 1 },
      },
    ],
    [
      'longitude -181',
      {
        observation_id: 'a',
        form_type: 'f',
        data: {},
        geolocation: { latitude: 0, longitude: -181, accuracy: 1 },
      },
    ],
    [
      'negative accuracy',
      {
        observation_id: 'a',
        form_type: 'f',
        data: {},
        geolocation: { latitude: 0, longitude: 0, accuracy: -1 },
      },
    ],
    [
      'missing accuracy',
      { observation_id: 'a', form_type: 'f', data: {}, geolocation: { latitude: 0, longitude: 0 } },
    ],
    ['string geolocation', { observation_id: 'a', form_type: 'f', data: {}, geolocation: '0,0' }],
    [
      'string latitude',
      {
        observation_id: 'a',
        form_type: 'f',
        data: {},
        geolocation: { latitude: '1', longitude: 0, accuracy: 1 },
      },
    ],
    [
      'a space between date and time',
      { observation_id: 'a', form_type: 'f', data: {}, created_at: '2025-01-01 10:00:00Z' },
    ],
    ['February 30', { observation_id: 'a', form_type: 'f', data: {}, updated_at: '2025-02-30T00:00:00Z' }],
    ['hour 24', { observation_id: 'a', form_type: 'f', data: {}, created_at: '2025-01-01T24:00:00Z' }],
    [
      'a leap second not at the end of a UTC day',
      { observation_id: 'a', form_type: 'f', data: {}, created_at: '2016-12-31T12:59:60Z' },
    ],
    [
      'an offset of 24 hours',
      { observation_id: 'a', form_type: 'f', data: {}, created_at: '2025-01-01T10:00:00+24:00' },
    ],
    ['a NUL in observation_id', { observation_id: 'a\u0000b', form_type: 'f', data: {} }],
    ['a NUL in form_type', { observation_id: 'a', form_type: 'f\u0000g', data: {} }],
    ['a NUL in form_version', { observation_id: 'a', form_type: 'f', form_version: '1\u0000', data: {} }],
    ['an unpaired surrogate in observation_id', { observation_id: 's\ud800', form_type: 'f', data: {} }],
    ['an unpaired surrogate in form_type', { observation_id: 'a', form_type: '\udc00f', data: {} }],
    [
      '256 astral characters of observation_id',
      { observation_id: '😀'.repeat(256), form_type: 'f', data: {} },
    ],
    ['data nested 101 levels', { observation_id: 'a', form_type: 'f', data: nested(100) }],
    ['non-boolean deleted', { observation_id: 'a', form_type: 'f', data: {}, deleted: 'yes' }],
    ['negative base_version', { observation_id: 'a', form_type: 'f', data: {}, base_version: -1 }],
    ['fractional base_version', { observation_id: 'a', form_type: 'f', data: {}, base_version: 1.5 }],
    ['string base_version', { observation_id: 'a', form_type: 'f', data: {}, base_version: '3' }],
  ];

  it.each(bad)('%s fails alone; the rest of the batch is committed', async (_label, badRecord) => {
    const good = [record(), record()];
    const res = await push(target, writer.token, [good[0], badRecord, good[1]]);
    expect(res.status).toBe(200);
    expect(res.body.success_count).toBe(2);
    expect(res.body.failed_records).toHaveLength(1);
    expect(res.body.failed_records[0]).toMatchObject({
      index: 1,
      code: 'invalid_record',
      error: expect.any(String),
    });
    expect(res.body.failed_records[0].errors.length).toBeGreaterThan(0);
    const pulled = await pull(target, reader.token, { since: { version: res.body.current_version - 2 } });
    expect(pulled.body.records.map((r: { observation_id: string }) => r.observation_id)).toEqual(
      good.map((g) => g.observation_id),
    );
  });

  /** Pushes a good record and one written as JSON text (which JSON.stringify could not write). */
  async function pushText(badRecord: string) {
    const text = `{"transmission_id":"${randomUUID()}","client_id":"conformance-client","records":[${JSON.stringify(record())},${badRecord}]}`;
    const raw = await send(target, '/sync/push', {
      method: 'POST',
      headers: { authorization: `Bearer ${writer.token}`, 'content-type': 'application/json' },
      body: text,
    });
    return { status: raw.status, body: await raw.json() };
  }

  it('refuses a number JSON text cannot hold (1e400) by itself, naming where it is, instead of storing null', async () => {
    const res = await pushText(
      '{"observation_id":"too-big","form_type":"f","data":{"list":[1,{"big":1e400}]}}',
    );
    expect(res.status).toBe(200);
    expect(res.body.success_count).toBe(1);
    expect(res.body.failed_records).toMatchObject([
      { index: 1, observation_id: 'too-big', code: 'invalid_record', errors: [{ path: '/data/list/1/big' }] },
    ]);
  });

  it('refuses data nested 5,000 levels by itself (the depth that exhausted the stack before)', async () => {
    const res = await pushText(
      `{"observation_id":"deep","form_type":"f","data":{"k":${'['.repeat(4_999)}1${']'.repeat(4_999)}}}`,
    );
    expect(res.status).toBe(200);
    expect(res.body.success_count).toBe(1);
    expect(res.body.failed_records).toMatchObject([
      {
        index: 1,
        observation_id: 'deep',
        code: 'invalid_record',
        errors: [{ message: 'nested deeper than 100 levels' }],
      },
    ]);
  });

  it('keeps what is valid at the edges: astral ids of 255 characters, leap seconds, data 100 levels deep', async () => {
    const edge = [
      record({ observation_id: `${'😀'.repeat(247)}${randomUUID().slice(0, 8)}` }), // 255 characters, 502 UTF-16 units
      record({ created_at: '2016-12-31T23:59:60Z', updated_at: '2016-12-31T23:59:60+00:00' }),
      record({ data: nested(99), updated_at: '2025-02-28T23:59:59.123456789-12:00' }),
      record({ form_type: '𝔸'.repeat(200), data: { n: -0, max: 1.7976931348623157e308, tiny: 5e-324 } }),
    ];
    const res = await push(target, writer.token, edge);
    expect(res.body).toMatchObject({ success_count: 4, failed_records: [] });
    const pulled = await pull(target, reader.token, { since: { version: res.body.current_version - 4 } });
    expect(pulled.status).toBe(200); // the server's own answer passes its contract (date-time formats included)
    expect(pulled.body.records.map((r: { observation_id: string }) => r.observation_id)).toEqual(
      edge.map((e) => e.observation_id),
    );
    expect(pulled.body.records[2].data).toEqual(nested(99));
    expect(pulled.body.records[3].data).toEqual({ n: 0, max: 1.7976931348623157e308, tiny: 5e-324 });
  });

  it('names the observation_id of a failed record when it has one, and lists every problem', async () => {
    const res = await push(target, writer.token, [
      { observation_id: 'named-bad', form_type: '', data: [], created_at: 'never' },
    ]);
    expect(res.body.failed_records[0]).toMatchObject({ index: 0, observation_id: 'named-bad' });
    const paths = res.body.failed_records[0].errors.map((e: { path: string }) => e.path).sort();
    expect(paths).toEqual(['/created_at', '/data', '/form_type']);
  });

  it('duplicate ids in one batch: the last one wins, deterministically', async () => {
    const id = `dup-${randomUUID()}`;
    const res = await push(target, writer.token, [
      record({ observation_id: id, data: { n: 1 } }),
      record({ observation_id: id, data: { n: 2 } }),
      record({ observation_id: id, data: { n: 3 } }),
    ]);
    expect(res.body.success_count).toBe(3);
    expect(res.body.warnings.map((w: { code: string }) => w.code)).toEqual([
      'DUPLICATE_IN_BATCH',
      'DUPLICATE_IN_BATCH',
    ]);
    const pulled = await pull(target, reader.token, { since: { version: res.body.current_version - 1 } });
    expect(pulled.body.records).toHaveLength(1);
    expect(pulled.body.records[0]).toMatchObject({
      observation_id: id,
      data: { n: 3 },
      version: res.body.current_version,
    });
  });
});

describe('limits and request validation', () => {
  it('413 beyond the record limit (1001 and 10k records); nothing is written', async () => {
    const before = (await pull(target, reader.token)).body.current_version;
    for (const n of [1001, 10_000]) {
      const res = await push(
        target,
        writer.token,
        Array.from({ length: n }, () => record()),
      );
      expect(res.status).toBe(413);
      expect(res.body.code).toBe('payload_too_large');
    }
    expect((await pull(target, reader.token)).body.current_version).toBe(before);
  });

  it('accepts exactly 1000 records', async () => {
    const res = await push(
      target,
      writer.token,
      Array.from({ length: 1000 }, () => record()),
    );
    expect(res.status).toBe(200);
    expect(res.body.success_count).toBe(1000);
  });

  it.each([
    ['missing transmission_id', { client_id: 'c', records: [] }],
    ['a transmission_id that is not a UUID', { transmission_id: 'abc', client_id: 'c', records: [] }],
    ['missing client_id', { transmission_id: randomUUID(), records: [] }],
    ['empty client_id', { transmission_id: randomUUID(), client_id: '', records: [] }],
    ['a NUL in client_id', { transmission_id: randomUUID(), client_id: 'c\u0000', records: [record()] }],
    [
      'an unpaired surrogate in client_id',
      { transmission_id: randomUUID(), client_id: 'c\ud800', records: [record()] },
    ],
    ['missing records', { transmission_id: randomUUID(), client_id: 'c' }],
    ['records as an object', { transmission_id: randomUUID(), client_id: 'c', records: {} }],
    ['records as null', { transmission_id: randomUUID(), client_id: 'c', records: null }],
  ])('400 for %s', async (_label, body) => {
    const res = await call(target, 'POST', '/sync/push', { token: writer.token, body });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('validation_failed');
  });

  it.each([
    ['a NUL', 'c\u0000'],
    ['an unpaired surrogate', '\udc00c'],
  ])('400 for %s in a pull client_id', async (_label, clientId) => {
    const res = await call(target, 'POST', '/sync/pull', {
      token: reader.token,
      body: { client_id: clientId },
    });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('validation_failed');
  });
});

describe('idempotency', () => {
  it('the same transmission again replays the stored response and writes nothing', async () => {
    const transmissionId = randomUUID();
    const records = [record(), record()];
    const first = await push(target, writer.token, records, { transmissionId });
    const current = first.body.current_version;
    const again = await push(target, writer.token, records, { transmissionId });
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect((await pull(target, reader.token, { since: { version: current } })).body.records).toEqual([]);
  });

  it('the same transmission with a different body → 409 transmission_conflict', async () => {
    const transmissionId = randomUUID();
    await push(target, writer.token, [record()], { transmissionId });
    const res = await push(target, writer.token, [record()], { transmissionId });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('transmission_conflict');
  });

  it('transmission ids are per client', async () => {
    const transmissionId = randomUUID();
    expect((await push(target, writer.token, [record()], { transmissionId, clientId: 'a' })).status).toBe(
      200,
    );
    const other = await push(target, writer.token, [record()], { transmissionId, clientId: 'b' });
    expect(other.status).toBe(200);
    expect(other.headers.get('idempotent-replayed')).toBeNull();
  });

  it('accepts an Idempotency-Key equal to transmission_id; 400 when they differ', async () => {
    const transmissionId = randomUUID();
    const ok = await push(target, writer.token, [record()], {
      transmissionId,
      headers: { 'idempotency-key': transmissionId },
    });
    expect(ok.status).toBe(200);
    const bad = await push(target, writer.token, [record()], {
      headers: { 'idempotency-key': randomUUID() },
    });
    expect(bad.status).toBe(400);
  });

  it('an Idempotency-Key header alone (no transmission_id) identifies the transmission, in any case', async () => {
    const key = randomUUID();
    const body = { client_id: 'header-only', records: [record(), record()] };
    const send = (k: string, b: unknown = body) =>
      call(target, 'POST', '/sync/push', { token: writer.token, headers: { 'idempotency-key': k }, body: b });
    const first = await send(key.toUpperCase());
    expect(first.status).toBe(200);
    expect(first.body.success_count).toBe(2);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    for (const k of [key.toUpperCase(), key]) {
      const again = await send(k);
      expect(again.status).toBe(200);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.body).toEqual(first.body);
    }
    const other = await send(key, { ...body, records: [record()] });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('transmission_conflict');
  });

  it('transmission_id and Idempotency-Key equal but for the case of the UUID are one transmission id', async () => {
    const transmissionId = randomUUID();
    const upper = await push(target, writer.token, [record()], {
      transmissionId: transmissionId.toUpperCase(),
      headers: { 'idempotency-key': transmissionId },
    });
    expect(upper.status).toBe(200);
    // The same id in lower case is the same transmission: another body under it is a conflict.
    const lower = await push(target, writer.token, [record()], { transmissionId });
    expect(lower.status).toBe(409);
    expect(lower.body.code).toBe('transmission_conflict');
  });

  it('neither transmission_id nor Idempotency-Key → 400 problem+json', async () => {
    const res = await call(target, 'POST', '/sync/push', {
      token: writer.token,
      body: { client_id: 'c', records: [record()] },
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.body.code).toBe('validation_failed');
    const malformed = await call(target, 'POST', '/sync/push', {
      token: writer.token,
      headers: { 'idempotency-key': 'not-a-uuid' },
      body: { client_id: 'c', records: [record()] },
    });
    expect(malformed.status).toBe(400);
    expect(malformed.body.code).toBe('validation_failed');
  });

  it('concurrent retries of one transmission commit it once', async () => {
    const transmissionId = randomUUID();
    const records = [record(), record(), record()];
    const results = await Promise.all(
      Array.from({ length: 6 }, () => push(target, writer.token, records, { transmissionId })),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(new Set(results.map((r) => JSON.stringify(r.body))).size).toBe(1);
    expect(results.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(5);
  });
});

describe('conflicts (last-write-wins, the default)', () => {
  it('a stale base_version wins but is reported, and the server copy is kept in the conflict log', async () => {
    const id = `conflict-${randomUUID()}`;
    const v1 = (await push(target, writer.token, [record({ observation_id: id, data: { who: 'first' } })]))
      .body.current_version;
    const v2 = (
      await push(
        target,
        writer.token,
        [record({ observation_id: id, data: { who: 'tablet B' }, base_version: v1 })],
        {
          clientId: 'tablet-b',
        },
      )
    ).body.current_version;
    const late = await push(
      target,
      writer.token,
      [record({ observation_id: id, data: { who: 'tablet A' }, base_version: v1 })],
      {
        clientId: 'tablet-a',
      },
    );
    expect(late.body.success_count).toBe(1);
    expect(late.body.warnings).toEqual([
      { id, code: 'CONFLICT', message: expect.any(String), server_version: v2 },
    ]);
    const stored = await pull(target, reader.token, { since: { version: late.body.current_version - 1 } });
    expect(stored.body.records[0]).toMatchObject({ observation_id: id, data: { who: 'tablet A' } });

    const log = await call(target, 'GET', '/sync/conflicts?limit=500', { token: await adminToken(target) });
    expect(log.status).toBe(200);
    const entry = log.body.conflicts.find((c: { observation_id: string }) => c.observation_id === id);
    expect(entry).toMatchObject({
      policy: 'last-write-wins',
      base_version: v1,
      server_version: v2,
      client_id: 'tablet-a',
      incoming: { data: { who: 'tablet A' } },
      server: { data: { who: 'tablet B' }, version: v2 },
    });
  });

  it('base_version 0 for a record the server already has is a conflict; a matching base_version is not', async () => {
    const id = `zero-${randomUUID()}`;
    const v1 = (await push(target, writer.token, [record({ observation_id: id })])).body.current_version;
    const zero = await push(target, writer.token, [
      record({ observation_id: id, data: { x: 1 }, base_version: 0 }),
    ]);
    expect(zero.body.warnings[0]).toMatchObject({ code: 'CONFLICT', server_version: v1 });
    const fine = await push(target, writer.token, [
      record({ observation_id: id, data: { x: 2 }, base_version: zero.body.current_version }),
    ]);
    expect(fine.body.warnings).toEqual([]);
  });

  it('records without base_version are blind last-write-wins, as in 1.0.3', async () => {
    const id = `blind-${randomUUID()}`;
    await push(target, writer.token, [record({ observation_id: id, data: { a: 1 } })]);
    const res = await push(target, writer.token, [record({ observation_id: id, data: { a: 2 } })]);
    expect(res.body.warnings).toEqual([]);
  });
});

describe('POST /sync/pull', () => {
  it.each(['0', '501', 'abc', '-1', '1.5'])('limit=%s → 400', async (limit) => {
    const res = await pull(target, reader.token, {}, `?limit=${limit}`);
    expect(res.status).toBe(400);
  });

  // JavaScript's number coercion read these as 100, 16, 5 and 5; 1.0.3's Go server refused them.
  it.each(['1e2', '0x10', '%205', '5.0'])(
    'limit=%s (not decimal digits) → 400 naming the parameter',
    async (limit) => {
      const res = await pull(target, reader.token, {}, `?limit=${limit}`);
      expect([res.status, res.body.code, res.body.errors?.map((e: { path: string }) => e.path)]).toEqual([
        400,
        'validation_failed',
        ['/query/limit'],
      ]);
    },
  );

  it('400 without client_id', async () => {
    const res = await call(target, 'POST', '/sync/pull', { token: reader.token, body: {} });
    expect(res.status).toBe(400);
  });

  it('a form type filter holding a NUL → 400, as no form type can (it was a 500 on PostgreSQL)', async () => {
    const inBody = await pull(target, reader.token, { schema_types: ['a\u0000b'] });
    expect([inBody.status, inBody.body.code]).toEqual([400, 'validation_failed']);
    const inQuery = await pull(target, reader.token, {}, `?schemaType=${encodeURIComponent('a\u0000b')}`);
    expect([inQuery.status, inQuery.body.code]).toEqual([400, 'validation_failed']);
  });

  it('pages in ascending version order with has_more, change_cutoff and next_page_token', async () => {
    const start = (await pull(target, reader.token)).body.current_version;
    await push(
      target,
      writer.token,
      Array.from({ length: 5 }, () => record({ form_type: 'paging' })),
    );
    const first = await pull(target, reader.token, { since: { version: start } }, '?limit=2');
    expect(first.body).toMatchObject({ has_more: true, sync_format_version: '1.0' });
    expect(first.body.records.map((r: { version: number }) => r.version)).toEqual([start + 1, start + 2]);
    expect(first.body.change_cutoff).toBe(start + 2);
    expect(first.body.next_page_token).toEqual(expect.any(String));

    const byToken = await pull(
      target,
      reader.token,
      {},
      `?limit=2&page_token=${encodeURIComponent(first.body.next_page_token)}`,
    );
    const bySince = await pull(
      target,
      reader.token,
      { since: { version: first.body.change_cutoff } },
      '?limit=2',
    );
    expect(byToken.body.records).toEqual(bySince.body.records);
    const byAlias = await pull(
      target,
      reader.token,
      { after_change_id: first.body.change_cutoff },
      '?limit=2',
    );
    expect(byAlias.body.records).toEqual(bySince.body.records);

    const all = await pullAll(target, reader.token, start, { limit: 2 });
    expect(all.records.map((r) => r.version)).toEqual([1, 2, 3, 4, 5].map((n) => start + n));
    expect(all.pages).toBe(3);
  });

  it('when has_more is false, change_cutoff is current_version and there is no next_page_token', async () => {
    const res = await pull(target, reader.token, { since: { version: 0 }, schema_types: ['no-such-type'] });
    expect(res.body.records).toEqual([]);
    expect(res.body.has_more).toBe(false);
    expect(res.body.change_cutoff).toBe(res.body.current_version);
    expect(res.body).not.toHaveProperty('next_page_token');
  });

  it('filters by schemaType and schema_types (merged), and a filtered cursor moves past other changes', async () => {
    const start = (await pull(target, reader.token)).body.current_version;
    await push(target, writer.token, [
      record({ form_type: 'alpha' }),
      record({ form_type: 'beta' }),
      record({ form_type: 'gamma' }),
    ]);
    const alpha = await pull(target, reader.token, { since: { version: start } }, '?schemaType=alpha');
    expect(alpha.body.records.map((r: { form_type: string }) => r.form_type)).toEqual(['alpha']);
    expect(alpha.body.change_cutoff).toBe(start + 3);
    const merged = await pull(
      target,
      reader.token,
      { since: { version: start }, schema_types: ['gamma'] },
      '?schemaType=alpha',
    );
    expect(merged.body.records.map((r: { form_type: string }) => r.form_type)).toEqual(['alpha', 'gamma']);
  });

  it('an empty ?schemaType= is no filter, as 1.0.3 read it', async () => {
    const start = (await pull(target, reader.token)).body.current_version;
    await push(target, writer.token, [record({ form_type: 'delta' }), record({ form_type: 'epsilon' })]);
    const all = await pull(target, reader.token, { since: { version: start } }, '?schemaType=');
    expect(all.body.records.map((r: { form_type: string }) => r.form_type)).toEqual(['delta', 'epsilon']);
  });

  it.each([
    'garbage',
    'p1.',
    'p1.MTIzNDU',
    `p1.${Buffer.from('5.000000000000').toString('base64url')}`,
    'x'.repeat(300),
  ])('a garbage page_token (%s) → 400', async (token) => {
    const res = await pull(target, reader.token, {}, `?page_token=${encodeURIComponent(token)}`);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('invalid_page_token');
  });

  it('a page_token continues only the filter it was issued for: another filter → 400, never a skipped record', async () => {
    const a = `tok-a-${randomUUID()}`;
    const b = `tok-b-${randomUUID()}`;
    const start = (await pull(target, reader.token)).body.current_version as number;
    // Versions start+1 … start+6, alternating a, b.
    await push(
      target,
      writer.token,
      Array.from({ length: 6 }, (_, i) => record({ form_type: i % 2 === 0 ? a : b })),
    );
    const first = await pull(
      target,
      reader.token,
      { since: { version: start }, schema_types: [a] },
      '?limit=2',
    );
    expect(first.body.records.map((r: { version: number }) => r.version)).toEqual([start + 1, start + 3]);
    expect(first.body.has_more).toBe(true);
    const token = encodeURIComponent(first.body.next_page_token);

    // Continuing type a's loop with type b's filter would skip b's record at start+2.
    for (const [label, body, query] of [
      ['schema_types [b]', { schema_types: [b] }, ''],
      ['schema_types [a, b]', { schema_types: [a, b] }, ''],
      ['no filter', {}, ''],
      ['schemaType b', {}, `&schemaType=${b}`],
    ] as const) {
      const res = await pull(target, reader.token, body, `?limit=2&page_token=${token}${query}`);
      expect(res.status, label).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.body.code).toBe('invalid_page_token');
    }

    // The same filter, however it is written (order, duplicates, schemaType merged in), continues.
    for (const [body, query] of [
      [{ schema_types: [a] }, ''],
      [{ schema_types: [a, a] }, ''],
      [{}, `&schemaType=${a}`],
      [{ schema_types: [a] }, `&schemaType=${a}`],
    ] as const) {
      const res = await pull(target, reader.token, body, `?limit=2&page_token=${token}${query}`);
      expect(res.status).toBe(200);
      expect(res.body.records.map((r: { version: number }) => r.version)).toEqual([start + 5]);
    }

    // And a token of an unfiltered loop is refused with a filter.
    const unfiltered = await pull(target, reader.token, { since: { version: start } }, '?limit=1');
    const filtered = await pull(
      target,
      reader.token,
      { schema_types: [b] },
      `?page_token=${encodeURIComponent(unfiltered.body.next_page_token)}`,
    );
    expect(filtered.status).toBe(400);
    expect(filtered.body.code).toBe('invalid_page_token');
    const types = [a, b].sort();
    const both = await pull(
      target,
      reader.token,
      { since: { version: start }, schema_types: types },
      '?limit=1',
    );
    const reordered = await pull(
      target,
      reader.token,
      { schema_types: [...types].reverse() },
      `?limit=10&page_token=${encodeURIComponent(both.body.next_page_token)}`,
    );
    expect(reordered.body.records.map((r: { version: number }) => r.version)).toEqual(
      [2, 3, 4, 5, 6].map((n) => start + n),
    );
  });

  it('accepts a schema_types list of 40,000 names (more than SQLite binds as separate variables)', async () => {
    const many = [...Array.from({ length: 40_000 }, (_, i) => `type-${i}`), 'household'];
    const res = await pull(target, reader.token, { since: { version: 0 }, schema_types: many });
    expect(res.status).toBe(200);
    expect(res.body.records.length).toBeGreaterThan(0);
    expect(res.body.records.every((r: { form_type: string }) => r.form_type === 'household')).toBe(true);
  });

  it('bounds a page to about 16 MiB: ~1 MB records come a few pages apart, each once and in order', async () => {
    const start = (await pull(target, reader.token)).body.current_version as number;
    const small = () => record({ form_type: 'large-data' });
    const large = (i: number) =>
      record({ form_type: 'large-data', data: { i, text: 'x'.repeat(1_000_000 + i) } });
    const batches = [
      [small(), small(), small(), ...Array.from({ length: 10 }, (_, i) => large(i))],
      [small(), small(), small(), ...Array.from({ length: 10 }, (_, i) => large(10 + i))],
      [small(), small(), small()],
    ];
    for (const batch of batches) expect((await push(target, writer.token, batch)).status).toBe(200);
    const pushed = batches.flat();
    const MiB = 1024 * 1024;
    const bytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

    for (const schema_types of [undefined, ['large-data']]) {
      const pages: { ids: string[]; dataBytes: number; pageBytes: number; hasMore: boolean }[] = [];
      let cursor = start;
      for (let more = true; more; ) {
        const res = await pull(
          target,
          reader.token,
          { since: { version: cursor }, schema_types },
          '?limit=500',
        );
        expect(res.status).toBe(200);
        const records = res.body.records as { observation_id: string; data: unknown }[];
        pages.push({
          ids: records.map((r) => r.observation_id),
          // The server's estimate: each record's data plus 1 KiB for the rest.
          dataBytes: records.reduce((n, r) => n + bytes(r.data) + 1024, 0),
          pageBytes: bytes(res.body),
          hasMore: res.body.has_more,
        });
        expect(records.length).toBeGreaterThan(0);
        cursor = res.body.change_cutoff;
        more = res.body.has_more;
      }
      expect(pages.flatMap((p) => p.ids)).toEqual(pushed.map((r) => r.observation_id));
      for (const page of pages) {
        if (page.ids.length > 1) expect(page.dataBytes).toBeLessThanOrEqual(16 * MiB);
        expect(page.pageBytes).toBeLessThan(17 * MiB);
      }
      // Cut by bytes, not one large record a page: a page holds 15 of them.
      expect(Math.max(...pages.map((p) => p.ids.length))).toBeGreaterThanOrEqual(15);
      expect(pages.map((p) => p.hasMore)).toEqual([...Array(pages.length - 1).fill(true), false]);
    }
  });

  it('a cursor with null members (a 1.0.3 client leaving id or version unset) is accepted as if they were absent', async () => {
    const start = (await pull(target, reader.token)).body.current_version as number;
    const newer = record();
    expect((await push(target, writer.token, [newer])).status).toBe(200);

    // 1.0.3 decoded the cursor leniently (Go's encoding/json), so `id: null` was the same as no id.
    const withNullId = await pull(target, reader.token, { since: { version: start, id: null } });
    expect(withNullId.status).toBe(200);
    expect(withNullId.body.records.map((r: { observation_id: string }) => r.observation_id)).toEqual([
      newer.observation_id,
    ]);

    const withNullVersion = await pull(
      target,
      reader.token,
      { since: { version: null, id: null } },
      '?limit=1',
    );
    expect(withNullVersion.status).toBe(200);
    const fromStart = await pull(target, reader.token, {}, '?limit=1');
    expect(withNullVersion.body.records).toEqual(fromStart.body.records);
  });

  it('records is [] (never null) past the end', async () => {
    const res = await pull(target, reader.token, { since: { version: 10_000_000 } });
    expect(res.status).toBe(200);
    expect(res.body.records).toEqual([]);
  });
});

import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { pushBundle, zipOf } from '../src/bundles.ts';
import { useTarget } from '../src/harness.ts';
import { adminToken, send } from '../src/http.ts';

/**
 * Integers too long for a double (a 19-digit identifier, a 20-digit serial) in a record's `data`
 * pass through push and pull digit for digit, as they did through 1.0.3, and count for the hash.
 * The bodies are written and read as text here: a JSON.parse in the test would round them itself.
 */
const target = useTarget();
let token: string;
beforeAll(async () => {
  token = await adminToken(target);
});

const headers = () => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });

/** Pushes records written as JSON text; answers the parsed response (it holds no long integers). */
async function pushText(recordsJson: string) {
  const res = await send(target, '/sync/push', {
    method: 'POST',
    headers: headers(),
    body: `{"transmission_id":"${randomUUID()}","client_id":"exact","records":[${recordsJson}]}`,
  });
  expect(res.status).toBe(200);
  return (await res.json()) as {
    current_version: number;
    success_count: number;
    failed_records: unknown[];
    warnings: { code: string }[];
  };
}

/** The pull's text from `since`, as it came over the wire. */
async function pullText(since: number) {
  const res = await send(target, '/sync/pull?limit=500', {
    method: 'POST',
    headers: headers(),
    body: JSON.stringify({ client_id: 'exact', since: { version: since } }),
  });
  expect(res.status).toBe(200);
  return res.text();
}

const DATA =
  '{"serial":12345678901234567891,"neg":-9007199254740993,"safe":9007199254740991,"list":[1,98765432109876543210],"nested":{"id":1234567890123456789}}';

describe('long integers in data', () => {
  it('come back from a pull digit for digit', async () => {
    const pushed = await pushText(`{"observation_id":"exact-1","form_type":"meter","data":${DATA}}`);
    expect(pushed.success_count).toBe(1);
    const text = await pullText(pushed.current_version - 1);
    expect(text).toContain(
      `"data":{"list":[1,98765432109876543210],"neg":-9007199254740993,"nested":{"id":1234567890123456789},"safe":9007199254740991,"serial":12345678901234567891}`,
    );
  });

  it('count for the hash: a change in a digit a double cannot hold is a new version, the same digits are not', async () => {
    const record = (serial: string) =>
      `{"observation_id":"exact-2","form_type":"meter","data":{"serial":${serial}}}`;
    const first = await pushText(record('12345678901234567890'));
    const same = await pushText(record('12345678901234567890'));
    expect(same.current_version).toBe(first.current_version); // identical: no version consumed
    // 12345678901234567891 is the same double as …890: JSON.parse took this for a re-push.
    const changed = await pushText(record('12345678901234567891'));
    expect(changed.current_version).toBe(first.current_version + 1);
    expect(await pullText(first.current_version)).toContain('"serial":12345678901234567891');
  });

  it('are numbers to a form’s schema (type integer, minimum), not a validation warning', async () => {
    const zip = zipOf({
      meter: {
        schema: {
          type: 'object',
          properties: { serial: { type: 'integer', minimum: 0 }, neg: { type: 'integer', maximum: 0 } },
        },
      },
    });
    expect((await pushBundle(target, token, zip, { activate: true })).status).toBe(200);
    const pushed = await pushText(
      '{"observation_id":"exact-3","form_type":"meter","data":{"serial":12345678901234567891,"neg":-9007199254740993}}',
    );
    expect([pushed.success_count, pushed.warnings]).toEqual([1, []]);
    // And a violation by such a number is still one.
    const negative = await pushText(
      '{"observation_id":"exact-4","form_type":"meter","data":{"serial":-12345678901234567891}}',
    );
    expect(negative.warnings.map((w) => w.code)).toEqual(['SCHEMA_VALIDATION']);
  });
});

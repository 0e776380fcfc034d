import { loopbackServer } from '@synk/test-support/hooks';
import { describe, expect, it } from 'vitest';
import { createClient } from '../src/client.ts';
import { ApiError } from '../src/errors.ts';

const session = { token: 'access', refreshToken: 'refresh', expiresAt: 4_000_000_000 };
const record = (id: string) => ({ observation_id: id, form_type: 'visit', data: {} });

/**
 * How the server answers each push, in turn: takes the batch (one record failed on its own when it
 * is `bad`), or refuses it whole with a problem (a role lowered while the device was offline).
 */
const answers: ('take' | 'forbid' | 'proxy-403' | 'untyped-failure')[] = [];
const server = loopbackServer(async (req, res) => {
  let text = '';
  for await (const chunk of req) text += chunk;
  if (req.url?.startsWith('/sync/pull')) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        current_version: 1,
        records: [],
        change_cutoff: 1,
        has_more: false,
        sync_format_version: '1.0',
        server_time: new Date().toISOString(),
      }),
    );
    return;
  }
  const body = JSON.parse(text) as { records: { observation_id: string }[] };
  const answer = answers.shift() ?? 'take';
  if (answer === 'forbid') {
    res.writeHead(403, { 'content-type': 'application/problem+json' }).end(
      JSON.stringify({
        status: 403,
        code: 'forbidden',
        detail: 'role read-only may not push',
        errors: [{ message: 'ask an administrator for read-write' }],
      }),
    );
    return;
  }
  if (answer === 'proxy-403') {
    res.writeHead(403, { 'content-type': 'text/html' }).end('<html>Forbidden</html>');
    return;
  }
  if (answer === 'untyped-failure') {
    // As a server following only 1.0.3's document might answer: failed records without index or code.
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        current_version: 1,
        success_count: body.records.length - 1,
        failed_records: [{ observation_id: 'bad', error: 'no' }],
        warnings: [],
        server_time: new Date().toISOString(),
      }),
    );
    return;
  }
  const failed = body.records.flatMap((r, index) =>
    r.observation_id === 'bad' ? [{ index, observation_id: 'bad', code: 'invalid_record', error: 'no' }] : [],
  );
  res.writeHead(200, { 'content-type': 'application/json' }).end(
    JSON.stringify({
      current_version: 1,
      success_count: body.records.length - failed.length,
      failed_records: failed,
      warnings: [],
      server_time: new Date().toISOString(),
    }),
  );
});

const client = () =>
  createClient({ baseUrl: `${server.base}`, tokens: session, retry: { retries: 0 }, batchSize: 2 });

describe('the push report', () => {
  it('names each batch refused whole (status, code, the server’s words, its records); they stay as dead letters', async () => {
    const c = client();
    await c.records.saveMany(['a', 'bad', 'c', 'd', 'e', 'f'].map(record));
    answers.push('take', 'forbid', 'forbid');
    const report = await c.push();
    expect(report).toMatchObject({ pushed: 1, failed: 5 });
    expect(report.refused).toEqual([
      {
        transmissionId: expect.any(String),
        status: 403,
        code: 'forbidden',
        detail: 'role read-only may not push; ask an administrator for read-write',
        ids: ['c', 'd'],
      },
      {
        transmissionId: expect.any(String),
        status: 403,
        code: 'forbidden',
        detail: 'role read-only may not push; ask an administrator for read-write',
        ids: ['e', 'f'],
      },
    ]);
    const dead = await c.records.deadLetters();
    expect(dead.map((d) => [d.record.observation_id, d.code, d.transmissionId])).toEqual([
      ['bad', 'invalid_record', expect.any(String)],
      ['c', 'forbidden', report.refused[0]!.transmissionId],
      ['d', 'forbidden', report.refused[0]!.transmissionId],
      ['e', 'forbidden', report.refused[1]!.transmissionId],
      ['f', 'forbidden', report.refused[1]!.transmissionId],
    ]);
    expect(await c.records.pending()).toEqual([]);
  });

  it('refuses nothing on a 4xx page from something on the way (a captive portal, a proxy): the batch stays queued and the push fails with it', async () => {
    const c = client();
    await c.records.saveMany(['a', 'c', 'd'].map(record));
    answers.push('take', 'proxy-403');
    const failure = await c.push().catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ApiError);
    expect((failure as ApiError).status).toBe(403);
    expect(await c.records.deadLetters()).toEqual([]);
    expect((await c.records.pending()).map((r) => r.observation_id)).toEqual(['d']);
    // Back on a network that reaches the server: the same batch goes, under its transmission id.
    expect(await c.push()).toMatchObject({ pushed: 1, failed: 0, refused: [] });
    expect(await c.records.pending()).toEqual([]);
  });

  it('sets aside a failed record the server names only by its id, and goes on with the next batches', async () => {
    const c = client();
    await c.records.saveMany(['a', 'bad', 'c'].map(record));
    answers.push('untyped-failure');
    expect(await c.push()).toMatchObject({ pushed: 2, failed: 1 });
    expect((await c.records.deadLetters()).map((d) => [d.record.observation_id, d.code, d.error])).toEqual([
      ['bad', 'failed', 'no'],
    ]);
    expect(await c.records.pending()).toEqual([]);
  });

  it('is empty when no batch was refused whole (records refused one by one are not); sync() reports it too', async () => {
    const c = client();
    await c.records.saveMany(['bad', 'b'].map(record));
    expect(await c.push()).toMatchObject({ pushed: 1, failed: 1, refused: [] });
    await c.records.save(record('c'));
    answers.push('forbid');
    const report = await c.sync();
    expect(report).toMatchObject({ pulled: 0, pushed: 0, failed: 1 });
    expect(report.refused.map((r) => [r.status, r.code, r.ids])).toEqual([[403, 'forbidden', ['c']]]);
  });
});

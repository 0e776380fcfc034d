import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loopbackServer } from '@synk/test-support/hooks';
import { beforeAll, describe, expect, it } from 'vitest';
import { synk, workDir } from './run-cli.ts';

/** How the server answers each push in turn: takes it (refusing the record `bad` on its own), or refuses it whole. */
const answers: ('take' | 'forbid' | 'proxy-403')[] = [];
const server = loopbackServer(async (req, res) => {
  let text = '';
  for await (const chunk of req) text += chunk;
  const json = (status: number, body: unknown, type = 'application/json') =>
    res.writeHead(status, { 'content-type': type }).end(JSON.stringify(body));
  if (req.url === '/auth/login')
    return json(200, { token: 'access', refreshToken: 'refresh', expiresAt: 4_000_000_000 });
  const answer = answers.shift() ?? 'take';
  if (answer === 'forbid')
    return json(
      403,
      { status: 403, code: 'forbidden', detail: 'role read-only may not push' },
      'application/problem+json',
    );
  if (answer === 'proxy-403') return res.writeHead(403, { 'content-type': 'text/html' }).end('<html></html>');
  const { records } = JSON.parse(text) as { records: { observation_id: string }[] };
  const failed = records.flatMap((r, index) =>
    r.observation_id === 'bad'
      ? [{ index, observation_id: 'bad', code: 'invalid_record', error: 'no data' }]
      : [],
  );
  json(200, {
    current_version: 1,
    success_count: records.length - failed.length,
    failed_records: failed,
    warnings: [],
    server_time: new Date().toISOString(),
  });
});

const cwd = workDir();
const as = () => ['--server', server.base];
/** A file of `count` records (the SDK sends 500 per batch), the first one `bad`. */
function recordsFile(count: number): string {
  const file = path.join(cwd, `records-${count}.json`);
  const ids = Array.from({ length: count }, (_, i) => (i === 0 ? 'bad' : `r${i}`));
  writeFileSync(
    file,
    JSON.stringify(ids.map((observation_id) => ({ observation_id, form_type: 'visit', data: {} }))),
  );
  return file;
}

describe('sync push, told by the SDK which batches were refused whole', () => {
  beforeAll(async () => {
    const login = await synk(cwd, [...as(), 'login', '--username', 'field', '--password', 'field-password']);
    expect(login.code, login.stderr).toBe(0);
  });

  it('says why a batch was refused in one line, and lists the records refused on their own', async () => {
    answers.push('take', 'forbid');
    const human = await synk(cwd, [...as(), 'sync', 'push', recordsFile(503)]);
    expect(human.code).toBe(1);
    expect(human.stdout.trimEnd().split('\n')).toEqual([
      'Pushed 499 records, 4 failed',
      '  the server refused 3 records (their batches whole): role read-only may not push',
      '  - #0 bad: invalid_record: no data',
    ]);
  });

  it('says the push failed, refusing nothing, when something on the way answered (a proxy’s HTML 403)', async () => {
    answers.push('proxy-403');
    const human = await synk(cwd, [...as(), 'sync', 'push', recordsFile(3)]);
    expect(human.code).toBe(1);
    expect(human.stdout).toBe('');
    expect(human.stderr).toBe(
      "Error 403: HTTP 403 (a text/html answer, not the sync server's: a proxy, a captive portal or a wrong URL?)\n",
    );
  });

  it('lists the batches refused whole in --json', async () => {
    answers.push('take', 'forbid');
    const listed = await synk(cwd, ['--json', ...as(), 'sync', 'push', recordsFile(502)]);
    expect(listed.code).toBe(1);
    const report = JSON.parse(listed.stdout);
    expect(report.refused_batches).toEqual([
      {
        transmission_id: expect.any(String),
        status: 403,
        code: 'forbidden',
        detail: 'role read-only may not push',
        observation_ids: ['r500', 'r501'],
      },
    ]);
    expect(report.failed_records.map((f: { observation_id: string }) => f.observation_id)).toEqual([
      'bad',
      'r500',
      'r501',
    ]);
  });
});

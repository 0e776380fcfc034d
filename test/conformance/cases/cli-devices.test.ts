import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cliServer } from '../src/synk-cli.ts';

/** `synk devices`: the real binary against a real server process of its own (it counts every device). */
const server = cliServer('cli-devices');
const { synk } = server;

async function login(username: string, password: string): Promise<string> {
  const res = await fetch(`${server.url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  return ((await res.json()) as { token: string }).token;
}

async function send(token: string, route: string, body: unknown) {
  const res = await fetch(`${server.url}${route}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(route === '/users/create' ? 201 : 200);
  return res.json() as Promise<{ current_version: number }>;
}

describe('synk devices', () => {
  it('lists every device as a table, and all of them with --json across pages', async () => {
    expect((await synk('config', 'init', '--server', server.url, '--username', 'admin')).code).toBe(0);
    expect((await synk('login', '--password', 'cli-admin-password')).code).toBe(0);
    expect((await synk('devices')).stdout).toMatch(/No device has pushed or pulled yet/);

    const admin = await login('admin', 'cli-admin-password');
    await send(admin, '/users/create', {
      username: 'field-7',
      password: 'field-password-7',
      role: 'read-write',
    });
    const field = await login('field-7', 'field-password-7');
    const record = { observation_id: 'obs-1', form_type: 'household', data: { members: 3 } };
    await send(field, '/sync/pull', { client_id: 'phone-001' });
    const { current_version } = await send(field, '/sync/push', {
      transmission_id: randomUUID(),
      client_id: 'tablet-042',
      records: [record, { ...record, observation_id: 'obs-2' }],
    });
    // More devices than the server lists per request (500): the command pages through them all.
    for (let i = 0; i < 510; i++)
      await send(admin, '/sync/pull', { client_id: `kiosk-${String(i).padStart(3, '0')}` });

    const human = await synk('devices');
    expect(human.code, human.stderr).toBe(0);
    const lines = human.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^client id\s+user\s+last push\s+last pull\s+behind by$/);
    expect(lines).toHaveLength(2 + 512);
    expect(lines.find((l) => l.startsWith('phone-001 '))).toMatch(
      new RegExp(
        `^phone-001\\s+field-7\\s+never\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ\\s+${current_version}$`,
      ),
    );
    expect(lines.find((l) => l.startsWith('tablet-042 '))).toMatch(
      new RegExp(
        `^tablet-042\\s+field-7\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ\\s+never\\s+${current_version}$`,
      ),
    );

    const listed = await synk('--json', 'devices');
    expect(listed.code, listed.stderr).toBe(0);
    const devices = JSON.parse(listed.stdout) as { client_id: string; behind_by: number }[];
    expect(devices).toHaveLength(512);
    expect(devices.map((d) => d.client_id)).toEqual([...devices.map((d) => d.client_id)].sort());
    expect(devices.find((d) => d.client_id === 'tablet-042')).toMatchObject({
      username: 'field-7',
      push_count: 1,
      records_accepted: 2,
      highest_pushed_version: current_version,
      last_pull_at: null,
      behind_by: current_version,
    });
    expect(devices.find((d) => d.client_id === 'kiosk-509')).toMatchObject({
      username: 'admin',
      behind_by: 0,
    });
  }, 60_000);

  it('is refused to a user who is not an administrator (exit 1, the server’s reason)', async () => {
    expect((await synk('login', '--username', 'field-7', '--password', 'field-password-7')).code).toBe(0);
    const refused = await synk('devices');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/Error 403 \(forbidden\)/);
  });
});

import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cliServer } from '../src/synk-cli.ts';

/** `synk sync purge-tombstones`: the real binary against a real server process of its own. */
const server = cliServer('cli-tombstones');
const { synk } = server;

async function send(token: string, route: string, body: unknown) {
  const res = await fetch(`${server.url}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return res.json() as Promise<Record<string, unknown>>;
}

describe('synk sync purge-tombstones', () => {
  it('counts with --dry-run, purges, and says what it did, as text and with --json', async () => {
    expect((await synk('config', 'init', '--server', server.url, '--username', 'admin')).code).toBe(0);
    expect((await synk('login', '--password', 'cli-admin-password')).code).toBe(0);
    const { token } = (await send('', '/auth/login', {
      username: 'admin',
      password: 'cli-admin-password',
    })) as {
      token: string;
    };
    const record = (id: string, deleted: boolean) => ({
      observation_id: id,
      form_type: 'f',
      data: {},
      deleted,
    });
    const pushed = await send(token, '/sync/push', {
      transmission_id: randomUUID(),
      client_id: 'cli',
      records: [record('kept', false), record('gone-1', true), record('gone-2', true)],
    });

    const dry = await synk('sync', 'purge-tombstones', '--older-than-days', '0', '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toBe(
      'Would purge 2 tombstones; the generation would become 1 (nothing was changed)\n',
    );
    const young = await synk('--json', 'sync', 'purge-tombstones', '--older-than-days', '30');
    expect(JSON.parse(young.stdout)).toEqual({
      purged_count: 0,
      generation: 0,
      purged_through: 0,
      dry_run: false,
    });

    const purged = await synk('--json', 'sync', 'purge-tombstones', '--older-than-days', '0');
    expect(purged.code, purged.stderr).toBe(0);
    expect(JSON.parse(purged.stdout)).toEqual({
      purged_count: 2,
      generation: 1,
      purged_through: pushed.current_version,
      dry_run: false,
    });
    const pulled = await send(token, '/sync/pull', { client_id: 'cli' });
    expect((pulled.records as { observation_id: string }[]).map((r) => r.observation_id)).toEqual(['kept']);

    const again = await synk('sync', 'purge-tombstones', '--older-than-days', '0');
    expect(again.stdout).toBe(
      'No tombstones synced 0 days ago or earlier: nothing to purge (generation 1)\n',
    );
  });

  it('refuses a missing or malformed --older-than-days before any request', async () => {
    for (const args of [[], ['--older-than-days', '-1'], ['--older-than-days', 'a month']]) {
      const res = await synk('sync', 'purge-tombstones', ...args);
      expect(res.code, args.join(' ')).toBe(2); // called wrongly
      expect(res.stderr).toMatch(/--older-than-days/);
    }
  });
});

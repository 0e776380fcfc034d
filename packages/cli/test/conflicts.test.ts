import { spawn } from 'node:child_process';
import path from 'node:path';
import { loopbackServer } from '@synk/test-support/hooks';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN, synk, workDir } from './run-cli.ts';

/** The conflict log the server holds: entry i has id i + 1, and a longer record id from 100 on. */
const LOG = Array.from({ length: 501 }, (_, i) => ({
  id: i + 1,
  observation_id: i < 100 ? `k${i}` : `record-${i}`,
  form_type: 'household',
  policy: 'last-write-wins',
  base_version: 0,
  server_version: i + 1,
  username: 'field',
  client_id: 'device-1',
  detected_at: '2026-01-01T00:00:00.000Z',
  incoming: { observation_id: `k${i}`, data: { members: 2 } },
  server: { observation_id: `k${i}`, data: { members: 1 } },
}));
/** Entries per page: fewer than the CLI asks for (a server may give fewer), so no table ends with a page. */
const PAGE = 200;

/** Called before a page after the first is answered (to see what the CLI printed until then). */
let beforeNextPage: () => Promise<void> = async () => {};
const asked: number[] = [];
const server = loopbackServer(async (req, res) => {
  for await (const _ of req);
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/auth/login') {
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ token: 'access', refreshToken: 'refresh', expiresAt: 4_000_000_000 }));
    return;
  }
  const after = Number(url.searchParams.get('after'));
  const limit = Math.min(Number(url.searchParams.get('limit')), PAGE);
  asked.push(after);
  if (after > 0) await beforeNextPage();
  const conflicts = LOG.filter((c) => c.id > after).slice(0, limit);
  const hasMore = LOG.some((c) => c.id > (conflicts.at(-1)?.id ?? after));
  res.writeHead(200, { 'content-type': 'application/json' }).end(
    JSON.stringify({
      conflicts,
      has_more: hasMore,
      ...(hasMore ? { next_after: conflicts.at(-1)!.id } : {}),
    }),
  );
});

const cwd = workDir();
const as = () => ['--server', server.base];

/** The tables of the human output: each its header, its rule and its rows (split on blank lines). */
const tablesOf = (stdout: string) =>
  stdout
    .trimEnd()
    .split('\n\n')
    .map((table) => table.split('\n'));

describe('sync conflicts over a log of several pages', () => {
  beforeAll(async () => {
    const login = await synk(cwd, [...as(), 'login', '--username', 'admin', '--password', 'admin-password']);
    expect(login.code, login.stderr).toBe(0);
  });

  it('prints tables of 500 rows, each with its header and its columns sized to its own rows', async () => {
    asked.length = 0;
    const { code, stdout, stderr } = await synk(cwd, [...as(), 'sync', 'conflicts']);
    expect(code, stderr).toBe(0);
    expect(asked).toEqual([0, 200, 400]);
    const tables = tablesOf(stdout);
    expect(tables.map((t) => t.length)).toEqual([502, 3]);
    for (const table of tables) {
      expect(table[0]).toMatch(
        /^id\s+observation_id\s+form_type\s+policy\s+base\/server\s+by\s+detected_at$/,
      );
      expect(table[1]).toMatch(/^-+( +-+){6}$/);
    }
    const rows = tables.flatMap((t) => t.slice(2));
    expect(rows.map((r) => Number(r.split(/\s+/)[0]))).toEqual(LOG.map((c) => c.id));
    expect(rows[0]).toMatch(
      /^1 +k0 +household +last-write-wins +0\/1 +field \(device-1\) +2026-01-01T00:00:00.000Z$/,
    );
    // The second table's record ids are no wider than its one row's (`record-500`).
    expect(tables[1]![2]).toBe(
      '501  record-500      household  last-write-wins  0/501        field (device-1)  2026-01-01T00:00:00.000Z',
    );
  });

  it('--limit stops within a page and says where to go on', async () => {
    const { stdout } = await synk(cwd, [...as(), 'sync', 'conflicts', '--after', '10', '--limit', '450']);
    const lines = stdout.trimEnd().split('\n');
    expect(lines.at(-1)).toBe('… more after 460: synk sync conflicts --after 460');
    const rows = tablesOf(lines.slice(0, -1).join('\n')).flatMap((t) => t.slice(2));
    expect(rows.map((r) => Number(r.split(/\s+/)[0]))).toEqual(LOG.slice(10, 460).map((c) => c.id));
  });

  it('with --json, writes each page before asking for the next, the array JSON.stringify would give', async () => {
    let stdout = '';
    /** Whether the first page was on standard output before the second was answered. */
    const printedFirst: boolean[] = [];
    beforeNextPage = async () => {
      printedFirst.push(stdout.includes('"id": 200,'));
    };
    try {
      const child = spawn(process.execPath, [BIN, '--json', ...as(), 'sync', 'conflicts'], {
        cwd,
        env: { PATH: process.env.PATH ?? '', SYNK_CONFIG_DIR: path.join(cwd, 'config') },
      });
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk;
      });
      const code = await new Promise((resolve) => child.on('close', resolve));
      expect(code).toBe(0);
    } finally {
      beforeNextPage = async () => {};
    }
    expect(printedFirst).toEqual([true, true]);
    expect(stdout).toBe(`${JSON.stringify(LOG, null, 2)}\n`);
  });
});

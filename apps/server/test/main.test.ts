import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ServerProcess, ServerStartError, startServerProcess } from '@synk/test-support/server-process';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { REQUIRED_NODE_MAJOR, unsupportedNode } from '../src/lib/node-version.ts';
import { tempDir } from './helpers.ts';

const SERVER_DIR = fileURLToPath(new URL('..', import.meta.url));

// The server as `npm start` runs it (the start script's flags, the compiled dist/main.js), so a
// build that drops something main.ts needs fails here; turbo builds the server before its tests.
const running: ServerProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.kill()));
});

async function start(env: Record<string, string>, cwd = tempDir()): Promise<ServerProcess> {
  const server = await startServerProcess({ NODE_ENV: 'test', ...env }, { cwd, output: 'keep' });
  running.push(server);
  return server;
}

describe('main.ts', () => {
  it('refuses to start on a bad value, naming the variable', async () => {
    const failure = await start({ PORT: 'eighty', LOG_LEVEL: 'chatty' }).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ServerStartError);
    const { code, stderr } = failure as ServerStartError;
    expect(code).toBe(1);
    expect(stderr).toMatch(/PORT: must be an integer/);
    expect(stderr).toMatch(/LOG_LEVEL: must be one of/);
  });

  it('starts on a SQLite file in WAL mode under DATA_DIR, serves /health, and stops cleanly on SIGTERM', async () => {
    const dataDir = path.join(tempDir(), 'data'); // created by the server
    const server = await start({ DATA_DIR: dataDir });
    // Announced at the address it listens on (the harness sets HOST=127.0.0.1), not localhost.
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok' });

    await server.stop();
    expect(server.child.exitCode).toBe(0);
    expect(server.output().stdout).toMatch(/shutting down/);
    // First start without ADMIN_PASSWORD: the generated admin password is printed, once.
    expect(server.output().stdout).toMatch(
      /created the first administrator \\"admin\\" with the generated password \S{20,}/,
    );

    const file = path.join(dataDir, 'synkronus.db');
    expect(existsSync(file)).toBe(true);
    // The server's files are its own (they were 0644 in a 0755 directory: password hashes for all).
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    for (const name of readdirSync(dataDir)) {
      const entry = path.join(dataDir, name);
      expect([name, statSync(entry).mode & 0o077]).toEqual([name, 0]);
    }
    const db = new Database(file, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    const migrations = db.prepare('select name from mikro_orm_migrations').all() as { name: string }[];
    expect(migrations.map((m) => m.name)).toContain('Migration20261124000000Init');
    db.close();
  });

  it('reads .env from its working directory', async () => {
    const cwd = tempDir();
    const dataDir = tempDir();
    writeFileSync(path.join(cwd, '.env'), `DATA_DIR=${dataDir}\nDB_CONNECTION=from-dotenv.db\n`);
    const server = await start({}, cwd);
    expect(existsSync(path.join(cwd, 'from-dotenv.db'))).toBe(true);
    server.child.kill('SIGINT');
    const [code] = await once(server.child, 'exit');
    expect(code).toBe(0);
  });

  it('keeps its data across restarts (same installation)', async () => {
    const dataDir = tempDir();
    await (await start({ DATA_DIR: dataDir })).stop();
    const id = () =>
      (
        new Database(path.join(dataDir, 'synkronus.db'), { readonly: true })
          .prepare("select value from server_meta where key = 'installation_id'")
          .get() as { value: string }
      ).value;
    const before = id();
    await (await start({ DATA_DIR: dataDir })).stop();
    expect(id()).toBe(before);
    expect(before).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe('on another Node.js', () => {
  it('needs the Node.js major that package.json engines name (the two are kept in step)', () => {
    const { engines } = JSON.parse(readFileSync(path.join(SERVER_DIR, 'package.json'), 'utf8'));
    expect(engines.node).toBe(`>=${REQUIRED_NODE_MAJOR} <${REQUIRED_NODE_MAJOR + 1}`);
  });

  it('unsupportedNode names the version needed and how to start the server; none for Node 24', () => {
    expect(unsupportedNode('24.21.0')).toBeUndefined();
    for (const version of ['20.20.2', '22.1.0', '26.0.0']) {
      expect(unsupportedNode(version)).toMatch(
        new RegExp(`needs Node\\.js 24 \\(this is ${version.replaceAll('.', '\\.')}\\).+npm start`),
      );
    }
  });

  // The machines this project runs on have Node 20 as their system node (the project brings 24).
  const systemNode = ['/usr/bin/node', '/usr/local/bin/node'].find(
    (file) =>
      existsSync(file) &&
      Number(execFileSync(file, ['-p', 'process.versions.node']).toString().split('.')[0]) !== 24,
  );
  it.skipIf(!systemNode)(
    'the server and the backup, started with it, say why they cannot run (it crashed without a word)',
    () => {
      for (const main of ['dist/main.js', 'dist/backup-main.js']) {
        const run = spawnSync(systemNode!, [main, ...(main.includes('backup') ? [tempDir()] : [])], {
          cwd: SERVER_DIR,
          env: { ...process.env, DATA_DIR: tempDir() },
          encoding: 'utf8',
        });
        expect([main, run.status, run.stderr]).toEqual([main, 1, expect.stringMatching(/needs Node\.js 24/)]);
      }
    },
  );
});

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from './helpers.ts';

const mainPath = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const running: ChildProcess[] = [];
afterEach(() => {
  for (const child of running.splice(0)) child.kill('SIGKILL');
});

function start(env: Record<string, string>, cwd = tempDir()) {
  const child = spawn(process.execPath, [mainPath], {
    cwd,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const listening = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', () => {
      const match = /"url":"(http:\/\/[^"]+)"/.exec(stdout);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}${stdout}`)));
  });
  // Tests that expect a failed start never await `listening`; keep its rejection from going unhandled.
  listening.catch(() => undefined);
  return { child, listening, output: () => ({ stdout, stderr }) };
}

describe('main.ts', () => {
  it('refuses to start on a bad value, naming the variable', async () => {
    const server = start({ PORT: 'eighty', LOG_LEVEL: 'chatty' });
    const [code] = await once(server.child, 'exit');
    expect(code).toBe(1);
    expect(server.output().stderr).toMatch(/PORT: must be an integer/);
    expect(server.output().stderr).toMatch(/LOG_LEVEL: must be one of/);
  });

  it('starts on a SQLite file in WAL mode under DATA_DIR, serves /health, and stops cleanly on SIGTERM', async () => {
    const dataDir = tempDir();
    const server = start({ PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'info' });
    const url = await server.listening;
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok' });

    server.child.kill('SIGTERM');
    const [code] = await once(server.child, 'exit');
    expect(code).toBe(0);
    expect(server.output().stdout).toMatch(/shutting down/);
    // First start without ADMIN_PASSWORD: the generated admin password is printed, once.
    expect(server.output().stdout).toMatch(
      /created the first administrator \\"admin\\" with the generated password \S{20,}/,
    );

    const file = path.join(dataDir, 'synkronus.db');
    expect(existsSync(file)).toBe(true);
    const db = new Database(file, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    const migrations = db.prepare('select name from mikro_orm_migrations').all() as { name: string }[];
    expect(migrations.map((m) => m.name)).toContain('Migration20261124000000Init');
    db.close();
  });

  it('reads .env from its working directory', async () => {
    const cwd = tempDir();
    const dataDir = tempDir();
    writeFileSync(path.join(cwd, '.env'), `PORT=0\nDATA_DIR=${dataDir}\nDB_CONNECTION=from-dotenv.db\n`);
    const server = start({}, cwd);
    await server.listening;
    expect(existsSync(path.join(cwd, 'from-dotenv.db'))).toBe(true);
    server.child.kill('SIGINT');
    const [code] = await once(server.child, 'exit');
    expect(code).toBe(0);
  });

  it('keeps its data across restarts (same installation)', async () => {
    const dataDir = tempDir();
    const first = start({ PORT: '0', DATA_DIR: dataDir });
    await first.listening;
    first.child.kill('SIGTERM');
    await once(first.child, 'exit');
    const id = () =>
      (
        new Database(path.join(dataDir, 'synkronus.db'), { readonly: true })
          .prepare("select value from server_meta where key = 'installation_id'")
          .get() as { value: string }
      ).value;
    const before = id();
    const second = start({ PORT: '0', DATA_DIR: dataDir });
    await second.listening;
    second.child.kill('SIGTERM');
    await once(second.child, 'exit');
    expect(id()).toBe(before);
    expect(before).toMatch(/^[0-9a-f]{32}$/);
  });
});

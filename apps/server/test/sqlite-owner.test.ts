import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { SqliteInUse } from '../src/db/sqlite-owner.ts';
import { createLogger } from '../src/lib/logger.ts';
import { closeContext, createContext } from '../src/server.ts';
import { ADMIN_PASSWORD, tempDir } from './helpers.ts';

const open = (file: string) =>
  createContext(
    loadConfig({ DATA_DIR: path.dirname(file), DB_CONNECTION: file, ADMIN_PASSWORD }),
    createLogger('silent'),
  );

const OWNER = fileURLToPath(new URL('../src/db/sqlite-owner.ts', import.meta.url));

describe('a SQLite database file has one server at a time', () => {
  it('a second server on the same file refuses to start, naming the first; after it closes, one may', async () => {
    const file = path.join(tempDir(), 'db.sqlite');
    const first = await open(file);
    await expect(open(file)).rejects.toThrow(SqliteInUse);
    await expect(open(file)).rejects.toThrow(`in use by another synk server (process ${process.pid}`);
    await closeContext(first);
    await closeContext(await open(file));
  });

  it('is free at once when the process holding it is killed (no process id or clock is judged)', async () => {
    const file = path.join(tempDir(), 'db.sqlite');
    // Another process claims the file, says so, and is then killed with SIGKILL.
    const holder = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { claimSqliteFile } = await import(${JSON.stringify(OWNER)}); claimSqliteFile(${JSON.stringify(file)}); console.log('held'); setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
    await expect(open(file)).rejects.toThrow(`in use by another synk server (process ${holder.pid}`);
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.on('exit', resolve));
    await closeContext(await open(file));
  });
});

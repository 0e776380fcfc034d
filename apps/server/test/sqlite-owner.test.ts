import { spawn } from 'node:child_process';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
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

/** Leaves a claim on `file` as a server that crashed (or runs elsewhere) would. */
function claimedBy(file: string, owner: { pid: number; host: string }, ageMs = 0) {
  const claim = `${file}.owner`;
  mkdirSync(claim);
  writeFileSync(path.join(claim, 'owner'), JSON.stringify({ ...owner, token: 'other' }));
  const at = new Date(Date.now() - ageMs);
  utimesSync(claim, at, at);
}

async function deadPid(): Promise<number> {
  const gone = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => gone.on('exit', resolve));
  return gone.pid!;
}

describe('a SQLite database file has one server at a time', () => {
  it('a second server on the same file refuses to start, naming the first; after it closes, one may', async () => {
    const file = path.join(tempDir(), 'db.sqlite');
    const first = await open(file);
    await expect(open(file)).rejects.toThrow(SqliteInUse);
    await expect(open(file)).rejects.toThrow(`in use by another synk server (process ${process.pid}`);
    await closeContext(first);
    await closeContext(await open(file));
  });

  it('takes over the claim of a crashed server of this host at once', async () => {
    const file = path.join(tempDir(), 'db.sqlite');
    claimedBy(file, { pid: await deadPid(), host: hostname() });
    await closeContext(await open(file));
  });

  it('waits out a claim from another host until it has not been refreshed for a minute', async () => {
    const file = path.join(tempDir(), 'db.sqlite');
    claimedBy(file, { pid: 4242, host: 'another-host.invalid' });
    await expect(open(file)).rejects.toThrow('process 4242 on another-host.invalid');
    const stale = path.join(tempDir(), 'db.sqlite');
    claimedBy(stale, { pid: 4242, host: 'another-host.invalid' }, 61_000);
    await closeContext(await open(stale));
  });
});

import { randomUUID } from 'node:crypto';
import { mkdir, statfs, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { MikroORM } from '@mikro-orm/core';

export type CheckStatus = 'ok' | 'error';

export interface HealthReport {
  status: CheckStatus;
  checks: {
    database: { status: CheckStatus; message?: string };
    storage: { status: CheckStatus; free_bytes: number; message?: string };
  };
}

export interface HealthDeps {
  orm: MikroORM;
  dataDir: string;
  minFreeBytes: number;
  timeoutMs?: number;
}

/** Cheap liveness of the two things the server cannot work without: its database and its data directory. */
export async function checkHealth(deps: HealthDeps): Promise<HealthReport> {
  const timeoutMs = deps.timeoutMs ?? 2000;
  const [database, storage] = await Promise.all([
    withTimeout(checkDatabase(deps.orm), timeoutMs, 'database check timed out'),
    withTimeout(checkStorage(deps.dataDir, deps.minFreeBytes), timeoutMs, 'storage check timed out'),
  ]);
  const storageCheck = 'free_bytes' in storage ? storage : { ...storage, free_bytes: 0 };
  const ok = database.status === 'ok' && storageCheck.status === 'ok';
  return { status: ok ? 'ok' : 'error', checks: { database, storage: storageCheck } };
}

async function checkDatabase(orm: MikroORM): Promise<{ status: CheckStatus; message?: string }> {
  try {
    await orm.em.getConnection().execute('select 1 as ok');
    return { status: 'ok' };
  } catch {
    return { status: 'error', message: 'database is unreachable' };
  }
}

async function checkStorage(
  dataDir: string,
  minFreeBytes: number,
): Promise<{ status: CheckStatus; free_bytes: number; message?: string }> {
  let freeBytes = 0;
  try {
    const fs = await statfs(dataDir);
    freeBytes = Number(fs.bavail) * Number(fs.bsize);
    // A real write: permission bits do not stop root, but a read-only or full filesystem does.
    const probeDir = path.join(dataDir, '.tmp');
    await mkdir(probeDir, { recursive: true });
    const probe = path.join(probeDir, `health-${randomUUID()}`);
    await writeFile(probe, 'ok');
    await unlink(probe);
  } catch {
    return { status: 'error', free_bytes: freeBytes, message: 'data directory is not writable' };
  }
  if (freeBytes < minFreeBytes) {
    return { status: 'error', free_bytes: freeBytes, message: `less than ${minFreeBytes} bytes free` };
  }
  return { status: 'ok', free_bytes: freeBytes };
}

async function withTimeout<T extends { status: CheckStatus }>(
  work: Promise<T>,
  ms: number,
  message: string,
): Promise<T | { status: 'error'; message: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ status: 'error'; message: string }>((resolve) => {
    timer = setTimeout(() => resolve({ status: 'error', message }), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

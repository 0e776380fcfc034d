import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { usePostgres } from '@synk/test-support/hooks';
import { postgresAvailable } from '@synk/test-support/postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/lib/logger.ts';
import { type RunningServer, startServer } from '../src/server.ts';
import { ADMIN_PASSWORD } from './helpers.ts';

/**
 * Attachments share a blob when their bytes are equal, so deleting the last attachment that uses a
 * blob races with an upload of the same bytes under another id. Each round uploads `a`, then
 * deletes `a` while uploading the same bytes as `b` (staggered by a random fraction of a
 * millisecond or more so the two meet at every point of each other's work). Whatever the order, an
 * upload that was answered 200 must stay downloadable: `b` is a new id, so its PUT must succeed and
 * its bytes must come back, and at the end every `download` in the manifest must be readable.
 * Before the fix the delete removed the blob outside any lock: some PUTs got 200 over a removed
 * blob (GET then dropped the connection) and some 503 with the row committed.
 */
const ROUNDS = 80;
const PARALLEL = 6;
const SIZE = 64 * 1024;

async function login(url: string): Promise<string> {
  const res = await fetch(`${url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { token: string }).token;
}

async function put(url: string, token: string, id: string, bytes: Buffer): Promise<number> {
  const form = new FormData();
  form.append('file', new Blob([bytes]), 'f.bin');
  const res = await fetch(`${url}/attachments/${id}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}` },
    body: form,
  });
  await res.arrayBuffer();
  return res.status;
}

/**
 * A PUT whose body is sent except for its closing boundary: the server has streamed the file and
 * waits for the end. `finish()` sends the rest, so the store runs at a moment the test chooses.
 */
function heldPut(url: string, token: string, id: string, bytes: Buffer) {
  const boundary = `race-${randomUUID()}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const { hostname, port } = new URL(url);
  const req = http.request({
    host: hostname,
    port,
    path: `/attachments/${id}`,
    method: 'PUT',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(head.length + bytes.length + tail.length),
    },
  });
  const status = new Promise<number>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
  req.write(head);
  req.write(bytes);
  return { status, finish: () => req.end(tail) };
}

async function del(url: string, token: string, id: string): Promise<number> {
  const res = await fetch(`${url}/attachments/${id}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${token}` },
  });
  await res.arrayBuffer();
  return res.status;
}

/** Status and body, or the transport error when the server cut the response. */
async function get(
  url: string,
  token: string,
  id: string,
): Promise<{ status: number | string; body?: Buffer }> {
  try {
    const res = await fetch(`${url}/attachments/${id}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
  } catch (err) {
    return { status: `error: ${(err as Error).message}` };
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `uploader` takes the PUTs, `deleter` the DELETEs (another process's server, or the same one). */
async function race(uploader: string, deleter: string) {
  const [upToken, delToken] = await Promise.all([login(uploader), login(deleter)]);
  const outcomes = new Map<string, number>();
  const failures: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    await Promise.all(
      Array.from({ length: PARALLEL }, async (_, lane) => {
        const bytes = randomBytes(SIZE);
        const a = `race-a-${round}-${lane}-${randomUUID()}`;
        const b = `race-b-${round}-${lane}-${randomUUID()}`;
        expect(await put(uploader, upToken, a, bytes)).toBe(200);
        const upload = heldPut(uploader, upToken, b, bytes);
        await pause(5); // the server has the file by now, all but its end
        // The delete and the end of the upload set off within a couple of milliseconds of each other, either first.
        const lead = Math.random() * 3;
        const [deleted, stored] = await Promise.all([
          pause(lead).then(() => del(deleter, delToken, a)),
          pause(3 - lead).then(() => {
            upload.finish();
            return upload.status;
          }),
        ]);
        const got = await get(uploader, upToken, b);
        const key = `delete ${deleted}, put ${stored}, get ${got.status}`;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        if (deleted !== 200 || stored !== 200 || got.status !== 200 || !got.body?.equals(bytes))
          failures.push(`${b}: ${key}`);
      }),
    );
  }
  // Every live attachment the manifest lists can be downloaded, whole.
  const manifest = (await (
    await fetch(`${uploader}/attachments/manifest`, {
      method: 'POST',
      headers: { authorization: `Bearer ${upToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: 'race-check', since_version: 0 }),
    })
  ).json()) as { operations: { operation: string; attachment_id: string; size?: number }[] };
  const downloads = manifest.operations.filter((o) => o.operation === 'download');
  expect(downloads.length).toBe(ROUNDS * PARALLEL);
  for (const op of downloads) {
    const got = await get(deleter, delToken, op.attachment_id);
    if (got.status !== 200 || got.body?.length !== op.size)
      failures.push(`manifest lists ${op.attachment_id}, GET: ${got.status}`);
  }
  expect(failures, JSON.stringify(Object.fromEntries(outcomes))).toEqual([]);
}

const servers: RunningServer[] = [];
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function start(env: Record<string, string>): Promise<string> {
  const server = await startServer(
    loadConfig({ PORT: '0', HOST: '127.0.0.1', ADMIN_PASSWORD, LOG_LEVEL: 'error', ...env }),
    createLogger('silent'),
  );
  servers.push(server);
  return `http://127.0.0.1:${server.port}`;
}

function dataDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'synk-race-'));
  dirs.push(dir);
  return dir;
}

describe('a delete racing an upload of the same bytes loses nothing', () => {
  it('in one process (SQLite)', async () => {
    const dir = dataDir();
    const url = await start({ DATA_DIR: dir });
    await race(url, url);
  }, 120_000);

  describe.skipIf(!postgresAvailable())('PostgreSQL', () => {
    const postgres = usePostgres();

    it('between two servers sharing the database and DATA_DIR (uploads on one, deletes on the other)', async () => {
      const env = { DATA_DIR: dataDir(), DB_CONNECTION: await postgres.server.createDatabase() };
      const uploader = await start(env);
      const deleter = await start(env);
      await race(uploader, deleter);
    }, 180_000);
  });
});

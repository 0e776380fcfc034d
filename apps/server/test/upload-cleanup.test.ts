import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readlinkSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp, tempDir } from './helpers.ts';

/**
 * Multipart bodies are streamed to disk as they arrive. A client that goes away mid-body must not
 * leave the file open or on disk; and whatever a crash leaves in the temporary directories is
 * removed at the next start once it is old enough.
 */
let t: TestApp;
let server: Server;
let port: number;
beforeAll(async () => {
  t = await createTestApp();
  server = t.app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await t.close();
});

const attachmentsTmp = () => path.join(t.dataDir, 'attachments', '.tmp');
const bundlesTmp = () => path.join(t.dataDir, 'app-bundles', '.tmp');
const list = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);

/** This process's open file descriptors on files under `dir` (the server runs in-process). */
function openFilesUnder(dir: string): string[] {
  const open: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) open.push(target);
    } catch {
      // closed while we looked
    }
  }
  return open;
}

/** Polls `probe` until it returns true or `ms` have passed; the cleanup runs after the response. */
async function eventually(probe: () => boolean, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return true;
}

/**
 * Starts a multipart upload that announces 100 MB, sends 1 MB of its file, waits until the server
 * has begun writing it to `tmpDir`, then drops the connection.
 */
async function abortedUpload(
  method: string,
  pathAndQuery: string,
  field: string,
  token: string,
  tmpDir: string,
) {
  const before = new Set(list(tmpDir));
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  const boundary = 'abort-boundary';
  socket.write(
    `${method} ${pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 100000000\r\n\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="x.bin"\r\n` +
      'Content-Type: application/octet-stream\r\n\r\n',
  );
  socket.write(Buffer.alloc(1024 * 1024, 7));
  const started = await eventually(() => list(tmpDir).some((name) => !before.has(name)));
  socket.destroy();
  return started;
}

describe('an aborted upload closes its file and removes it', () => {
  it.each([
    ['PUT', '/attachments/{id}', 'file', 'read-write', attachmentsTmp],
    ['POST', '/app-bundle/push', 'bundle', 'admin', bundlesTmp],
  ] as const)('%s %s', async (method, route, field, role, tmpDir) => {
    const target = () => route.replace('{id}', `aborted-${randomUUID()}`);
    const token = await t.tokenFor(role);
    const started = await Promise.all(
      Array.from({ length: 5 }, () => abortedUpload(method, target(), field, token, tmpDir())),
    );
    expect(started).toEqual([true, true, true, true, true]);
    const clean = await eventually(
      () => openFilesUnder(tmpDir()).length === 0 && list(tmpDir()).length === 0,
    );
    expect({ open: openFilesUnder(tmpDir()), files: list(tmpDir()), clean }).toEqual({
      open: [],
      files: [],
      clean: true,
    });
  });
});

describe('start-up', () => {
  it('removes leftovers older than an hour from the temporary directories, and keeps recent ones', async () => {
    const dataDir = tempDir();
    const old = (Date.now() - 2 * 3600_000) / 1000;
    const attachmentsDir = path.join(dataDir, 'attachments', '.tmp');
    const bundlesDir = path.join(dataDir, 'app-bundles', '.tmp');
    mkdirSync(path.join(bundlesDir, 'stage-old', 'app'), { recursive: true });
    mkdirSync(attachmentsDir, { recursive: true });
    for (const file of [
      path.join(attachmentsDir, 'old'),
      path.join(bundlesDir, 'upload-old.zip'),
      path.join(bundlesDir, 'stage-old', 'app', 'index.html'),
    ]) {
      writeFileSync(file, 'left behind by a crash');
      utimesSync(file, old, old);
    }
    utimesSync(path.join(bundlesDir, 'stage-old', 'app'), old, old);
    utimesSync(path.join(bundlesDir, 'stage-old'), old, old);
    writeFileSync(path.join(attachmentsDir, 'fresh'), 'another process is writing this');
    writeFileSync(path.join(bundlesDir, 'upload-fresh.zip'), 'another process is writing this');

    const other = await createTestApp({ DATA_DIR: dataDir });
    try {
      expect(list(attachmentsDir)).toEqual(['fresh']);
      expect(list(bundlesDir)).toEqual(['upload-fresh.zip']);
    } finally {
      await other.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readlinkSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import path from 'node:path';
import { buildZip } from '@synk/test-support/zip';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp, tempDir } from './helpers.ts';

/**
 * Multipart bodies are streamed to disk before the validator and the handler see the request, so
 * every way a request can end without the handler taking the file must remove it: an aborted body,
 * a body the parser rejects half-way (too many fields, a second file), an upload refused by the
 * handler (409) and a request the validator rejects after the body was read. And whatever a crash
 * leaves in the temporary directories is removed at the next start once it is old enough.
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
const blobPath = (bytes: Buffer) => {
  const hash = createHash('sha256').update(bytes).digest('hex');
  return path.join(t.dataDir, 'attachments', hash.slice(0, 2), hash);
};

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

function multipart(parts: { name: string; filename?: string; body: Buffer | string }[]) {
  const boundary = `b-${randomUUID()}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.filename ? `; filename="${part.filename}"` : ''}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n\r\n`));
    chunks.push(Buffer.from(part.body));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

async function send(method: string, pathAndQuery: string, token: string, form: ReturnType<typeof multipart>) {
  const res = await fetch(`http://127.0.0.1:${port}${pathAndQuery}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': form.contentType },
    body: form.body,
  });
  return { status: res.status, body: (await res.json()) as { code?: string } };
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

describe('a rejected upload leaves nothing behind', () => {
  it('409: the id holds other bytes', async () => {
    const token = await t.tokenFor('read-write');
    const id = `taken-${randomUUID()}.bin`;
    const first = randomBytes(5000);
    const second = randomBytes(5000);
    expect(
      (
        await send(
          'PUT',
          `/attachments/${id}`,
          token,
          multipart([{ name: 'file', filename: 'a', body: first }]),
        )
      ).status,
    ).toBe(200);
    const res = await send(
      'PUT',
      `/attachments/${id}`,
      token,
      multipart([{ name: 'file', filename: 'a', body: second }]),
    );
    expect(res.status).toBe(409);
    expect(existsSync(blobPath(first))).toBe(true);
    expect(existsSync(blobPath(second))).toBe(false);
    expect(await eventually(() => list(attachmentsTmp()).length === 0)).toBe(true);
  });

  it('400: too many fields after the file, or a second file', async () => {
    const token = await t.tokenFor('read-write');
    const fields = Array.from({ length: 25 }, (_, i) => ({ name: `f${i}`, body: 'x' }));
    for (const extra of [fields, [{ name: 'file', filename: 'b', body: 'again' }]]) {
      const bytes = randomBytes(5000);
      const res = await send(
        'PUT',
        `/attachments/rejected-${randomUUID()}.bin`,
        token,
        multipart([{ name: 'file', filename: 'a', body: bytes }, ...extra]),
      );
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(existsSync(blobPath(bytes))).toBe(false);
      expect(await eventually(() => list(attachmentsTmp()).length === 0)).toBe(true);
    }
  });

  it('400 from the validator after the bundle was streamed (?activate=maybe)', async () => {
    const token = await t.tokenFor('admin');
    const zip = buildZip([{ name: 'app/index.html', data: '<html></html>' }]);
    const res = await send(
      'POST',
      '/app-bundle/push?activate=maybe',
      token,
      multipart([{ name: 'bundle', filename: 'b.zip', body: zip }]),
    );
    expect(res.status).toBe(400);
    expect(await eventually(() => list(bundlesTmp()).length === 0)).toBe(true);
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

import { existsSync, mkdtempSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ApiError, createClient, NetworkError } from '@synk/sdk/node';
import { loopbackServer } from '@synk/test-support/hooks';
import { describe, expect, it, vi } from 'vitest';
import { destinationPath, uploadFile, writeWhole } from '../src/transfer.ts';

/** How many file descriptors of this process are open on `file` (Linux). */
function descriptorsOpenOn(file: string): number {
  let open = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === file) open += 1;
    } catch {
      // closed meanwhile
    }
  }
  return open;
}

/** A file bigger than what loopback sockets buffer, so that no attempt is sent whole before its answer. */
function bigFile(): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'synk-cli-upload-')), 'big.bin');
  writeFileSync(file, Buffer.alloc(32 * 1024 * 1024, 1));
  return file;
}

const part = (file: string) => ({
  field: 'file',
  file,
  filename: 'big.bin',
  contentType: 'application/octet-stream',
});

/**
 * Files are opened and closed asynchronously: waits a while for none to be open on `file`, then
 * checks that none opens after that.
 */
async function noneOpenOn(file: string): Promise<void> {
  await vi.waitFor(() => expect(descriptorsOpenOn(file)).toBe(0), { timeout: 5000, interval: 50 });
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(descriptorsOpenOn(file)).toBe(0);
}

describe.runIf(existsSync('/proc/self/fd'))('uploadFile closes the file of every attempt', () => {
  /** How each request is answered, in turn; then 200 after reading the body. */
  const script: ('503 unread' | 'reset' | '413 unread')[] = [];
  const server = loopbackServer(async (req, res) => {
    const step = script.shift();
    if (step === '503 unread') res.writeHead(503, { 'retry-after': '0' }).end();
    else if (step === 'reset') req.once('data', () => req.socket.destroy());
    else if (step === '413 unread')
      res
        .writeHead(413, { 'content-type': 'application/problem+json' })
        .end(JSON.stringify({ title: 'Payload Too Large', status: 413 }));
    else {
      for await (const _ of req);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"success"}');
    }
  });
  const client = () => createClient({ baseUrl: server.base, retry: { baseDelayMs: 1, maxDelayMs: 5 } });

  it('retried ones and the one that succeeds', async () => {
    const file = bigFile();
    script.push('503 unread', 'reset');
    const url = `${server.base}/attachments/big.bin`;
    expect(await uploadFile(client(), 'PUT', url, part(file))).toEqual({ status: 'success' });
    expect(script).toEqual([]);
    await noneOpenOn(file);
  });

  it('one the server answers without reading it', async () => {
    const file = bigFile();
    script.push('413 unread');
    const url = `${server.base}/attachments/big.bin`;
    const error = await uploadFile(client(), 'PUT', url, part(file)).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(413);
    await noneOpenOn(file);
  });

  it('ones that cannot reach the server', async () => {
    const file = bigFile();
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/attachments/big.bin`;
    await new Promise((resolve) => closed.close(resolve)); // connections to it are refused
    const unreachable = createClient({ baseUrl: url, retry: { retries: 2, baseDelayMs: 1, maxDelayMs: 5 } });
    await expect(uploadFile(unreachable, 'PUT', url, part(file))).rejects.toBeInstanceOf(NetworkError);
    await noneOpenOn(file);
  });

  it('one never sent (the session cannot be read)', async () => {
    const file = bigFile();
    const unreadable = {
      get: () => Promise.reject(new Error('unreadable session')),
      set: async () => {},
      delete: async () => {},
    };
    const url = `${server.base}/attachments/big.bin`;
    const failing = createClient({ baseUrl: server.base, storage: unreadable });
    await expect(uploadFile(failing, 'PUT', url, part(file))).rejects.toThrow('unreadable session');
    await noneOpenOn(file);
  });
});

describe('uploadFile refused by something other than the API', () => {
  // A proxy in front of the server refuses the upload with its own HTML page.
  const server = loopbackServer((_req, res) => {
    res
      .writeHead(413, { 'content-type': 'text/html' })
      .end('<html><body>413 Request Entity Too Large</body></html>');
  });

  it('rejects with an ApiError carrying the status', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'synk-cli-upload-')), 'small.bin');
    writeFileSync(file, 'bytes');
    const client = createClient({ baseUrl: server.base });
    const url = `${server.base}/app-bundle/push`;
    const error = await uploadFile(client, 'POST', url, part(file)).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(413);
  });
});

describe('writeWhole into a directory that does not exist', () => {
  it('names the directory, not its temporary file, and writes nothing', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'synk-cli-write-'));
    const target = await destinationPath(path.join(root, 'newdir') + path.sep, 'records.json');
    const attempt = writeWhole(target, 'pull', async (write) => write(Buffer.from('[]')));
    await expect(attempt).rejects.toThrow(
      `pull of records.json failed: there is no directory ${path.join(root, 'newdir')}`,
    );
    await expect(attempt).rejects.not.toThrow(/\.part/);
    expect(readdirSync(root)).toEqual([]);
  });
});

import { createReadStream, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loopbackServer } from '@synk/test-support/hooks';
import { describe, expect, it, vi } from 'vitest';
import { createClient } from '../src/client.ts';
import { NetworkError } from '../src/errors.ts';
import { multipartBody } from '../src/files.ts';
import { FileStorage } from '../src/node.ts';
import { MemoryStorage, WebStorage } from '../src/storage.ts';
import { createTransport, isRetryable, type TransportOptions } from '../src/transport.ts';

/** A transport without a session (and without retries unless `options` give some): its timeouts and retries alone. */
function plainTransport(timeoutMs: number, options: Partial<TransportOptions> = {}) {
  return createTransport({
    fetch: (r) => fetch(r),
    retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 5 },
    timeoutMs,
    accessToken: async () => undefined,
    refresh: async () => undefined,
    ...options,
  });
}

describe('isRetryable', () => {
  const req = (method: string, p: string, headers: Record<string, string> = {}) =>
    new Request(`http://x${p}`, { method, headers });
  it.each([
    ['GET', '/health', true],
    ['POST', '/sync/pull', true],
    ['POST', '/sync/push', true],
    ['POST', '/attachments/manifest', true],
    ['PUT', '/attachments/a.jpg', true],
    ['POST', '/users/create', false],
    ['POST', '/auth/login', false],
    ['POST', '/app-bundle/push', false],
  ])('%s %s → %s', (method, p, expected) => {
    expect(isRetryable(req(method, p))).toBe(expected);
  });
  it('any request with an Idempotency-Key', () => {
    expect(isRetryable(req('POST', '/users/create', { 'idempotency-key': 'k' }))).toBe(true);
  });
});

describe('transport against a real HTTP server', () => {
  const script: number[] = [];
  const seen: { path: string; auth: string | undefined }[] = [];
  const server = loopbackServer((req, res) => {
    seen.push({ path: req.url ?? '', auth: req.headers.authorization });
    const status = script.shift() ?? 200;
    if (status === 429) res.setHeader('retry-after', '0');
    if (status === 4290) {
      res.writeHead(429, { 'retry-after': '3600', 'content-type': 'application/json' }).end('{}');
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
  });

  const transport = (retries = 3) =>
    createTransport({
      fetch: (r) => fetch(r),
      retry: { retries, baseDelayMs: 1, maxDelayMs: 5 },
      timeoutMs: 5000,
      accessToken: async () => 'token-1',
      refresh: async () => 'token-2',
    });

  it('retries 5xx, 408 and 429 for safe requests, then succeeds', async () => {
    script.push(503, 408, 429);
    seen.length = 0;
    const res = await transport()(new Request(`${server.base}/sync/pull`, { method: 'POST', body: '{}' }));
    expect(res.status).toBe(200);
    expect(seen).toHaveLength(4);
  });

  it('does not retry a request that is not safe to repeat', async () => {
    script.push(503);
    seen.length = 0;
    const res = await transport()(new Request(`${server.base}/users/create`, { method: 'POST', body: '{}' }));
    expect(res.status).toBe(503);
    expect(seen).toHaveLength(1);
  });

  it('gives up after the configured retries', async () => {
    script.push(500, 500, 500);
    seen.length = 0;
    const res = await transport(2)(new Request(`${server.base}/health`));
    expect(res.status).toBe(500);
    expect(seen).toHaveLength(3);
  });

  it('returns a 429 whose Retry-After exceeds the longest configured wait instead of sleeping on it', async () => {
    script.push(4290);
    seen.length = 0;
    const res = await transport()(new Request(`${server.base}/sync/pull`, { method: 'POST', body: '{}' }));
    expect(res.status).toBe(429);
    expect(seen).toHaveLength(1);
  });

  it('an abort during the wait before a retry rejects at once', async () => {
    script.push(503);
    seen.length = 0;
    const controller = new AbortController();
    const stuck = plainTransport(5000, {
      retry: { retries: 3, baseDelayMs: 1, maxDelayMs: 5 },
      sleep: () => new Promise(() => {}), // a wait that would never end by itself
    });
    const pending = stuck(new Request(`${server.base}/health`, { signal: controller.signal }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort(new Error('user cancelled'));
    await expect(pending).rejects.toThrow('user cancelled');
    expect(seen).toHaveLength(1);
  });

  it('sends the bearer token, refreshes once on 401 and retries with the new one', async () => {
    script.push(401);
    seen.length = 0;
    const res = await transport()(new Request(`${server.base}/users`));
    expect(res.status).toBe(200);
    expect(seen.map((s) => s.auth)).toEqual(['Bearer token-1', 'Bearer token-2']);
  });
});

describe('Retry-After', () => {
  /** The headers of the next answer (a 503), then 200s. */
  let next: Record<string, string> | undefined;
  let requests = 0;
  const server = loopbackServer((_req, res) => {
    requests++;
    const headers = next;
    next = undefined;
    if (headers) res.writeHead(503, { ...headers, 'content-type': 'application/json' }).end('{}');
    else res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  /** What the transport waited before each retry, in ms, and the answer it gave. */
  async function waits(headers: Record<string, string>) {
    next = headers;
    requests = 0;
    const slept: number[] = [];
    const transport = plainTransport(5000, {
      retry: { retries: 1, baseDelayMs: 1000, maxDelayMs: 10_000 },
      sleep: async (ms) => {
        slept.push(ms);
      },
    });
    const { status } = await transport(new Request(`${server.base}/health`));
    return { slept, status, requests };
  }
  /** Now on a server whose clock is `skewMs` off this device's, to the second as HTTP-dates are. */
  const serverNow = (skewMs: number) => Math.floor((Date.now() + skewMs) / 1000) * 1000;
  const httpDate = (ms: number) => new Date(ms).toUTCString();

  it.each([
    ['an hour ahead of', 3_600_000],
    ['an hour behind', -3_600_000],
  ])('an HTTP-date is a wait on the server’s clock, one %s the device’s', async (_, skew) => {
    const now = serverNow(skew);
    expect(await waits({ date: httpDate(now), 'retry-after': httpDate(now + 2000) })).toEqual({
      slept: [2000],
      status: 200,
      requests: 2,
    });
  });

  it('delay-seconds is a wait in seconds', async () => {
    expect((await waits({ 'retry-after': '3' })).slept).toEqual([3000]);
  });

  it.each([['5, 5'], ['-5'], ['soon']])(
    '%j is no wait the server asked for: the usual backoff applies',
    async (value) => {
      vi.spyOn(Math, 'random').mockReturnValue(0.5);
      try {
        expect((await waits({ 'retry-after': value })).slept).toEqual([500]);
      } finally {
        vi.restoreAllMocks();
      }
    },
  );

  it('a wait too long to count in seconds is too long to sleep on: the answer is returned', async () => {
    expect(await waits({ 'retry-after': '9'.repeat(400) })).toEqual({ slept: [], status: 503, requests: 1 });
  });
});

describe('a response body that stalls after the headers', () => {
  const timeoutMs = 300;
  const chunk = Buffer.alloc(16 * 1024, 7);
  const server = loopbackServer((req, res) => {
    if (req.url === '/health') {
      // Headers, the start of the JSON, then nothing more.
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"status":');
    } else if (req.url === '/stalled-download') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(chunk);
    } else {
      // A slow but steady download: 10 chunks 100 ms apart, a second in all.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      let sent = 0;
      const next = setInterval(() => {
        res.write(chunk);
        if (++sent === 10) {
          clearInterval(next);
          res.end();
        }
      }, 100);
      res.on('close', () => clearInterval(next));
    }
  });
  const transport = () => plainTransport(timeoutMs);
  const elapsedSince = (start: number) => performance.now() - start;

  it('a JSON answer rejects with a timeout NetworkError', { timeout: 5000 }, async () => {
    const client = createClient({ baseUrl: server.base, timeoutMs, retry: { retries: 0 } });
    const start = performance.now();
    const error = await client.api.GET('/health').catch((err: unknown) => err);
    expect(error).toBeInstanceOf(NetworkError);
    expect((error as NetworkError).cause).toMatchObject({ name: 'TimeoutError' });
    expect(elapsedSince(start)).toBeGreaterThanOrEqual(timeoutMs - 20);
    expect(elapsedSince(start)).toBeLessThan(timeoutMs + 1000);
  });

  it('a streamed download rejects when no data comes for the timeout', { timeout: 5000 }, async () => {
    const response = await transport()(new Request(`${server.base}/stalled-download`));
    let received = 0;
    const start = performance.now();
    const reader = response.body!.getReader();
    const reading = (async () => {
      for (let next = await reader.read(); !next.done; next = await reader.read())
        received += next.value.byteLength;
    })();
    await expect(reading).rejects.toThrow(`no response data for ${timeoutMs} ms`);
    expect(received).toBe(chunk.byteLength);
    expect(elapsedSince(start)).toBeLessThan(timeoutMs + 1000);
  });

  it('a download that takes longer than the timeout completes while data keeps coming, and pauses of its reader do not count', async () => {
    const response = await transport()(new Request(`${server.base}/steady-download`));
    const reader = response.body!.getReader();
    let received = (await reader.read()).value!.byteLength;
    await new Promise((resolve) => setTimeout(resolve, 2 * timeoutMs)); // the reader is busy
    for (let next = await reader.read(); !next.done; next = await reader.read())
      received += next.value.byteLength;
    expect(received).toBe(10 * chunk.byteLength);
    const whole = await transport()(new Request(`${server.base}/steady-download`));
    expect((await whole.arrayBuffer()).byteLength).toBe(10 * chunk.byteLength);
  });
});

describe('the response the transport returns', () => {
  const timeoutMs = 100;
  const answer = JSON.stringify({ status: 'ok', version: 'x' });
  /** When the server saw the connection of each request to /stall close. */
  const closed = new Map<string, number>();
  const server = loopbackServer((req, res) => {
    if (req.url?.startsWith('/stall')) {
      // Headers and a first chunk, then nothing more.
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).write(Buffer.alloc(1024));
      req.socket.on('close', () => closed.set(req.url!, performance.now()));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(answer);
  });
  const transport = () => plainTransport(timeoutMs);
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('can be cloned, by a middleware of the typed client too, each copy keeping the url, status, headers and type', async () => {
    const client = createClient({ baseUrl: server.base, timeoutMs });
    const seen: string[] = [];
    client.api.use({
      async onResponse({ response }) {
        seen.push(await response.clone().text()); // e.g. a logging middleware
      },
    });
    expect((await client.api.GET('/health')).data).toEqual({ status: 'ok', version: 'x' });
    expect(seen).toEqual([answer]);

    const response = await transport()(new Request(`${server.base}/health`));
    const copy = response.clone();
    for (const r of [response, copy])
      expect([r.url, r.status, r.type, r.redirected, r.headers.get('content-type')]).toEqual([
        `${server.base}/health`,
        200,
        'basic',
        false,
        'application/json',
      ]);
    expect(await response.json()).toEqual({ status: 'ok', version: 'x' });
    expect([response.bodyUsed, copy.bodyUsed]).toEqual([true, false]);
    expect(await copy.text()).toBe(answer);
  });

  it('can be read long after it arrived', async () => {
    // E.g. downloads started together, then saved one after the other.
    const responses = await Promise.all(
      [1, 2, 3].map((n) => transport()(new Request(`${server.base}/file-${n}`))),
    );
    await sleep(3 * timeoutMs);
    expect(await responses[0]!.text()).toBe(answer);
    await sleep(3 * timeoutMs);
    expect(new TextDecoder().decode(await responses[1]!.arrayBuffer())).toBe(answer);
    expect(await responses[2]!.json()).toEqual({ status: 'ok', version: 'x' });
  });

  it('is released when nobody reads it, or stops reading it, for ten times the timeout; not sooner', async () => {
    const unread = await transport()(new Request(`${server.base}/stall-unread`));
    const abandoned = await transport()(new Request(`${server.base}/stall-abandoned`));
    const start = performance.now();
    await abandoned.body!.getReader().read(); // one chunk, and the app moves on
    await sleep(5 * timeoutMs);
    expect(closed.size).toBe(0);
    await sleep(7 * timeoutMs);
    expect(closed.size).toBe(2);
    for (const at of closed.values()) expect(at - start).toBeGreaterThanOrEqual(9 * timeoutMs);
    await expect(unread.text()).rejects.toThrow(`the response body was not read for ${10 * timeoutMs} ms`);
  });
});

describe('a streamed upload that must be retried', () => {
  /** Bytes of each request body the server read in full; every first attempt is answered 503. */
  const received: number[] = [];
  const server = loopbackServer(async (req, res) => {
    let bytes = 0;
    for await (const part of req) bytes += (part as Buffer).byteLength;
    received.push(bytes);
    if (received.length % 2 === 1) res.writeHead(503).end();
    else res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"success"}');
  });

  /**
   * How many Requests `run` cloned. A clone tees the body: the branch kept for a retry holds every
   * byte the sent branch read.
   */
  async function clonesDuring(run: () => Promise<void>): Promise<number> {
    const clone = vi.spyOn(Request.prototype, 'clone');
    try {
      await run();
      return clone.mock.calls.length;
    } finally {
      clone.mockRestore();
    }
  }

  it('given a function, the transport builds the request again for the retry, re-opening the file, and never clones it', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'synk-upload-')), 'big.bin');
    const size = 8 * 1024 * 1024;
    writeFileSync(file, Buffer.alloc(size, 1));
    const transport = plainTransport(5000, { retry: { retries: 2, baseDelayMs: 1, maxDelayMs: 5 } });
    let opened = 0;
    const upload = () => {
      opened += 1;
      const multipart = multipartBody(createReadStream(file), {
        field: 'file',
        filename: 'big.bin',
        contentType: 'application/octet-stream',
        size,
      });
      return new Request(`${server.base}/attachments/big.bin`, {
        method: 'PUT',
        body: multipart.body,
        headers: { 'content-type': multipart.contentType },
        duplex: 'half',
      } as RequestInit);
    };
    received.length = 0;
    const clones = await clonesDuring(async () => {
      expect((await transport(upload)).status).toBe(200);
    });
    expect(clones).toBe(0);
    expect(opened).toBe(2);
    expect(received).toHaveLength(2);
    expect(received.every((bytes) => bytes > size)).toBe(true); // the whole file, both times
  });

  it('given a streamed Request, the transport sends it again whole from the copy it keeps', async () => {
    const bytes = new Uint8Array(1024 * 1024).fill(3);
    const multipart = multipartBody(bytes, { field: 'file', filename: 'one.bin', contentType: 'x/y' });
    const transport = plainTransport(5000, { retry: { retries: 2, baseDelayMs: 1, maxDelayMs: 5 } });
    received.length = 0;
    const request = new Request(`${server.base}/attachments/one.bin`, {
      method: 'PUT',
      body: multipart.body,
      duplex: 'half',
    } as RequestInit);
    expect((await transport(request)).status).toBe(200);
    expect(received).toEqual([multipart.contentLength, multipart.contentLength]);
  });

  it('attachments.upload sends its bytes again for a retry without cloning the request', async () => {
    const client = createClient({ baseUrl: server.base, retry: { baseDelayMs: 1, maxDelayMs: 5 } });
    const bytes = new Uint8Array(1024 * 1024).fill(2);
    const progress: number[] = [];
    client.on('upload:progress', ({ loaded }) => progress.push(loaded));
    received.length = 0;
    const clones = await clonesDuring(async () => {
      expect(await client.attachments.upload('one.bin', bytes)).toEqual({ status: 'success' });
    });
    expect(clones).toBe(0);
    expect(received).toHaveLength(2);
    expect(received.every((n) => n > bytes.byteLength)).toBe(true);
    expect(progress.at(-1)).toBe(bytes.byteLength);
  });
});

describe('a body that is not an upload', () => {
  const seen: http.IncomingHttpHeaders[] = [];
  const server = loopbackServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  const json = () => new Request(`${server.base}/json`, { method: 'POST', body: JSON.stringify({ a: 1 }) });
  const blob = () =>
    new Request(`${server.base}/blob`, { method: 'POST', body: new Blob([new Uint8Array(1000)]) });

  it.each([
    ['JSON built by a function', () => json, '7'],
    ['JSON in a Request', json, '7'],
    ['a Blob in a Request', blob, '1000'],
  ])('is sent with the length fetch works out for it, not chunked: %s', async (_, source, length) => {
    expect((await plainTransport(1000)(source())).status).toBe(200);
    expect(seen.at(-1)).toMatchObject({ 'content-length': length });
    expect(seen.at(-1)!['transfer-encoding']).toBeUndefined();
  });
});

describe('an upload whose attempt is over before all of it was sent', () => {
  /** Statuses to answer, in turn, at once and without reading the body; then 413. */
  const script: number[] = [];
  const server = loopbackServer((_req, res) => {
    const status = script.shift() ?? 413;
    res.writeHead(status, { 'retry-after': '0', 'content-type': 'application/json' }).end('{}');
  });
  const size = 64 * 1024 * 1024; // far more than loopback sockets buffer
  const chunk = new Uint8Array(64 * 1024);

  /** A function building an upload to `url`, and what became of the bodies it built. */
  function upload(url: string) {
    const bodies = { built: 0, readWhole: 0, cancelled: 0 };
    const build = () => {
      bodies.built += 1;
      let left = size;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          controller.enqueue(chunk);
          left -= chunk.byteLength;
          if (left > 0) return;
          bodies.readWhole += 1;
          controller.close();
        },
        cancel() {
          bodies.cancelled += 1;
        },
      });
      return new Request(url, {
        method: 'PUT',
        body,
        headers: { 'content-length': String(size) },
        duplex: 'half',
      } as RequestInit);
    };
    return { build, bodies };
  }
  const transport = (retries: number) =>
    plainTransport(5000, { retry: { retries, baseDelayMs: 1, maxDelayMs: 5 } });

  it('ends the body of each, answered or retried, instead of leaving it open or reading it whole', async () => {
    script.push(503, 503);
    const { build, bodies } = upload(`${server.base}/attachments/big.bin`);
    const response = await transport(2)(build);
    expect(response.status).toBe(413);
    await response.text();
    await vi.waitFor(() => expect(bodies).toEqual({ built: 3, readWhole: 0, cancelled: 3 }));
  });

  it('ends the body of each when the server cannot be reached', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/attachments/big.bin`;
    await new Promise((resolve) => closed.close(resolve)); // connections to it are refused
    const { build, bodies } = upload(url);
    await expect(transport(2)(build)).rejects.toBeInstanceOf(NetworkError);
    await vi.waitFor(() => expect(bodies).toEqual({ built: 3, readWhole: 0, cancelled: 3 }));
  });
});

describe('an upload that takes longer than the timeout', () => {
  const timeoutMs = 1000;
  /** Bytes per ms the server reads: 16 MiB/s, so a send buffer's worth (4 MiB here) is read in 250 ms. */
  const rate = (16 * 1024 * 1024) / 1000;
  const server = loopbackServer(async (req, res) => {
    const start = performance.now();
    let read = 0;
    try {
      for await (const chunk of req) {
        read += (chunk as Buffer).byteLength;
        // A slow uplink, but a steady one: reading on schedule.
        const ahead = start + read / rate - performance.now();
        if (ahead > 0) await new Promise((resolve) => setTimeout(resolve, ahead));
        if (req.url!.includes('stalled') && read > 1024 * 1024) await new Promise(() => {}); // reads no more
      }
    } catch {
      return; // the client gave up
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'success' }));
  });
  const bytes = new Uint8Array(32 * 1024 * 1024); // two seconds at the server's rate
  const elapsedSince = (start: number) => performance.now() - start;

  /** A streamed body of `bytes`, sent without a stated length (chunked). */
  const streamed = () =>
    multipartBody(bytes, { field: 'file', filename: 'slow.bin', contentType: 'application/octet-stream' });
  const put = (name: string, body: ReadableStream<Uint8Array>) =>
    new Request(`${server.base}/attachments/${name}`, { method: 'PUT', body, duplex: 'half' } as RequestInit);
  /** Uploads `bytes` to `name`, each way an upload can be given. */
  const uploads: [string, (name: string) => Promise<unknown>][] = [
    [
      'attachments.upload (built by a function, stating its length)',
      (name) =>
        createClient({ baseUrl: server.base, timeoutMs, retry: { retries: 0 } }).attachments.upload(
          name,
          bytes,
        ),
    ],
    [
      'built by a function, not stating its length',
      async (name) => (await plainTransport(timeoutMs)(() => put(name, streamed().body))).json(),
    ],
    [
      'a streamed Request',
      async (name) => (await plainTransport(timeoutMs)(put(name, streamed().body))).json(),
    ],
  ];

  it.each(uploads)(
    'succeeds while the network keeps taking its bytes: %s',
    { timeout: 20_000 },
    async (_, upload) => {
      const start = performance.now();
      expect(await upload('slow.bin')).toEqual({ status: 'success' });
      expect(elapsedSince(start)).toBeGreaterThan(1.5 * timeoutMs);
    },
  );

  it.each(uploads)(
    'fails once the network takes none of them for the timeout: %s',
    { timeout: 20_000 },
    async (_, upload) => {
      const start = performance.now();
      const error = await upload('stalled.bin').catch((err: unknown) => err);
      expect(error).toBeInstanceOf(NetworkError);
      expect((error as NetworkError).message).toContain(`no request data was taken for ${timeoutMs} ms`);
      expect((error as NetworkError).cause).toMatchObject({ name: 'TimeoutError' });
      expect(elapsedSince(start)).toBeLessThan(timeoutMs + 1500);
    },
  );
});

describe('timeouts and cancellations under garbage collection', () => {
  // A real collection, as a long-running app gets them: V8's own gc(), exposed at run time.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const timeoutMs = 300;
  const server = loopbackServer((req, res) => {
    // Refuses the access token; swallows every other request, or under /stall answers a refresh
    // with its headers and the start of a body, and then nothing.
    if (req.url === '/users' || req.url === '/stall/users')
      res.writeHead(401, { 'content-type': 'application/json' }).end('{}');
    else if (req.url === '/stall/auth/refresh')
      res.writeHead(200, { 'content-type': 'application/json' }).write('{"token":');
    else if (req.url === '/stalled-body')
      res.writeHead(200, { 'content-type': 'text/plain' }).write('the start of it');
  });
  /** How `pending` ends within 5 s while collections run, or 'hung'. */
  async function outcome(pending: Promise<unknown>): Promise<unknown> {
    const collecting = setInterval(gc, 50);
    try {
      return await Promise.race([
        pending.then(
          () => 'resolved',
          (err: unknown) => err,
        ),
        new Promise((resolve) => setTimeout(resolve, 5000, 'hung')),
      ]);
    } finally {
      clearInterval(collecting);
    }
  }

  it('still end a request nobody answers', { timeout: 10_000 }, async () => {
    const client = createClient({ baseUrl: server.base, timeoutMs, retry: { retries: 0 } });
    const error = await outcome(client.api.GET('/health'));
    expect(error).toBeInstanceOf(NetworkError);
    expect((error as NetworkError).message).toContain(`no response within ${timeoutMs} ms`);
  });

  it('still end a token refresh nobody answers', { timeout: 10_000 }, async () => {
    const client = createClient({
      baseUrl: server.base,
      timeoutMs,
      tokens: { token: 'expired', refreshToken: 'r', expiresAt: 0 },
    });
    expect(await outcome(client.api.GET('/users'))).toBeInstanceOf(NetworkError);
  });

  it('still end a token refresh whose answer stalls after its headers', { timeout: 10_000 }, async () => {
    const client = createClient({
      baseUrl: `${server.base}/stall`,
      timeoutMs,
      tokens: { token: 'expired', refreshToken: 'r', expiresAt: 0 },
    });
    expect(await outcome(client.api.GET('/users'))).toBeInstanceOf(NetworkError);
  });

  /** Reads `response`'s body chunk by chunk to its end. */
  async function readStream(response: Response): Promise<void> {
    const reader = response.body!.getReader();
    while (!(await reader.read()).done);
  }

  it.each([
    ['as a stream', readStream],
    ['whole', (response: Response) => response.text()],
  ])('still let the caller cancel the reading of a body %s', { timeout: 10_000 }, async (_how, read) => {
    const caller = new AbortController();
    // A timeout that cannot end it: only the caller's cancellation can.
    const response = await plainTransport(60_000)(
      new Request(`${server.base}/stalled-body`, { signal: caller.signal }),
    );
    const reading = read(response);
    for (let collections = 0; collections < 3; collections++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      gc();
    }
    caller.abort();
    expect(await outcome(reading)).toMatchObject({ name: 'AbortError' });
  });
});

describe('storage adapters', () => {
  it.each([
    ['memory', () => new MemoryStorage()],
    ['file', () => new FileStorage(mkdtempSync(path.join(tmpdir(), 'synk-sdk-storage-')))],
    [
      'web',
      () => {
        const map = new Map<string, string>();
        return new WebStorage({
          getItem: (k) => map.get(k) ?? null,
          setItem: (k, v) => map.set(k, v),
          removeItem: (k) => map.delete(k),
        });
      },
    ],
  ])('%s: set, get, overwrite, delete', async (_name, make) => {
    const storage = make();
    expect(await storage.get('a')).toBeUndefined();
    await storage.set('a', { n: 1, list: [1, 2] });
    expect(await storage.get('a')).toEqual({ n: 1, list: [1, 2] });
    await storage.set('a', 2);
    expect(await storage.get('a')).toBe(2);
    await storage.delete('a');
    expect(await storage.get('a')).toBeUndefined();
  });

  it('file storage fsyncs the directory after the rename, so the new name survives a power loss', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'synk-sdk-storage-'));
    // Which files are fsynced, seen from inside the real FileHandle.sync (which still runs).
    const probe = await open(path.join(dir, 'probe'), 'w');
    const fileHandle = Object.getPrototypeOf(probe) as FileHandle;
    await probe.close();
    const realSync = fileHandle.sync;
    const synced: string[] = [];
    const sync = vi.spyOn(fileHandle, 'sync').mockImplementation(async function (this: FileHandle) {
      synced.push((await this.stat()).isDirectory() ? 'directory' : 'file');
      return realSync.call(this);
    });
    try {
      await new FileStorage(dir).set('a', 1);
    } finally {
      sync.mockRestore();
    }
    expect(synced).toEqual(['file', 'directory']);
  });

  it('file storage survives a new instance and leaves no temporary files', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'synk-sdk-storage-'));
    await new FileStorage(dir).set('outbox:queue', [{ observation_id: 'x' }]);
    expect(await new FileStorage(dir).get('outbox:queue')).toEqual([{ observation_id: 'x' }]);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('a refresh that never answers', () => {
  it('times out as a NetworkError instead of leaving every request that hit a 401 waiting', async () => {
    // A network that answers 401 and then swallows the refresh request (only its timeout ends it).
    const hungNetwork = async (request: Request) => {
      if (!request.url.endsWith('/auth/refresh')) return new Response('{}', { status: 401 });
      return new Promise<Response>((_, reject) =>
        request.signal.addEventListener('abort', () => reject(request.signal.reason)),
      );
    };
    const client = createClient({
      baseUrl: 'http://sdk.test',
      tokens: { token: 'expired', refreshToken: 'r', expiresAt: 0 },
      fetch: hungNetwork,
      timeoutMs: 100,
    });
    await expect(client.api.GET('/users')).rejects.toBeInstanceOf(NetworkError);
  });
});

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTarget } from '../src/harness.ts';
import { adminToken, call, send, userWithRole } from '../src/http.ts';
import { rawRequest } from '../src/raw-http.ts';

const LIMIT = 256 * 1024;
const target = useTarget({ ATTACHMENT_MAX_BYTES: String(LIMIT) });

let writer: { token: string };
let reader: { token: string };
beforeAll(async () => {
  writer = await userWithRole(target, 'read-write');
  reader = await userWithRole(target, 'read-only');
});

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const auth = (token: string) => ({ authorization: `Bearer ${token}` });

function upload(
  id: string,
  bytes: Uint8Array,
  options: { token?: string; type?: string; headers?: Record<string, string>; field?: string } = {},
) {
  const form = new FormData();
  form.append(
    options.field ?? 'file',
    new Blob([Buffer.from(bytes)], { type: options.type ?? 'application/octet-stream' }),
    'original-name.bin',
  );
  return send(target, `/attachments/${id}`, {
    method: 'PUT',
    headers: { ...auth(options.token ?? writer.token), ...options.headers },
    body: form,
  });
}

const download = (id: string, headers: Record<string, string> = {}, token = reader.token) =>
  send(target, `/attachments/${id}`, { headers: { ...auth(token), ...headers } });

const newId = (ext = 'jpg') => `att-${randomUUID()}.${ext}`;

/** `POST /attachments/manifest` written by hand, to send any Host header (or none, over HTTP/1.0). */
function rawManifest(
  host: string | null,
  version: '1.0' | '1.1',
): Promise<{ status: number; body: unknown }> {
  const body = JSON.stringify({ client_id: 'host-check', since_version: 0 });
  const head = [
    `POST /attachments/manifest HTTP/${version}`,
    ...(host === null ? [] : [`Host: ${host}`]),
    `Authorization: Bearer ${reader.token}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
  ];
  return rawRequest(target.baseUrl, head, body);
}

describe('upload → manifest → download', () => {
  it('round-trips bytes with hash, size, version, content type and a manifest entry seen by another client', async () => {
    const id = newId('jpg');
    const bytes = randomBytes(50_000);
    const before = (
      await call(target, 'POST', '/attachments/manifest', {
        token: reader.token,
        body: { client_id: 'b', since_version: 0 },
      })
    ).body.current_version;
    const res = await upload(id, bytes);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toEqual({
      status: 'success',
      id,
      hash: sha256(bytes),
      size: bytes.length,
      version: before + 1,
    });

    const manifest = await call(target, 'POST', '/attachments/manifest', {
      token: reader.token,
      body: { client_id: 'second-device', since_version: before },
    });
    expect(manifest.status).toBe(200);
    expect(manifest.body).toEqual({
      current_version: before + 1,
      operations: [
        {
          operation: 'download',
          attachment_id: id,
          download_url: target.url(`/attachments/${id}`),
          size: bytes.length,
          content_type: 'image/jpeg',
          version: before + 1,
          hash: sha256(bytes),
        },
      ],
      total_download_size: bytes.length,
      operation_count: { download: 1, delete: 0 },
      has_more: false,
      change_cutoff: before + 1,
    });

    const got = await download(id);
    expect(got.status).toBe(200);
    expect(got.headers.get('content-type')).toBe('image/jpeg');
    expect(got.headers.get('content-length')).toBe(String(bytes.length));
    expect(got.headers.get('etag')).toBe(`"${sha256(bytes)}"`);
    expect(got.headers.get('content-disposition')).toBe(`inline; filename="${id}"`);
    expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('keeps the part’s own content type when it names one', async () => {
    const id = newId('dat');
    await upload(id, Buffer.from('hello'), { type: 'text/plain' });
    expect((await download(id)).headers.get('content-type')).toMatch(/^text\/plain/);
  });

  it('keeps the charset the part declares (normalised), and none of its other parameters', async () => {
    for (const [declared, stored] of [
      ['text/plain; charset=iso-8859-1', 'text/plain; charset=iso-8859-1'],
      ['text/csv; charset="Windows-1252"; header=present', 'text/csv; charset=windows-1252'],
      ['text/plain; name="<script>"; charset=UTF-8', 'text/plain; charset=utf-8'],
      ['text/plain; charset="utf-8 x-evil: 1"', 'text/plain'],
      ['text/plain; charset=a,b', 'text/plain'],
    ]) {
      const id = newId('txt');
      const bytes = Buffer.from('caf\u00e9 cr\u00e8me', 'latin1');
      expect((await upload(id, bytes, { type: declared })).status, declared).toBe(200);
      for (const method of ['GET', 'HEAD']) {
        const res = await send(target, `/attachments/${id}`, { method, headers: auth(reader.token) });
        expect(res.headers.get('content-type'), `${method} ${declared}`).toBe(stored);
        if (method === 'GET') expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
      }
      const manifest = await call(target, 'POST', '/attachments/manifest', {
        token: reader.token,
        body: { client_id: 'charset-check', since_version: 0 },
      });
      const entry = manifest.body.operations.find((o: { attachment_id: string }) => o.attachment_id === id);
      expect(entry.content_type, declared).toBe(stored);
    }
    // Text with its charset is still shown, not downloaded.
    const id = newId('txt');
    await upload(id, Buffer.from('hello'), { type: 'text/plain; charset=utf-8' });
    expect((await download(id)).headers.get('content-disposition')).toBe(`inline; filename="${id}"`);
  });

  it('an uploaded HTML page or SVG is a sandboxed, unsniffed download, not a page on the server’s origin', async () => {
    for (const [ext, type] of [
      ['html', 'text/html'],
      ['svg', 'image/svg+xml'],
    ]) {
      const id = newId(ext);
      await upload(id, Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'), { type });
      for (const method of ['GET', 'HEAD']) {
        const res = await send(target, `/attachments/${id}`, { method, headers: auth(reader.token) });
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')?.split(';')[0]).toBe(type);
        expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${id}"`);
        expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; sandbox");
        expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      }
    }
  });

  it('uses PUBLIC_URL-free absolute URLs built from the request origin', async () => {
    const manifest = await call(target, 'POST', '/attachments/manifest', {
      token: reader.token,
      body: { client_id: 'c', since_version: 0 },
    });
    for (const op of manifest.body.operations) {
      if (op.operation === 'download')
        expect(op.download_url.startsWith(`${target.baseUrl}/attachments/`)).toBe(true);
    }
  });

  // A server started elsewhere may have PUBLIC_URL set, which wins over any Host.
  it.skipIf(Boolean(process.env.TEST_BASE_URL))(
    'builds download URLs only from a valid Host (else the address the request came to), never a 500',
    async () => {
      await upload(newId('txt'), Buffer.from('host check'));
      const local = new URL(target.baseUrl).host; // the harness listens on 127.0.0.1
      const cases: [string | null, '1.0' | '1.1', string][] = [
        ['a b', '1.1', `http://${local}`],
        ['evil.example/x?', '1.1', `http://${local}`],
        ['evil.example#frag', '1.1', `http://${local}`],
        ['user@evil.example', '1.1', `http://${local}`],
        ['host:99999', '1.1', `http://${local}`],
        [null, '1.0', `http://${local}`],
        ['files.example:8443', '1.1', 'http://files.example:8443'],
        ['[::1]:8080', '1.1', 'http://[::1]:8080'],
        ['sync.example', '1.0', 'http://sync.example'],
      ];
      for (const [host, version, origin] of cases) {
        const res = await rawManifest(host, version);
        expect(res.status, `Host ${host}`).toBe(200);
        const downloads = (
          res.body as { operations: { operation: string; download_url?: string }[] }
        ).operations.filter((o) => o.operation === 'download');
        expect(downloads.length).toBeGreaterThan(0);
        for (const op of downloads)
          expect(op.download_url, `Host ${host}`).toMatch(
            new RegExp(`^${origin.replace(/[.[\]]/g, '\\$&')}/attachments/[^/]+$`),
          );
      }
    },
  );

  it('HEAD answers with the same headers and no body; 404 when missing', async () => {
    const id = newId('png');
    const bytes = randomBytes(1234);
    await upload(id, bytes);
    const head = await send(target, `/attachments/${id}`, {
      method: 'HEAD',
      headers: auth(reader.token),
    });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('1234');
    expect(head.headers.get('etag')).toBe(`"${sha256(bytes)}"`);
    expect(await head.text()).toBe('');
    const missing = await send(target, '/attachments/nope.png', {
      method: 'HEAD',
      headers: auth(reader.token),
    });
    expect(missing.status).toBe(404);
    expect((await download('nope.png')).status).toBe(404);
  });
});

describe('idempotency and conflicts', () => {
  it('the same bytes again → 200 without a new version; different bytes → 409', async () => {
    const id = newId();
    const bytes = randomBytes(1000);
    const first = await (await upload(id, bytes)).json();
    const again = await upload(id, bytes);
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual(first);
    const other = await upload(id, randomBytes(1000));
    expect(other.status).toBe(409);
    expect((await other.json()).code).toBe('attachment_exists');
    expect(Buffer.from(await (await download(id)).arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('concurrent uploads of one id: same bytes all succeed with one version; different bytes, exactly one wins', async () => {
    const same = newId();
    const bytes = randomBytes(20_000);
    const results = await Promise.all(Array.from({ length: 5 }, () => upload(same, bytes)));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    const versions = new Set(await Promise.all(results.map(async (r) => (await r.json()).version)));
    expect(versions.size).toBe(1);

    const contested = newId();
    const candidates = Array.from({ length: 5 }, () => randomBytes(20_000));
    const outcomes = await Promise.all(candidates.map((c) => upload(contested, c)));
    expect(outcomes.map((r) => r.status).sort()).toEqual([200, 409, 409, 409, 409]);
    const winner = candidates[outcomes.findIndex((r) => r.status === 200)]!;
    expect(Buffer.from(await (await download(contested)).arrayBuffer()).equals(winner)).toBe(true);
  });
});

describe('sizes and digests', () => {
  it('a 0-byte file is fine', async () => {
    const id = newId('txt');
    const res = await upload(id, new Uint8Array(0));
    expect(res.status).toBe(200);
    expect((await res.json()).size).toBe(0);
    const got = await download(id);
    expect(got.headers.get('content-length')).toBe('0');
    expect((await got.arrayBuffer()).byteLength).toBe(0);
  });

  it('exactly at the limit → 200; one byte over → 413 and nothing stored', async () => {
    expect((await upload(newId(), randomBytes(LIMIT))).status).toBe(200);
    const id = newId();
    const over = await upload(id, randomBytes(LIMIT + 1));
    expect(over.status).toBe(413);
    expect((await over.json()).code).toBe('payload_too_large');
    expect((await download(id)).status).toBe(404);
  });

  it('verifies X-Content-SHA256 and Content-Digest; a mismatch is 400 and stores nothing', async () => {
    const bytes = randomBytes(4096);
    const good = await upload(newId(), bytes, { headers: { 'x-content-sha256': sha256(bytes) } });
    expect(good.status).toBe(200);
    const digest = createHash('sha256').update(bytes).digest('base64');
    expect(
      (await upload(newId(), bytes, { headers: { 'content-digest': `sha-256=:${digest}:` } })).status,
    ).toBe(200);

    const id = newId();
    const bad = await upload(id, bytes, { headers: { 'x-content-sha256': sha256(Buffer.from('other')) } });
    expect(bad.status).toBe(400);
    expect((await bad.json()).code).toBe('digest_mismatch');
    expect((await download(id)).status).toBe(404);
    expect((await upload(newId(), bytes, { headers: { 'x-content-sha256': 'not-hex' } })).status).toBe(400);
  });

  it('Content-Digest: algorithms the server does not support are ignored (RFC 9530); sha-256 among them is verified; malformed → 400', async () => {
    const bytes = randomBytes(2048);
    const sha512 = createHash('sha512').update(bytes).digest('base64');
    const sha256b64 = createHash('sha256').update(bytes).digest('base64');
    const wrong256 = createHash('sha256').update('other').digest('base64');
    for (const digest of [
      `sha-512=:${sha512}:`,
      `sha-512=:${sha512}:, unixsum=:AAAA:`,
      `sha-512=:${sha512}:, sha-256=:${sha256b64}:`,
    ]) {
      const id = newId();
      const res = await upload(id, bytes, { headers: { 'content-digest': digest } });
      expect(res.status, digest).toBe(200);
      expect((await download(id)).status).toBe(200);
    }
    const id = newId();
    const mismatch = await upload(id, bytes, {
      headers: { 'content-digest': `sha-512=:${sha512}:, sha-256=:${wrong256}:` },
    });
    expect(mismatch.status).toBe(400);
    expect((await mismatch.json()).code).toBe('digest_mismatch');
    expect((await download(id)).status).toBe(404);
    for (const malformed of ['sha-256=abc', 'garbage', 'sha-256=:AAAA:', `sha-512=:${sha512}`]) {
      const res = await upload(newId(), bytes, { headers: { 'content-digest': malformed } });
      expect(res.status, malformed).toBe(400);
    }
  });
});

describe('bad input', () => {
  it.each(['..', '.', '%2e%2e', 'a%2Fb', `${'x'.repeat(256)}`, 'sp%20ace', 'semi%3Bcolon'])(
    'id %s → 400 (or 404 when it is no single segment)',
    async (id) => {
      const res = await upload(id, Buffer.from('x'));
      expect([400, 404]).toContain(res.status);
      if (res.status === 400) expect((await res.json()).code).toBe('validation_failed');
      expect((await download(id)).status).toBeGreaterThanOrEqual(400);
    },
  );

  it('a 255-character id is fine', async () => {
    expect((await upload('y'.repeat(255), Buffer.from('ok'))).status).toBe(200);
  });

  it('no file part → 400; JSON instead of multipart → 415; read-only → 403 before reading', async () => {
    const missing = await upload(newId(), Buffer.from('x'), { field: 'other' });
    expect(missing.status).toBe(400);
    const json = await call(target, 'PUT', `/attachments/${newId()}`, {
      token: writer.token,
      body: { file: 'x' },
    });
    expect(json.status).toBe(415);
    expect((await upload(newId(), Buffer.from('x'), { token: reader.token })).status).toBe(403);
  });

  it('a malformed multipart body → 400', async () => {
    const res = await send(target, `/attachments/${newId()}`, {
      method: 'PUT',
      headers: { ...auth(writer.token), 'content-type': 'multipart/form-data; boundary=xyz' },
      body: '--xyz\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nunterminated',
    });
    expect(res.status).toBe(400);
  });

  it('an upload aborted mid-body leaves nothing behind, and a retry succeeds', async () => {
    const id = newId();
    const url = new URL(target.url(`/attachments/${id}`));
    const boundary = 'abort-boundary';
    await new Promise<void>((resolve) => {
      const req = http.request({
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'PUT',
        headers: {
          ...auth(writer.token),
          'content-type': `multipart/form-data; boundary=${boundary}`,
          'content-length': '100000',
        },
      });
      req.on('error', () => resolve());
      req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n`);
      req.write(randomBytes(10_000));
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 100);
    });
    await new Promise((r) => setTimeout(r, 100));
    expect((await download(id)).status).toBe(404);
    expect((await upload(id, Buffer.from('complete'))).status).toBe(200);
  });
});

describe('Range and conditional requests', () => {
  const bytes = randomBytes(1000);
  const id = `range-${randomUUID()}.bin`;
  beforeAll(async () => {
    expect((await upload(id, bytes)).status).toBe(200);
  });

  it.each([
    ['bytes=0-99', 0, 99],
    ['bytes=900-', 900, 999],
    ['bytes=-10', 990, 999],
    ['bytes=-5000', 0, 999], // a suffix longer than the file is all of it (RFC 9110 §14.1.3)
    ['bytes=990-5000', 990, 999],
    ['bytes=0-0', 0, 0],
  ])('%s → 206 with that slice', async (range, start, end) => {
    const res = await download(id, { range });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/1000`);
    expect(res.headers.get('content-length')).toBe(String(end - start + 1));
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes.subarray(start, end + 1))).toBe(true);
  });

  it.each(['bytes=1000-', 'bytes=5000-6000'])('%s → 416 with Content-Range bytes */size', async (range) => {
    const res = await download(id, { range });
    expect(res.status).toBe(416);
    expect(res.headers.get('content-range')).toBe('bytes */1000');
  });

  it('a 416 is a problem that describes itself, not the attachment it does not send (RFC 9110 §15.5.17)', async () => {
    const res = await download(id, { range: 'bytes=1000-' });
    expect(res.status).toBe(416);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.headers.get('content-range')).toBe('bytes */1000');
    expect(((await res.json()) as { code: string }).code).toBe('range_not_satisfiable');
    for (const name of ['etag', 'content-disposition', 'accept-ranges'])
      expect(res.headers.get(name), name).toBeNull();
  });

  it.each(['bytes=0-1,5-6', 'chars=0-1', 'garbage'])('%s → the whole file (200)', async (range) => {
    const res = await download(id, { range });
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBe(1000);
  });

  it('If-None-Match with the ETag (strong, weak, listed or *) → 304; another tag → 200', async () => {
    const etag = `"${sha256(bytes)}"`;
    for (const value of [etag, `W/${etag}`, `"zzz", ${etag}`, '*']) {
      const res = await download(id, { 'if-none-match': value });
      expect(res.status).toBe(304);
      expect(res.headers.get('etag')).toBe(etag);
      // Only what refreshes the client's copy (RFC 9110 §15.4.5), not the headers of a body.
      expect(res.headers.get('content-disposition')).toBeNull();
    }
    expect((await download(id, { 'if-none-match': '"other"' })).status).toBe(200);
  });

  it('If-Range with the current ETag → 206; a stale, weak or date validator → 200 with the whole file', async () => {
    const etag = `"${sha256(bytes)}"`;
    const current = await download(id, { range: 'bytes=0-99', 'if-range': etag });
    expect(current.status).toBe(206);
    expect(current.headers.get('content-range')).toBe('bytes 0-99/1000');
    expect(Buffer.from(await current.arrayBuffer()).equals(bytes.subarray(0, 100))).toBe(true);
    // RFC 9110 §13.1.5: the range only applies to the representation the client has; a weak tag
    // never matches, and a date cannot (no Last-Modified is sent), so the client gets it all.
    for (const stale of [`"${sha256(Buffer.from('older bytes'))}"`, `W/${etag}`, new Date().toUTCString()]) {
      const res = await download(id, { range: 'bytes=0-99', 'if-range': stale });
      expect(res.status, stale).toBe(200);
      expect(res.headers.get('content-range')).toBeNull();
      expect(res.headers.get('content-length')).toBe('1000');
      expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
    }
  });
});

describe('DELETE /attachments/{id}', () => {
  it('admin only; records a delete operation; the file is gone; the id can be uploaded again', async () => {
    const id = newId();
    await upload(id, Buffer.from('to be deleted'));
    expect((await call(target, 'DELETE', `/attachments/${id}`, { token: writer.token })).status).toBe(403);
    const admin = await adminToken(target);
    const res = await call(target, 'DELETE', `/attachments/${id}`, { token: admin });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'success', id, version: expect.any(Number) });
    expect((await download(id)).status).toBe(404);
    expect((await call(target, 'DELETE', `/attachments/${id}`, { token: admin })).status).toBe(404);

    const manifest = await call(target, 'POST', '/attachments/manifest', {
      token: reader.token,
      body: { client_id: 'c', since_version: res.body.version - 1 },
    });
    expect(manifest.body.operations).toEqual([
      { operation: 'delete', attachment_id: id, version: res.body.version },
    ]);
    expect(manifest.body.operation_count).toEqual({ download: 0, delete: 1 });

    expect((await upload(id, Buffer.from('reborn'))).status).toBe(200);
  });
});

describe('POST /attachments/manifest', () => {
  it('lists the latest operation per attachment, ascending by version, across all clients', async () => {
    const start = (
      await call(target, 'POST', '/attachments/manifest', {
        token: reader.token,
        body: { client_id: 'c', since_version: 0 },
      })
    ).body.current_version;
    const a = newId();
    const b = newId();
    await upload(a, Buffer.from('a1'));
    await upload(b, Buffer.from('b1'));
    await call(target, 'DELETE', `/attachments/${a}`, { token: await adminToken(target) });
    const manifest = await call(target, 'POST', '/attachments/manifest', {
      token: reader.token,
      body: { client_id: 'c', since_version: start },
    });
    expect(
      manifest.body.operations.map((o: { attachment_id: string; operation: string }) => [
        o.attachment_id,
        o.operation,
      ]),
    ).toEqual([
      [b, 'download'],
      [a, 'delete'],
    ]);
    const versions = manifest.body.operations.map((o: { version: number }) => o.version);
    expect(versions).toEqual([...versions].sort((x, y) => x - y));
  });

  it('shares the global change counter with records', async () => {
    const m1 = (
      await call(target, 'POST', '/attachments/manifest', {
        token: reader.token,
        body: { client_id: 'c', since_version: 0 },
      })
    ).body;
    const pull = await call(target, 'POST', '/sync/pull', { token: reader.token, body: { client_id: 'c' } });
    expect(pull.body.current_version).toBe(m1.current_version);
  });

  it('400 for a missing or negative since_version; arrays are never null', async () => {
    expect(
      (await call(target, 'POST', '/attachments/manifest', { token: reader.token, body: { client_id: 'c' } }))
        .status,
    ).toBe(400);
    expect(
      (
        await call(target, 'POST', '/attachments/manifest', {
          token: reader.token,
          body: { client_id: 'c', since_version: -1 },
        })
      ).status,
    ).toBe(400);
    const empty = await call(target, 'POST', '/attachments/manifest', {
      token: reader.token,
      body: { client_id: 'c', since_version: 10_000_000 },
    });
    expect(empty.body.operations).toEqual([]);
  });
});

import { randomUUID } from 'node:crypto';
import type { components } from '@synk/contract';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTarget } from '../src/harness.ts';
import { adminToken, call, send, userWithRole } from '../src/http.ts';
import { expectProblem } from '../src/problem.ts';

/**
 * POST /attachments/manifest?limit= (extension: paging) and the streamed answer. The server runs
 * as in production, without response validation, so that the manifest is written as it is read
 * (with validation on, the answer is collected and checked whole; attachments.test.ts covers that).
 */
const target = useTarget({ VALIDATE_RESPONSES: 'false' });

type Manifest = components['schemas']['AttachmentManifestResponse'];
type Operation = Manifest['operations'][number];

let writer: { token: string };
let reader: { token: string };
let admin: string;
beforeAll(async () => {
  writer = await userWithRole(target, 'read-write');
  reader = await userWithRole(target, 'read-only');
  admin = await adminToken(target);
});

async function upload(id: string, text: string) {
  const form = new FormData();
  form.append('file', new Blob([text], { type: 'text/plain' }), id);
  const res = await send(target, `/attachments/${id}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${writer.token}` },
    body: form,
  });
  expect(res.status).toBe(200);
}

async function manifest(since: number, query = '') {
  const res = await call<Manifest>(target, 'POST', `/attachments/manifest${query}`, {
    token: reader.token,
    body: { client_id: 'paging-device', since_version: since },
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  return res.body;
}

/** Every page of a walk from `since`, `since_version = change_cutoff` while `has_more`. */
async function walk(
  since: number,
  limit: number,
  between: (page: Manifest) => Promise<void> = async () => {},
) {
  const pages: Manifest[] = [];
  for (let cursor = since; ; ) {
    const page = await manifest(cursor, `?limit=${limit}`);
    pages.push(page);
    expect(pages.length).toBeLessThan(50);
    if (!page.has_more) return pages;
    cursor = page.change_cutoff;
    await between(page);
  }
}

async function currentVersion() {
  return (await manifest(Number.MAX_SAFE_INTEGER)).current_version;
}

describe('POST /attachments/manifest?limit=', () => {
  it('pages through the same operations as one answer, each page with its own totals and cursor', async () => {
    const start = await currentVersion();
    const ids = Array.from({ length: 7 }, (_, i) => `page-${i}-${randomUUID()}.txt`);
    for (const [i, id] of ids.entries()) await upload(id, 'x'.repeat(i + 1));
    const removed = await call(target, 'DELETE', `/attachments/${ids[2]}`, { token: admin });
    expect(removed.status).toBe(200);

    const whole = await manifest(start);
    expect(whole.operations.map((o) => o.attachment_id)).toEqual([
      ...ids.slice(0, 2),
      ...ids.slice(3),
      ids[2],
    ]);
    expect(whole).toMatchObject({ has_more: false, change_cutoff: whole.current_version });

    const pages = await walk(start, 3);
    expect(pages.map((p) => [p.operations.length, p.has_more])).toEqual([
      [3, true],
      [3, true],
      [1, false],
    ]);
    expect(pages.flatMap((p) => p.operations)).toEqual(whole.operations);
    for (const page of pages) {
      const downloads = page.operations.filter((o) => o.operation === 'download');
      expect(page.operation_count).toEqual({
        download: downloads.length,
        delete: page.operations.length - downloads.length,
      });
      expect(page.total_download_size).toBe(downloads.reduce((n, o) => n + o.size!, 0));
      expect(page.change_cutoff).toBe(page.has_more ? page.operations.at(-1)!.version : page.current_version);
    }
  });

  it('a limit the operations fill exactly ends with has_more false on the next page (an empty one)', async () => {
    const start = await currentVersion();
    for (let i = 0; i < 4; i++) await upload(`exact-${i}-${randomUUID()}.txt`, 'exact');
    const pages = await walk(start, 2);
    expect(pages.map((p) => [p.operations.length, p.has_more])).toEqual([
      [2, true],
      [2, false],
    ]);
  });

  it('a walk with uploads and deletes between its pages ends in the state of one fresh answer', async () => {
    const start = await currentVersion();
    const ids = Array.from({ length: 6 }, (_, i) => `walk-${i}-${randomUUID()}.txt`);
    for (const id of ids) await upload(id, id);
    let step = 0;
    const pages = await walk(start, 2, async () => {
      step++;
      if (step === 1) {
        // One already answered and one not yet: each comes (again) at its new version, once.
        await call(target, 'DELETE', `/attachments/${ids[0]}`, { token: admin });
        await call(target, 'DELETE', `/attachments/${ids[4]}`, { token: admin });
        await upload(`walk-late-${randomUUID()}.txt`, 'late');
      }
    });
    const applied = new Map<string, Operation>();
    for (const op of pages.flatMap((p) => p.operations)) {
      expect(op.version).toBeGreaterThan(applied.get(op.attachment_id)?.version ?? 0);
      applied.set(op.attachment_id, op);
    }
    const fresh = await manifest(start);
    expect([...applied.values()].sort((a, b) => a.version - b.version)).toEqual(fresh.operations);
    // Within one page an attachment appears once.
    for (const page of pages) {
      const seen = page.operations.map((o) => o.attachment_id);
      expect(new Set(seen).size).toBe(seen.length);
    }
  });

  it.each(['0', '5001', 'abc', '1e1', '-1'])('limit=%s → 400 naming the parameter', async (limit) => {
    const res = await send(target, `/attachments/manifest?limit=${limit}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${reader.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: 'c', since_version: 0 }),
    });
    const problem = await expectProblem(res, 400, 'validation_failed');
    expect((problem.errors as { path: string }[]).map((e) => e.path)).toEqual(['/query/limit']);
  });

  it('still answers 401 without a token, before anything is streamed', async () => {
    const res = await send(target, '/attachments/manifest', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: 'c', since_version: 0 }),
    });
    await expectProblem(res, 401, 'unauthorized');
  });
});

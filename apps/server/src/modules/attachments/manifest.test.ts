import type { components } from '@synk/contract';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AttachmentChangesQuery, AttachmentRow } from '../sync/sync.store.ts';
import { manifestJson } from './manifest.ts';

/** The store's contract over an array: rows with after < version <= through, by version, at most limit. */
function arrayIndex(rows: AttachmentRow[], currentVersion: number) {
  const queries: AttachmentChangesQuery[] = [];
  return {
    queries,
    currentVersion,
    async attachmentChanges(query: AttachmentChangesQuery) {
      queries.push(query);
      const matching = rows
        .filter((r) => r.version > query.after && r.version <= query.through)
        .sort((a, b) => a.version - b.version)
        .slice(0, query.limit);
      return { currentVersion: this.currentVersion, rows: matching };
    },
  };
}

const row = (version: number, deleted = version % 4 === 0): AttachmentRow => ({
  attachment_id: `a-${version}.jpg`,
  hash: 'ab'.repeat(32),
  size: version * 10,
  content_type: 'image/jpeg',
  deleted,
  version,
  created_at: '2026-01-01T00:00:00.000Z',
  updated_at: '2026-01-01T00:00:00.000Z',
});

type Answer = components['schemas']['AttachmentManifestResponse'];

async function answer(index: ReturnType<typeof arrayIndex>, since: number, limit?: number, chunk = 3) {
  let text = '';
  for await (const piece of manifestJson(index, { sinceVersion: since, limit, baseUrl: 'http://h' }, chunk))
    text += piece;
  return JSON.parse(text) as Answer;
}

describe('manifestJson', () => {
  it('walks every operation once, in order, whatever the limit and chunk size', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.integer({ min: 1, max: 60 }), { maxLength: 40 }),
        fc.option(fc.integer({ min: 1, max: 12 }), { nil: undefined }),
        fc.integer({ min: 1, max: 7 }),
        async (versions, limit, chunk) => {
          const rows = versions.map((v) => row(v));
          const index = arrayIndex(rows, 60);
          const seen: number[] = [];
          let since = 0;
          for (let pages = 0; ; pages++) {
            const page = await answer(index, since, limit, chunk);
            expect(page.current_version).toBe(60);
            expect(page.operations.length).toBeLessThanOrEqual(limit ?? Number.POSITIVE_INFINITY);
            const downloads = page.operations.filter((o) => o.operation === 'download');
            expect(page.operation_count).toEqual({
              download: downloads.length,
              delete: page.operations.length - downloads.length,
            });
            expect(page.total_download_size).toBe(downloads.reduce((n, o) => n + o.size!, 0));
            seen.push(...page.operations.map((o) => o.version));
            if (!page.has_more) {
              expect(page.change_cutoff).toBe(60);
              break;
            }
            expect(page.change_cutoff).toBe(page.operations.at(-1)!.version);
            since = page.change_cutoff;
            expect(pages).toBeLessThan(100);
          }
          expect(seen).toEqual(versions.toSorted((a, b) => a - b));
          // Never more rows asked at once than a chunk.
          for (const q of index.queries) expect(q.limit).toBeLessThanOrEqual(chunk);
        },
      ),
    );
  });

  it('says has_more exactly when a row follows the limit, including at a chunk boundary', async () => {
    const index = arrayIndex(
      [1, 2, 3, 4, 5, 6].map((v) => row(v, false)),
      6,
    );
    expect(await answer(index, 0, 3, 3)).toMatchObject({ has_more: true, change_cutoff: 3 });
    expect(await answer(index, 0, 6, 3)).toMatchObject({ has_more: false, change_cutoff: 6 });
    expect(await answer(index, 3, 3, 3)).toMatchObject({ has_more: false, change_cutoff: 6 });
    expect(await answer(index, 0, 4, 2)).toMatchObject({ has_more: true, change_cutoff: 4 });
  });

  it('keeps to the first chunk’s current_version: a row written after it is for the next walk', async () => {
    const rows = [1, 2, 3].map((v) => row(v, false));
    const index = arrayIndex(rows, 3);
    const query = index.attachmentChanges.bind(index);
    // After the first chunk is read, attachment 2 is replaced (moves to version 4) and 5 is added.
    index.attachmentChanges = async (q) => {
      const result = await query(q);
      if (index.queries.length === 1) {
        rows.splice(1, 1, { ...row(4, false), attachment_id: 'a-2.jpg' });
        rows.push(row(5, false));
        index.currentVersion = 5;
      }
      return result;
    };
    const page = await answer(index, 0, undefined, 1);
    // 2 is not in this walk (its version is above current_version now), and nothing is answered twice.
    expect(page.operations.map((o) => o.attachment_id)).toEqual(['a-1.jpg', 'a-3.jpg']);
    expect(page.current_version).toBe(3);
    // The next walk, from current_version, meets both.
    const next = await answer(index, page.change_cutoff, undefined, 1);
    expect(next.operations.map((o) => [o.attachment_id, o.version])).toEqual([
      ['a-2.jpg', 4],
      ['a-5.jpg', 5],
    ]);
  });
});

import type { components } from '@synk/contract';
import type { AttachmentIndex, AttachmentRow } from '../sync/sync.store.ts';

type Operation = components['schemas']['AttachmentManifestOperation'];

/** Rows read per query: the answer is written as it is read, so memory holds one such chunk. */
export const MANIFEST_CHUNK_ROWS = 1000;

export interface ManifestQuery {
  sinceVersion: number;
  /** The most operations to answer (`?limit`); `undefined`: all of them, as 1.0.3 answers. */
  limit: number | undefined;
  /** Where `download_url`s point: PUBLIC_URL or the request's own origin. */
  baseUrl: string;
}

export function manifestOperation(row: AttachmentRow, baseUrl: string): Operation {
  return row.deleted
    ? { operation: 'delete', attachment_id: row.attachment_id, version: row.version }
    : {
        operation: 'download',
        attachment_id: row.attachment_id,
        download_url: `${baseUrl}/attachments/${encodeURIComponent(row.attachment_id)}`,
        size: row.size,
        content_type: row.content_type,
        version: row.version,
        hash: row.hash,
      };
}

/**
 * `POST /attachments/manifest` as JSON text, in pieces (spec §5): `current_version` is read with
 * the first chunk, and the operations are those at or below it, read a chunk at a time from the
 * last one's version. A chunk is not a snapshot of the whole answer, and need not be: an attachment
 * that changes meanwhile takes a version above `current_version` (the next walk's), so none is
 * answered twice, and none is lost — a client goes on from `change_cutoff` and meets it there.
 * The first piece is produced before anything is sent, so an unreachable database is still a
 * clean error answer; the totals come last, counted on the way.
 */
export async function* manifestJson(
  index: Pick<AttachmentIndex, 'attachmentChanges'>,
  query: ManifestQuery,
  chunkRows = MANIFEST_CHUNK_ROWS,
): AsyncGenerator<string> {
  const wanted = query.limit ?? Number.POSITIVE_INFINITY;
  // A row past what is still wanted says whether more follow (with nothing left wanted, a probe of one).
  const fetchLimit = (remaining: number) => Math.min(chunkRows, remaining + 1);
  let asked = fetchLimit(wanted);
  const first = await index.attachmentChanges({
    after: query.sinceVersion,
    through: Number.POSITIVE_INFINITY,
    limit: asked,
  });
  const currentVersion = first.currentVersion;
  let rows = first.rows;
  let answered = 0;
  let lastVersion = query.sinceVersion;
  let downloadBytes = 0;
  let downloads = 0;
  let hasMore = false;
  let head = `{"current_version":${currentVersion},"operations":[`;
  for (;;) {
    const take = rows.slice(0, wanted - answered);
    const pieces = take.map((row) => {
      if (!row.deleted) {
        downloads++;
        downloadBytes += row.size;
      }
      return JSON.stringify(manifestOperation(row, query.baseUrl));
    });
    if (pieces.length > 0) {
      yield head + (answered > 0 ? ',' : '') + pieces.join(',');
      head = '';
      answered += pieces.length;
      lastVersion = take.at(-1)!.version;
    }
    hasMore = rows.length > take.length;
    if (hasMore || rows.length < asked) break;
    asked = fetchLimit(wanted - answered);
    rows = (await index.attachmentChanges({ after: lastVersion, through: currentVersion, limit: asked }))
      .rows;
  }
  const changeCutoff = hasMore ? lastVersion : currentVersion;
  yield `${head}],"total_download_size":${downloadBytes},"operation_count":{"download":${downloads},"delete":${answered - downloads}},"has_more":${hasMore},"change_cutoff":${changeCutoff}}`;
}

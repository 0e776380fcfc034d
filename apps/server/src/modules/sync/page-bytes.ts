/**
 * Pull pages are bounded in bytes as well as in records: 500 records of a few MiB each (a push
 * may carry 16 MiB) would otherwise make one page of gigabytes, past what SQLite can build
 * (1 GB) and what a phone can take, and the client could never get past it.
 *
 * A page takes records in version order while their estimated size (each record's stored `data`
 * bytes plus RECORD_ENVELOPE_BYTES for the rest of its JSON) stays within PULL_PAGE_MAX_BYTES, and
 * always at least one record, however large. A page cut short says `has_more`, like one that
 * reached its limit, so the client's loop goes on from its last record.
 */
export const PULL_PAGE_MAX_BYTES = 16 * 1024 * 1024;
/** The estimate of a record's JSON besides its `data` (ids, timestamps, hash, geolocation, …). */
export const RECORD_ENVELOPE_BYTES = 1024;
/**
 * Records whose data is larger are indexed (SQLite: a partial index): a page without one is at
 * most 500 × (16 KiB + 1 KiB) = 8.5 MiB, so it is read without being measured first.
 */
export const LARGE_DATA_BYTES = 16 * 1024;

/**
 * The version of the last record a page may hold, given the page's candidate records in version
 * order as [version, data bytes] pairs: the records within the byte budget, at least one.
 */
export function lastVersionWithin(
  sizes: readonly (readonly [version: number, dataBytes: number])[],
  maxBytes = PULL_PAGE_MAX_BYTES,
): number {
  let last = sizes[0]![0];
  let total = sizes[0]![1] + RECORD_ENVELOPE_BYTES;
  for (let i = 1; i < sizes.length; i++) {
    total += sizes[i]![1] + RECORD_ENVELOPE_BYTES;
    if (total > maxBytes) break;
    last = sizes[i]![0];
  }
  return last;
}

/** Whether a page of `limit` records, none larger than LARGE_DATA_BYTES, fits in `maxBytes`. */
export const smallRecordsFit = (limit: number, maxBytes = PULL_PAGE_MAX_BYTES) =>
  limit * (LARGE_DATA_BYTES + RECORD_ENVELOPE_BYTES) <= maxBytes;

/**
 * An export read ends at its record limit or once the data of the records it visited reach this:
 * a read's values are held (as cells) until they are encoded, so 500 records of a few MiB each
 * must not be read at once.
 */
export const EXPORT_READ_MAX_BYTES = 16 * 1024 * 1024;

import type { Client } from 'openapi-fetch';
import { cursorPages } from './cursor-pages.ts';
import type { components, paths } from './generated/schema.ts';

/** A device's sync status, as an administrator sees it (`GET /sync/clients`). */
export type SyncClientStatus = components['schemas']['SyncClient'];
export type SyncClientPage = components['schemas']['SyncClientList'];

export interface SyncClientPagesOptions {
  /** Devices per request (1–500; the server's default is 50). */
  limit?: number;
  /** Start after this client_id (a page's `next_after`), to resume a listing. */
  after?: string;
  signal?: AbortSignal;
}

/**
 * Every device's sync status (admin), a page at a time in client_id order: each request starts
 * after the last page's `next_after`, until `has_more` is false. Each page carries its own
 * `current_version`, which its `behind_by` values were computed against.
 */
export function syncClientPages(
  api: Client<paths>,
  options: SyncClientPagesOptions = {},
): AsyncGenerator<SyncClientPage> {
  return cursorPages('GET /sync/clients', options.after, (after) =>
    api.GET('/sync/clients', {
      params: {
        query: {
          ...(options.limit !== undefined ? { limit: options.limit } : {}),
          ...(after !== undefined ? { after } : {}),
        },
      },
      ...(options.signal ? { signal: options.signal } : {}),
    }),
  );
}

import { sha256Hex } from '../../lib/canonical-json.ts';

/**
 * `next_page_token` is opaque to clients: the cursor version, a digest of the filter the page was
 * read with, and a checksum of both, so that a garbled or invented token is refused (400) instead
 * of silently restarting or skipping the sync. The filter is bound in because a cursor is only
 * valid for the filter it was issued with: type A's cursor sits past type B's records between the
 * pages of A, so continuing it with B's filter would skip them (spec §4.3: none is ever skipped).
 */
const PREFIX = 'p2.';

export interface PageCursor {
  version: number;
  /** `pageFilterDigest` of the filter the token was issued for. */
  filter: string;
}

/** What shapes a pull's pages: its form types, sorted and deduplicated (`[]` for all types). */
export function pageFilterDigest(formTypes: readonly string[]): string {
  return sha256Hex(JSON.stringify(formTypes)).slice(0, 16);
}

export function encodePageToken({ version, filter }: PageCursor): string {
  const payload = `${version}.${filter}`;
  return PREFIX + Buffer.from(`${payload}.${sha256Hex(payload).slice(0, 12)}`).toString('base64url');
}

export function decodePageToken(token: string): PageCursor | undefined {
  if (!token.startsWith(PREFIX) || token.length > 128) return undefined;
  const decoded = Buffer.from(token.slice(PREFIX.length), 'base64url').toString();
  const match = /^((\d{1,15})\.([0-9a-f]{16}))\.([0-9a-f]{12})$/.exec(decoded);
  if (!match || sha256Hex(match[1]!).slice(0, 12) !== match[4]) return undefined;
  const version = Number(match[2]);
  return Number.isSafeInteger(version) ? { version, filter: match[3]! } : undefined;
}

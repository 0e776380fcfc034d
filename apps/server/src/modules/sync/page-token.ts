import { sha256Hex } from '../../lib/canonical-json.ts';

/**
 * `next_page_token` is opaque to clients: the cursor version plus a checksum, so that a garbled or
 * invented token is refused (400) instead of silently restarting or skipping the sync.
 */
const PREFIX = 'p1.';

export function encodePageToken(version: number): string {
  const payload = String(version);
  return PREFIX + Buffer.from(`${payload}.${sha256Hex(payload).slice(0, 12)}`).toString('base64url');
}

export function decodePageToken(token: string): number | undefined {
  if (!token.startsWith(PREFIX) || token.length > 128) return undefined;
  const decoded = Buffer.from(token.slice(PREFIX.length), 'base64url').toString();
  const match = /^(\d{1,15})\.([0-9a-f]{12})$/.exec(decoded);
  if (!match || sha256Hex(match[1]!).slice(0, 12) !== match[2]) return undefined;
  const version = Number(match[1]);
  return Number.isSafeInteger(version) ? version : undefined;
}

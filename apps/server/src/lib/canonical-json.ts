import { createHash } from 'node:crypto';

/** Canonical JSON (sorted keys, no whitespace) lives with the bundle rules, which need it too. */
export { canonicalJson } from '@synk/bundle-rules';

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

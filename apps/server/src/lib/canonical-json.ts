import { hash } from 'node:crypto';

/** Canonical JSON (sorted keys, no whitespace) lives with the bundle rules, which need it too. */
export { canonicalJson } from '@synk/bundle-rules';

/** One-shot: no Hash object per call (a push hashes every record). */
export function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}

import { hash } from 'node:crypto';

export { canonicalJson } from '@synk/json';

/** One-shot: no Hash object per call (a push hashes every record). */
export function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}

import { hash, webcrypto } from 'node:crypto';

export { CanonicalJsonError, canonicalJson } from '@synk/json';

/** One-shot: no Hash object per call (a push hashes every record). */
export function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}

/**
 * sha256 of `bytes` computed on libuv's thread pool (WebCrypto digests run there), so hashing a
 * large request body overlaps with the work the event loop does meanwhile.
 */
export async function sha256HexOffThread(bytes: Uint8Array): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', bytes)).toString('hex');
}

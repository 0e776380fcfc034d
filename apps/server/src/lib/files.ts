import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { releaseTransferGarbage, TRANSFER_GC_INTERVAL } from './memory.ts';

export class StreamTooLarge extends Error {
  readonly limit: number;
  constructor(limit: number) {
    super(`larger than ${limit} bytes`);
    this.limit = limit;
  }
}

/**
 * Streams `source` into a new file (exclusive create, fsynced before close), hashing it on the
 * way and refusing more than `maxBytes`. On any failure the partial file is removed.
 */
export async function streamToFile(
  source: Readable,
  target: string,
  maxBytes: number,
  onChunk?: (chunk: Buffer, sizeSoFar: number) => void,
): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  let sinceCollection = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length;
      if (size > maxBytes) {
        callback(new StreamTooLarge(maxBytes));
        return;
      }
      sinceCollection += chunk.length;
      if (sinceCollection >= TRANSFER_GC_INTERVAL) {
        sinceCollection = 0;
        releaseTransferGarbage();
      }
      hash.update(chunk);
      onChunk?.(chunk, size);
      callback(null, chunk);
    },
  });
  try {
    await pipeline(source, meter, createWriteStream(target, { flags: 'wx', mode: 0o600, flush: true }));
  } catch (err) {
    await rm(target, { force: true });
    throw err;
  }
  return { size, sha256: hash.digest('hex') };
}

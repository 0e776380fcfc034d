import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * Long transfers allocate a fresh socket buffer per read. V8 collects those only once about 64 MiB
 * of such external memory has piled up since the last collection, so a 1 GiB upload would hold
 * that much dead memory. `releaseTransferGarbage()` asks for a young-generation collection (about
 * a millisecond) and is called every few MiB of a transfer, which keeps its footprint flat.
 */
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as ((options?: { type: 'minor' | 'major' }) => void) | undefined;

export function releaseTransferGarbage(): void {
  gc?.({ type: 'minor' });
}

/**
 * Buffers that live until a slow consumer (a socket's write queue) is done with them outlive
 * young-generation collections, and V8 then frees them only at a full collection, which it starts
 * after ~64 MiB more of such memory. A writer that hands out buffers of a few MiB (an export's
 * Parquet row groups) reports each here; after every `WRITTEN_GC_INTERVAL` of them a full
 * collection of the server's small heap (a few milliseconds) keeps what they hold to the buffers
 * still in use.
 */
export function releaseWrittenBuffers(bytes: number): void {
  writtenSinceCollection += bytes;
  if (writtenSinceCollection < WRITTEN_GC_INTERVAL) return;
  writtenSinceCollection = 0;
  gc?.({ type: 'major' });
}
let writtenSinceCollection = 0;
const WRITTEN_GC_INTERVAL = 4 * 1024 * 1024;

/** How many bytes a transfer moves between two `releaseTransferGarbage()` calls. */
export const TRANSFER_GC_INTERVAL = 8 * 1024 * 1024;

import type { Writable } from 'node:stream';

const closed = (stream: Writable) => stream.errored ?? new Error('the output was closed');

/**
 * Writes `chunk`, then waits while `stream` is full. Fails, never waits forever, when the stream
 * fails or is destroyed (a destroyed stream emits neither 'drain' nor, again, 'error').
 */
export async function writeChunk(stream: Writable, chunk: string | Buffer): Promise<void> {
  if (stream.destroyed) throw closed(stream);
  if (stream.write(chunk)) return;
  await new Promise<void>((resolve, reject) => {
    const settle = (err?: Error | null) => {
      stream.off('drain', onDrain).off('close', onClose).off('error', settle);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => settle();
    const onClose = () => settle(closed(stream));
    stream.on('drain', onDrain).on('close', onClose).on('error', settle);
  });
}

/** Ends `stream` and waits until all of it is written, or fails when it fails or was destroyed. */
export function endStream(stream: Writable): Promise<void> {
  if (stream.destroyed) return Promise.reject(closed(stream));
  return new Promise<void>((resolve, reject) => {
    stream.end((err?: Error | null) => (err ? reject(err) : resolve()));
  });
}

import type { Observation } from '@synk/sdk/node';
import { writeJsonArray } from './json-array.ts';

/**
 * The records of `pages` (a pull's) written as one JSON array, as `writeJsonArray` writes it, page
 * by page as they arrive. Returns how many records were written.
 */
export function writeRecordsJson(
  pages: AsyncIterable<{ records: readonly Observation[] }>,
  write: (chunk: Buffer) => Promise<void>,
): Promise<number> {
  return writeJsonArray(recordsOf(pages), write);
}

async function* recordsOf(pages: AsyncIterable<{ records: readonly Observation[] }>) {
  for await (const { records } of pages) yield records;
}

import type { Observation } from '@synk/sdk/node';

/**
 * The records of `pages` written as one JSON array, the text `JSON.stringify(records, null, 2)`
 * gives, page by page as they arrive: a pull is never held whole in memory (a string of ~500 MB is
 * more than V8 can build). Returns how many records were written.
 */
export async function writeRecordsJson(
  pages: AsyncIterable<{ records: readonly Observation[] }>,
  write: (chunk: Buffer) => Promise<void>,
): Promise<number> {
  let count = 0;
  for await (const { records } of pages) {
    if (records.length === 0) continue;
    // Nested one level deeper than alone; JSON text never holds a raw line break inside a string.
    const text = records.map((record) => `  ${JSON.stringify(record, null, 2).replaceAll('\n', '\n  ')}`);
    await write(Buffer.from(`${count === 0 ? '[\n' : ',\n'}${text.join(',\n')}`));
    count += records.length;
  }
  await write(Buffer.from(count === 0 ? '[]\n' : '\n]\n'));
  return count;
}

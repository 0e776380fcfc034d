/**
 * The items of `pages` written as one JSON array, the text `JSON.stringify(items, null, 2)` gives
 * (and a line break), page by page as they arrive: a listing is never held whole in memory (a
 * string of ~500 MB is more than V8 can build). Returns how many items were written.
 */
export async function writeJsonArray(
  pages: AsyncIterable<readonly unknown[]>,
  write: (chunk: Buffer) => Promise<void>,
): Promise<number> {
  let count = 0;
  for await (const items of pages) {
    if (items.length === 0) continue;
    // Nested one level deeper than alone; JSON text never holds a raw line break inside a string.
    const text = items.map((item) => `  ${JSON.stringify(item, null, 2).replaceAll('\n', '\n  ')}`);
    await write(Buffer.from(`${count === 0 ? '[\n' : ',\n'}${text.join(',\n')}`));
    count += items.length;
  }
  await write(Buffer.from(count === 0 ? '[]\n' : '\n]\n'));
  return count;
}

import type { Observation } from '@synk/sdk/node';
import { describe, expect, it } from 'vitest';
import { writeRecordsJson } from '../src/records-json.ts';

const record = (id: string, data: Record<string, unknown>) =>
  ({ observation_id: id, form_type: 'household', data, version: 1 }) as unknown as Observation;

/** Pages as a pull yields them, noting in `log` when each is asked for. */
async function* pages(list: Observation[][], log: string[]) {
  for (const [i, page] of list.entries()) {
    log.push(`page ${i}`);
    yield { records: page };
  }
}

async function written(list: Observation[][]) {
  const log: string[] = [];
  const chunks: Buffer[] = [];
  const count = await writeRecordsJson(pages(list, log), async (chunk) => {
    log.push('write');
    chunks.push(chunk);
  });
  return { count, text: Buffer.concat(chunks).toString('utf8'), log };
}

describe('writeRecordsJson', () => {
  it('writes the text JSON.stringify(records, null, 2) gives, whatever the pages', async () => {
    const all = [
      record('a', { note: 'line\nbreak "quoted"', nested: { list: [1, { x: null }], empty: {} } }),
      record('b', {}),
      record('c', { emoji: '😀', arr: [] }),
    ];
    for (const list of [[all], [[all[0]!], [], [all[1]!, all[2]!]], [[], [all[0]!], [all[1]!], [all[2]!]]]) {
      const { count, text } = await written(list);
      expect(count).toBe(3);
      expect(text).toBe(`${JSON.stringify(all, null, 2)}\n`);
    }
  });

  it('writes an empty array for no records', async () => {
    for (const list of [[], [[]], [[], []]]) expect((await written(list)).text).toBe('[]\n');
  });

  it('writes each page before asking for the next', async () => {
    const { log } = await written([[record('a', {})], [record('b', {})], []]);
    expect(log).toEqual(['page 0', 'write', 'page 1', 'write', 'page 2', 'write']);
  });
});
